"""Training datasets over Arrow Flight: get_dataset, create_dataset and get_historical_features
against the real quiver serve of conftest.py, compared with the Parquet files the server
wrote and with what quiver dataset create builds."""

from __future__ import annotations

import datetime as dt
import json
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import quiver
from test_push import LIVE, fresh_ids, now

UTC = dt.timezone.utc


@pytest.fixture()
def client(server):
    with quiver.Client(server) as c:
        yield c


def parquet_of(env, ref: str) -> tuple[dict, pa.Table]:
    """The registered version (quiver dataset show) and its Parquet files read directly."""
    shown = json.loads(env.run("-o", "json", "dataset", "show", ref).stdout)
    base = Path(env.env["QUIVER_WAREHOUSE"]) / shown["location"]
    files = [base / f["path"] for f in shown["files"]]
    assert files, shown
    return shown, pa.concat_tables([pq.read_table(f) for f in files])


def same_values(a: pa.Table, b: pa.Table) -> bool:
    """Equal columns (names, types, values), whatever the fields' nullability: rows sent over
    Flight are staged with every column nullable."""
    return a.column_names == b.column_names and all(a.column(n).equals(b.column(n)) for n in a.column_names)


def labels(env) -> pa.Table:
    return pq.read_table(env.repo / "data" / "labels.parquet")


def test_get_dataset_equals_its_parquet_files(client, env):
    shown, want = parquet_of(env, "churn_train")
    for ref, version in [("churn_train", None), (f"churn_train@v{shown['version']}", None),
                         ("churn_train", shown["version"])]:
        got = client.get_dataset(ref, version)
        assert got.schema == want.schema
        assert got.equals(want), ref
    info = client.dataset_info("churn_train")
    assert (info.name, info.version, info.content_id, info.rows) == (
        "churn_train", shown["version"], shown["content_id"], shown["rows"])
    assert info.parts == len(shown["files"])


def test_create_dataset_builds_what_the_cli_builds_and_reuses_it(client, env):
    rows = labels(env)
    info = client.create_dataset("py_train", rows.to_pandas(), "churn_v1")
    assert (info.name, info.rows, info.reused) == ("py_train", rows.num_rows, False)
    assert info.version >= 1
    again = client.create_dataset("py_train", rows, "churn_v1")
    assert again.reused and again.version == info.version, "the same rows sent again reuse the version"
    _, cli = parquet_of(env, "churn_train")  # quiver dataset create, same rows, same service
    got = client.get_dataset(info.ref)
    assert same_values(got, cli)
    shown, files = parquet_of(env, info.ref)
    assert shown["content_id"] == info.content_id and got.equals(files)


def test_get_historical_features_to_pandas(client, env):
    rows = labels(env).slice(0, 50)
    job = client.get_historical_features(rows.to_pandas(), "churn_v1")
    assert job.info.name == "churn_v1_historical"
    df = job.to_pandas()
    assert len(df) == 50
    _, cli = parquet_of(env, "churn_train")
    want = cli.slice(0, 50).to_pandas()
    assert job.to_arrow().column_names == cli.column_names
    pd.testing.assert_frame_equal(df.reset_index(drop=True), want.reset_index(drop=True))
    assert job.to_arrow() is job.to_arrow(), "downloaded once"


def test_a_million_rows_through_flight_equal_their_parquet_files(client, env):
    n = 1_000_000
    rng = np.random.default_rng(25)
    end = dt.datetime.now(UTC)
    start_us = int((end - dt.timedelta(days=28)).timestamp() * 1e6)
    entities = pa.table({
        "user_id": pa.array(rng.integers(1, 201, n), pa.int64()),
        "event_timestamp": pa.array(rng.integers(start_us, int(end.timestamp() * 1e6), n), pa.timestamp("us", tz="UTC")),
        "label": pa.array(rng.integers(0, 2, n).astype(bool)),
    })
    info = client.create_dataset("million", entities, "churn_v1")
    assert info.rows == n
    got = client.get_dataset(info.ref)
    shown, want = parquet_of(env, info.ref)
    assert got.num_rows == n and shown["rows"] == n
    assert got.equals(want)
    # Streamed, batch by batch: the same rows, no batch over 64 Ki rows.
    batches = list(client.read_dataset(info.ref))
    assert len(batches) >= n // 65536 and all(b.num_rows <= 65536 for b in batches)
    assert pa.Table.from_batches(batches).equals(want)
    # Features were joined: most rows find a value (the shop's users are active daily).
    assert got.column("clicks_7d").null_count < n // 2


