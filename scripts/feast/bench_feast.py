"""Feast's side of scripts/bench-feast.sh, run in the venv of scripts/feast.sh.

  python bench_feast.py data DIR      write the Feast repository, its data and the entity rows
  python bench_feast.py feast DIR     feast apply, feast materialize, get_historical_features
                                      for every entity row, get_online_features latency
  python bench_feast.py requests DIR  the GetOnlineFeatures requests of Quiver's load generator
                                      (1 and 100 random users a call)
Sizes come from the environment: USERS, ROWS_PER_USER, ENTITY_ROWS, CALLS, SEED. Results are
printed as one JSON object per line ({"what": ..., ...}).
"""

import json
import os
import resource
import sys
import time

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

USERS = int(os.environ.get("USERS", "100000"))
ROWS_PER_USER = int(os.environ.get("ROWS_PER_USER", "5"))
ENTITY_ROWS = int(os.environ.get("ENTITY_ROWS", "1000000"))
CALLS = int(os.environ.get("CALLS", "2000"))
SEED = int(os.environ.get("SEED", "26"))
END = pd.Timestamp(os.environ.get("END", "2026-12-01T00:00:00Z"))
DAYS = 30

REPO = """project: bench
registry: data/registry.db
provider: local
online_store:
  type: sqlite
  path: data/online_store.db
entity_key_serialization_version: 3
"""

DEFS = '''from datetime import timedelta
from feast import Entity, FeatureService, FeatureView, Field, FileSource
from feast.types import Float32, Float64, Int64, String
from feast.value_type import ValueType

user = Entity(name="user", join_keys=["user_id"], value_type=ValueType.INT64)
src = FileSource(name="user_stats_source", path="data/user_stats.parquet",
                 timestamp_field="event_timestamp", created_timestamp_column="created")
user_stats = FeatureView(
    name="user_stats", entities=[user], ttl=timedelta(days=%d), source=src, online=True,
    schema=[Field(name="f%%d" %% i, dtype=Float64) for i in range(4)]
    + [Field(name="n%%d" %% i, dtype=Int64) for i in range(3)]
    + [Field(name="score", dtype=Float32), Field(name="segment", dtype=String)],
)
svc = FeatureService(name="svc", features=[user_stats])
''' % DAYS


def emit(**kw):
    print(json.dumps(kw), flush=True)


def data(d):
    os.makedirs(f"{d}/feature_repo/data", exist_ok=True)
    open(f"{d}/feature_repo/feature_store.yaml", "w").write(REPO)
    open(f"{d}/feature_repo/features.py", "w").write(DEFS)
    rng = np.random.default_rng(SEED)
    n = USERS * ROWS_PER_USER
    start = END - pd.Timedelta(days=DAYS)
    span_us = DAYS * 86400 * 1_000_000
    ts = start.value // 1000 + rng.integers(0, span_us, n)
    t = pa.table({
        "user_id": np.repeat(np.arange(1, USERS + 1, dtype=np.int64), ROWS_PER_USER),
        "event_timestamp": pa.array(ts, pa.timestamp("us", "UTC")),
        "created": pa.array(ts + 60_000_000, pa.timestamp("us", "UTC")),
        **{f"f{i}": rng.random(n) for i in range(4)},
        **{f"n{i}": rng.integers(0, 1000, n) for i in range(3)},
        "score": rng.random(n, dtype=np.float32),
        "segment": pa.array(np.array(["a", "b", "c", "d"])[rng.integers(0, 4, n)]),
    })
    pq.write_table(t, f"{d}/feature_repo/data/user_stats.parquet", row_group_size=1 << 17)
    e = pa.table({
        "user_id": rng.integers(1, USERS + 1, ENTITY_ROWS, dtype=np.int64),
        "event_timestamp": pa.array(start.value // 1000 + rng.integers(0, span_us, ENTITY_ROWS), pa.timestamp("us", "UTC")),
        "label": rng.integers(0, 2, ENTITY_ROWS),
    })
    pq.write_table(e, f"{d}/entities.parquet")
    emit(what="data", feature_rows=n, entity_rows=ENTITY_ROWS, users=USERS)


def pct(xs, p):
    return float(np.percentile(np.array(xs) * 1e6, p))


def feast(d):
    from feast import FeatureStore
    from feast.cli.cli import cli

    repo = f"{d}/feature_repo"
    t = time.monotonic()
    cli.main(args=["-c", repo, "apply"], standalone_mode=False)
    emit(what="feast_apply", seconds=round(time.monotonic() - t, 2))
    start = END - pd.Timedelta(days=DAYS + 1)
    t = time.monotonic()
    cli.main(args=["-c", repo, "materialize", start.isoformat(), END.isoformat()], standalone_mode=False)
    emit(what="feast_materialize", seconds=round(time.monotonic() - t, 2), users=USERS)

    store = FeatureStore(repo_path=repo)
    svc = store.get_feature_service("svc")
    entity_df = pq.read_table(f"{d}/entities.parquet").to_pandas()
    t = time.monotonic()
    df = store.get_historical_features(entity_df=entity_df, features=svc).to_df()
    got = time.monotonic() - t
    t = time.monotonic()
    df.to_parquet(f"{d}/feast_dataset.parquet")
    written = time.monotonic() - t
    emit(what="feast_historical", entity_rows=len(entity_df), rows_out=len(df), to_df_seconds=round(got, 2),
         to_parquet_seconds=round(written, 2), rows_per_s=round(len(entity_df) / got),
         max_rss_mib=round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024))
    del df, entity_df

    rng = np.random.default_rng(SEED + 1)
    for batch in (1, 100):
        calls = max(CALLS // batch, 50) if batch > 1 else CALLS
        keys = rng.integers(1, USERS + 1, (calls + 50, batch))
        lat = []
        for i, row in enumerate(keys):
            rows = [{"user_id": int(k)} for k in row]
            t = time.perf_counter()
            store.get_online_features(features=svc, entity_rows=rows).to_dict()
            if i >= 50:  # warm-up calls are not measured
                lat.append(time.perf_counter() - t)
        emit(what="feast_online", entities=batch, calls=len(lat), p50_us=round(pct(lat, 50)), p90_us=round(pct(lat, 90)),
             p99_us=round(pct(lat, 99)), calls_per_s=round(len(lat) / sum(lat)))


def requests(d):
    rng = np.random.default_rng(SEED + 2)
    for batch in (1, 100):
        reqs = [{"feature_service": "svc", "entities": {"user_id": {"val": [{"int64_val": str(k)} for k in rng.integers(1, USERS + 1, batch)]}}}
                for _ in range(200)]
        json.dump(reqs, open(f"{d}/get{batch}.json", "w"))


if __name__ == "__main__":
    {"data": data, "feast": feast, "requests": requests}[sys.argv[1]](sys.argv[2])
