#!/usr/bin/env python3
"""Quiver from Python, notebook-style: online features, a prediction, a training frame and a push.

Run it against a `quiver serve` of the example shop repo (docs/python.md, "Try it"):

    quiver init shop && cd shop && quiver apply
    quiver materialize --start "$(date -u -d '31 days ago' +%F)" --end "$(date -u -d tomorrow +%F)"
    quiver serve &                                  # 127.0.0.1:6566
    pip install '../python[pandas]'                 # from the Quiver checkout
    python ../examples/python/quickstart.py [--server 127.0.0.1:6566]

The training frame needs the repo's labels (--repo: data/labels.parquet) and goes over Arrow
Flight on the same address. The push step needs a push view; it adds
features/quickstart_live.yaml to the repo given with --repo and applies it first (a running
server picks the new definitions up within its --refresh).
"""

import argparse
import datetime as dt
import subprocess
import time
from pathlib import Path

import pandas as pd
import quiver

LIVE_VIEW = """\
sources:
  - name: click_events
    push: {}
    timestamp_field: event_ts
feature_views:
  - name: user_clicks_live
    entities: [user]
    source: click_events
    online: true
    features:
      - { name: clicks, type: int64 }
      - { name: page, type: string }
"""


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--server", default="127.0.0.1:6566", help="quiver serve's gRPC address")
    ap.add_argument("--repo", help="the feature repo: add a push view to it and apply it, then push")
    ap.add_argument("--token", help="a bearer token, if the server needs one (docs/security.md)")
    ap.add_argument("--ca", help="the server's root CA (PEM), for TLS")
    args = ap.parse_args()

    with quiver.Client(args.server, token=args.token, tls=args.ca) as client:
        # 1. Online features of a feature service, Feast-style entity rows.
        resp = client.get_online_features(
            feature_service="churn_v1",
            entity_rows=[{"user_id": 7}, {"user_id": 8}, {"user_id": 999_999}],
        )
        print(resp.to_pandas(include_statuses=True))
        # Every value has a status and an event time: user 999999 is NOT_FOUND (null).
        print(resp.statuses["spend_30d"], resp.event_timestamps["spend_30d"][0])

        # 2. Features by reference, as columns, with request-time (on-demand) features.
        resp = client.get_online_features(
            features=["user_stats:spend_30d", "cart_features:cart_over_spend", "cart_features:big_cart"],
            entities={"user_id": [7, 8]},
            request_context={"cart_value": [120.0, 15.0]},
            full_feature_names=True,
        )
        print(resp.to_dict())

        # 3. A prediction, if the churn model has a version (quiver train churn_train).
        try:
            pred = client.predict("churn", {"user_id": [7, 8]})
            print(f"churn v{pred.model_version}: {pred.outputs}")
        except quiver.NotFoundError as e:
            print(f"no churn model yet ({e.message}); run `quiver train churn_train`")

        # 4. A point-in-time-correct training frame for labelled entity rows, joined on the
        #    server (registered as dataset churn_v1_historical) and read back over Arrow Flight.
        if args.repo:
            labels = pd.read_parquet(Path(args.repo) / "data" / "labels.parquet")  # user_id, event_timestamp, churned
            job = client.get_historical_features(labels, "churn_v1")
            frame = job.to_pandas()
            print(f"training frame {job.info.ref}: {len(frame)} rows, columns {list(frame.columns)}")

        # 5. Push fresh rows from a DataFrame: served at once.
        if args.repo:
            repo = Path(args.repo)
            (repo / "features" / "quickstart_live.yaml").write_text(LIVE_VIEW)
            subprocess.run(["quiver", "-C", str(repo), "apply"], check=True, stdout=subprocess.DEVNULL)
            now = pd.Timestamp.now(tz="UTC").floor("us")
            events = pd.DataFrame({
                "user_id": [7, 8],
                "event_ts": [now, now - dt.timedelta(seconds=5)],
                "clicks": pd.array([3, None], dtype="Int64"),
                "page": ["cart", "home"],
            })
            for _ in range(50):  # the server loads the new view within its --refresh (10s)
                try:
                    receipt = client.push("user_clicks_live", events, event_timestamp_column="event_ts")
                    break
                except quiver.InvalidArgumentError:
                    time.sleep(0.5)
            else:
                raise SystemExit("the server did not pick up user_clicks_live; is it serving this repo?")
            print(receipt)
            print(client.get_online_features(["user_clicks_live:*"], [{"user_id": 7}, {"user_id": 8}]).to_pandas(
                include_statuses=True))


if __name__ == "__main__":
    main()
