"""The team stack on one machine: every shared service of the team profile as a real process
on 127.0.0.1, started by one command and stopped by another.

    python -m team.stack up     [--state-dir local/team]            # make team-up
    python -m team.stack status [--state-dir local/team]
    python -m team.stack down   [--state-dir local/team] [--purge]  # make team-down

``up`` starts PostgreSQL (one database and role per service), the MLflow server (basic-auth,
artifacts proxied by the server), the Prefect server (auth string) with a ``process`` work
pool and a worker (and ``prefect deploy --all`` when the project has a prefect.yaml), a Dask
scheduler with two workers, two scoring-service processes and Prometheus scraping them. It
waits until each answers, then writes ``team.env`` (0600): the team profile's variables,
usable as ``MLOPS_ENV_FILE``. Every process is recorded in ``pids.json`` as it starts, and
``down`` stops exactly those. Generated secrets persist in ``secrets.json`` (0600), so a later
``up`` reads the data an earlier one left; ``down --purge`` deletes the whole state folder.
"""

from __future__ import annotations

import shutil
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from team import services as svc
from team import stack_env
from team.launcher import (
    Launcher,
    Record,
    load_records,
    record_alive,
    start_ticks,
    stop_postgres,
    stop_records,
)
from team.postgres import Cluster
from team.processes import StackError, http_ok, port_open
from team.stack_env import read_env

# The checkout: the code every process runs and where prefect.yaml registers the deployments
# from (the worker runs flows from here). The project (data, params.yaml) is MLOPS_PROJECT_DIR,
# the checkout itself by default.
CODE_DIR = PROJECT_DIR = Path(__file__).resolve().parents[1]
DEFAULT_STATE_DIR = PROJECT_DIR / "local" / "team"
N_DASK_WORKERS = 2
SHELL_ACTIVE = frozenset(" \t\n'\"$`\\")

__all__ = ["DEFAULT_STATE_DIR", "Stack", "StackError", "read_env"]


