"""The Quiver client: one gRPC channel to a ``quiver serve``, reused by every call."""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Union

import grpc
import pyarrow as pa

from . import _convert
from .datasets import DatasetInfo, FlightDatasets, HistoricalFeatures, parse_ref
from .errors import InvalidArgumentError, QuiverError, from_grpc_error
from .response import OnlineResponse, Prediction, PushResult
from .serving.v1 import serving_pb2 as pb
from .serving.v1 import serving_pb2_grpc as pb_grpc

__all__ = ["Client", "TLSConfig"]

PathOrPEM = Union[str, bytes, "os.PathLike[str]"]  # noqa: UP007 (evaluated at run time: a str in it)
Token = Union[str, Callable[[], str]]

#: The default per-call timeout, in seconds.
DEFAULT_TIMEOUT = 10.0
#: Rows per PushFeatures request (as ``quiver push --batch-rows``).
DEFAULT_PUSH_BATCH_ROWS = 5000
#: The largest request the client sends: quiver serve's default --max-recv-bytes (4 MiB) less
#: room for framing. A push batch over it is split in two until each half fits.
DEFAULT_MAX_REQUEST_BYTES = 4 * 1024 * 1024 - 64 * 1024


def _read_pem(v: PathOrPEM | None, what: str) -> bytes | None:
    if v is None:
        return None
    if isinstance(v, bytes):
        return v
    path = os.fspath(v)
    if path.lstrip().startswith("-----BEGIN"):
        return path.encode()
    try:
        with open(path, "rb") as f:
            return f.read()
    except OSError as e:
        raise InvalidArgumentError(f"tls {what}: read {path}: {e.strerror or e}") from None


@dataclass(frozen=True)
class TLSConfig:
    """TLS settings of a :class:`Client`. Each PEM may be a path or the PEM itself (bytes, or a
    str starting with ``-----BEGIN``).

    * ``root_ca``: the CA certificates the server's certificate must chain to (None: the
      system's roots).
    * ``client_cert`` and ``client_key``: a client certificate for mTLS (both or neither).
    * ``server_name``: the name to verify the server's certificate against, when it differs
      from the address's host (an IP address, a load balancer).
    """

    root_ca: PathOrPEM | None = None
    client_cert: PathOrPEM | None = None
    client_key: PathOrPEM | None = None
    server_name: str | None = None

    def credentials(self) -> grpc.ChannelCredentials:
        if (self.client_cert is None) != (self.client_key is None):
            raise InvalidArgumentError("tls: give both client_cert and client_key for mTLS, or neither")
        return grpc.ssl_channel_credentials(
            root_certificates=_read_pem(self.root_ca, "root_ca"),
            private_key=_read_pem(self.client_key, "client_key"),
            certificate_chain=_read_pem(self.client_cert, "client_cert"),
        )


def _tls_config(tls: Any) -> TLSConfig | None:
    if tls is None or tls is False:
        return None
    if tls is True:
        return TLSConfig()
    if isinstance(tls, TLSConfig):
        return tls
    if isinstance(tls, (str, bytes, os.PathLike)):
        return TLSConfig(root_ca=tls)
    if isinstance(tls, Mapping):
        try:
            return TLSConfig(**tls)
        except TypeError:
            raise InvalidArgumentError(
                f"tls: unknown keys {sorted(set(tls) - {'root_ca', 'client_cert', 'client_key', 'server_name'})}; "
                "valid: root_ca, client_cert, client_key, server_name"
            ) from None
    raise InvalidArgumentError(
        f"tls: want None, True (system roots), a root CA path, a dict or a TLSConfig, got {type(tls).__name__}"
    )


def _parse_model(model: str) -> Any:
    """"churn", "churn@production" (an alias) or "churn@3" / "churn@v3" (a version), as the
    CLI's --model."""
    if not isinstance(model, str) or not model:
        raise InvalidArgumentError(f"model: want a model name such as 'churn' or 'churn@production', got {model!r}")
    name, sep, sel = model.partition("@")
    if not name or (sep and not sel):
        raise InvalidArgumentError(f"model {model!r}: want NAME, NAME@ALIAS or NAME@VERSION")
    ref = pb.ModelRef(name=name)
    if sel:
        digits = sel[1:] if sel[:1] in ("v", "V") and sel[1:].isdigit() else sel
        if digits.isdigit():
            ref.version = digits
        else:
            ref.alias = sel
    return ref


