"""Conversions between Python / Arrow values and the serving API's Value messages.

One rule each way, used by every method:

* Python objects (entity rows, request context given as lists) -> ``Value``: :func:`py_column`.
* Arrow arrays (pushed tables, and entity or request columns given as pandas / pyarrow /
  numpy) -> ``Value``: :func:`arrow_column`. Integers keep their 64-bit precision, floats
  their width, timestamps become UTC microseconds.
* ``FeatureColumn`` / ``Value`` -> Python values and Arrow types: :func:`decode_column`,
  :func:`py_value`, :data:`ARROW_TYPES`.
"""

from __future__ import annotations

import datetime as _dt
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import pyarrow as pa

from .errors import InternalError, InvalidArgumentError
from .serving.v1 import serving_pb2 as pb

_UTC = _dt.timezone.utc
_EPOCH = _dt.datetime(1970, 1, 1, tzinfo=_UTC)
_INT64_MIN, _INT64_MAX = -(1 << 63), (1 << 63) - 1

# The ValueType of a feature column -> its Arrow type.
ARROW_TYPES: dict[int, pa.DataType] = {
    pb.INT32: pa.int32(),
    pb.INT64: pa.int64(),
    pb.FLOAT32: pa.float32(),
    pb.FLOAT64: pa.float64(),
    pb.BOOL: pa.bool_(),
    pb.STRING: pa.string(),
    pb.BYTES: pa.binary(),
    pb.TIMESTAMP: pa.timestamp("us", tz="UTC"),
    pb.INT32_LIST: pa.list_(pa.int32()),
    pb.INT64_LIST: pa.list_(pa.int64()),
    pb.FLOAT32_LIST: pa.list_(pa.float32()),
    pb.FLOAT64_LIST: pa.list_(pa.float64()),
    pb.BOOL_LIST: pa.list_(pa.bool_()),
    pb.STRING_LIST: pa.list_(pa.string()),
    pb.BYTES_LIST: pa.list_(pa.binary()),
    pb.TIMESTAMP_LIST: pa.list_(pa.timestamp("us", tz="UTC")),
}

# The Arrow type of a Value's oneof field, for echoed entity columns and model outputs.
_KIND_ARROW: dict[str, pa.DataType] = {
    "int32_val": pa.int32(),
    "int64_val": pa.int64(),
    "float_val": pa.float32(),
    "double_val": pa.float64(),
    "bool_val": pa.bool_(),
    "string_val": pa.string(),
    "bytes_val": pa.binary(),
    "timestamp_val": pa.timestamp("us", tz="UTC"),
    "int32_list_val": pa.list_(pa.int32()),
    "int64_list_val": pa.list_(pa.int64()),
    "float_list_val": pa.list_(pa.float32()),
    "double_list_val": pa.list_(pa.float64()),
    "bool_list_val": pa.list_(pa.bool_()),
    "string_list_val": pa.list_(pa.string()),
    "bytes_list_val": pa.list_(pa.binary()),
    "timestamp_list_val": pa.list_(pa.timestamp("us", tz="UTC")),
}

SUPPORTED_ARROW = (
    "int8/16/32/64, uint8/16/32/64, float16/32/64, bool, string, binary, timestamp "
    "and lists of these"
)


# ---- time ----------------------------------------------------------------------------------


def micros_to_datetime(us: int) -> _dt.datetime:
    return _EPOCH + _dt.timedelta(microseconds=us)


def datetime_to_micros(t: _dt.datetime, where: str) -> int:
    """UTC microseconds of t; a naive datetime is taken as UTC. pandas Timestamps with a
    sub-microsecond part are refused rather than truncated."""
    ns = getattr(t, "nanosecond", 0)
    if ns:
        raise InvalidArgumentError(
            f"{where}: timestamp {t} has a sub-microsecond part ({ns} ns); Quiver keeps "
            "microseconds: round it first (e.g. Series.dt.floor('us'))"
        )
    if t.tzinfo is None:
        t = t.replace(tzinfo=_UTC)
    d = t - _EPOCH
    return (d.days * 86_400 + d.seconds) * 1_000_000 + d.microseconds


def _set_timestamp(ts: Any, us: int) -> None:
    ts.seconds, rem = divmod(us, 1_000_000)
    ts.nanos = rem * 1000


