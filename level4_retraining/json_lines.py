"""JSON-lines files, the laptop profile's history and alerts: appended a line at a time, read
back skipping (with a warning naming the file and the line) a line that cannot be read: cut
short by a crash, edited by hand. One bad line never stops monitoring, `mlops status` or
``/metrics``.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

log = logging.getLogger("mlops.monitoring")
_warned: set[tuple[str, int, str]] = set()  # each broken line is reported once per process


def append_json_line(path: Path, value: dict[str, Any]) -> None:
    """Append one JSON line to ``path``. A last line a crash left unfinished is ended first:
    it stays broken (and is skipped when read), the new line is whole."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a+b") as out:
        unfinished = False
        if out.seek(0, 2) > 0:
            out.seek(-1, 2)
            unfinished = out.read(1) != b"\n"
        out.write((("\n" if unfinished else "") + json.dumps(value) + "\n").encode())


def read_json_lines(path: Path,
                    problem: Callable[[dict[str, Any]], str | None] = lambda _: None,
                    ) -> list[dict[str, Any]]:
    """The JSON objects of ``path``, one a line, oldest first; a line that is not one, or that
    ``problem`` finds fault with (it returns why), is skipped with a warning."""
    if not path.is_file():
        return []
    found: list[dict[str, Any]] = []
    for number, text in enumerate(path.read_text(errors="replace").split("\n"), 1):
        if not text.strip():
            continue
        try:
            value = json.loads(text)
        except ValueError as err:
            why: str | None = f"not JSON ({err})"
        else:
            why = problem(value) if isinstance(value, dict) else "not a JSON object"
        if why is None:
            found.append(value)
        elif (key := (str(path), number, text)) not in _warned:
            _warned.add(key)
            log.warning("%s, line %d skipped: %s", path, number, why)
    return found
