"""TLS, mTLS and bearer tokens against a quiver serve with authentication and a policy
(docs/security.md)."""

from __future__ import annotations

import datetime as dt

import pyarrow as pa
import pytest
import quiver

ROWS = [{"user_id": 7}]


def test_token_over_tls_reads_what_it_is_granted(secure_server):
    s = secure_server
    with quiver.Client(s.addr, token=s.tokens["reader"], tls=quiver.TLSConfig(root_ca=s.certs.ca_cert)) as c:
        resp = c.get_online_features(feature_service="churn_v1", entity_rows=ROWS)
        assert resp.statuses["spend_30d"] == [quiver.FieldStatus.PRESENT]
        assert c.predict("churn", {"user_id": [7]}).model_version == "1"
        with pytest.raises(quiver.PermissionDeniedError) as e:
            c.get_online_features(feature_service="checkout_v1", entity_rows=ROWS, request_context={"cart_value": [1.0]})
        assert "token:reader" in e.value.message and "checkout_v1" in e.value.message
        with pytest.raises(quiver.PermissionDeniedError):
            c.push("user_live", pa.table({"user_id": [1], "event_timestamp": pa.array([dt.datetime.now()], pa.timestamp("us"))}))


def test_root_ca_as_path_str_or_pem_and_token_callable(secure_server):
    s = secure_server
    pem = s.certs.ca_cert.read_bytes()
    calls = []

    def token():
        calls.append(1)
        return s.tokens["reader"]

    for tls in (str(s.certs.ca_cert), pem, pem.decode(), {"root_ca": s.certs.ca_cert}):
        with quiver.Client(s.addr, token=token, tls=tls) as c:
            assert c.get_online_features(feature_service="churn_v1", entity_rows=ROWS).rows == 1
    assert len(calls) == 4


def test_no_token_or_a_bad_one_is_unauthenticated(secure_server):
    s = secure_server
    with quiver.Client(s.addr, tls=s.certs.ca_cert) as c:
        with pytest.raises(quiver.UnauthenticatedError) as e:
            c.get_online_features(feature_service="churn_v1", entity_rows=ROWS)
        assert "authorization: Bearer" in e.value.message
    with quiver.Client(s.addr, token="not-a-token", tls=s.certs.ca_cert) as c:
        with pytest.raises(quiver.UnauthenticatedError):
            c.get_online_features(feature_service="churn_v1", entity_rows=ROWS)


def test_token_without_a_grant_is_permission_denied(secure_server):
    s = secure_server
    with quiver.Client(s.addr, token=s.tokens["outsider"], tls=s.certs.ca_cert) as c:
        with pytest.raises(quiver.PermissionDeniedError) as e:
            c.get_online_features(feature_service="churn_v1", entity_rows=ROWS)
        assert "token:outsider" in e.value.message
        with pytest.raises(quiver.PermissionDeniedError):
            c.predict("churn", {"user_id": [7]})


def test_push_needs_a_push_grant(secure_server):
    s = secure_server
    t0 = dt.datetime.now(dt.timezone.utc)
    u = 987_654_321_012_345
    live = ["i32", "i64", "f32", "f64", "flag", "page", "blob", "seen", "tags", "scores", "ids", "when"]
    table = pa.table({"user_id": [u], "event_timestamp": pa.array([t0], pa.timestamp("us", tz="UTC")),
                      "i64": [5], **{c: pa.nulls(1) for c in live if c != "i64"}})
    with quiver.Client(s.addr, token=s.tokens["writer"], tls=s.certs.ca_cert) as c:
        assert c.push("user_live", table).online_rows == 1
        assert c.get_online_features(["user_live:i64"], [{"user_id": u}])["i64"] == [5]


def test_mtls_client_certificate_is_the_caller(secure_server):
    s = secure_server
    tls = quiver.TLSConfig(root_ca=s.certs.ca_cert, client_cert=s.certs.client_cert, client_key=s.certs.client_key)
    with quiver.Client(s.addr, tls=tls) as c:
        assert c.get_online_features(feature_service="churn_v1", entity_rows=ROWS).rows == 1
        with pytest.raises(quiver.PermissionDeniedError) as e:
            c.predict("churn", {"user_id": [7]})
        assert "cert:CN=scorer,O=Quiver Tests" in e.value.message


def test_tls_failures_are_unavailable(secure_server):
    s = secure_server
    # A server certificate from a CA the client does not trust.
    with quiver.Client(s.addr, token=s.tokens["reader"], tls=s.certs.rogue_ca_cert, timeout=10) as c:
        with pytest.raises(quiver.UnavailableError):
            c.get_online_features(feature_service="churn_v1", entity_rows=ROWS)
    # A client certificate from a CA the server does not trust: no connection.
    tls = quiver.TLSConfig(root_ca=s.certs.ca_cert, client_cert=s.certs.rogue_client_cert,
                           client_key=s.certs.rogue_client_key)
    with quiver.Client(s.addr, token=s.tokens["reader"], tls=tls, timeout=10) as c:
        with pytest.raises(quiver.UnavailableError):
            c.get_online_features(feature_service="churn_v1", entity_rows=ROWS)
    # Plaintext to a TLS port.
    with quiver.Client(s.addr, token=s.tokens["reader"], timeout=10) as c:
        with pytest.raises(quiver.UnavailableError):
            c.get_online_features(feature_service="churn_v1", entity_rows=ROWS)


def test_tls_config_mistakes_are_invalid_argument(secure_server, tmp_path):
    s = secure_server
    with pytest.raises(quiver.InvalidArgumentError, match="both client_cert and client_key"):
        quiver.Client(s.addr, tls=quiver.TLSConfig(client_cert=s.certs.client_cert)).get_online_features(
            feature_service="churn_v1", entity_rows=ROWS)
    with pytest.raises(quiver.InvalidArgumentError, match="root_ca: read"):
        quiver.Client(s.addr, tls=tmp_path / "missing.pem").get_online_features(feature_service="churn_v1", entity_rows=ROWS)
    with pytest.raises(quiver.InvalidArgumentError, match="unknown keys"):
        quiver.Client(s.addr, tls={"ca": "x"})