def _timestamp_micros(ts: Any) -> int:
    return ts.seconds * 1_000_000 + ts.nanos // 1000


# ---- Python objects -> Value -----------------------------------------------------------------


def _scalar_kind(v: Any, where: str) -> str:
    """The Value field a Python scalar goes to."""
    # bool before int: bool is an int subclass. numpy scalars have no common base; duck-type
    # them by their dtype kind.
    if isinstance(v, bool):
        return "bool_val"
    if isinstance(v, int):
        return "int64_val"
    if isinstance(v, float):
        return "double_val"
    if isinstance(v, str):
        return "string_val"
    if isinstance(v, (bytes, bytearray, memoryview)):
        return "bytes_val"
    if isinstance(v, _dt.datetime):
        return "timestamp_val"
    kind = getattr(getattr(v, "dtype", None), "kind", None)
    if kind == "b":
        return "bool_val"
    if kind in ("i", "u"):
        return "int64_val"
    if kind == "f":
        return "double_val"
    if kind == "M":
        return "timestamp_val"
    raise InvalidArgumentError(
        f"{where}: a value of type {type(v).__name__} ({v!r}) cannot be sent; give int, float, "
        "bool, str, bytes, datetime, a list of one of these, or None"
    )


def _numpy_datetime_micros(v: Any, where: str) -> int:
    ns = int(v.astype("datetime64[ns]").astype("int64"))
    if ns % 1000:
        raise InvalidArgumentError(f"{where}: timestamp {v} has a sub-microsecond part; Quiver keeps microseconds")
    return ns // 1000


def _set_scalar(value: Any, kind: str, v: Any, where: str) -> None:
    if kind == "int64_val":
        i = int(v)
        if not _INT64_MIN <= i <= _INT64_MAX:
            raise InvalidArgumentError(f"{where}: integer {i} does not fit int64")
        value.int64_val = i
    elif kind == "double_val":
        value.double_val = float(v)
    elif kind == "bool_val":
        value.bool_val = bool(v)
    elif kind == "string_val":
        value.string_val = v
    elif kind == "bytes_val":
        value.bytes_val = bytes(v)
    else:  # timestamp_val
        us = datetime_to_micros(v, where) if isinstance(v, _dt.datetime) else _numpy_datetime_micros(v, where)
        _set_timestamp(value.timestamp_val, us)


_LIST_OF = {
    "int64_val": "int64_list_val",
    "double_val": "double_list_val",
    "bool_val": "bool_list_val",
    "string_val": "string_list_val",
    "bytes_val": "bytes_list_val",
    "timestamp_val": "timestamp_list_val",
}


def _set_py(value: Any, v: Any, where: str) -> None:
    """Sets the Value message `value` (a fresh one) from the Python object v."""
    if v is None:
        return
    if isinstance(v, (list, tuple)) or (hasattr(v, "tolist") and getattr(v, "ndim", 0) == 1):
        items = v.tolist() if hasattr(v, "tolist") else v
        if not items:
            raise InvalidArgumentError(
                f"{where}: an empty list has no element type to send; give a typed column "
                "(a pyarrow array or pandas Series) instead"
            )
        kind = None
        for j, x in enumerate(items):
            if x is None:
                raise InvalidArgumentError(f"{where}: element {j} is None; a list value cannot hold nulls")
            k = _scalar_kind(x, where)
            if kind is None:
                kind = k
            elif k != kind and {k, kind} != {"int64_val", "double_val"}:
                raise InvalidArgumentError(f"{where}: element {j} ({x!r}) is not of the type of element 0")
            elif k == "double_val":
                kind = k
        assert kind is not None
        lst = getattr(value, _LIST_OF[kind]).val
        if kind == "timestamp_val":
            for x in items:
                us = datetime_to_micros(x, where) if isinstance(x, _dt.datetime) else _numpy_datetime_micros(x, where)
                _set_timestamp(lst.add(), us)
        elif kind == "int64_val":
            for x in items:
                i = int(x)
                if not _INT64_MIN <= i <= _INT64_MAX:
                    raise InvalidArgumentError(f"{where}: integer {i} does not fit int64")
                lst.append(i)
        elif kind == "bytes_val":
            lst.extend(bytes(x) for x in items)
        elif kind == "double_val":
            lst.extend(float(x) for x in items)
        elif kind == "bool_val":
            lst.extend(bool(x) for x in items)
        else:
            lst.extend(items)
        return
    if isinstance(v, float) and v != v:  # NaN from pandas means missing
        return
    _set_scalar(value, _scalar_kind(v, where), v, where)


