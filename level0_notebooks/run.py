"""Execute the Level 0 notebook headless: ``python level0_notebooks/run.py [-p NAME=VALUE]``.

The percent-format ``.py`` is the reviewed source; it is read with jupytext, the parameters
given with ``-p`` are injected after the cell tagged ``parameters`` (as papermill does), and
the executed notebook, with its plots, is written to ``--output``.
"""

from __future__ import annotations

import argparse
import ast
import sys
import time
from pathlib import Path

import jupytext
import nbformat
from nbclient import NotebookClient

NOTEBOOK_DIR = Path(__file__).resolve().parent
DEFAULT_NOTEBOOK = NOTEBOOK_DIR / "01_explore_and_train.py"
DEFAULT_OUTPUT = NOTEBOOK_DIR.parent / "local" / "reports" / "level0" / "01_explore_and_train.ipynb"


def parse_value(text: str) -> object:
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return text


def inject_parameters(notebook: nbformat.NotebookNode, params: dict[str, object]) -> None:
    """Insert a cell setting ``params`` right after the cell tagged ``parameters``."""
    if not params:
        return
    tagged = [i for i, c in enumerate(notebook.cells) if "parameters" in c.metadata.get("tags", [])]
    if not tagged:
        raise SystemExit("the notebook has no cell tagged 'parameters'")
    source = "# Parameters injected by run.py\n" + "".join(
        f"{k} = {v!r}\n" for k, v in params.items())
    cell = nbformat.v4.new_code_cell(source, metadata={"tags": ["injected-parameters"]})
    notebook.cells.insert(tagged[0] + 1, cell)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--notebook", type=Path, default=DEFAULT_NOTEBOOK)
    parser.add_argument("--output", type=Path, default=DEFAULT_OUTPUT,
                        help="where the executed notebook goes (default: %(default)s)")
    parser.add_argument("-p", "--param", action="append", default=[], metavar="NAME=VALUE",
                        help="override a parameter, e.g. -p SAMPLE_FRAC=0.1")
    parser.add_argument("--timeout", type=int, default=600, help="seconds per cell")
    args = parser.parse_args(argv)
    params = {}
    for item in args.param:
        name, sep, value = item.partition("=")
        if not sep:
            parser.error(f"-p {item}: expected NAME=VALUE")
        params[name] = parse_value(value)

    notebook = jupytext.read(args.notebook)
    inject_parameters(notebook, params)
    started = time.perf_counter()
    print(f"Executing {args.notebook.name} (parameters: {params or 'defaults'}) ...", flush=True)
    client = NotebookClient(notebook, timeout=args.timeout, kernel_name="python3",
                            resources={"metadata": {"path": str(args.notebook.parent)}})
    try:
        client.execute()
    finally:
        args.output.parent.mkdir(parents=True, exist_ok=True)
        nbformat.write(notebook, args.output)
    for cell in notebook.cells:
        for out in cell.get("outputs", []):
            if out.get("name") == "stdout":
                print(out["text"], end="")
    print(f"Done in {time.perf_counter() - started:.0f} s. Executed notebook: {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
