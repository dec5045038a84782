"""Throwaway services for the client's tests: redis-server, PostgreSQL and quiver serve as real
child processes on free loopback ports, in temporary directories, stopped at the end. The
Python counterpart of internal/testenv: a service that cannot start fails the test run with
the reason, it never skips."""

from __future__ import annotations

import ctypes
import glob
import os
import pwd
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]  # the repository root

_PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:
    """preexec_fn: the child gets SIGKILL when pytest dies, so no server outlives a killed run."""
    try:
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
    except OSError:
        pass
    os.setpgrp()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def look_binary(name: str, package: str, dirs: Sequence[str] = ()) -> str:
    found = shutil.which(name)
    if found:
        return found
    for pattern in dirs:
        for d in sorted(glob.glob(pattern), reverse=True):
            p = os.path.join(d, name)
            if os.access(p, os.X_OK):
                return p
    raise RuntimeError(f"{name} not found on PATH or in {list(dirs)}; install the Debian package {package!r}")


def tail(path: Path, n: int = 40) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-n:])
    except OSError:
        return f"(no log at {path})"


class Process:
    """A child process with its log file; stop() sends SIGTERM (or sig) and kills it after
    `grace` seconds."""

    def __init__(self, name: str, argv: Sequence[str], log: Path, *, cwd: Path | None = None,
                 env: dict | None = None, user: str | None = None) -> None:
        self.name, self.log = name, log
        self._logf = open(log, "wb")
        self.proc = subprocess.Popen(
            list(argv), cwd=cwd, env=env, stdout=self._logf, stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL, preexec_fn=_die_with_parent, user=user,
        )

    def alive(self) -> bool:
        return self.proc.poll() is None

    def stop(self, sig: int = signal.SIGTERM, grace: float = 15.0) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(grace)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._logf.close()

    def fail(self, why: str) -> RuntimeError:
        return RuntimeError(f"{self.name}: {why}\n--- {self.log} ---\n{tail(self.log)}")


def wait_until(check, proc: Process, what: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    last: Exception | None = None
    while time.monotonic() < deadline:
        if not proc.alive():
            raise proc.fail(f"exited ({proc.proc.returncode}) before {what}")
        try:
            if check():
                return
        except Exception as e:  # noqa: BLE001 - retried until the deadline
            last = e
        time.sleep(0.05)
    proc.stop(signal.SIGKILL)
    raise proc.fail(f"not {what} within {timeout:.0f}s (last error: {last})")


def _tcp_open(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.5)
        return s.connect_ex(("127.0.0.1", port)) == 0


def start_redis(dir: Path) -> tuple[Process, str]:
    """redis-server on a free loopback port, no persistence; returns it and its redis:// URL."""
    server = look_binary("redis-server", "redis-server")
    dir.mkdir(parents=True, exist_ok=True)
    for attempt in range(3):  # the free port may be taken between lookup and bind
        port = free_port()
        p = Process("redis-server", [server, "--port", str(port), "--bind", "127.0.0.1", "--dir", str(dir),
                                     "--save", "", "--appendonly", "no", "--daemonize", "no"], dir / "redis.log")
        try:
            wait_until(lambda port=port: _tcp_open(port), p, "accepting connections", 30)
            return p, f"redis://127.0.0.1:{port}/0"
        except RuntimeError:
            if attempt == 2:
                raise
    raise AssertionError("unreachable")


def _unprivileged_user() -> str | None:
    """initdb and postgres refuse to run as root: run them as postgres (or nobody) then."""
    if os.geteuid() != 0:
        return None
    for name in ("postgres", "nobody"):
        try:
            pwd.getpwnam(name)
            return name
        except KeyError:
            continue
    raise RuntimeError("running as root and neither a 'postgres' nor a 'nobody' user exists for PostgreSQL")


PG_DIRS = ["/usr/lib/postgresql/*/bin", "/usr/local/pgsql/bin"]


def start_postgres(dir: Path) -> tuple[Process, str]:
    """A new PostgreSQL cluster (initdb, trust auth, fsync off) on a free loopback port;
    returns the server and the URL of its postgres database."""
    initdb = look_binary("initdb", "postgresql", PG_DIRS)
    postgres = look_binary("postgres", "postgresql", PG_DIRS)
    isready = look_binary("pg_isready", "postgresql", PG_DIRS)
    user = _unprivileged_user()
    dir.mkdir(parents=True, exist_ok=True)
    if user is not None:
        pw = pwd.getpwnam(user)
        os.chown(dir, pw.pw_uid, pw.pw_gid)
    data = dir / "data"
    out = subprocess.run([initdb, "-D", str(data), "-U", "postgres", "-A", "trust", "-E", "UTF8", "--no-locale",
                          "--no-sync"], capture_output=True, text=True, user=user, cwd=dir)
    if out.returncode != 0:
        raise RuntimeError(f"initdb failed ({out.returncode}):\n{out.stdout}\n{out.stderr}")
    for attempt in range(3):
        port = free_port()
        log = dir / "postgres.log"
        if user is not None and not log.exists():
            log.touch()
        p = Process("postgres", [postgres, "-D", str(data), "-p", str(port), "-k", str(dir),
                                 "-c", "listen_addresses=127.0.0.1", "-c", "fsync=off",
                                 "-c", "synchronous_commit=off", "-c", "full_page_writes=off",
                                 "-c", "max_connections=100", "-c", "shared_buffers=32MB"],
                    log, cwd=dir, user=user)
        try:
            wait_until(lambda port=port: _pg_ready(isready, port), p, "accepting connections", 60)
            return p, f"postgres://postgres@127.0.0.1:{port}/postgres?sslmode=disable"
        except RuntimeError:
            if attempt == 2:
                raise
    raise AssertionError("unreachable")


def _pg_ready(isready: str, port: int) -> bool:
    return subprocess.run([isready, "-q", "-h", "127.0.0.1", "-p", str(port), "-U", "postgres"]).returncode == 0
