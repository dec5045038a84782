"""Every failure is a QuiverError with the status code and the server's message; the usual
codes have their own class."""

from __future__ import annotations

import socket

import grpc
import pytest
import quiver
from quiver import errors
from services import free_port


@pytest.fixture()
def client(server):
    with quiver.Client(server) as c:
        yield c


def test_unknown_service_and_feature_are_invalid_argument_naming_them(client):
    with pytest.raises(quiver.InvalidArgumentError) as e:
        client.get_online_features(feature_service="churn_v9", entity_rows=[{"user_id": 1}])
    err = e.value
    assert isinstance(err, quiver.QuiverError) and isinstance(err, ValueError)
    assert err.code == grpc.StatusCode.INVALID_ARGUMENT and err.code_name == "INVALID_ARGUMENT"
    assert "churn_v9" in err.message and "churn_v1" in err.message  # the close valid name
    assert str(err).startswith("INVALID_ARGUMENT: ")
    with pytest.raises(quiver.InvalidArgumentError, match="clicks_8d"):
        client.get_online_features(["user_stats:clicks_8d"], [{"user_id": 1}])


def test_missing_join_key_is_invalid_argument(client):
    with pytest.raises(quiver.InvalidArgumentError, match="user_id"):
        client.get_online_features(feature_service="churn_v1", entity_rows=[{"merchant_id": "m1"}])


def test_client_side_checks_raise_invalid_argument_before_sending(client):
    cases = [
        (dict(feature_service="churn_v1", entities={"user_id": [1, 2], "x": [1]}), "every column needs one value per row"),
        (dict(feature_service="churn_v1", entity_rows=[{"user_id": 1}, {"uid": 2}]), "row 1 has keys"),
        (dict(feature_service="churn_v1"), "give entity_rows="),
        (dict(features=["user_stats:clicks_7d"], feature_service="churn_v1", entities={"user_id": [1]}), "not both"),
        (dict(features="churn_v1", entities={"user_id": [1]}), "feature_service='churn_v1'"),
        (dict(features=["clicks_7d"], entities={"user_id": [1]}), "not a 'view:feature'"),
        (dict(feature_service="churn_v1", entities={"user_id": 7}), "want a list with one value per row"),
        (dict(feature_service="churn_v1", entities={"user_id": [object()]}), "cannot be sent"),
        (dict(feature_service="churn_v1", entities={"user_id": [2**64]}), "does not fit int64"),
    ]
    for kwargs, match in cases:
        with pytest.raises(quiver.InvalidArgumentError, match=match):
            client.get_online_features(**kwargs)
    with pytest.raises(quiver.InvalidArgumentError, match="NAME@ALIAS"):
        client.predict("churn@", {"user_id": [1]})


def test_unreachable_server_is_unavailable():
    with quiver.Client(f"127.0.0.1:{free_port()}", timeout=5) as c:
        with pytest.raises(quiver.UnavailableError) as e:
            c.get_online_features(feature_service="churn_v1", entity_rows=[{"user_id": 1}])
    assert isinstance(e.value, ConnectionError)
    assert e.value.code == grpc.StatusCode.UNAVAILABLE


def test_timeout_is_per_call_and_deadline_exceeded():
    """A listener that accepts TCP connections and never speaks HTTP/2: every call waits for
    the connection until its deadline."""
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(16)
        addr = f"127.0.0.1:{silent.getsockname()[1]}"
        with quiver.Client(addr, timeout=0.3) as c:  # the client's default
            with pytest.raises(quiver.DeadlineExceededError) as e:
                c.get_online_features(feature_service="churn_v1", entity_rows=[{"user_id": 1}])
            assert isinstance(e.value, TimeoutError)
        with quiver.Client(addr, timeout=None) as c:  # no default: the call's own
            with pytest.raises(quiver.DeadlineExceededError):
                c.predict("churn", {"user_id": [1]}, timeout=0.3)


def test_a_timeout_leaves_the_client_usable(server):
    with quiver.Client(server, timeout=30) as c:
        try:
            c.get_online_features(feature_service="churn_v1", entities={"user_id": list(range(1, 201))}, timeout=1e-4)
        except quiver.DeadlineExceededError:
            pass  # whether 100 µs is enough depends on the machine; only what follows is asserted
        assert c.get_online_features(feature_service="churn_v1", entity_rows=[{"user_id": 1}]).rows == 1


def test_from_grpc_error_maps_every_code():
    class Fake(grpc.RpcError):
        def __init__(self, code):
            self._code = code

        def code(self):
            return self._code

        def details(self):
            return "why"

    want = {
        grpc.StatusCode.INVALID_ARGUMENT: quiver.InvalidArgumentError,
        grpc.StatusCode.NOT_FOUND: quiver.NotFoundError,
        grpc.StatusCode.UNAUTHENTICATED: quiver.UnauthenticatedError,
        grpc.StatusCode.PERMISSION_DENIED: quiver.PermissionDeniedError,
        grpc.StatusCode.UNAVAILABLE: quiver.UnavailableError,
        grpc.StatusCode.DEADLINE_EXCEEDED: quiver.DeadlineExceededError,
        grpc.StatusCode.FAILED_PRECONDITION: quiver.FailedPreconditionError,
        grpc.StatusCode.INTERNAL: quiver.InternalError,
        grpc.StatusCode.RESOURCE_EXHAUSTED: quiver.QuiverError,
    }
    for code, cls in want.items():
        err = errors.from_grpc_error(Fake(code))
        assert type(err) is cls, code
        assert (err.code, err.message) == (code, "why")