class Stack:
    """The team stack whose state (logs, records, secrets, stores) lives in ``state_dir``;
    its services run the checkout's code (their working folder) on ``project_dir``'s data
    and params (MLOPS_PROJECT_DIR)."""

    def __init__(self, state_dir: Path = DEFAULT_STATE_DIR, project_dir: Path = PROJECT_DIR,
                 log: Callable[[str], None] = print, feed_dir: Path | None = None) -> None:
        self.state_dir, self.project_dir = state_dir.resolve(), project_dir.resolve()
        self.feed_dir = feed_dir.resolve() if feed_dir else None  # None: the package's feed
        self.log = log
        self.launcher = Launcher(self.state_dir)
        self.cluster = Cluster(self.state_dir / "postgres")
        self.ports: dict[str, int] = {}
        self.keys: dict[str, str] = {}
        self.database_urls: dict[str, str] = {}  # SQLAlchemy (psycopg) URLs, by database
        self.timings: dict[str, float] = {}  # seconds each step of the last up took

    @property
    def env_path(self) -> Path:
        return self.state_dir / "team.env"

    def records(self) -> list[Record]:
        """Every process the stack recorded (pids.json), in the order they started."""
        return load_records(self.launcher.pids_path)

    def env(self) -> dict[str, str]:
        """The team profile's variables of the running stack (its team.env)."""
        return read_env(self.state_dir)

    # --- up -------------------------------------------------------------------------------

    def up(self) -> dict[str, str]:
        """Start every service and wait until each answers; returns the team env.

        Raises:
            StackError: a stack already runs here, or a service failed (which one, and the
                end of its log); whatever had started is stopped again.
        """
        self._refuse_if_running()
        if any(char in str(self.state_dir) for char in SHELL_ACTIVE):
            # pg_ctl hands the folder to /bin/sh and to postgres' own option parsing.
            raise StackError(f"--state-dir '{self.state_dir}': choose a folder without spaces,"
                             " quotes, $, ` or \\ in its path (PostgreSQL's pg_ctl passes it "
                             "through a shell)")
        start = time.monotonic()
        (self.state_dir / "logs").mkdir(parents=True, exist_ok=True)
        self.keys = stack_env.load_secrets(self.state_dir / "secrets.json")
        self.ports = stack_env.free_ports()
        self.launcher.pids_path.unlink(missing_ok=True)
        try:
            self._start_everything()
        except BaseException as err:
            self.log(f"team stack: start failed ({type(err).__name__}); stopping what had "
                     "started")
            self.launcher.stop_all()
            stop_postgres(self.cluster, self.launcher.records, self.log)
            raise
        env = self.team_env()
        stack_env.write_env_file(self.env_path, env)
        self.timings["total"] = time.monotonic() - start
        self.log(f"team stack up in {self.timings['total']:.1f} s: {self.state_dir}")
        return env

    def team_env(self) -> dict[str, str]:
        env = stack_env.team_env(self.ports, self.keys, self.state_dir, self.project_dir)
        return {**env, "MLOPS_FEED_DIR": str(self.feed_dir)} if self.feed_dir else env

    def client_env(self) -> dict[str, str]:
        return stack_env.client_env(self.team_env(), self.state_dir)

    def _refuse_if_running(self) -> None:
        running = [f"{r.name} (pid {r.pid})" for r in self.records() if record_alive(r)]
        if running:
            raise StackError(f"a team stack is already running in {self.state_dir}: "
                             f"{', '.join(running)}; stop it first (python -m team.stack down "
                             f"--state-dir {self.state_dir})")
        self.cluster.stop()  # a cluster a killed run left behind

    @contextmanager
    def _step(self, name: str) -> Iterator[None]:
        start = time.monotonic()
        try:
            yield
        except StackError as err:
            raise StackError(f"while starting {name}: {err}") from err
        self.timings[name] = time.monotonic() - start
        self.log(f"  {name}: ready after {self.timings[name]:.1f} s")

    def _start_everything(self) -> None:
        with self._step("prometheus install"):
            svc.ensure_prometheus()
        with self._step("postgres"):
            self._start_postgres()
        # The servers start side by side; each is waited on when the next step needs it.
        self._launch_mlflow()
        self._launch_prefect_server()
        self._launch("dask-scheduler", [str(svc.BIN_DIR / "dask"), "scheduler", "--host",
                     "127.0.0.1", "--port", str(self.ports["dask"]), "--dashboard-address",
                     f"127.0.0.1:{self.ports['dask_dashboard']}"], self.ports["dask"])
        with self._step("prometheus config"):
            self._launch_prometheus()
        with self._step("dask scheduler"):
            self._launch_dask_workers()
        with self._step("mlflow"):
            self._check_mlflow()
        self._launch_services()
        with self._step("prefect server and worker"):
            self._start_prefect_worker()
        with self._step("dask workers, services, prometheus"):
            self._wait_for_the_rest()

    def _launch(self, name: str, args: list[str], port: int | None,
                env: dict[str, str] | None = None) -> None:
        self.launcher.launch(name, args, env if env is not None else self.client_env(),
                             port, cwd=CODE_DIR)

    def _start_postgres(self) -> None:
        self.cluster = Cluster(self.state_dir / "postgres", port=self.ports["postgres"],
                               password=self.keys["pg_superuser"])
        self.cluster.start()
        pid = int((self.cluster.data_dir / "postmaster.pid").read_text().split()[0])
        self.launcher.add(Record("postgres", pid, self.cluster.port,
                                     str(self.cluster.log_path),
                                     ["pg_ctl", "start", "-D", str(self.cluster.data_dir)],
                                     start_ticks(pid)))
        for db in stack_env.DATABASES:
            url = self.cluster.create_database(db, db, self.keys[f"pg_{db}"])
            self.database_urls[db] = url.replace("postgresql://", "postgresql+psycopg://", 1)

    def _launch_mlflow(self) -> None:
        auth_config = self.state_dir / "mlflow" / "basic_auth.ini"
        svc.write_mlflow_auth_config(auth_config, self.database_urls["mlflow_auth"],
                                     self.keys["mlflow_admin"])
        env = {**stack_env.child_environ(),
               "MLFLOW_BACKEND_STORE_URI": self.database_urls["mlflow"],
               "MLFLOW_AUTH_CONFIG_PATH": str(auth_config),
               "MLFLOW_FLASK_SERVER_SECRET_KEY": self.keys["flask_secret_key"],
               # The job runner serves GenAI features the project does not use; it costs a
               # process, start-up CPU and ~15 s at shutdown.
               "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"}
        self._launch("mlflow", svc.mlflow_command(self.ports["mlflow"],
                                                  self.state_dir / "mlflow-artifacts"),
                     self.ports["mlflow"], env)

    def _check_mlflow(self) -> None:
        url = f"http://127.0.0.1:{self.ports['mlflow']}"
        search = f"{url}/api/2.0/mlflow/experiments/search?max_results=1"
        self.launcher.wait("mlflow", http_ok(search, accept=(401,)))
        svc.ensure_mlflow_user(url, f"{stack_env.MLFLOW_ADMIN}:{self.keys['mlflow_admin']}",
                               stack_env.MLFLOW_USER, self.keys["mlflow_user"])

    def _launch_prefect_server(self) -> None:
        async_url = self.database_urls["prefect"].replace("+psycopg", "+asyncpg", 1)
        env = {**stack_env.child_environ(), "PREFECT_HOME": str(self.state_dir / "prefect"),
               "PREFECT_API_DATABASE_CONNECTION_URL": async_url,
               "PREFECT_SERVER_API_AUTH_STRING": self.team_env()["PREFECT_API_AUTH_STRING"],
               "PREFECT_SERVER_ANALYTICS_ENABLED": "false"}
        self._launch("prefect-server", svc.prefect_server_command(self.ports["prefect"]),
                     self.ports["prefect"], env)

    def _start_prefect_worker(self) -> None:
        api, auth = self.team_env()["PREFECT_API_URL"], self.team_env()["PREFECT_API_AUTH_STRING"]
        self.launcher.wait("prefect-server", http_ok(f"{api}/health"))
        svc.expect_status("Prefect without the auth string", f"{api}/admin/version", 401)
        svc.expect_status("Prefect with the auth string", f"{api}/admin/version", 200,
                          svc.basic_auth(auth))
        svc.create_work_pool(self.client_env())
        self._launch("prefect-worker", [str(svc.BIN_DIR / "prefect"), "worker", "start",
                                        "--pool", svc.WORK_POOL, "--name", "team-worker"], None)
        self.launcher.wait("prefect-worker", lambda: svc.prefect_worker_registered(api, auth))
        self.log("  " + svc.deploy_flows(self.client_env(), CODE_DIR))

    def _launch_dask_workers(self) -> None:
        self.launcher.wait("dask-scheduler", port_open(self.ports["dask"]))
        for i in range(1, N_DASK_WORKERS + 1):
            self._launch(f"dask-worker-{i}", svc.dask_worker_command(
                self.team_env()["MLOPS_DASK_SCHEDULER_ADDRESS"], f"team-worker-{i}",
                self.state_dir / "dask"), None)

    def _launch_services(self) -> None:
        for i in range(1, stack_env.N_SERVICES + 1):
            port = self.ports[f"service_{i}"]
            self._launch(f"service-{i}", [str(svc.BIN_DIR / "mlops"), "serve", "--app",
                                         "level4", "--host", "127.0.0.1", "--port", str(port)],
                         port)

    def _launch_prometheus(self) -> None:
        folder = self.state_dir / "prometheus"
        targets = [url.removeprefix("http://") for url in stack_env.service_urls(self.ports)]
        svc.write_prometheus_config(folder / "prometheus.yml", targets)
        self._launch("prometheus", svc.prometheus_command(
            folder / "prometheus.yml", folder / "data", self.ports["prometheus"]),
            self.ports["prometheus"], stack_env.child_environ())

    def _wait_for_the_rest(self) -> None:
        scheduler = self.team_env()["MLOPS_DASK_SCHEDULER_ADDRESS"]
        self.launcher.wait("dask-worker-1", lambda: svc.dask_workers_seen(scheduler,
                                                                         N_DASK_WORKERS))
        for i, url in enumerate(stack_env.service_urls(self.ports), 1):
            self.launcher.wait(f"service-{i}", http_ok(f"{url}/health/live"))
        self.launcher.wait("prometheus", http_ok(f"{self.team_env()['PROMETHEUS_URL']}/-/ready"))
        for rec in self.launcher.records:
            if not record_alive(rec):
                raise StackError(f"{rec.name} exited while the others started; its log: "
                                 f"{rec.log_path}")

    # --- down and status ------------------------------------------------------------------

    def down(self, purge: bool = False) -> None:
        """Stop every recorded process group (clients, then the servers they use, then
        PostgreSQL with ``pg_ctl stop``); with ``purge`` delete the state folder too.

        Raises:
            StackError: a recorded process is still alive afterwards.
        """
        records = self.records()
        stop_records(records, self.log)
        stop_postgres(self.cluster, records, self.log)
        left = [f"{r.name} (pid {r.pid})" for r in records if record_alive(r)]
        if left:
            raise StackError(f"still running after down: {', '.join(left)}")
        self.launcher.pids_path.unlink(missing_ok=True)
        self.env_path.unlink(missing_ok=True)
        if purge:
            shutil.rmtree(self.state_dir, ignore_errors=True)
        self.log(f"team stack down: {self.state_dir}{' (purged)' if purge else ''}")

    def status(self) -> list[dict[str, object]]:
        """Each recorded process: name, pid, port, alive, log path."""
        return [{"name": r.name, "pid": r.pid, "port": r.port, "alive": record_alive(r),
                 "log": r.log_path} for r in self.records()]

    def describe(self) -> str:
        """Each service, its address and whether it is alive; the UIs and their credentials."""
        from team.stack_cli import describe

        return describe(self)


if __name__ == "__main__":
    from team.stack_cli import main

    sys.exit(main())