def fill_py(rv: Any, values: Sequence[Any], where: str) -> None:
    """Appends the Python objects in values (None, or NaN, is null) to the RepeatedValue rv."""
    add = rv.val.add
    for i, v in enumerate(values):
        t = type(v)  # the common scalar types first: a keyword add is the cheapest way in
        if t is int and _INT64_MIN <= v <= _INT64_MAX:
            add(int64_val=v)
        elif t is str:
            add(string_val=v)
        elif t is float and v == v:
            add(double_val=v)
        else:
            _set_py(add(), v, f"{where}: row {i}")


def py_column(values: Sequence[Any], where: str) -> Any:
    """A RepeatedValue of the Python objects in values (None, or NaN, is null)."""
    rv = pb.RepeatedValue()
    fill_py(rv, values, where)
    return rv


# ---- Arrow -> Value --------------------------------------------------------------------------

# Arrow scalar type -> (its Value field, the Value field of a list of it).
_ARROW_KINDS: list[tuple[Callable[[pa.DataType], bool], str, str]] = [
    (lambda t: pa.types.is_int8(t) or pa.types.is_int16(t) or pa.types.is_int32(t)
     or pa.types.is_uint8(t) or pa.types.is_uint16(t), "int32_val", "int32_list_val"),
    (lambda t: pa.types.is_int64(t) or pa.types.is_uint32(t) or pa.types.is_uint64(t),
     "int64_val", "int64_list_val"),
    (lambda t: pa.types.is_float16(t) or pa.types.is_float32(t), "float_val", "float_list_val"),
    (pa.types.is_float64, "double_val", "double_list_val"),
    (pa.types.is_boolean, "bool_val", "bool_list_val"),
    (lambda t: pa.types.is_string(t) or pa.types.is_large_string(t)
     or getattr(pa.types, "is_string_view", lambda _: False)(t), "string_val", "string_list_val"),
    (lambda t: pa.types.is_binary(t) or pa.types.is_large_binary(t) or pa.types.is_fixed_size_binary(t)
     or getattr(pa.types, "is_binary_view", lambda _: False)(t), "bytes_val", "bytes_list_val"),
    (pa.types.is_timestamp, "timestamp_val", "timestamp_list_val"),
]


def _kind_of(t: pa.DataType, where: str) -> tuple[str, str]:
    for test, kind, list_kind in _ARROW_KINDS:
        if test(t):
            return kind, list_kind
    raise InvalidArgumentError(
        f"{where}: Arrow type {t} cannot be sent; supported: {SUPPORTED_ARROW} "
        "(cast the column, e.g. a decimal to float64 or a date to timestamp)"
    )


def _is_list(t: pa.DataType) -> bool:
    return pa.types.is_list(t) or pa.types.is_large_list(t) or pa.types.is_fixed_size_list(t)


def timestamp_micros(arr: pa.Array, where: str) -> list[Any]:
    """The values of a timestamp array as UTC microseconds (None for nulls). Naive timestamps
    are taken as UTC; nanoseconds with a sub-microsecond part are refused, not truncated."""
    unit = arr.type.unit
    ints = arr.cast(pa.int64()).to_pylist()
    if unit == "us":
        return ints
    if unit == "ns":
        out: list[Any] = []
        for i, v in enumerate(ints):
            if v is None:
                out.append(None)
                continue
            q, r = divmod(v, 1000)
            if r:
                raise InvalidArgumentError(
                    f"{where}: row {i}: timestamp has a sub-microsecond part ({r} ns); Quiver "
                    "keeps microseconds: round it first (e.g. Series.dt.floor('us'))"
                )
            out.append(q)
        return out
    mul = {"s": 1_000_000, "ms": 1000}[unit]
    return [None if v is None else v * mul for v in ints]


def _python_values(arr: pa.Array, kind: str, where: str) -> list[Any]:
    """The values of a scalar array as the Python objects its Value field takes."""
    t = arr.type
    if kind == "timestamp_val":
        return timestamp_micros(arr, where)
    if pa.types.is_float16(t):
        arr = arr.cast(pa.float32())
    elif pa.types.is_uint64(t):
        vals = arr.to_pylist()
        for i, v in enumerate(vals):
            if v is not None and v > _INT64_MAX:
                raise InvalidArgumentError(f"{where}: row {i}: uint64 value {v} does not fit int64")
        return vals
    return arr.to_pylist()


