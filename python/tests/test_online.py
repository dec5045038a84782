"""get_online_features against a real quiver serve: values, statuses, event times and the
three result forms, checked against the source data the repo materialized."""

from __future__ import annotations

import datetime as dt

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest
import quiver
from quiver import FieldStatus

UTC = dt.timezone.utc


@pytest.fixture(scope="module")
def latest(env):
    """{user_id: the latest source row} of data/user_activity.parquet: what materialize put
    online for user_stats."""
    t = pq.read_table(env.repo / "data" / "user_activity.parquet").to_pylist()
    out: dict[int, dict] = {}
    for r in t:
        cur = out.get(r["user_id"])
        if cur is None or (r["event_ts"], r["created_ts"]) > (cur["event_ts"], cur["created_ts"]):
            out[r["user_id"]] = r
    return out


@pytest.fixture()
def client(server):
    with quiver.Client(server) as c:
        yield c


def test_feature_service_entity_rows_match_the_materialized_source(client, latest):
    resp = client.get_online_features(feature_service="churn_v1", entity_rows=[{"user_id": 7}, {"user_id": 8}])
    assert resp.rows == 2
    assert resp.entity_names == ["user_id"]
    assert resp.feature_names == ["clicks_7d", "spend_30d", "sessions_7d"]
    d = resp.to_dict(include_event_timestamps=True, include_statuses=True)
    assert d["user_id"] == [7, 8]
    for i, u in enumerate([7, 8]):
        src = latest[u]
        assert d["spend_30d"][i] == src["spend_30d"]
        assert d["sessions_7d"][i] == src["sessions_7d"]
        assert d["clicks_7d"][i] == src["clicks_7d"]
        want_status = FieldStatus.PRESENT if src["clicks_7d"] is not None else FieldStatus.NULL_VALUE
        assert d["clicks_7d__status"][i] == want_status
        assert d["spend_30d__status"][i] == "PRESENT"  # a str enum
        assert d["spend_30d__ts"][i] == src["event_ts"].replace(tzinfo=UTC)
    assert list(d) == ["user_id", "clicks_7d", "clicks_7d__ts", "clicks_7d__status", "spend_30d", "spend_30d__ts",
                       "spend_30d__status", "sessions_7d", "sessions_7d__ts", "sessions_7d__status"]


def test_entity_columns_and_references_with_full_feature_names(client, latest):
    resp = client.get_online_features(
        features=["user_stats:spend_30d", "user_stats:sessions_7d"],
        entities={"user_id": [3, 4, 5]},
        full_feature_names=True,
    )
    assert resp.feature_names == ["user_stats__spend_30d", "user_stats__sessions_7d"]
    assert resp["user_stats__spend_30d"] == [latest[u]["spend_30d"] for u in (3, 4, 5)]
    assert resp.statuses["user_stats__sessions_7d"] == [FieldStatus.PRESENT] * 3


def test_entities_as_dataframe_and_arrow_table(client, latest):
    df = pd.DataFrame({"user_id": pd.array([11, 12], dtype="Int64")})
    by_df = client.get_online_features(feature_service="churn_v1", entities=df).to_dict()
    by_table = client.get_online_features(feature_service="churn_v1", entities=pa.table({"user_id": [11, 12]})).to_dict()
    assert by_df == by_table
    assert by_df["spend_30d"] == [latest[11]["spend_30d"], latest[12]["spend_30d"]]


def test_not_found_is_null_with_its_status_and_no_event_time(client):
    resp = client.get_online_features(feature_service="churn_v1", entity_rows=[{"user_id": 7}, {"user_id": 10**12}])
    d = resp.to_dict()
    assert d["spend_30d"][1] is None and d["clicks_7d"][1] is None
    assert resp.statuses["spend_30d"] == [FieldStatus.PRESENT, FieldStatus.NOT_FOUND]
    assert resp.event_timestamps["spend_30d"][1] is None
    assert resp.event_timestamps["spend_30d"][0] is not None


def test_materialized_null_is_null_value(client, latest):
    nulls = [u for u, r in latest.items() if r["clicks_7d"] is None]
    assert nulls, "the sample data (seeded) has users whose latest clicks_7d is null (100 and 121)"
    resp = client.get_online_features(feature_service="churn_v1", entities={"user_id": nulls})
    assert resp["clicks_7d"] == [None] * len(nulls)
    assert resp.statuses["clicks_7d"] == [FieldStatus.NULL_VALUE] * len(nulls)


def test_to_arrow_types_and_to_pandas_nullable(client):
    resp = client.get_online_features(feature_service="churn_v1", entities={"user_id": [7, 10**12]})
    t = resp.to_arrow(include_event_timestamps=True, include_statuses=True)
    assert t.schema.field("user_id").type == pa.int64()
    assert t.schema.field("clicks_7d").type == pa.int64()
    assert t.schema.field("spend_30d").type == pa.float64()
    assert t.schema.field("sessions_7d").type == pa.int32()
    assert t.schema.field("spend_30d__ts").type == pa.timestamp("us", tz="UTC")
    assert t.column("spend_30d__status").to_pylist() == ["PRESENT", "NOT_FOUND"]
    assert t.column("spend_30d").null_count == 1
    df = resp.to_pandas()
    assert str(df["clicks_7d"].dtype) == "Int64"
    assert str(df["sessions_7d"].dtype) == "Int32"
    assert df["clicks_7d"].isna().tolist() == [False, True]
    assert resp.to_df().equals(df)


def test_request_context_feeds_on_demand_features(client, latest):
    resp = client.get_online_features(
        feature_service="checkout_v1",
        entity_rows=[{"user_id": 7}, {"user_id": 8}],
        request_context={"cart_value": [120.0, 15.0]},
    )
    d = resp.to_dict()
    assert d["big_cart"] == [True, False]
    for i, (u, cart) in enumerate([(7, 120.0), (8, 15.0)]):
        spend = latest[u]["spend_30d"]
        assert d["cart_over_spend"][i] == pytest.approx(cart / spend if spend > 0 else 0.0, rel=1e-12)
    # On-demand values carry no event time.
    assert resp.event_timestamps["big_cart"] == [None, None]
    assert resp.statuses["big_cart"] == [FieldStatus.PRESENT, FieldStatus.PRESENT]


def test_missing_request_field_is_invalid_argument(client):
    with pytest.raises(quiver.InvalidArgumentError) as e:
        client.get_online_features(feature_service="checkout_v1", entity_rows=[{"user_id": 7}])
    assert "cart_value" in e.value.message


def test_one_hundred_entities(client, latest):
    users = list(range(1, 101))
    resp = client.get_online_features(feature_service="churn_v1", entities={"user_id": users})
    assert resp.rows == 100
    assert resp["spend_30d"] == [latest[u]["spend_30d"] for u in users]
    t = resp.to_arrow()
    assert pc.sum(t.column("sessions_7d")).as_py() == sum(latest[u]["sessions_7d"] for u in users)
