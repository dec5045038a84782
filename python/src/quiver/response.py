"""What the client's methods return: online feature values, predictions and push receipts."""

from __future__ import annotations

import datetime as _dt
import enum
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import pyarrow as pa

from . import _convert
from .serving.v1 import serving_pb2 as pb

__all__ = ["FieldStatus", "OnlineResponse", "Prediction", "PushResult"]

#: Suffix of the event-time column of a feature in ``to_dict`` / ``to_arrow`` / ``to_pandas``
#: with ``include_event_timestamps=True`` (Feast's name for it).
TIMESTAMP_SUFFIX = "__ts"
#: Suffix of the status column of a feature with ``include_statuses=True``.
STATUS_SUFFIX = "__status"


class FieldStatus(str, enum.Enum):
    """What a returned value is. A ``str`` enum: ``status == "PRESENT"`` holds, and it lands in
    Arrow and pandas as its name."""

    #: The server sent no status (never for a value the server returned).
    INVALID = "INVALID"
    #: A stored value younger than the view's TTL.
    PRESENT = "PRESENT"
    #: The stored row, younger than the TTL, holds null for this feature.
    NULL_VALUE = "NULL_VALUE"
    #: Nothing is stored for this entity and view.
    NOT_FOUND = "NOT_FOUND"
    #: The stored row is older than the view's TTL; its value (or its null) is still returned.
    OUTSIDE_MAX_AGE = "OUTSIDE_MAX_AGE"

    def __str__(self) -> str:
        return self.value


_STATUS_BY_NUMBER = {
    pb.INVALID: FieldStatus.INVALID,
    pb.PRESENT: FieldStatus.PRESENT,
    pb.NULL_VALUE: FieldStatus.NULL_VALUE,
    pb.NOT_FOUND: FieldStatus.NOT_FOUND,
    pb.OUTSIDE_MAX_AGE: FieldStatus.OUTSIDE_MAX_AGE,
}


def _status(n: int) -> FieldStatus:
    return _STATUS_BY_NUMBER.get(n, FieldStatus.INVALID)


def _nullable_types_mapper() -> Any:
    """A pandas types_mapper that keeps nulls in integer, boolean and float columns as
    pandas.NA instead of turning int64 into float64 (which loses precision past 2**53)."""
    import pandas as pd

    mapping = {
        pa.int32(): pd.Int32Dtype(),
        pa.int64(): pd.Int64Dtype(),
        pa.float32(): pd.Float32Dtype(),
        pa.float64(): pd.Float64Dtype(),
        pa.bool_(): pd.BooleanDtype(),
    }
    return mapping.get


def _require_pandas() -> None:
    try:
        import pandas  # noqa: F401
    except ImportError as e:  # pragma: no cover - exercised without the extra only
        raise ImportError(
            "to_pandas needs pandas: pip install 'quiver-client[pandas]' (or pandas)"
        ) from e