def _dense(arr: Any) -> pa.Array:
    if isinstance(arr, pa.ChunkedArray):
        arr = arr.combine_chunks() if arr.num_chunks != 1 else arr.chunk(0)
    if pa.types.is_dictionary(arr.type):
        arr = arr.dictionary_decode()
    return arr


def arrow_column(arr: Any, where: str) -> Any:
    """A RepeatedValue of the values of an Arrow array (or chunked array), typed by the
    array's type. Nulls become empty Values; a null inside a list value is refused."""
    rv = pb.RepeatedValue()
    fill_arrow(rv, arr, where)
    return rv


def fill_arrow(rv: Any, arr: Any, where: str) -> None:
    """Appends the values of an Arrow array to the RepeatedValue rv (see arrow_column)."""
    arr = _dense(arr)
    t = arr.type
    out = rv.val
    if pa.types.is_null(t):
        for _ in range(len(arr)):
            out.add()
        return
    if _is_list(t):
        elem = t.value_type
        if pa.types.is_dictionary(elem):
            raise InvalidArgumentError(f"{where}: lists of dictionary-encoded values cannot be sent; decode them first")
        kind, list_kind = _kind_of(elem, where)
        flat = arr.flatten()
        if flat.null_count:
            offsets = 0
            for i, n in enumerate(arr.value_lengths().to_pylist()):
                if n and flat.slice(offsets, n).null_count:
                    raise InvalidArgumentError(f"{where}: row {i}: the list holds a null element; list values cannot hold nulls")
                offsets += n or 0
        items = _python_values(flat, kind, where)
        pos = 0
        for n in arr.value_lengths().to_pylist():
            v = out.add()
            if n is None:
                continue
            lst = getattr(v, list_kind)
            if n == 0:
                lst.SetInParent()  # an empty list, not a null
            elif kind == "timestamp_val":
                for us in items[pos:pos + n]:
                    _set_timestamp(lst.val.add(), us)
            else:
                lst.val.extend(items[pos:pos + n])
            pos += n
        return
    kind, _ = _kind_of(t, where)
    items = _python_values(arr, kind, where)
    if kind == "timestamp_val":
        for us in items:
            v = out.add()
            if us is not None:
                _set_timestamp(v.timestamp_val, us)
        return
    for x in items:
        if x is None:
            out.add()
        else:
            out.add(**{kind: x})


def _to_arrow_array(col: Any) -> pa.Array | None:
    """col as an Arrow array when it is typed (pyarrow, pandas, numpy); None for plain lists."""
    if isinstance(col, (pa.Array, pa.ChunkedArray)):
        return col
    mod = type(col).__module__
    if mod.startswith("pandas"):
        return pa.Array.from_pandas(col)
    if mod.startswith("numpy") and getattr(col, "ndim", 0) == 1:
        return pa.array(col)
    return None


def columns_of(data: Any, where: str, target: Any = None) -> dict[str, Any]:
    """Columns of a mapping {name: sequence}, a pandas DataFrame or a pyarrow Table /
    RecordBatch, as {name: RepeatedValue}; every column must have the same length. With
    target (a request's map field of RepeatedValue), the columns are written into it in place
    (no copy) and the returned dict holds those entries."""
    if data is None:
        return {}
    if isinstance(data, (pa.Table, pa.RecordBatch)):
        cols: Mapping[str, Any] = {name: data.column(i) for i, name in enumerate(data.schema.names)}
    elif type(data).__module__.startswith("pandas") and hasattr(data, "columns"):
        cols = {str(name): data[name] for name in data.columns}
    elif isinstance(data, Mapping):
        cols = data
    else:
        raise InvalidArgumentError(
            f"{where}: want a mapping of column name to values, a pandas DataFrame or a pyarrow "
            f"Table, got {type(data).__name__}"
        )
    out: dict[str, Any] = {}
    length = None
    for name, col in cols.items():
        if not isinstance(name, str):
            raise InvalidArgumentError(f"{where}: column names must be strings, got {name!r}")
        w = f"{where} column {name!r}"
        arr = _to_arrow_array(col)
        if arr is None and (isinstance(col, (str, bytes)) or not isinstance(col, Sequence)):
            raise InvalidArgumentError(
                f"{w}: want a list with one value per row, got {type(col).__name__}"
                + (f" ({col!r})" if isinstance(col, (str, bytes, int, float)) else "")
            )
        rv = target[name] if target is not None else pb.RepeatedValue()
        if arr is not None:
            fill_arrow(rv, arr, w)
        else:
            fill_py(rv, col, w)
        n = len(rv.val)
        if length is None:
            length = n
        elif n != length:
            first = next(iter(out))
            raise InvalidArgumentError(
                f"{where}: column {name!r} has {n} values but column {first!r} has {length}; "
                "every column needs one value per row"
            )
        out[name] = rv
    return out


