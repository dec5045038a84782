"""Fixtures of the client's tests: a real quiver serve on Redis and PostgreSQL.

Once per test session: a throwaway redis-server and PostgreSQL, `quiver init` of the example
shop repo (plus features/live.yaml, a push view of every type), `quiver apply`, `quiver
materialize` of its 30 days, a dataset and `quiver train` (the Go trainer) so the churn model
has a version, then two servers on the same stores:

* ``server``: plaintext on loopback, with push (the address of its gRPC port);
* ``secure_server``: TLS with a test CA, client certificates verified if given (mTLS), static
  API tokens and a policy (tokens reader / writer / outsider, and a client certificate).

bin/quiver and bin/shop-trainer come from `make build` (or QUIVER_BIN / QUIVER_TRAINER_DIR);
the ONNX Runtime library from QUIVER_ONNXRUNTIME_LIB or scripts/onnxruntime.sh.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import os
import secrets
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

import certs
import pytest
from services import ROOT, Process, free_port, start_postgres, start_redis, tail

LIVE_YAML = """\
sources:
  - name: live_events
    push: {}
    timestamp_field: event_ts
    created_timestamp_field: created_ts
feature_views:
  # A push view with a feature of every type the serving API has.
  - name: user_live
    entities: [user]
    source: live_events
    ttl: 1d
    online: true
    features:
      - { name: i32, type: int32 }
      - { name: i64, type: int64 }
      - { name: f32, type: float32 }
      - { name: f64, type: float64 }
      - { name: flag, type: bool }
      - { name: page, type: string }
      - { name: blob, type: bytes }
      - { name: seen, type: timestamp }
      - { name: tags, type: "array<string>" }
      - { name: scores, type: "array<float64>" }
      - { name: ids, type: "array<int64>" }
      - { name: when, type: "array<timestamp>" }
feature_services:
  - name: live_v1
    features: [user_live:*]