class Client:
    """A client of one ``quiver serve`` (gRPC).

    >>> with Client("localhost:6566") as client:
    ...     resp = client.get_online_features(feature_service="churn_v1", entity_rows=[{"user_id": 7}])
    ...     resp.to_dict()

    * ``address``: ``HOST:PORT`` of the server's gRPC port.
    * ``token``: a bearer token (a JWT, or a static API token) sent with every call as the
      ``authorization: Bearer TOKEN`` metadata the server's authentication reads; or a callable
      returning the current token (called once per call, for tokens that are refreshed).
    * ``tls``: None for plaintext (a server on loopback), True for TLS with the system's root
      certificates, a path of the root CA, or a :class:`TLSConfig` (or a dict of its fields)
      with a root CA and a client certificate and key for mTLS.
    * ``timeout``: the default deadline of each call in seconds; each method takes its own.

    One channel is opened lazily and reused by every call (it is thread-safe; share one Client
    across threads). Close it with :meth:`close` or a ``with`` block. Failures raise
    :class:`quiver.QuiverError` subclasses (``quiver.errors``).
    """

    def __init__(
        self,
        address: str,
        token: Token | None = None,
        tls: Any = None,
        *,
        timeout: float | None = DEFAULT_TIMEOUT,
        options: Sequence[tuple[str, Any]] = (),
    ) -> None:
        if not isinstance(address, str) or not address:
            raise InvalidArgumentError(f"address: want HOST:PORT of quiver serve's gRPC port, got {address!r}")
        if "://" in address:
            raise InvalidArgumentError(
                f"address {address!r}: want HOST:PORT (no scheme); use tls= for TLS"
            )
        if token is not None and not (isinstance(token, str) or callable(token)):
            raise InvalidArgumentError("token: want a str or a callable returning one")
        if isinstance(token, str) and not token:
            raise InvalidArgumentError("token: empty; pass None to send no token")
        self.address = address
        self.timeout = timeout
        self._token = token
        self._tls = _tls_config(tls)
        opts = [
            ("grpc.max_receive_message_length", 256 * 1024 * 1024),
            ("grpc.max_send_message_length", 256 * 1024 * 1024),
            ("grpc.primary_user_agent", "quiver-client-python"),
        ]
        if self._tls is not None and self._tls.server_name:
            opts.append(("grpc.ssl_target_name_override", self._tls.server_name))
        opts.extend(options)
        self._options = opts
        self._channel: grpc.Channel | None = None
        self._stub: Any = None
        self._flight: Any = None  # pyarrow.flight.FlightClient, opened on first use
        self._closed = False

    # ---- plumbing -----------------------------------------------------------------------

    def _get_stub(self) -> Any:
        if self._closed:
            raise QuiverError("the client is closed", grpc.StatusCode.CANCELLED)
        if self._stub is None:
            if self._tls is None:
                self._channel = grpc.insecure_channel(self.address, options=self._options)
            else:
                self._channel = grpc.secure_channel(self.address, self._tls.credentials(), options=self._options)
            self._stub = pb_grpc.FeatureServingStub(self._channel)
        return self._stub

    def _metadata(self) -> tuple[tuple[str, str], ...] | None:
        if self._token is None:
            return None
        tok = self._token() if callable(self._token) else self._token
        if not isinstance(tok, str) or not tok:
            raise InvalidArgumentError("token: the token callable returned no token")
        return (("authorization", "Bearer " + tok),)

    def _call(self, method: str, request: Any, timeout: float | None) -> Any:
        fn = getattr(self._get_stub(), method)
        try:
            return fn(request, timeout=self.timeout if timeout is None else timeout, metadata=self._metadata())
        except grpc.RpcError as e:
            raise from_grpc_error(e) from None

    def _datasets(self) -> FlightDatasets:
        """Arrow Flight on the same address (quiver serve serves it on its gRPC port)."""
        import pyarrow.flight as fl

        if self._closed:
            raise QuiverError("the client is closed", grpc.StatusCode.CANCELLED)
        if self._flight is None:
            kw: dict[str, Any] = {}
            if self._tls is None:
                location = f"grpc+tcp://{self.address}"
            else:
                location = f"grpc+tls://{self.address}"
                t = self._tls
                if (t.client_cert is None) != (t.client_key is None):
                    raise InvalidArgumentError("tls: give both client_cert and client_key for mTLS, or neither")
                kw["tls_root_certs"] = _read_pem(t.root_ca, "root_ca")
                kw["cert_chain"] = _read_pem(t.client_cert, "client_cert")
                kw["private_key"] = _read_pem(t.client_key, "client_key")
                kw["override_hostname"] = t.server_name
            kw = {k: v for k, v in kw.items() if v is not None}
            self._flight = fl.FlightClient(location, **kw)

        def options(timeout: float | None) -> Any:
            md = self._metadata()
            headers = [(k.encode(), v.encode()) for k, v in md] if md else None
            return fl.FlightCallOptions(timeout=timeout, headers=headers)

        return FlightDatasets(self._flight, options)

    def close(self) -> None:
        """Closes the channel. Calls made after it raise; closing twice is harmless."""
        self._closed = True
        if self._channel is not None:
            self._channel.close()
            self._channel = None
            self._stub = None
        if self._flight is not None:
            self._flight.close()
            self._flight = None

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def __repr__(self) -> str:
        return (f"Client(address={self.address!r}, tls={self._tls is not None}, "
                f"token={'[redacted]' if self._token is not None else None})")

    # ---- requests -----------------------------------------------------------------------

    @staticmethod
    def _entities(req: Any, entity_rows: Any, entities: Any, where: str) -> tuple[int, list[str]]:
        """Writes the entity columns into req.entities; returns the row count and the names."""
        if (entity_rows is None) == (entities is None):
            raise InvalidArgumentError(
                f"{where}: give entity_rows=[{{'user_id': 7}}, ...] or entities={{'user_id': [7, ...]}}, not both or neither"
            )
        if entity_rows is not None:
            entities = _convert.rows_to_columns(entity_rows, "entity_rows")
        cols = _convert.columns_of(entities, "entities", req.entities)
        if not cols:
            raise InvalidArgumentError(f"{where}: no entity columns; give at least one join key")
        return len(next(iter(cols.values())).val), list(cols)

    @staticmethod
    def _request_context(req: Any, request_context: Any, rows: int) -> None:
        cols = _convert.columns_of(request_context, "request_context", req.request_context)
        for name, rv in cols.items():
            if len(rv.val) != rows:
                raise InvalidArgumentError(
                    f"request_context column {name!r} has {len(rv.val)} values for {rows} entity rows; "
                    "give one value per entity row"
                )

    def get_online_features(
        self,
        features: Sequence[str] | None = None,
        entity_rows: Sequence[Mapping[str, Any]] | None = None,
        *,
        feature_service: str | None = None,
        entities: Any = None,
        request_context: Any = None,
        full_feature_names: bool = False,
        timeout: float | None = None,
    ) -> OnlineResponse:
        """The latest online value of each feature for each entity row, with its status and
        event time, in one server round trip.

        * what: ``features=["user_stats:clicks_7d", "user_stats:*"]`` (``view:feature``
          references) **or** ``feature_service="churn_v1"``;
        * for whom: ``entity_rows=[{"user_id": 7}, {"user_id": 8}]`` (Feast's form) **or**
          ``entities={"user_id": [7, 8]}`` (columns; also a pandas DataFrame or pyarrow Table);
        * ``request_context``: request-time values for on-demand features, one column per
          request field with one value per entity row (a dict of lists, a DataFrame or Table);
        * ``full_feature_names``: name columns ``view__feature`` instead of ``feature``.

        Python ints are sent as int64 (the server takes them for int32 keys too), floats as
        float64, datetimes as UTC microseconds (naive ones taken as UTC), None as null.
        """
        req = pb.GetOnlineFeaturesRequest(full_feature_names=bool(full_feature_names))
        if (features is None) == (feature_service is None):
            raise InvalidArgumentError(
                "get_online_features: give features=['view:feature', ...] or feature_service='name', not both or neither"
            )
        if feature_service is not None:
            if not isinstance(feature_service, str) or not feature_service:
                raise InvalidArgumentError(f"feature_service: want a feature service name, got {feature_service!r}")
            req.feature_service = feature_service
        else:
            if isinstance(features, str):
                raise InvalidArgumentError(
                    f"features: want a list of 'view:feature' references, got the string {features!r}"
                    + ("" if ":" in features else f"; for a feature service use feature_service={features!r}")
                )
            refs = list(features or [])
            if not refs:
                raise InvalidArgumentError("features: empty; name at least one 'view:feature'")
            for r in refs:
                if not isinstance(r, str) or ":" not in r:
                    raise InvalidArgumentError(f"features: {r!r} is not a 'view:feature' (or 'view:*') reference")
            req.features.val.extend(refs)
        rows, order = self._entities(req, entity_rows, entities, "get_online_features")
        self._request_context(req, request_context, rows)
        return OnlineResponse(self._call("GetOnlineFeatures", req, timeout), order)

    def predict(
        self,
        model: str,
        entities: Any = None,
        request_context: Any = None,
        *,
        entity_rows: Sequence[Mapping[str, Any]] | None = None,
        include_features: bool = False,
        timeout: float | None = None,
    ) -> Prediction:
        """Runs ``model`` on the features of its feature service for each entity row.

        * ``model``: ``"churn"`` (its current version), ``"churn@production"`` (an alias) or
          ``"churn@3"`` (a version);
        * ``entities``: columns (``{"user_id": [7, 8]}``, a DataFrame, a Table) or rows
          (``[{"user_id": 7}, ...]``); or pass rows as ``entity_rows=``;
        * ``request_context``: request-time values, one column per name with one value per
          row: request fields of the service's on-demand features, or a stored feature's name
          to replace its value;
        * ``include_features``: also return the feature values the model was fed
          (:attr:`Prediction.features`).
        """
        req = pb.PredictRequest(model=_parse_model(model), include_features=bool(include_features))
        is_rows = isinstance(entities, Sequence) and not isinstance(entities, (str, bytes))
        if entity_rows is None and is_rows:
            entities, entity_rows = None, entities  # a list of rows
        rows, order = self._entities(req, entity_rows, entities, "predict")
        self._request_context(req, request_context, rows)
        return Prediction(self._call("Predict", req, timeout), order)

    def push(
        self,
        view: str,
        data: Any,
        *,
        event_timestamp_column: str = "event_timestamp",
        created_timestamp_column: str | None = None,
        batch_rows: int = DEFAULT_PUSH_BATCH_ROWS,
        max_request_bytes: int = DEFAULT_MAX_REQUEST_BYTES,
        timeout: float | None = None,
    ) -> PushResult:
        """Writes the rows of ``data`` (a pandas DataFrame, a pyarrow Table or RecordBatch) to
        the push feature view ``view`` through ``PushFeatures``: the latest row per entity is
        served at once, every row reaches the view's offline table (docs/ingestion.md).

        ``data`` holds one column per join key and feature of the view, plus the event time in
        ``event_timestamp_column`` (a timestamp column; the source's ``timestamp_field``) and,
        optionally, the created time in ``created_timestamp_column``. Types map exactly:
        int8-32 and uint8/16 to int32, int64 and uint32/64 to int64 (all 64 bits kept), float32
        to float32, float64 to float64, strings, binary, bool, timestamps as UTC microseconds
        (naive ones taken as UTC; a sub-microsecond part is refused), lists of these to arrays.
        The server converts integers and floats to the view's declared types where they fit.

        Rows are sent in requests of ``batch_rows`` (split further to stay under
        ``max_request_bytes``); the server checks each request whole. An error in a request
        raises and names the rows of that request; the requests before it were written.
        """
        if not isinstance(view, str) or not view:
            raise InvalidArgumentError(f"push: view: want a feature view name, got {view!r}")
        if batch_rows < 1:
            raise InvalidArgumentError(f"push: batch_rows must be at least 1, got {batch_rows}")
        table = _as_table(data)
        names = table.schema.names
        if event_timestamp_column not in names:
            raise InvalidArgumentError(
                f"push {view}: no column {event_timestamp_column!r} for the rows' event times; pass "
                f"event_timestamp_column= naming the timestamp column (the source's timestamp_field); columns: {names}"
            )
        if created_timestamp_column is not None and created_timestamp_column not in names:
            raise InvalidArgumentError(
                f"push {view}: no column {created_timestamp_column!r} (created_timestamp_column); columns: {names}"
            )
        event = _time_column(table, event_timestamp_column, view, required=True)
        created = _time_column(table, created_timestamp_column, view, required=False) if created_timestamp_column else None
        value_names = [n for n in names if n not in (event_timestamp_column, created_timestamp_column)]
        if not value_names:
            raise InvalidArgumentError(f"push {view}: no join key or feature columns besides the timestamps")

        rows = online = requests = 0
        seq = 0
        for start in range(0, table.num_rows, batch_rows):
            for lo, hi, req in self._push_requests(view, table, value_names, event, created,
                                                   start, min(start + batch_rows, table.num_rows), max_request_bytes):
                try:
                    resp = self._call("PushFeatures", req, timeout)
                except QuiverError as e:
                    e.message = f"push rows {lo} to {hi - 1} of {view}: {e.message}"
                    e.args = (e.message,)
                    raise
                rows += resp.rows
                online += resp.online_rows
                seq = resp.log_sequence
                requests += 1
        return PushResult(rows=rows, online_rows=online, log_sequence=seq, requests=requests)

    # ---- datasets (Arrow Flight) --------------------------------------------------------

    def get_dataset(
        self,
        name: str,
        version: int | None = None,
        *,
        parallelism: int | None = None,
        timeout: float | None = None,
    ) -> pa.Table:
        """A registered training dataset as one ``pyarrow.Table``, downloaded over Arrow
        Flight: ``"churn_train"`` (its latest version), ``"churn_train@v3"`` or
        ``("churn_train", version=3)``. Its Parquet parts are read in parallel (``parallelism``
        streams at once, default up to 8) and concatenated in the snapshot's order.

        ``timeout`` bounds each Flight call (default: none; a dataset may be large). Needs a
        ``datasets`` grant on the dataset when the server has a policy.
        """
        n, v = parse_ref(name, version)
        return self._datasets().read(n, v, parallelism, timeout)

    def read_dataset(self, name: str, version: int | None = None, *, timeout: float | None = None) -> Any:
        """A registered dataset as an iterator of ``pyarrow.RecordBatch`` (at most 64 Ki rows
        each), part after part in the snapshot's order: for training loops that must not hold
        the dataset in memory. Same references and grants as :meth:`get_dataset`.
        """
        n, v = parse_ref(name, version)
        return self._datasets().batches(n, v, timeout)

    def dataset_info(self, name: str, version: int | None = None, *, timeout: float | None = None) -> DatasetInfo:
        """The registered version ``get_dataset`` would read, without reading it."""
        import json

        n, v = parse_ref(name, version)
        info = self._datasets().info(n, v, timeout if timeout is not None else self.timeout)
        meta = json.loads(info.app_metadata or b"{}")
        return DatasetInfo(name=meta.get("name", n), version=int(meta.get("version", 0)), content_id=meta.get("content_id", ""),
                           rows=int(info.total_records), parts=len(info.endpoints))

    def create_dataset(
        self,
        name: str,
        entity_df: Any,
        feature_service: str,
        *,
        at: Any = None,
        created_cutoff: bool = False,
        rebuild: bool = False,
        timeout: float | None = None,
    ) -> DatasetInfo:
        """Builds the next version of dataset ``name``: the point-in-time-correct values of
        ``feature_service``'s features for each row of ``entity_df`` (a pandas DataFrame or a
        pyarrow Table with the join keys, an ``event_timestamp`` column and any label columns,
        which pass through), exactly as ``quiver dataset create`` does. The rows are sent over
        Arrow Flight (``DoPut``); the join runs on the server. The same rows sent again reuse
        the version built from them (``reused``) unless ``rebuild``.

        ``at`` pins the offline tables (a datetime or an RFC 3339 string); ``created_cutoff``
        also requires each feature row's created time to be at or before the entity row's time.
        Needs a ``datasets`` grant on ``name`` and a grant on the feature service.
        """
        n, v = parse_ref(name, None)
        if v is not None:
            raise InvalidArgumentError(f"create_dataset {name!r}: give the name only; the server numbers the version")
        if not isinstance(feature_service, str) or not feature_service:
            raise InvalidArgumentError(f"create_dataset: feature_service: want a feature service name, got {feature_service!r}")
        table = _as_table(entity_df, "create_dataset: entity_df")
        if table.num_rows == 0:
            raise InvalidArgumentError(f"create_dataset {name}: entity_df has no rows")
        if at is not None and not isinstance(at, str):
            import datetime as dt

            if not isinstance(at, dt.datetime):
                raise InvalidArgumentError(f"create_dataset: at: want a datetime or an RFC 3339 string, got {type(at).__name__}")
            if at.tzinfo is None:
                at = at.replace(tzinfo=dt.timezone.utc)
            at = at.isoformat()
        return self._datasets().create(n, table, feature_service, at=at, created_cutoff=created_cutoff,
                                       rebuild=rebuild, timeout=timeout)

    def get_historical_features(
        self,
        entity_df: Any,
        feature_service: str,
        *,
        dataset: str | None = None,
        at: Any = None,
        created_cutoff: bool = False,
        timeout: float | None = None,
    ) -> HistoricalFeatures:
        """Feast's ``get_historical_features``: the point-in-time-correct features of
        ``feature_service`` for each row of ``entity_df``. The join runs on the server as a
        dataset build (``create_dataset``), registered as a version of ``dataset`` (default
        ``FEATURE_SERVICE_historical``) so it is reproducible and its lineage recorded; the
        same rows asked again reuse it. ``.to_arrow()`` / ``.to_pandas()`` download it.
        """
        name = dataset if dataset is not None else f"{feature_service}_historical"
        info = self.create_dataset(name, entity_df, feature_service, at=at, created_cutoff=created_cutoff, timeout=timeout)
        return HistoricalFeatures(info, lambda: self.get_dataset(info.name, info.version, timeout=timeout))

    @staticmethod
    def _push_requests(view: str, table: pa.Table, value_names: list[str], event: list[int],
                       created: list[int] | None, lo: int, hi: int, max_bytes: int) -> Any:
        """PushFeatures requests for rows [lo, hi), halved until each fits max_bytes."""
        req = pb.PushFeaturesRequest(feature_view=view)
        part = table.slice(lo, hi - lo)
        for name in value_names:
            _convert.fill_arrow(req.columns[name], part.column(name), f"push {view}: column {name!r}")
        req.event_timestamps_micros.extend(event[lo:hi])
        if created is not None:
            req.created_timestamps_micros.extend(created[lo:hi])
        if hi - lo > 1 and req.ByteSize() > max_bytes:
            mid = (lo + hi) // 2
            yield from Client._push_requests(view, table, value_names, event, created, lo, mid, max_bytes)
            yield from Client._push_requests(view, table, value_names, event, created, mid, hi, max_bytes)
            return
        yield lo, hi, req


