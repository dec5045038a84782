"""push: pandas DataFrames and pyarrow Tables through PushFeatures, every type mapped exactly
and served at once."""

from __future__ import annotations

import datetime as dt
import itertools
import json
import time
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import quiver
from quiver import FieldStatus

UTC = dt.timezone.utc
_ids = itertools.count(10**15)


def fresh_ids(n: int) -> list[int]:
    """User ids no other test pushes to (the server and Redis are shared by the session)."""
    return [next(_ids) * 1000 + 7 for _ in range(n)]  # large: past 2**53, so float64 would lose them


def now() -> dt.datetime:
    return dt.datetime.now(UTC).replace(microsecond=654321)


@pytest.fixture()
def client(server):
    with quiver.Client(server) as c:
        yield c


LIVE = ["i32", "i64", "f32", "f64", "flag", "page", "blob", "seen", "tags", "scores", "ids", "when"]


def read_back(client, users):
    return client.get_online_features(features=["user_live:*"], entities={"user_id": users})


def test_arrow_table_every_type_round_trips_exactly(client):
    users = fresh_ids(3)
    t0 = now()
    seen = dt.datetime(2001, 2, 3, 4, 5, 6, 789012, tzinfo=UTC)
    table = pa.table({
        "user_id": pa.array(users, pa.int64()),
        "event_timestamp": pa.array([t0, t0, t0], pa.timestamp("us", tz="UTC")),
        "i32": pa.array([-(2**31), 2**31 - 1, None], pa.int32()),
        "i64": pa.array([2**63 - 1, -(2**63), 2**53 + 1], pa.int64()),
        "f32": pa.array([1.1, -0.0, None], pa.float32()),
        "f64": pa.array([0.1, 1e308, float("inf")], pa.float64()),
        "flag": pa.array([True, False, None]),
        "page": pa.array(["α/β", "", None]),
        "blob": pa.array([b"\x00\xff", b"", None], pa.binary()),
        "seen": pa.array([seen, None, dt.datetime(1969, 12, 31, 23, 59, 59, 999999, tzinfo=UTC)], pa.timestamp("us", tz="UTC")),
        "tags": pa.array([["a", "b"], [], None], pa.list_(pa.string())),
        "scores": pa.array([[0.5, -1.25], None, [1e-300]], pa.list_(pa.float64())),
        "ids": pa.array([[2**63 - 1, -(2**63)], [0], None], pa.list_(pa.int64())),
        "when": pa.array([[seen, t0], None, []], pa.list_(pa.timestamp("us", tz="UTC"))),
    })
    res = client.push("user_live", table)
    assert res == quiver.PushResult(rows=3, online_rows=3, log_sequence=res.log_sequence, requests=1)
    assert res.log_sequence > 0

    resp = read_back(client, users)
    got = resp.to_arrow()
    want = table.drop_columns(["event_timestamp"])
    # float32 1.1 comes back as the same float32; compare as Arrow, which keeps the widths.
    for name in ["user_id"] + LIVE:
        assert got.column(name).type == want.column(name).type, name
        assert got.column(name).to_pylist() == want.column(name).to_pylist(), name
    st = resp.statuses
    assert st["i32"] == [FieldStatus.PRESENT, FieldStatus.PRESENT, FieldStatus.NULL_VALUE]
    assert st["tags"] == [FieldStatus.PRESENT, FieldStatus.PRESENT, FieldStatus.NULL_VALUE]
    assert resp.event_timestamps["i64"] == [t0, t0, t0]


def test_pandas_dataframe_is_served_at_once_with_int64_precision(client):
    users = fresh_ids(2)
    t0 = now()
    df = pd.DataFrame({
        "user_id": users,
        "event_timestamp": pd.to_datetime([t0, t0 - dt.timedelta(seconds=1)], utc=True),
        "i32": pd.array([7, None], dtype="Int32"),
        "i64": pd.array([2**62 + 1, None], dtype="Int64"),
        "f32": pd.array([0.5, 0.25], dtype="float32"),
        "f64": [1.5, None],
        "flag": pd.array([True, None], dtype="boolean"),
        "page": ["home", None],
        "blob": [b"x", None],
        "seen": pd.to_datetime([t0, None], utc=True),
        "tags": [["x"], None],
        "scores": [[1.0, 2.0], []],
        "ids": [[2**62 + 3], None],
        "when": [None, [t0]],
    })
    res = client.push("user_live", df)
    assert (res.rows, res.online_rows, res.requests) == (2, 2, 1)
    resp = read_back(client, users)
    d = resp.to_dict()
    assert d["user_id"] == users
    assert d["i32"] == [7, None]
    assert d["i64"] == [2**62 + 1, None]
    assert d["f32"] == [0.5, 0.25]
    assert d["f64"] == [1.5, None]
    assert d["flag"] == [True, None]
    assert d["page"] == ["home", None]
    assert d["blob"] == [b"x", None]
    assert d["seen"] == [t0, None]
    assert d["tags"] == [["x"], None]
    assert d["scores"] == [[1.0, 2.0], []]
    assert d["ids"] == [[2**62 + 3], None]
    assert d["when"] == [None, [t0]]
    out = resp.to_pandas()
    assert out["i64"].tolist()[0] == 2**62 + 1  # Int64, not float64
    assert out["user_id"].tolist() == users


