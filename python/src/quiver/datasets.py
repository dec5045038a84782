"""Training datasets over Arrow Flight: what ``Client.get_dataset``, ``create_dataset`` and
``get_historical_features`` return, and the Flight plumbing behind them.

``quiver serve`` serves Arrow Flight on its gRPC port (docs/python.md): ``GetFlightInfo`` of a
dataset version answers one endpoint per Parquet part, read here in parallel with ``DoGet``;
``DoPut`` of entity rows with a ``create_dataset`` command builds a version as ``quiver dataset
create`` does.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import grpc
import pyarrow as pa
import pyarrow.flight as fl

from .errors import (
    DeadlineExceededError,
    FailedPreconditionError,
    InternalError,
    InvalidArgumentError,
    NotFoundError,
    PermissionDeniedError,
    QuiverError,
    UnauthenticatedError,
    UnavailableError,
)

__all__ = ["DatasetInfo", "HistoricalFeatures"]

#: The most bytes of one record batch sent by DoPut: quiver serve refuses a message over its
#: --max-recv-bytes (4 MiB by default).
MAX_PUT_BATCH_BYTES = 2 * 1024 * 1024

_REF = re.compile(r"^([A-Za-z_][A-Za-z0-9_]*)(?:@[vV]?([0-9]+))?$")


@dataclass(frozen=True)
class DatasetInfo:
    """A registered dataset version: ``name@vVERSION``, its snapshot's content id and rows, its
    Parquet parts, and (for ``create_dataset``) whether an identical earlier build was reused."""

    name: str
    version: int
    content_id: str
    rows: int
    parts: int = 0
    reused: bool = False

    @property
    def ref(self) -> str:
        """``name@vN``, as ``get_dataset`` and the CLI take it."""
        return f"{self.name}@v{self.version}"


class HistoricalFeatures:
    """The point-in-time-correct features of a feature service for entity rows: a dataset
    version built on the server (``info``); ``to_arrow()`` / ``to_pandas()`` download it over
    Flight once, then reuse it."""

    def __init__(self, info: DatasetInfo, read: Callable[[], pa.Table]) -> None:
        self.info = info
        self._read = read
        self._table: pa.Table | None = None

    def to_arrow(self) -> pa.Table:
        if self._table is None:
            self._table = self._read()
        return self._table

    def to_pandas(self) -> Any:
        return self.to_arrow().to_pandas()

    def __repr__(self) -> str:
        return f"HistoricalFeatures({self.info.ref}, rows={self.info.rows})"


def parse_ref(ref: str, version: int | None) -> tuple[str, int | None]:
    """NAME, NAME@vN or NAME@N, and an explicit version (which must agree)."""
    if not isinstance(ref, str):
        raise InvalidArgumentError(f"dataset: want a name such as 'churn_train' or 'churn_train@v3', got {ref!r}")
    m = _REF.match(ref)
    if not m:
        raise InvalidArgumentError(f"dataset {ref!r}: want NAME or NAME@vN (e.g. churn_train@v3)")
    name, v = m.group(1), int(m.group(2)) if m.group(2) else None
    if version is not None:
        if not isinstance(version, int) or isinstance(version, bool) or version < 1:
            raise InvalidArgumentError(f"dataset {ref!r}: version must be a number 1, 2, ..., got {version!r}")
        if v is not None and v != version:
            raise InvalidArgumentError(f"dataset {ref!r}: version={version} contradicts @v{v}")
        v = version
    if v is not None and v < 1:
        raise InvalidArgumentError(f"dataset {ref!r}: versions start at 1")
    return name, v


# Where pyarrow.flight puts the server's message: "... gRPC returned X error, with message: MSG".
_MESSAGE = re.compile(r"with message: (.*?)(?:\. Detail:.*|\. gRPC client debug context:.*)?$", re.S)


def from_flight_error(e: Exception) -> QuiverError:
    """The QuiverError of a failed Flight call, by the status pyarrow reports."""
    text = str(e)
    m = _MESSAGE.search(text)
    msg = m.group(1).strip() if m else text
    if isinstance(e, fl.FlightUnauthenticatedError):
        return UnauthenticatedError(msg)
    if isinstance(e, fl.FlightUnauthorizedError):
        return PermissionDeniedError(msg)
    if isinstance(e, fl.FlightUnavailableError):
        return UnavailableError(msg)
    if isinstance(e, fl.FlightTimedOutError):
        return DeadlineExceededError(msg)
    if isinstance(e, fl.FlightCancelledError):
        return QuiverError(msg, grpc.StatusCode.CANCELLED)
    if isinstance(e, (fl.FlightInternalError, fl.FlightServerError)):
        return InternalError(msg)
    if isinstance(e, pa.ArrowKeyError):  # NOT_FOUND
        return NotFoundError(msg)
    if isinstance(e, pa.ArrowInvalid):  # INVALID_ARGUMENT (and FAILED_PRECONDITION)
        if "precondition" in text.lower():
            return FailedPreconditionError(msg)
        return InvalidArgumentError(msg)
    return QuiverError(msg, grpc.StatusCode.UNKNOWN)


class FlightDatasets:
    """Dataset calls over one pyarrow.flight.FlightClient."""

    def __init__(self, client: fl.FlightClient, options: Callable[[float | None], fl.FlightCallOptions]) -> None:
        self._client = client
        self._options = options

    def info(self, name: str, version: int | None, timeout: float | None) -> fl.FlightInfo:
        path = [name] if version is None else [name, str(version)]
        try:
            return self._client.get_flight_info(fl.FlightDescriptor.for_path(*path), self._options(timeout))
        except (fl.FlightError, pa.ArrowException) as e:
            raise from_flight_error(e) from None

    def read(self, name: str, version: int | None, parallelism: int | None, timeout: float | None) -> pa.Table:
        info = self.info(name, version, timeout)
        schema = info.schema
        endpoints = list(info.endpoints)

        def part(ep: fl.FlightEndpoint) -> pa.Table:
            try:
                return self._client.do_get(ep.ticket, self._options(timeout)).read_all()
            except (fl.FlightError, pa.ArrowException) as e:
                raise from_flight_error(e) from None

        if not endpoints:
            return schema.empty_table()
        workers = max(1, min(parallelism or 8, len(endpoints)))
        if workers == 1:
            tables = [part(ep) for ep in endpoints]
        else:
            with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="quiver-flight") as pool:
                tables = list(pool.map(part, endpoints))  # in the snapshot's order
        return pa.concat_tables(tables)

    def batches(self, name: str, version: int | None, timeout: float | None) -> Any:
        """The version's record batches, part after part, one batch in memory at a time."""
        info = self.info(name, version, timeout)
        for ep in info.endpoints:
            try:
                reader = self._client.do_get(ep.ticket, self._options(timeout))
                while True:
                    try:
                        chunk = reader.read_chunk()
                    except StopIteration:
                        break
                    yield chunk.data
            except (fl.FlightError, pa.ArrowException) as e:
                raise from_flight_error(e) from None

    def create(self, name: str, table: pa.Table, feature_service: str, *, at: str | None,
               created_cutoff: bool, rebuild: bool, timeout: float | None) -> DatasetInfo:
        cmd: dict[str, Any] = {"name": name, "feature_service": feature_service}
        if at is not None:
            cmd["at"] = at
        if created_cutoff:
            cmd["created_cutoff"] = True
        if rebuild:
            cmd["rebuild"] = True
        desc = fl.FlightDescriptor.for_command(json.dumps({"create_dataset": cmd}).encode())
        per_row = max(1, table.nbytes // max(1, table.num_rows))
        chunk = max(1, MAX_PUT_BATCH_BYTES // per_row)
        try:
            writer, reader = self._client.do_put(desc, table.schema, self._options(timeout))
            try:
                writer.write_table(table, max_chunksize=chunk)
                writer.done_writing()
                buf = reader.read()
            finally:
                writer.close()
        except (fl.FlightError, pa.ArrowException) as e:
            raise from_flight_error(e) from None
        if buf is None:
            raise InternalError(f"create_dataset {name}: the server answered no result")
        meta = json.loads(buf.to_pybytes())
        return DatasetInfo(name=meta["name"], version=int(meta["version"]), content_id=meta["content_id"],
                           rows=int(meta["rows"]), parts=int(meta.get("parts", 0)), reused=bool(meta.get("reused")))