def test_pushed_dataframe_is_served_at_once_and_in_a_later_dataset(client):
    users = fresh_ids(2)
    t0 = now() - dt.timedelta(minutes=5)
    df = pd.DataFrame({"user_id": users, "event_timestamp": [t0, t0], "i64": [2**62 + 21, 2**62 + 22], "page": ["x", "y"]})
    table = pa.Table.from_pandas(df, preserve_index=False)
    for c in LIVE:
        if c not in ("i64", "page"):
            table = table.append_column(c, pa.nulls(2))
    client.push("user_live", table)
    served = client.get_online_features(features=["user_live:i64"], entities={"user_id": users}).to_dict()
    assert served["i64"] == [2**62 + 21, 2**62 + 22]
    entities = pd.DataFrame({"user_id": users, "event_timestamp": [t0 + dt.timedelta(minutes=1)] * 2})
    deadline = time.monotonic() + 60
    while True:  # the offline commit follows within --push-commit-interval (1s here)
        info = client.create_dataset(f"pushed_py_{users[0]}", entities, "live_v1", rebuild=True)
        rows = client.get_dataset(info.ref).to_pylist()
        if rows and all(r["i64"] is not None for r in rows):
            break
        assert time.monotonic() < deadline, f"pushed rows not in a dataset after 60s: {rows}"
        time.sleep(1)
    assert sorted((r["user_id"], r["i64"], r["page"]) for r in rows) == [
        (users[0], 2**62 + 21, "x"), (users[1], 2**62 + 22, "y")]


def test_dataset_errors(client, env):
    with pytest.raises(quiver.NotFoundError, match="no_such_dataset"):
        client.get_dataset("no_such_dataset")
    with pytest.raises(quiver.NotFoundError, match="churn_train@v999"):
        client.get_dataset("churn_train@v999")
    with pytest.raises(quiver.NotFoundError, match="churn_train@v999"):
        next(iter(client.read_dataset("churn_train@v999")))
    with pytest.raises(quiver.InvalidArgumentError, match="NAME@vN"):
        client.get_dataset("churn train")
    with pytest.raises(quiver.InvalidArgumentError, match="contradicts"):
        client.get_dataset("churn_train@v1", version=2)
    rows = labels(env).slice(0, 3)
    with pytest.raises(quiver.InvalidArgumentError, match="nope"):
        client.create_dataset("bad_train", rows, "nope")
    with pytest.raises(quiver.InvalidArgumentError, match="user_id"):
        client.create_dataset("bad_train", rows.drop_columns(["user_id"]), "churn_v1")
    with pytest.raises(quiver.InvalidArgumentError, match="no rows"):
        client.create_dataset("bad_train", rows.slice(0, 0), "churn_v1")
    with pytest.raises(quiver.InvalidArgumentError, match="want a pandas DataFrame"):
        client.create_dataset("bad_train", [1, 2], "churn_v1")
    assert "bad_train" not in env.run("-o", "json", "dataset", "list").stdout


def test_datasets_need_a_datasets_grant(secure_server):
    s = secure_server
    tls = quiver.TLSConfig(root_ca=s.certs.ca_cert)
    with quiver.Client(s.addr, token=s.tokens["reader"], tls=tls) as c:
        assert c.get_dataset("churn_train").num_rows == 600
    with quiver.Client(s.addr, token=s.tokens["writer"], tls=tls) as c:
        with pytest.raises(quiver.PermissionDeniedError, match='token:writer is not granted dataset "churn_train"'):
            c.get_dataset("churn_train")
        with pytest.raises(quiver.PermissionDeniedError, match='dataset "w_train"'):
            c.create_dataset("w_train", pa.table({"user_id": [1], "event_timestamp": pa.array([now()], pa.timestamp("us", tz="UTC"))}), "churn_v1")
    with quiver.Client(s.addr, tls=tls) as c:
        with pytest.raises(quiver.UnauthenticatedError, match="no credentials"):
            c.get_dataset("churn_train")
    with quiver.Client(s.addr, token="not-a-token", tls=tls) as c:
        with pytest.raises(quiver.UnauthenticatedError, match="unknown API token"):
            c.get_dataset("churn_train")
    # mTLS: the client certificate is the caller, and it has no datasets grant.
    mtls = quiver.TLSConfig(root_ca=s.certs.ca_cert, client_cert=s.certs.client_cert, client_key=s.certs.client_key)
    with quiver.Client(s.addr, tls=mtls) as c:
        with pytest.raises(quiver.PermissionDeniedError, match="is not granted dataset"):
            c.get_dataset("churn_train")