def _as_table(data: Any, where: str = "push: data") -> pa.Table:
    if isinstance(data, pa.Table):
        return data
    if isinstance(data, pa.RecordBatch):
        return pa.Table.from_batches([data])
    if type(data).__module__.startswith("pandas") and hasattr(data, "columns"):
        try:
            return pa.Table.from_pandas(data, preserve_index=False)
        except (pa.ArrowInvalid, pa.ArrowTypeError) as e:
            raise InvalidArgumentError(f"{where}: the DataFrame cannot be read as Arrow: {e}") from None
    raise InvalidArgumentError(
        f"{where}: want a pandas DataFrame or a pyarrow Table / RecordBatch, got {type(data).__name__}"
    )


def _time_column(table: pa.Table, name: str, view: str, required: bool) -> list[int]:
    col = table.column(name)
    where = f"push {view}: column {name!r}"
    if isinstance(col, pa.ChunkedArray):
        col = col.combine_chunks()
    if not pa.types.is_timestamp(col.type):
        raise InvalidArgumentError(f"{where}: want a timestamp column, got {col.type}")
    micros = _convert.timestamp_micros(col, where)
    out: list[int] = []
    for i, us in enumerate(micros):
        if us is None:
            if required:
                raise InvalidArgumentError(f"{where}: row {i}: the event time is null; every row needs one")
            us = 0
        out.append(us)
    return out
