#!/usr/bin/env python3
"""The Python side of scripts/bench-python.sh: get_online_features latency from the Python
client, at concurrency 1, over the same requests loadgen (the Go client) sends.

  bench-python-client.py data DIR                      # writes DIR/get1.json, DIR/get100.json (loadgen data files)
  bench-python-client.py run ADDR ENTITIES N WARMUP    # prints one JSON line per variant

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


if __name__ == "__main__":
    if sys.argv[1:2] == ["data"]:
        write_data(sys.argv[2])
    elif sys.argv[1:2] == ["run"]:
        run(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5]))
    else:
        sys.exit(__doc__)