def rows_to_columns(rows: Sequence[Mapping[str, Any]], where: str) -> dict[str, list[Any]]:
    """Feast-style entity rows [{"user_id": 7}, {"user_id": 8}] as columns; every row must
    name the same keys."""
    if isinstance(rows, Mapping) or not isinstance(rows, Sequence):
        raise InvalidArgumentError(
            f"{where}: want a list of rows (dicts), e.g. [{{'user_id': 7}}], got {type(rows).__name__}"
        )
    cols: dict[str, list[Any]] = {}
    keys: list[str] = []
    for i, row in enumerate(rows):
        if not isinstance(row, Mapping):
            raise InvalidArgumentError(f"{where}: row {i} is a {type(row).__name__}, want a dict")
        if i == 0:
            keys = list(row)
            cols = {k: [] for k in keys}
        elif set(row) != set(keys):
            raise InvalidArgumentError(
                f"{where}: row {i} has keys {sorted(row)} but row 0 has {sorted(keys)}; "
                "every row needs the same keys"
            )
        for k in keys:
            cols[k].append(row[k])
    return cols


# ---- Value / FeatureColumn -> Python -----------------------------------------------------------


def py_value(v: Any) -> Any:
    """The Python object of a Value: int, float, bool, str, bytes, a UTC datetime, a list of
    these, or None."""
    kind = v.WhichOneof("kind")
    if kind is None:
        return None
    if kind == "timestamp_val":
        return micros_to_datetime(_timestamp_micros(v.timestamp_val))
    if kind == "timestamp_list_val":
        return [micros_to_datetime(_timestamp_micros(t)) for t in v.timestamp_list_val.val]
    x = getattr(v, kind)
    if kind.endswith("_list_val"):
        return list(x.val)
    return x


def value_kind(values: Sequence[Any]) -> pa.DataType | None:
    """The Arrow type of a column of Values: the type of its first non-null one."""
    for v in values:
        kind = v.WhichOneof("kind")
        if kind is not None:
            return _KIND_ARROW[kind]
    return None


_VECTOR_OF = {
    pb.INT32: "int32_values",
    pb.INT64: "int64_values",
    pb.FLOAT32: "float_values",
    pb.FLOAT64: "double_values",
    pb.BOOL: "bool_values",
    pb.STRING: "string_values",
    pb.BYTES: "bytes_values",
    pb.TIMESTAMP: "timestamp_values",
}


def null_mask(col: Any, rows: int) -> list[bool]:
    """The rows of a FeatureColumn that hold no value (docs/serving.md's one rule: the nulls
    mask when the server sent one, else the statuses NULL_VALUE and NOT_FOUND)."""
    if len(col.nulls):
        return list(col.nulls)
    return [s == pb.NULL_VALUE or s == pb.NOT_FOUND for s in col.statuses] or [False] * rows


def decode_column(col: Any, rows: int) -> list[Any]:
    """One Python value per row of a FeatureColumn (None where the row is null)."""
    nulls = null_mask(col, rows)
    which = col.values.WhichOneof("kind")
    if which is None:
        return [None] * rows
    if which == "list_values":
        vals = [py_value(v) for v in col.values.list_values.val]
    elif which == "timestamp_values":
        vals = [micros_to_datetime(_timestamp_micros(t)) for t in col.values.timestamp_values.val]
    else:
        vals = list(getattr(col.values, which).val)
    if len(vals) != rows:
        raise InternalError(f"feature {col.name!r}: the server sent {len(vals)} values for {rows} rows")
    if any(nulls):
        return [None if n else v for v, n in zip(vals, nulls, strict=True)]
    return vals
