"""The team stack for the whole session: every shared service of the team profile as a real
process on 127.0.0.1 (team/stack.py), on a small real project, in a temporary folder; always
stopped and deleted at the end.

The stack's state folder is a ``tempfile.mkdtemp`` of its own, not under pytest's basetemp:
PostgreSQL runs as the ``postgres`` user, which must traverse every parent folder, and each
pytest session that starts on the machine resets ``/tmp/pytest-of-<user>`` to 0700 (and
prunes old numbered folders), which would cut a running cluster off from ``pg_ctl``.

The test that checks ``down`` itself (marked ``team_teardown``) is moved to the very end of
the session, so every other test sees the stack running.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from team.stack import Stack
from tests.team_profile.project import MONTHS, make_team_project

REPO_ROOT = Path(__file__).resolve().parents[2]


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "team_teardown: runs last; stops the session's team "
                                       "stack itself")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    items.sort(key=lambda item: item.get_closest_marker("team_teardown") is not None)


@pytest.fixture(scope="session")
def team_project(tmp_path_factory: pytest.TempPathFactory, real_flights: pd.DataFrame,
                 real_weather: pd.DataFrame) -> tuple[Path, Path]:
    """The project folder the stack's services run in, and its feed folder."""
    return make_team_project(tmp_path_factory.mktemp("team-project"), real_flights,
                             real_weather)


@pytest.fixture(scope="session")
def team_stack(team_project: tuple[Path, Path]) -> Iterator[Stack]:
    """The running stack (``.env()``, ``.records()``, ``.database_urls``, ``.state_dir``)."""
    stack = Stack(Path(tempfile.mkdtemp(prefix="mlops-team-stack-")) / "state", team_project[0],
                  feed_dir=team_project[1])
    try:
        stack.up()
        yield stack
    finally:
        stack.down(purge=True)
        shutil.rmtree(stack.state_dir.parent, ignore_errors=True)


@pytest.fixture(scope="session")
def team_env(team_stack: Stack) -> dict[str, str]:
    """The team profile's variables of the running stack (what its team.env holds)."""
    return team_stack.env()


@pytest.fixture(scope="session")
def loop(team_stack: Stack, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """`python -m team.demo` on the session's stack, as `make team-demo` runs it."""
    out = tmp_path_factory.mktemp("team-loop") / "result.json"
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("MLOPS_", "MLFLOW_", "PREFECT_"))}
    done = subprocess.run([sys.executable, "-m", "team.demo", "--state-dir",
                           str(team_stack.state_dir), "--months", ",".join(MONTHS),
                           "--result-json", str(out)], cwd=REPO_ROOT, env=env,
                          capture_output=True, text=True, timeout=1500, check=False)
    assert done.returncode == 0, f"team demo failed:\n{done.stdout[-6000:]}\n{done.stderr[-6000:]}"
    return {**json.loads(out.read_text()), "output": done.stdout}