def test_naive_and_nanosecond_timestamps_are_utc_microseconds(client):
    users = fresh_ids(2)
    naive = dt.datetime(2030, 1, 2, 3, 4, 5, 123456)
    table = pa.table({
        "user_id": users,
        # nanosecond unit with whole microseconds, and a naive (no time zone) event time
        "event_timestamp": pa.array([naive, naive], pa.timestamp("ns")),
        **{c: pa.nulls(2, t) for c, t in [("i32", pa.int32()), ("i64", pa.int64()), ("f32", pa.float32()),
                                          ("f64", pa.float64()), ("flag", pa.bool_()), ("page", pa.string()),
                                          ("blob", pa.binary()), ("tags", pa.list_(pa.string())),
                                          ("scores", pa.list_(pa.float64())), ("ids", pa.list_(pa.int64())),
                                          ("when", pa.list_(pa.timestamp("us")))]},
        "seen": pa.array([naive, None], pa.timestamp("ms")),  # ms: truncated input, exact output
    })
    client.push("user_live", table)
    resp = read_back(client, users)
    assert resp.event_timestamps["seen"] == [naive.replace(tzinfo=UTC)] * 2
    assert resp["seen"] == [naive.replace(microsecond=123000, tzinfo=UTC), None]


def test_created_timestamp_breaks_ties_and_older_rows_never_replace_newer(client):
    [u] = fresh_ids(1)
    t0 = now()

    def push(i64, event, created):
        table = pa.table({
            "user_id": [u], "event_timestamp": pa.array([event], pa.timestamp("us", tz="UTC")),
            "created": pa.array([created], pa.timestamp("us", tz="UTC")), "i64": [i64],
            **{c: [None] for c in LIVE if c != "i64"},
        }).cast(pa.schema([("user_id", pa.int64()), ("event_timestamp", pa.timestamp("us", tz="UTC")),
                           ("created", pa.timestamp("us", tz="UTC")), ("i64", pa.int64()), ("i32", pa.int32()),
                           ("f32", pa.float32()), ("f64", pa.float64()), ("flag", pa.bool_()), ("page", pa.string()),
                           ("blob", pa.binary()), ("seen", pa.timestamp("us", tz="UTC")),
                           ("tags", pa.list_(pa.string())), ("scores", pa.list_(pa.float64())),
                           ("ids", pa.list_(pa.int64())), ("when", pa.list_(pa.timestamp("us", tz="UTC")))]))
        client.push("user_live", table, created_timestamp_column="created")

    push(1, t0, t0)
    push(2, t0, t0 + dt.timedelta(seconds=1))  # same event time, later created: wins
    push(3, t0 - dt.timedelta(hours=1), t0 + dt.timedelta(hours=1))  # older event: ignored online
    assert read_back(client, [u])["i64"] == [2]


def test_old_event_is_outside_max_age_and_still_returned(client):
    [u] = fresh_ids(1)
    old = now() - dt.timedelta(days=3)  # user_live's ttl is 1d
    table = pa.table({"user_id": [u], "event_timestamp": pa.array([old], pa.timestamp("us", tz="UTC")),
                      "i64": [42], **{c: pa.nulls(1) for c in LIVE if c != "i64"}})
    client.push("user_live", table)
    resp = read_back(client, [u])
    assert resp["i64"] == [42]
    assert resp.statuses["i64"] == [FieldStatus.OUTSIDE_MAX_AGE]
    assert resp.statuses["page"] == [FieldStatus.OUTSIDE_MAX_AGE]
    assert resp["page"] == [None]  # a stored null past the TTL: still null, still OUTSIDE_MAX_AGE
    assert resp.event_timestamps["i64"] == [old]


def test_batches_split_by_rows_and_by_request_size(client):
    users = fresh_ids(10)
    t0 = now()
    table = pa.table({"user_id": users, "event_timestamp": pa.array([t0] * 10, pa.timestamp("us", tz="UTC")),
                      "page": ["p" * 20_000] * 10, "i64": list(range(10)),
                      **{c: pa.nulls(10) for c in LIVE if c not in ("page", "i64")}})
    res = client.push("user_live", table, batch_rows=4)
    assert (res.rows, res.online_rows, res.requests) == (10, 10, 3)
    # ~20 kB a row: 10 rows halve to 5 + 5, each 5 to 2 + 3, each 3 to 1 + 2: 6 requests of at most 2 rows.
    res = client.push("user_live", table, max_request_bytes=50_000)
    assert (res.rows, res.requests) == (10, 6)
    assert read_back(client, users)["i64"] == list(range(10))


