# The richer Feast repository of quiver import feast's acceptance test: two entities (one with
# a string join key), file sources (one without a created column), a push source, a request
# source, an on-demand view, and feature services (one selecting the same feature name from
# two views). The test writes the data under data/ before feast apply.
from datetime import timedelta

import pandas as pd
from feast import Entity, FeatureService, FeatureView, Field, FileSource, PushSource, RequestSource
from feast.on_demand_feature_view import on_demand_feature_view
from feast.types import Bool, Float32, Float64, Int32, Int64, String
from feast.value_type import ValueType

user = Entity(name="user", join_keys=["user_id"], value_type=ValueType.INT64, description="A customer.", owner="growth@shop")
merchant = Entity(name="merchant", join_keys=["merchant_id"], value_type=ValueType.STRING, tags={"pii": "no"})

user_stats_source = FileSource(
    name="user_stats_source",
    path="data/user_stats.parquet",
    timestamp_field="event_timestamp",
    created_timestamp_column="created",
)
merchant_source = FileSource(
    name="merchant_source",
    path="data/merchant_stats.parquet",
    timestamp_field="event_timestamp",
)
txn_push = PushSource(
    name="txn_push",
    batch_source=FileSource(name="txn_batch", path="data/user_txn.parquet", timestamp_field="event_timestamp"),
)

user_stats = FeatureView(
    name="user_stats",
    entities=[user],
    ttl=timedelta(days=2),
    schema=[
        Field(name="clicks", dtype=Int64, description="Clicks in the last hour"),
        Field(name="spend", dtype=Float64),
        Field(name="score", dtype=Float32),
        Field(name="active", dtype=Bool),
        Field(name="segment", dtype=String),
    ],
    source=user_stats_source,
    online=True,
    tags={"team": "growth"},
    owner="growth@shop",
    description="Hourly user activity.",
)
merchant_stats = FeatureView(
    name="merchant_stats",
    entities=[merchant],
    ttl=timedelta(seconds=0),
    schema=[Field(name="score", dtype=Float64), Field(name="orders", dtype=Int32)],
    source=merchant_source,
    online=True,
)
user_txn = FeatureView(
    name="user_txn",
    entities=[user],
    ttl=timedelta(days=1),
    schema=[Field(name="amount", dtype=Float64)],
    source=txn_push,
    online=True,
)

txn_request = RequestSource(name="txn_request", schema=[Field(name="amount_req", dtype=Float64)])


@on_demand_feature_view(
    sources=[user_stats, txn_request],
    schema=[
        Field(name="spend_per_click", dtype=Float64),
        Field(name="amount_over_spend", dtype=Float64),
    ],
)
def txn_features(inputs: pd.DataFrame) -> pd.DataFrame:
    df = pd.DataFrame()
    df["spend_per_click"] = inputs["spend"] / (inputs["clicks"] + 1)
    df["amount_over_spend"] = inputs["amount_req"] - inputs["spend"] * 2
    return df


fraud_v1 = FeatureService(
    name="fraud_v1",
    features=[
        user_stats[["clicks", "spend", "active", "segment"]],
        merchant_stats,
        user_txn,
        txn_features,
    ],
    description="Features of the fraud model.",
    owner="risk@shop",
)
scores_v1 = FeatureService(name="scores_v1", features=[user_stats[["score"]], merchant_stats[["score"]]])
merchants = FeatureService(name="merchants", features=[merchant_stats])
