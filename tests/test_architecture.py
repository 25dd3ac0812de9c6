"""The fork promise and the one-context rule, checked on the code itself (it is parsed, not run).

- Levels 2-4 name no column of the example: every fact about it comes from Level 1's adapter.
- Settings are built only by entry points; only entry points (and the one process set-up
  module) write the environment.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from pathlib import Path

from level1_devops import features, schema
from level1_devops.feed import PERIOD_COLUMN
from tests.helpers import REPO_ROOT

UPPER_LEVELS = ("level2_training", "level3_deployment", "level4_retraining")
# Where a process starts: these may build Settings() and set the environment.
ENTRY_POINTS = {"cli.py", "deployments.py"}
PROCESS_SETUP = {"level2_training/orchestration.py"}


def example_columns() -> set[str]:
    names = {c.name for c in schema.COLUMNS} | set(features.FEATURE_COLUMNS)
    names |= {features.LABEL_COLUMN, schema.RECORD_ID_COLUMN, *schema.KEY_COLUMNS,
              *features.LABEL_SOURCE_COLUMNS}
    return names - {PERIOD_COLUMN}


def sources(*packages: str) -> Iterator[tuple[Path, ast.Module]]:
    for package in packages:
        for path in sorted((REPO_ROOT / package).rglob("*.py")):
            yield path, ast.parse(path.read_text(), filename=str(path))


def docstrings(tree: ast.Module) -> set[int]:
    """ids of the docstring nodes (text for people, not code)."""
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
            body = node.body
            if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
                found.add(id(body[0].value))
    return found


def test_levels_2_to_4_name_no_column_of_the_example() -> None:
    columns = example_columns()
    # Names with an underscore are unmistakable even inside a longer text.
    compound = re.compile(r"\b(" + "|".join(sorted(c for c in columns if "_" in c)) + r")\b")
    named = []
    for path, tree in sources(*UPPER_LEVELS):
        skip = docstrings(tree)
        for node in ast.walk(tree):
            if not (isinstance(node, ast.Constant) and isinstance(node.value, str)):
                continue
            if id(node) in skip:
                continue
            if node.value in columns or compound.search(node.value):
                named.append(f"{path.relative_to(REPO_ROOT)}:{node.lineno}: {node.value!r}")
    assert not named, "levels 2-4 name the example's columns (state them in the adapter):\n" + (
        "\n".join(named))


def test_the_check_would_see_a_column_named_in_code() -> None:
    """The test above can fail: a literal like today's code had is found."""
    tree = ast.parse('frame["arr_delay"]\nx = {"origin": "JFK"}\n"""origin in a docstring"""')
    found = [n.value for n in ast.walk(tree) if isinstance(n, ast.Constant)
             and id(n) not in docstrings(tree) and n.value in example_columns()]
    assert found == ["arr_delay", "origin"]


def _is_environ(node: ast.AST) -> bool:
    return isinstance(node, ast.Attribute) and node.attr == "environ" and (
        isinstance(node.value, ast.Name) and node.value.id == "os")


def environment_writes(tree: ast.Module) -> list[int]:
    lines = []
    for node in ast.walk(tree):
        targets: list[ast.AST] = []
        if isinstance(node, ast.Assign | ast.AugAssign | ast.Delete):
            targets = node.targets if isinstance(node, ast.Assign | ast.Delete) else [node.target]
        if any(isinstance(t, ast.Subscript) and _is_environ(t.value) for t in targets):
            lines.append(node.lineno)
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and (
                _is_environ(node.func.value)
                and node.func.attr in {"update", "setdefault", "pop", "clear", "__setitem__"}):
            lines.append(node.lineno)
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and (
                node.func.attr in {"putenv", "unsetenv"}):
            lines.append(node.lineno)
    return lines


def test_settings_are_built_and_the_environment_written_only_by_entry_points() -> None:
    built, written = [], []
    for path, tree in sources("level1_devops", *UPPER_LEVELS):
        relative = path.relative_to(REPO_ROOT).as_posix()
        entry = path.name in ENTRY_POINTS
        if not entry and path.parent.name != "level1_devops":
            built += [f"{relative}:{n.lineno}" for n in ast.walk(tree)
                      if isinstance(n, ast.Call) and isinstance(n.func, ast.Name)
                      and n.func.id == "Settings"]
        if not entry and relative not in PROCESS_SETUP:
            written += [f"{relative}:{line}" for line in environment_writes(tree)]
    assert not built, f"Settings() outside entry points: {built}"
    assert not written, f"os.environ written outside entry points: {written}"


def test_every_mlflow_client_names_its_tracking_uri() -> None:
    unnamed = []
    for path, tree in sources(*UPPER_LEVELS):
        for node in ast.walk(tree):
            name = getattr(node, "func", None) and getattr(
                node.func, "id", getattr(node.func, "attr", None))  # type: ignore[attr-defined]
            if name == "MlflowClient" and not any(
                    k.arg == "tracking_uri" for k in node.keywords):  # type: ignore[attr-defined]
                unnamed.append(f"{path.relative_to(REPO_ROOT)}:{node.lineno}")
    assert not unnamed, f"MlflowClient() without a tracking URI: {unnamed}"