def test_pushed_rows_reach_the_offline_table(client, env, tmp_path):
    """Acknowledged pushes are committed to the view's Iceberg table within the server's
    --push-commit-interval (1s here): a dataset built afterwards holds them."""
    users = fresh_ids(2)
    t0 = now() - dt.timedelta(minutes=5)
    table = pa.table({"user_id": users, "event_timestamp": pa.array([t0, t0], pa.timestamp("us", tz="UTC")),
                      "i64": [2**62 + 11, 2**62 + 12], "page": ["a", "b"],
                      **{c: pa.nulls(2) for c in LIVE if c not in ("i64", "page")}})
    client.push("user_live", table)
    entities = tmp_path / "entities.parquet"
    pq.write_table(pa.table({"user_id": users, "event_timestamp": pa.array([t0 + dt.timedelta(minutes=1)] * 2,
                                                                             pa.timestamp("us", tz="UTC"))}), entities)
    deadline = time.monotonic() + 60
    while True:
        # --rebuild: each try reads the offline table as it is now.
        out = env.run("-o", "json", "dataset", "create", f"pushed_{users[0]}", "--service", "live_v1",
                      "--entities", str(entities), "--rebuild")
        location = json.loads(out.stdout)["location"]
        rows = pa.concat_tables([pq.read_table(f) for f in sorted(Path(location).rglob("*.parquet"))]).to_pylist()
        if rows and all(r["i64"] is not None for r in rows):
            break
        assert time.monotonic() < deadline, f"pushed rows not in a dataset after 60s: {rows}"
        time.sleep(1)
    assert sorted((r["user_id"], r["i64"], r["page"]) for r in rows) == [
        (users[0], 2**62 + 11, "a"), (users[1], 2**62 + 12, "b")]


# ---- bad input: refused before anything is sent, naming the column and row --------------


def test_bad_input_is_refused_with_the_column_and_row(client):
    t0 = now()
    base = {"user_id": [1, 2], "event_timestamp": pa.array([t0, t0], pa.timestamp("us", tz="UTC"))}
    with pytest.raises(quiver.InvalidArgumentError, match="no column 'event_timestamp'") as e:
        client.push("user_live", pa.table({"user_id": [1], "event_ts": pa.array([t0], pa.timestamp("us"))}))
    assert "event_timestamp_column=" in str(e.value)
    with pytest.raises(quiver.InvalidArgumentError, match=r"column 'ids': row 1: the list holds a null"):
        client.push("user_live", pa.table({**base, "ids": pa.array([[1], [2, None]], pa.list_(pa.int64()))}))
    with pytest.raises(quiver.InvalidArgumentError, match=r"row 0: uint64 value 18446744073709551615 does not fit int64"):
        client.push("user_live", pa.table({**base, "i64": pa.array([2**64 - 1, 1], pa.uint64())}))
    with pytest.raises(quiver.InvalidArgumentError, match=r"row 1: timestamp has a sub-microsecond part \(1 ns\)"):
        client.push("user_live", pa.table({**base, "seen": pa.array([0, 1001], pa.timestamp("ns"))}))
    with pytest.raises(quiver.InvalidArgumentError, match=r"Arrow type decimal128\(5, 2\) cannot be sent"):
        import decimal
        client.push("user_live", pa.table({**base, "f64": pa.array([decimal.Decimal("1.50")] * 2, pa.decimal128(5, 2))}))
    with pytest.raises(quiver.InvalidArgumentError, match="row 1: the event time is null"):
        client.push("user_live", pa.table({"user_id": [1, 2], "event_timestamp": pa.array([t0, None], pa.timestamp("us"))}))
    with pytest.raises(quiver.InvalidArgumentError, match="want a pandas DataFrame or a pyarrow Table"):
        client.push("user_live", [{"user_id": 1}])


def test_server_refuses_a_batch_that_does_not_fit_the_view(client):
    t0 = now()
    [u] = fresh_ids(1)
    table = pa.table({"user_id": [u], "event_timestamp": pa.array([t0], pa.timestamp("us", tz="UTC")),
                      "nope": [1], **{c: pa.nulls(1) for c in LIVE}})
    with pytest.raises(quiver.InvalidArgumentError) as e:
        client.push("user_live", table)
    assert e.value.code_name == "INVALID_ARGUMENT"
    assert '"nope"' in e.value.message and "push rows 0 to 0 of user_live" in e.value.message
    # nothing was written
    assert read_back(client, [u]).statuses["i64"] == [FieldStatus.NOT_FOUND]
    with pytest.raises(quiver.InvalidArgumentError):
        client.push("no_such_view", table)
