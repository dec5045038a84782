"""Feast's answers for quiver import feast's acceptance test (cmd/quiver/import_feast_test.go).

Run in the Feast virtual environment (scripts/feast.sh) with one argument, a JSON spec; all
the steps run in this one process, as Feast's import costs seconds:

  init         feast init NAME in DIR (the template repository), when given
  apply        feast apply in the repository
  materialize  feast materialize START END
  entities     when a historical entities file is missing: build it from the distinct keys
               of a Parquet file times the given timestamps (the template's drivers)
  online       store.get_online_features for rows (or for rows built from those keys):
               values, statuses and event timestamps of every feature, by name
  historical   store.get_historical_features(entity_df, service).to_df() to Parquet; an
               error (e.g. colliding feature names) is recorded, not raised

The answers go to spec["out"] as JSON. The feast commands run through Feast's own click
entry point (feast.cli.cli), exactly as `feast -c REPO apply` would.
"""

import json
import math
import os
import sys
import time
import traceback

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
from feast import FeatureStore
from feast.cli.cli import cli
from feast.protos.feast.serving.ServingService_pb2 import FieldStatus


def feast(*args):
    cli.main(args=list(args), standalone_mode=False)


def value_json(v):
    which = v.WhichOneof("val")
    if which is None or which == "null_val":
        return None
    x = getattr(v, which)
    if which.endswith("_list_val") or which.endswith("_set_val"):
        return list(x.val)
    if which == "bytes_val":
        return x.hex()
    if isinstance(x, float) and math.isnan(x):
        return "NaN"  # JSON has no NaN
    return x


def online(store, spec):
    resp = store.get_online_features(
        features=store.get_feature_service(spec["service"]), entity_rows=spec["rows"],
        full_feature_names=spec.get("full_feature_names", False))
    p = resp.proto
    names = list(p.metadata.feature_names.val)
    out = []
    for name, vec in zip(names, p.results):
        out.append({
            "name": name,
            "values": [value_json(v) for v in vec.values],
            "statuses": [FieldStatus.Name(s) for s in vec.statuses],
            "event_timestamps_us": [t.seconds * 1_000_000 + t.nanos // 1000 for t in vec.event_timestamps],
        })
    return {"features": out}


def build_entities(repo, spec):
    src = pq.read_table(f"{repo}/{spec['from']}", columns=[spec["key"]]).to_pandas()
    keys = sorted(src[spec["key"]].unique().tolist())
    rows = []
    for k in keys:
        for t in spec["times"]:
            row = {spec["key"]: k, "event_timestamp": pd.Timestamp(t)}
            row.update(spec.get("request", {}))
            rows.append(row)
    df = pd.DataFrame(rows)
    df.insert(0, "row_id", range(len(df)))
    df["event_timestamp"] = pd.to_datetime(df["event_timestamp"], utc=True)
    pq.write_table(pa.Table.from_pandas(df, preserve_index=False), spec["path"])
    return keys


def main():
    spec = json.load(open(sys.argv[1]))
    repo = spec["repo"]
    answers = {"timings_s": {}}

    def timed(name, fn):
        t = time.monotonic()
        r = fn()
        answers["timings_s"][name] = round(time.monotonic() - t, 3)
        return r

    if "init" in spec:
        os.chdir(spec["init"]["dir"])
        timed("init", lambda: feast("init", spec["init"]["name"]))
    timed("apply", lambda: feast("-c", repo, "apply"))
    start, end = spec["materialize"]
    timed("materialize", lambda: feast("-c", repo, "materialize", start, end))

    store = FeatureStore(repo_path=repo)
    keys = None
    if "build_entities" in spec:
        keys = build_entities(repo, spec["build_entities"])
        answers["keys"] = keys
    for o in spec.get("online", []):
        if "rows" not in o:
            b = spec["build_entities"]
            o["rows"] = [dict({b["key"]: k}, **b.get("request", {})) for k in keys]
        try:
            answers.setdefault("online", {})[o["name"]] = timed("online_" + o["name"], lambda: online(store, o))
        except Exception as e:  # recorded: the test asserts which calls Feast refuses
            answers.setdefault("online", {})[o["name"]] = {"error": f"{type(e).__name__}: {e}"}
    for h in spec.get("historical", []):
        entity_df = pq.read_table(h["entities"]).to_pandas()
        try:
            df = timed("historical_" + h["name"], lambda: store.get_historical_features(
                entity_df=entity_df, features=store.get_feature_service(h["service"]),
                full_feature_names=h.get("full_feature_names", False)).to_df())
            pq.write_table(pa.Table.from_pandas(df, preserve_index=False), h["out"])
            answers.setdefault("historical", {})[h["name"]] = {"columns": list(df.columns), "rows": len(df)}
        except Exception as e:
            answers.setdefault("historical", {})[h["name"]] = {"error": f"{type(e).__name__}: {e}"}
    json.dump(answers, open(spec["out"], "w"), indent=1, default=str)


if __name__ == "__main__":
    try:
        main()
    except Exception:
        traceback.print_exc()
        sys.exit(1)
