"""predict against the churn model `quiver train` registered (ONNX, run by the server)."""

from __future__ import annotations

import math

import pandas as pd
import pyarrow as pa
import pytest
import quiver


@pytest.fixture()
def client(server):
    with quiver.Client(server) as c:
        yield c


def test_predict_by_name_alias_and_version_agree(client):
    by_name = client.predict("churn", {"user_id": [7, 8]})
    assert (by_name.model_name, by_name.model_version, by_name.feature_service) == ("churn", "1", "churn_v1")
    assert by_name.rows == 2
    assert list(by_name.outputs) == ["score"]
    scores = by_name.outputs["score"]
    assert len(scores) == 2 and all(isinstance(s, float) and 0.0 < s < 1.0 for s in scores)
    assert by_name.shapes["score"][0] == 2
    for ref in ("churn@production", "churn@1", "churn@v1"):
        p = client.predict(ref, {"user_id": [7, 8]})
        assert p.model_version == "1", ref
        assert p.outputs["score"] == scores, ref


def test_predict_rows_forms_and_result_forms(client):
    cols = client.predict("churn", {"user_id": [7, 8]})
    rows = client.predict("churn", [{"user_id": 7}, {"user_id": 8}])
    kw = client.predict("churn", entity_rows=[{"user_id": 7}, {"user_id": 8}])
    df = client.predict("churn", pd.DataFrame({"user_id": [7, 8]}))
    assert cols.outputs == rows.outputs == kw.outputs == df.outputs
    assert cols.to_dict() == cols.outputs
    t = cols.to_arrow()
    assert t.column_names == ["score"] and t.num_rows == 2
    assert cols.to_pandas()["score"].tolist() == cols.outputs["score"]


def test_include_features_returns_what_the_model_was_fed(client):
    p = client.predict("churn", {"user_id": [7, 10**12]}, include_features=True)
    fed = p.features
    assert fed is not None
    assert fed.feature_names == ["clicks_7d", "spend_30d", "sessions_7d"]
    online = client.get_online_features(feature_service="churn_v1", entities={"user_id": [7, 10**12]})
    assert fed.to_dict() == {k: v for k, v in online.to_dict().items() if k != "user_id"}
    assert fed.statuses == online.statuses
    assert client.predict("churn", {"user_id": [7]}).features is None


def test_request_context_replaces_a_stored_feature(client):
    base = client.predict("churn", {"user_id": [7]}, include_features=True)
    high = client.predict("churn", {"user_id": [7]}, request_context={"spend_30d": [10_000.0]}, include_features=True)
    assert high.features["spend_30d"] == [10_000.0]
    assert high.outputs["score"] != base.outputs["score"]
    nan = client.predict("churn", {"user_id": [7]}, request_context={"spend_30d": pa.array([None], pa.float64())})
    assert not math.isnan(nan.outputs["score"][0])  # fed as NaN (missing): the model imputes


def test_unknown_model_is_not_found(client):
    with pytest.raises(quiver.NotFoundError) as e:
        client.predict("no_such_model", {"user_id": [7]})
    assert "no_such_model" in e.value.message
    assert isinstance(e.value, LookupError)


def test_bad_request_context_is_invalid_argument(client):
    with pytest.raises(quiver.InvalidArgumentError) as e:
        client.predict("churn", {"user_id": [7]}, request_context={"nope": [1.0]})
    assert "nope" in e.value.message
    with pytest.raises(quiver.InvalidArgumentError, match="has 2 values for 1 entity rows"):
        client.predict("churn", {"user_id": [7]}, request_context={"spend_30d": [1.0, 2.0]})
