"""examples/python/quickstart.py runs against the test server, push step included."""

from __future__ import annotations

import subprocess
import sys

from services import ROOT


def test_quickstart_runs(env, server):
    out = subprocess.run([sys.executable, str(ROOT / "examples" / "python" / "quickstart.py"), "--server", server,
                          "--repo", str(env.repo)], env=env.env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "NOT_FOUND" in out.stdout  # user 999999
    assert "churn v1:" in out.stdout
    assert "training frame churn_v1_historical@v" in out.stdout and "600 rows" in out.stdout
    assert "PushResult(rows=2, online_rows=2" in out.stdout
