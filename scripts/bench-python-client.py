#!/usr/bin/env python3
"""The Python side of scripts/bench-python.sh: get_online_features latency from the Python
client, at concurrency 1, over the same requests loadgen (the Go client) sends.

  bench-python-client.py data DIR                      # writes DIR/get1.json, DIR/get100.json (loadgen data files)
  bench-python-client.py run ADDR ENTITIES N WARMUP    # prints one JSON line per variant
  bench-python-client.py flight-create ADDR ROWS       # builds dataset flight_bench of ROWS entity rows, prints its ref
  bench-python-client.py flight-read ADDR REF DIR ROUNDS   # Flight get_dataset against pyarrow reading DIR's Parquet files

Variants: "python" (Client.get_online_features, the response object decoded lazily),
"python+to_dict" (and the values decoded to a dict), "python-stub" (the generated stub
alone, no client code: the floor of grpcio itself).
"""

import json
import statistics
import sys
import time
from pathlib import Path

USERS = 200  # quiver init's sample users, 1..200
SERVICE = "churn_v1"


def entity_sets(entities, count=64):
    return [[(i * entities + j) % USERS + 1 for j in range(entities)] for i in range(count)]


def write_data(dir):
    for n in (1, 100):
        reqs = [{"feature_service": SERVICE, "entities": {"user_id": {"val": [{"int64_val": str(u)} for u in users]}}}
                for users in entity_sets(n)]
        Path(dir, f"get{n}.json").write_text(json.dumps(reqs))


def pct(lat, p):
    lat = sorted(lat)
    return lat[min(int(p * len(lat)), len(lat) - 1)]


def run(addr, entities, n, warmup):
    import quiver
    from quiver.serving.v1 import serving_pb2 as pb

    sets = entity_sets(entities)
    client = quiver.Client(addr)
    stub = client._get_stub()  # the same channel, for the stub-only floor
    raw = []
    for users in sets:
        req = pb.GetOnlineFeaturesRequest(feature_service=SERVICE)
        req.entities["user_id"].val.extend(pb.Value(int64_val=u) for u in users)
        raw.append(req)

    variants = {
        "python": lambda i: client.get_online_features(feature_service=SERVICE, entities={"user_id": sets[i % len(sets)]}),
        "python+to_dict": lambda i: client.get_online_features(
            feature_service=SERVICE, entities={"user_id": sets[i % len(sets)]}).to_dict(),
        "python-stub": lambda i: stub.GetOnlineFeatures(raw[i % len(raw)], timeout=10),
    }
    for name, call in variants.items():
        for i in range(warmup):
            call(i)
        lat = []
        clock = time.perf_counter_ns
        begin = clock()
        for i in range(n):
            t = clock()
            call(i)
            lat.append((clock() - t) / 1000)
        elapsed = (clock() - begin) / 1e9
        print(json.dumps({"client": name, "entities": entities, "count": n, "rps": round(n / elapsed),
                          "p50_us": round(pct(lat, 0.50)), "p99_us": round(pct(lat, 0.99)),
                          "mean_us": round(statistics.fmean(lat))}), flush=True)
    client.close()


def flight_create(addr, rows):
    """A dataset of `rows` entity rows of the shop's 200 users over its last 28 days."""
    import datetime as dt

    import numpy as np
    import pyarrow as pa
    import quiver

    rng = np.random.default_rng(29)
    end = int(dt.datetime.now(dt.timezone.utc).timestamp() * 1e6)
    start = end - 28 * 86400 * 10**6
    entities = pa.table({
        "user_id": pa.array(rng.integers(1, USERS + 1, rows), pa.int64()),
        "event_timestamp": pa.array(rng.integers(start, end, rows), pa.timestamp("us", tz="UTC")),
        "churned": pa.array(rng.integers(0, 2, rows).astype(bool)),
    })
    with quiver.Client(addr) as client:
        info = client.create_dataset("flight_bench", entities, SERVICE)
    print(info.ref)


def flight_read(addr, ref, dir, rounds):
    """Reads dataset `ref` over Flight (get_dataset, parts in parallel) and its Parquet files
    directly with pyarrow (pq.read_table, its threads), alternately; one JSON line per read."""
    import pyarrow.parquet as pq
    import quiver

    files = sorted(str(p) for p in Path(dir).rglob("*.parquet"))
    parquet_bytes = sum(Path(f).stat().st_size for f in files)
    client = quiver.Client(addr)
    want = None
    for r in range(rounds):
        for how, read in (("flight (get_dataset)", lambda: client.get_dataset(ref)),
                          ("pyarrow.parquet.read_table", lambda: pq.read_table(files))):
            t = time.perf_counter()
            table = read()
            secs = time.perf_counter() - t
            if want is None:
                want = table
            assert table.num_rows == want.num_rows and table.equals(want), how
            print(json.dumps({"how": how, "round": r + 1, "rows": table.num_rows, "parts": len(files),
                              "parquet_mb": round(parquet_bytes / 1e6, 1), "arrow_mb": round(table.nbytes / 1e6, 1),
                              "seconds": round(secs, 3), "rows_per_s": round(table.num_rows / secs),
                              "arrow_mb_per_s": round(table.nbytes / 1e6 / secs, 1)}), flush=True)
            del table
    client.close()


if __name__ == "__main__":
    if sys.argv[1:2] == ["data"]:
        write_data(sys.argv[2])
    elif sys.argv[1:2] == ["run"]:
        run(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5]))
    elif sys.argv[1:2] == ["flight-create"]:
        flight_create(sys.argv[2], int(sys.argv[3]))
    elif sys.argv[1:2] == ["flight-read"]:
        flight_read(sys.argv[2], sys.argv[3], sys.argv[4], int(sys.argv[5]))
    else:
        sys.exit(__doc__)