class OnlineResponse:
    """The answer of :meth:`quiver.Client.get_online_features`: one column per entity key and
    per requested feature, with one value, status and event time per entity row.

    ``to_dict()``, ``to_arrow()`` and ``to_pandas()`` give the values (None / null where a row
    has no value); ``statuses`` and ``event_timestamps`` give the rest, or ask the converters to
    add them as ``<name>__status`` and ``<name>__ts`` columns.
    """

    def __init__(self, proto: Any, entity_order: Sequence[str] = ()) -> None:
        #: The GetOnlineFeaturesResponse message, as the server sent it.
        self.proto = proto
        names = list(proto.entities.keys())
        order = [n for n in entity_order if n in proto.entities]
        self._entity_names = order + [n for n in names if n not in order]
        self._cache: dict[str, list[Any]] = {}

    @property
    def rows(self) -> int:
        """The number of entity rows."""
        return self.proto.rows

    @property
    def entity_names(self) -> list[str]:
        """The entity (join key) columns, in the order they were given."""
        return list(self._entity_names)

    @property
    def feature_names(self) -> list[str]:
        """The feature columns, in the service's (or the request's) order: ``feature``, or
        ``view__feature`` with ``full_feature_names``."""
        return [c.name for c in self.proto.features]

    def _column(self, name: str) -> Any:
        for c in self.proto.features:
            if c.name == name:
                return c
        raise KeyError(f"no feature {name!r} in the response (features: {self.feature_names})")

    def values(self, name: str) -> list[Any]:
        """The values of one feature or entity column, one per row (None where null)."""
        if name not in self._cache:
            if name in self.proto.entities:
                self._cache[name] = [_convert.py_value(v) for v in self.proto.entities[name].val]
            else:
                self._cache[name] = _convert.decode_column(self._column(name), self.rows)
        return self._cache[name]

    __getitem__ = values

    @property
    def statuses(self) -> dict[str, list[FieldStatus]]:
        """Each feature's status per row."""
        return {c.name: [_status(s) for s in c.statuses] for c in self.proto.features}

    @property
    def event_timestamps(self) -> dict[str, list[_dt.datetime | None]]:
        """Each feature's event time per row (UTC), None where there is none (NOT_FOUND, and
        on-demand features)."""
        return {
            c.name: [None if us == 0 else _convert.micros_to_datetime(us) for us in c.event_timestamps_micros]
            for c in self.proto.features
        }

    def to_dict(self, include_event_timestamps: bool = False, include_statuses: bool = False) -> dict[str, list[Any]]:
        """``{column: [value per row]}``: the entity columns, then the features. Values are
        int, float, bool, str, bytes, UTC datetime or lists of these; None where null."""
        out: dict[str, list[Any]] = {name: self.values(name) for name in self._entity_names}
        ts = self.event_timestamps if include_event_timestamps else {}
        st = self.statuses if include_statuses else {}
        for c in self.proto.features:
            out[c.name] = self.values(c.name)
            if include_event_timestamps:
                out[c.name + TIMESTAMP_SUFFIX] = ts[c.name]
            if include_statuses:
                out[c.name + STATUS_SUFFIX] = st[c.name]
        return out

    def to_arrow(self, include_event_timestamps: bool = False, include_statuses: bool = False) -> pa.Table:
        """A pyarrow Table: the entity columns, then one column per feature typed by its
        declared type (int64 stays int64, timestamps are ``timestamp[us, tz=UTC]``)."""
        arrays: list[pa.Array] = []
        names: list[str] = []
        for name in self._entity_names:
            typ = _convert.value_kind(self.proto.entities[name].val)
            arrays.append(pa.array(self.values(name), type=typ))
            names.append(name)
        ts = self.event_timestamps if include_event_timestamps else {}
        st = self.statuses if include_statuses else {}
        for c in self.proto.features:
            typ = _convert.ARROW_TYPES.get(c.type)
            arrays.append(pa.array(self.values(c.name), type=typ))
            names.append(c.name)
            if include_event_timestamps:
                arrays.append(pa.array(ts[c.name], type=pa.timestamp("us", tz="UTC")))
                names.append(c.name + TIMESTAMP_SUFFIX)
            if include_statuses:
                arrays.append(pa.array([s.value for s in st[c.name]], type=pa.string()))
                names.append(c.name + STATUS_SUFFIX)
        return pa.Table.from_arrays(arrays, names=names)

    def to_pandas(self, include_event_timestamps: bool = False, include_statuses: bool = False) -> Any:
        """A pandas DataFrame of :meth:`to_arrow`'s table. Integer, float and boolean columns
        use pandas' nullable dtypes (``Int64``, ``Float64``, ``boolean``), so a null stays
        ``pd.NA`` and an int64 keeps every digit."""
        _require_pandas()
        return self.to_arrow(include_event_timestamps, include_statuses).to_pandas(
            types_mapper=_nullable_types_mapper()
        )

    #: Feast's name for :meth:`to_pandas`.
    to_df = to_pandas

    def __repr__(self) -> str:
        return f"OnlineResponse(rows={self.rows}, entities={self._entity_names}, features={self.feature_names})"


class Prediction:
    """The answer of :meth:`quiver.Client.predict`: one value per entity row for each model
    output (a number, or a list when each row's output has several), and which model version
    answered."""

    def __init__(self, proto: Any, entity_order: Sequence[str] = ()) -> None:
        #: The PredictResponse message, as the server sent it.
        self.proto = proto
        self._entity_order = list(entity_order)

    @property
    def model_name(self) -> str:
        return self.proto.model_name

    @property
    def model_version(self) -> str:
        """The model version that answered."""
        return self.proto.model_version

    @property
    def feature_service(self) -> str:
        """The feature service the model was fed from."""
        return self.proto.feature_service

    @property
    def rows(self) -> int:
        return self.proto.rows

    @property
    def outputs(self) -> dict[str, list[Any]]:
        """``{output name: [value per row]}``."""
        return {o.name: [_convert.py_value(v) for v in o.values] for o in self.proto.outputs}

    @property
    def shapes(self) -> dict[str, list[int]]:
        """Each output's shape, batch dimension first."""
        return {o.name: list(o.shape) for o in self.proto.outputs}

    @property
    def features(self) -> OnlineResponse | None:
        """The feature values the model was fed (with ``include_features=True``), else None."""
        if not len(self.proto.features):
            return None
        resp = pb.GetOnlineFeaturesResponse(rows=self.proto.rows)
        resp.features.extend(self.proto.features)
        return OnlineResponse(resp, self._entity_order)

    def to_dict(self) -> dict[str, list[Any]]:
        """``{output name: [value per row]}``, as :attr:`outputs`."""
        return self.outputs

    def to_arrow(self) -> pa.Table:
        """One column per output (a list column where each row's output has several values)."""
        arrays, names = [], []
        for o in self.proto.outputs:
            arrays.append(pa.array([_convert.py_value(v) for v in o.values], type=_convert.value_kind(o.values)))
            names.append(o.name)
        return pa.Table.from_arrays(arrays, names=names)

    def to_pandas(self) -> Any:
        _require_pandas()
        return self.to_arrow().to_pandas(types_mapper=_nullable_types_mapper())

    to_df = to_pandas

    def __repr__(self) -> str:
        return (f"Prediction(model={self.model_name!r}, version={self.model_version!r}, rows={self.rows}, "
                f"outputs={[o.name for o in self.proto.outputs]})")


@dataclass(frozen=True)
class PushResult:
    """The receipt of :meth:`quiver.Client.push`."""

    #: Rows the server accepted.
    rows: int
    #: Entity rows written to the online store (the latest row per entity of each request).
    online_rows: int
    #: The server's push-log sequence number of the last request: every row through it is
    #: online and fsynced in the log, and reaches the offline table within the server's
    #: --push-commit-interval.
    log_sequence: int
    #: PushFeatures requests sent.
    requests: int
