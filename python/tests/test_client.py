"""The client's own behaviour: one channel reused, close, repr never shows a token."""

from __future__ import annotations

import threading

import pytest
import quiver


def test_one_channel_is_reused_by_every_call_and_thread(server):
    c = quiver.Client(server)
    assert c.get_online_features(feature_service="churn_v1", entity_rows=[{"user_id": 1}]).rows == 1
    channel = c._channel
    assert channel is not None
    errs: list[BaseException] = []

    def work():
        try:
            for _ in range(20):
                assert c.get_online_features(feature_service="churn_v1", entity_rows=[{"user_id": 2}]).rows == 1
        except BaseException as e:  # noqa: BLE001
            errs.append(e)

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errs == []
    assert c._channel is channel
    c.close()


def test_context_manager_closes_and_later_calls_raise(server):
    with quiver.Client(server) as c:
        c.get_online_features(feature_service="churn_v1", entity_rows=[{"user_id": 1}])
    assert c._channel is None
    with pytest.raises(quiver.QuiverError, match="closed"):
        c.get_online_features(feature_service="churn_v1", entity_rows=[{"user_id": 1}])
    c.close()  # twice is harmless


def test_repr_redacts_the_token():
    c = quiver.Client("127.0.0.1:1", token="s3cret")
    assert "s3cret" not in repr(c) and "[redacted]" in repr(c)


def test_bad_constructor_arguments():
    for kwargs, match in [
        (dict(address=""), "HOST:PORT"),
        (dict(address="grpc://localhost:6566"), "no scheme"),
        (dict(address="localhost:6566", token=""), "token: empty"),
        (dict(address="localhost:6566", token=5), "token: want a str"),
        (dict(address="localhost:6566", tls=5), "tls: want"),
    ]:
        with pytest.raises(quiver.InvalidArgumentError, match=match):
            quiver.Client(**kwargs)