"""


def _quiver_bin() -> Path:
    p = Path(os.environ.get("QUIVER_BIN", ROOT / "bin" / "quiver"))
    if not os.access(p, os.X_OK):
        pytest.fail(f"quiver binary not found at {p}: build it with `make build` (or set QUIVER_BIN)", pytrace=False)
    return p


def _onnxruntime_lib() -> str:
    lib = os.environ.get("QUIVER_ONNXRUNTIME_LIB")
    if lib:
        return lib
    out = subprocess.run([str(ROOT / "scripts" / "onnxruntime.sh")], capture_output=True, text=True)
    if out.returncode != 0:
        pytest.fail(f"scripts/onnxruntime.sh failed: {out.stderr}", pytrace=False)
    return out.stdout.strip()


@dataclass
class Env:
    """The shared stores and the feature repo the servers serve."""

    quiver: Path
    work: Path
    repo: Path
    env: dict

    def run(self, *args: str, cwd: Path | None = None, check: bool = True) -> subprocess.CompletedProcess:
        out = subprocess.run([str(self.quiver), *args], cwd=cwd or self.repo, env=self.env,
                             capture_output=True, text=True, timeout=300)
        if check and out.returncode != 0:
            raise AssertionError(f"quiver {' '.join(args)} exited {out.returncode}:\n{out.stdout}\n{out.stderr}")
        return out


@pytest.fixture(scope="session")
def env():
    quiver = _quiver_bin()
    work = Path(tempfile.mkdtemp(prefix="quiver-pyclient-"))
    procs: list[Process] = []
    cleanup = [work]
    try:
        redis, redis_url = start_redis(work / "redis")
        procs.append(redis)
        # Its own top-level directory: as root, PostgreSQL runs as another user, which could
        # not enter `work` (mkdtemp makes it 0700).
        pg_dir = Path(tempfile.mkdtemp(prefix="quiver-pyclient-pg-"))
        cleanup.append(pg_dir)
        pg, pg_url = start_postgres(pg_dir)
        procs.append(pg)
        e = dict(os.environ)
        trainer_dir = os.environ.get("QUIVER_TRAINER_DIR", str(ROOT / "bin"))
        e.update({
            "QUIVER_REGISTRY": pg_url,
            "QUIVER_ONLINE": redis_url,
            "QUIVER_WAREHOUSE": str(work / "warehouse"),
            "QUIVER_ONNXRUNTIME_LIB": _onnxruntime_lib(),
            "PATH": os.pathsep.join([str(quiver.parent), trainer_dir, e.get("PATH", "")]),
        })
        e.pop("QUIVER_TOKEN", None)
        repo = work / "shop"
        env = Env(quiver=quiver, work=work, repo=repo, env=e)
        env.run("init", str(repo), "--project", "shop", cwd=work)
        (repo / "features" / "live.yaml").write_text(LIVE_YAML)
        env.run("apply")
        today = dt.datetime.now(dt.timezone.utc).date()
        env.run("materialize", "--start", str(today - dt.timedelta(days=31)), "--end", str(today + dt.timedelta(days=1)))
        env.run("dataset", "create", "churn_train", "--service", "churn_v1", "--entities", "data/labels.parquet")
        env.run("train", "churn_train", "--param", "epochs=5")
        env.run("models", "alias", "churn", "1", "production")
        yield env
    finally:
        for p in reversed(procs):
            p.stop()
        for d in cleanup:
            shutil.rmtree(d, ignore_errors=True)


def _serve(env: Env, name: str, cwd: Path, extra: list[str], health: list[str]) -> tuple[Process, str]:
    for attempt in range(3):  # the free port may be taken between lookup and bind
        addr = f"127.0.0.1:{free_port()}"
        p = Process(name, [str(env.quiver), "serve", "--addr", addr, "--metrics-addr", "",
                           "--push-commit-interval", "1s", "--refresh", "1s", *extra],
                    env.work / f"{name}.log", cwd=cwd, env=env.env)
        out = subprocess.run([str(env.quiver), "health", "--server", addr, "--wait", "60s", *health],
                             env=env.env, capture_output=True, text=True)
        if out.returncode == 0:
            return p, addr
        p.stop()
        if attempt == 2:
            raise p.fail(f"not healthy on {addr}: {out.stdout}{out.stderr}")
    raise AssertionError("unreachable")


@pytest.fixture(scope="session")
def server(env):
    """quiver serve --push on loopback, plaintext, no authentication: its HOST:PORT."""
    p, addr = _serve(env, "serve", env.repo, [], [])
    yield addr
    p.stop()
    assert p.proc.returncode == 0, f"quiver serve exited {p.proc.returncode}:\n{tail(p.log)}"


@dataclass
class Secure:
    addr: str
    certs: certs.Certs
    tokens: dict  # name -> token


@pytest.fixture(scope="session")
def secure_server(env):
    """quiver serve with TLS, optional mTLS, API tokens and a policy (docs/security.md)."""
    cdir = env.work / "secure"
    cdir.mkdir()
    c = certs.make(cdir)
    tokens = {name: secrets.token_hex(32) for name in ("reader", "writer", "outsider")}
    sha = {n: hashlib.sha256(t.encode()).hexdigest() for n, t in tokens.items()}
    (cdir / "quiver.yaml").write_text(f"""\
project: shop
registry: {env.env['QUIVER_REGISTRY']}
online: {env.env['QUIVER_ONLINE']}
offline:
  warehouse: {env.env['QUIVER_WAREHOUSE']}
  catalog: sql
serving:
  tls:
    cert: {c.server_cert}
    key: {c.server_key}
    client_ca: {c.ca_cert}
    client_auth: verify_if_given
  api_tokens:
    - {{ name: reader, sha256: {sha['reader']} }}
    - {{ name: writer, sha256: {sha['writer']} }}
    - {{ name: outsider, sha256: {sha['outsider']} }}
  policy:
    grants:
      - principals: [token:reader]
        feature_services: [churn_v1]
        models: [churn]
        datasets: [churn_train]
      - principals: [token:writer]
        feature_views: [user_live]
        push_views: [user_live]
      - principals: ["{c.client_principal}"]
        feature_services: [churn_v1]
""")
    p, addr = _serve(env, "serve-secure", cdir, [], ["--tls-ca", str(c.ca_cert)])
    yield Secure(addr=addr, certs=c, tokens=tokens)
    p.stop()
    assert p.proc.returncode == 0, f"secure quiver serve exited {p.proc.returncode}:\n{tail(p.log)}"
