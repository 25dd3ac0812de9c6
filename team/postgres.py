"""A throwaway PostgreSQL cluster from Debian's packages: ``initdb`` in a folder, ``pg_ctl`` on
a free loopback port, one database (and owner) per service, removed by ``stop``.

The team profile's MLflow server, Prefect server and shared state each get their own database
on one cluster. ``ensure_installed`` installs Debian's ``postgresql`` when the machine lacks it
(``apt-get``, as root). PostgreSQL refuses to run as root, so as root the cluster's folder is
handed to the ``postgres`` user the package creates and every command runs as that user.
"""

from __future__ import annotations

import os
import secrets
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

from team.processes import apt_install, free_port, run

SERVICE_USER = "postgres"


def pg_bin(name: str) -> str:
    """The path of one PostgreSQL program (Debian keeps them out of PATH)."""
    for folder in sorted(Path("/usr/lib/postgresql").glob("*/bin"), reverse=True):
        if (folder / name).exists():
            return str(folder / name)
    found = shutil.which(name)
    if found:
        return found
    raise FileNotFoundError(f"PostgreSQL's {name} is not installed (apt-get install postgresql)")


def ensure_installed() -> None:
    """Install Debian's PostgreSQL server when ``initdb`` is missing."""
    try:
        pg_bin("initdb")
    except FileNotFoundError:
        apt_install("postgresql")
        pg_bin("initdb")


def _as_service_user() -> list[str]:
    return ["runuser", "-u", SERVICE_USER, "--"] if os.geteuid() == 0 else []


@dataclass
class Cluster:
    """One PostgreSQL cluster in ``folder``, listening on 127.0.0.1:``port``."""

    folder: Path
    port: int = field(default_factory=free_port)
    superuser: str = "mlops_admin"
    password: str = field(default_factory=lambda: secrets.token_urlsafe(18))

    @property
    def data_dir(self) -> Path:
        return self.folder / "data"

    @property
    def log_path(self) -> Path:
        return self.folder / "postgres.log"

    def _run(self, *args: str) -> subprocess.CompletedProcess[str]:
        return run([*_as_service_user(), *args])

    def init(self) -> None:
        """``initdb`` with password authentication, owned by the service user when root."""
        ensure_installed()
        self.folder.mkdir(parents=True, exist_ok=True)
        pwfile = self.folder / "superuser.pw"
        pwfile.write_text(self.password + "\n")
        pwfile.chmod(0o600)
        if os.geteuid() == 0:
            shutil.chown(self.folder, SERVICE_USER, SERVICE_USER)
            shutil.chown(pwfile, SERVICE_USER, SERVICE_USER)
            # The service user must reach the folder through its parents.
            for parent in self.folder.parents:
                if parent == Path("/"):
                    break
                parent.chmod(parent.stat().st_mode | 0o001)
        self._run(pg_bin("initdb"), "-D", str(self.data_dir), "-U", self.superuser,
                  "--pwfile", str(pwfile), "--auth=scram-sha-256", "-E", "UTF8",
                  "--no-instructions")
        pwfile.unlink()

    def start(self) -> None:
        """``pg_ctl start`` on loopback only, waiting until it accepts connections."""
        if not self.data_dir.exists():
            self.init()
        self._run(pg_bin("pg_ctl"), "-D", str(self.data_dir), "-l", str(self.log_path), "-w",
                  "-t", "60", "-o",
                  f"-p {self.port} -c listen_addresses=127.0.0.1 "
                  f"-c unix_socket_directories={self.folder} -c max_connections=200",
                  "start")

    def stop(self) -> None:
        """``pg_ctl stop -m fast``; nothing when it is not running."""
        if (self.data_dir / "postmaster.pid").exists():
            self._run(pg_bin("pg_ctl"), "-D", str(self.data_dir), "-m", "fast", "-w", "stop")

    def remove(self) -> None:
        """Stop the cluster and delete its folder."""
        self.stop()
        shutil.rmtree(self.folder, ignore_errors=True)

    def url(self, database: str = "postgres", user: str | None = None,
            password: str | None = None, driver: str = "postgresql") -> str:
        user = user or self.superuser
        password = password or self.password
        return f"{driver}://{user}:{password}@127.0.0.1:{self.port}/{database}"

    def create_database(self, name: str, owner: str, password: str) -> str:
        """A role ``owner`` with ``password`` and a database ``name`` it owns; its URL."""
        import psycopg
        from psycopg import sql

        with psycopg.connect(self.url(), autocommit=True) as conn:
            exists = conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (owner,)).fetchone()
            verb = "ALTER" if exists else "CREATE"
            conn.execute(sql.SQL(verb + " ROLE {} LOGIN PASSWORD {}").format(
                sql.Identifier(owner), sql.Literal(password)))
            if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s",
                                (name,)).fetchone():
                conn.execute(sql.SQL("CREATE DATABASE {} OWNER {}").format(
                    sql.Identifier(name), sql.Identifier(owner)))
        return self.url(name, owner, password)
