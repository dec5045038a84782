import datetime

from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class FieldStatus(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    INVALID: _ClassVar[FieldStatus]
    PRESENT: _ClassVar[FieldStatus]
    NULL_VALUE: _ClassVar[FieldStatus]
    NOT_FOUND: _ClassVar[FieldStatus]
    OUTSIDE_MAX_AGE: _ClassVar[FieldStatus]

class ValueType(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    VALUE_TYPE_UNSPECIFIED: _ClassVar[ValueType]
    INT32: _ClassVar[ValueType]
    INT64: _ClassVar[ValueType]
    FLOAT32: _ClassVar[ValueType]
    FLOAT64: _ClassVar[ValueType]
    BOOL: _ClassVar[ValueType]
    STRING: _ClassVar[ValueType]
    BYTES: _ClassVar[ValueType]
    TIMESTAMP: _ClassVar[ValueType]
    INT32_LIST: _ClassVar[ValueType]
    INT64_LIST: _ClassVar[ValueType]
    FLOAT32_LIST: _ClassVar[ValueType]
    FLOAT64_LIST: _ClassVar[ValueType]
    BOOL_LIST: _ClassVar[ValueType]
    STRING_LIST: _ClassVar[ValueType]
    BYTES_LIST: _ClassVar[ValueType]
    TIMESTAMP_LIST: _ClassVar[ValueType]
INVALID: FieldStatus
PRESENT: FieldStatus
NULL_VALUE: FieldStatus
NOT_FOUND: FieldStatus
OUTSIDE_MAX_AGE: FieldStatus
VALUE_TYPE_UNSPECIFIED: ValueType
INT32: ValueType
INT64: ValueType
FLOAT32: ValueType
FLOAT64: ValueType
BOOL: ValueType
STRING: ValueType
BYTES: ValueType
TIMESTAMP: ValueType
INT32_LIST: ValueType
INT64_LIST: ValueType
FLOAT32_LIST: ValueType
FLOAT64_LIST: ValueType
BOOL_LIST: ValueType
STRING_LIST: ValueType
BYTES_LIST: ValueType
TIMESTAMP_LIST: ValueType

class Value(_message.Message):
    __slots__ = ("int32_val", "int64_val", "float_val", "double_val", "bool_val", "string_val", "bytes_val", "timestamp_val", "int32_list_val", "int64_list_val", "float_list_val", "double_list_val", "bool_list_val", "string_list_val", "bytes_list_val", "timestamp_list_val")
    INT32_VAL_FIELD_NUMBER: _ClassVar[int]
    INT64_VAL_FIELD_NUMBER: _ClassVar[int]
    FLOAT_VAL_FIELD_NUMBER: _ClassVar[int]
    DOUBLE_VAL_FIELD_NUMBER: _ClassVar[int]
    BOOL_VAL_FIELD_NUMBER: _ClassVar[int]
    STRING_VAL_FIELD_NUMBER: _ClassVar[int]
    BYTES_VAL_FIELD_NUMBER: _ClassVar[int]
    TIMESTAMP_VAL_FIELD_NUMBER: _ClassVar[int]
    INT32_LIST_VAL_FIELD_NUMBER: _ClassVar[int]
    INT64_LIST_VAL_FIELD_NUMBER: _ClassVar[int]
    FLOAT_LIST_VAL_FIELD_NUMBER: _ClassVar[int]
    DOUBLE_LIST_VAL_FIELD_NUMBER: _ClassVar[int]
    BOOL_LIST_VAL_FIELD_NUMBER: _ClassVar[int]
    STRING_LIST_VAL_FIELD_NUMBER: _ClassVar[int]
    BYTES_LIST_VAL_FIELD_NUMBER: _ClassVar[int]
    TIMESTAMP_LIST_VAL_FIELD_NUMBER: _ClassVar[int]
    int32_val: int
    int64_val: int
    float_val: float
    double_val: float
    bool_val: bool
    string_val: str
    bytes_val: bytes
    timestamp_val: _timestamp_pb2.Timestamp
    int32_list_val: Int32List
    int64_list_val: Int64List
    float_list_val: FloatList
    double_list_val: DoubleList
    bool_list_val: BoolList
    string_list_val: StringList
    bytes_list_val: BytesList
    timestamp_list_val: TimestampList
    def __init__(self, int32_val: _Optional[int] = ..., int64_val: _Optional[int] = ..., float_val: _Optional[float] = ..., double_val: _Optional[float] = ..., bool_val: _Optional[bool] = ..., string_val: _Optional[str] = ..., bytes_val: _Optional[bytes] = ..., timestamp_val: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., int32_list_val: _Optional[_Union[Int32List, _Mapping]] = ..., int64_list_val: _Optional[_Union[Int64List, _Mapping]] = ..., float_list_val: _Optional[_Union[FloatList, _Mapping]] = ..., double_list_val: _Optional[_Union[DoubleList, _Mapping]] = ..., bool_list_val: _Optional[_Union[BoolList, _Mapping]] = ..., string_list_val: _Optional[_Union[StringList, _Mapping]] = ..., bytes_list_val: _Optional[_Union[BytesList, _Mapping]] = ..., timestamp_list_val: _Optional[_Union[TimestampList, _Mapping]] = ...) -> None: ...

class Int32List(_message.Message):
    __slots__ = ("val",)
    VAL_FIELD_NUMBER: _ClassVar[int]
    val: _containers.RepeatedScalarFieldContainer[int]
    def __init__(self, val: _Optional[_Iterable[int]] = ...) -> None: ...

class Int64List(_message.Message):
    __slots__ = ("val",)
    VAL_FIELD_NUMBER: _ClassVar[int]
    val: _containers.RepeatedScalarFieldContainer[int]
    def __init__(self, val: _Optional[_Iterable[int]] = ...) -> None: ...

class FloatList(_message.Message):
    __slots__ = ("val",)
    VAL_FIELD_NUMBER: _ClassVar[int]
    val: _containers.RepeatedScalarFieldContainer[float]
    def __init__(self, val: _Optional[_Iterable[float]] = ...) -> None: ...

class DoubleList(_message.Message):
    __slots__ = ("val",)
    VAL_FIELD_NUMBER: _ClassVar[int]
    val: _containers.RepeatedScalarFieldContainer[float]
    def __init__(self, val: _Optional[_Iterable[float]] = ...) -> None: ...

class BoolList(_message.Message):
    __slots__ = ("val",)
    VAL_FIELD_NUMBER: _ClassVar[int]
    val: _containers.RepeatedScalarFieldContainer[bool]
    def __init__(self, val: _Optional[_Iterable[bool]] = ...) -> None: ...

class StringList(_message.Message):
    __slots__ = ("val",)
    VAL_FIELD_NUMBER: _ClassVar[int]
    val: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, val: _Optional[_Iterable[str]] = ...) -> None: ...

class BytesList(_message.Message):
    __slots__ = ("val",)
    VAL_FIELD_NUMBER: _ClassVar[int]
    val: _containers.RepeatedScalarFieldContainer[bytes]
    def __init__(self, val: _Optional[_Iterable[bytes]] = ...) -> None: ...

class TimestampList(_message.Message):
    __slots__ = ("val",)
    VAL_FIELD_NUMBER: _ClassVar[int]
    val: _containers.RepeatedCompositeFieldContainer[_timestamp_pb2.Timestamp]
    def __init__(self, val: _Optional[_Iterable[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]]] = ...) -> None: ...

class RepeatedValue(_message.Message):
    __slots__ = ("val",)
    VAL_FIELD_NUMBER: _ClassVar[int]
    val: _containers.RepeatedCompositeFieldContainer[Value]
    def __init__(self, val: _Optional[_Iterable[_Union[Value, _Mapping]]] = ...) -> None: ...

class FeatureList(_message.Message):
    __slots__ = ("val",)
    VAL_FIELD_NUMBER: _ClassVar[int]
    val: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, val: _Optional[_Iterable[str]] = ...) -> None: ...

class GetOnlineFeaturesRequest(_message.Message):
    __slots__ = ("feature_service", "features", "entities", "full_feature_names", "request_context")
    class EntitiesEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: RepeatedValue
        def __init__(self, key: _Optional[str] = ..., value: _Optional[_Union[RepeatedValue, _Mapping]] = ...) -> None: ...
    class RequestContextEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: RepeatedValue
        def __init__(self, key: _Optional[str] = ..., value: _Optional[_Union[RepeatedValue, _Mapping]] = ...) -> None: ...
    FEATURE_SERVICE_FIELD_NUMBER: _ClassVar[int]
    FEATURES_FIELD_NUMBER: _ClassVar[int]
    ENTITIES_FIELD_NUMBER: _ClassVar[int]
    FULL_FEATURE_NAMES_FIELD_NUMBER: _ClassVar[int]
    REQUEST_CONTEXT_FIELD_NUMBER: _ClassVar[int]
    feature_service: str
    features: FeatureList
    entities: _containers.MessageMap[str, RepeatedValue]
    full_feature_names: bool
    request_context: _containers.MessageMap[str, RepeatedValue]
    def __init__(self, feature_service: _Optional[str] = ..., features: _Optional[_Union[FeatureList, _Mapping]] = ..., entities: _Optional[_Mapping[str, RepeatedValue]] = ..., full_feature_names: _Optional[bool] = ..., request_context: _Optional[_Mapping[str, RepeatedValue]] = ...) -> None: ...

class FeatureColumn(_message.Message):
    __slots__ = ("name", "view", "type", "values", "statuses", "event_timestamps_micros", "nulls")
    NAME_FIELD_NUMBER: _ClassVar[int]
    VIEW_FIELD_NUMBER: _ClassVar[int]
    TYPE_FIELD_NUMBER: _ClassVar[int]
    VALUES_FIELD_NUMBER: _ClassVar[int]
    STATUSES_FIELD_NUMBER: _ClassVar[int]
    EVENT_TIMESTAMPS_MICROS_FIELD_NUMBER: _ClassVar[int]
    NULLS_FIELD_NUMBER: _ClassVar[int]
    name: str
    view: str
    type: ValueType
    values: Vector
    statuses: _containers.RepeatedScalarFieldContainer[FieldStatus]
    event_timestamps_micros: _containers.RepeatedScalarFieldContainer[int]
    nulls: _containers.RepeatedScalarFieldContainer[bool]
    def __init__(self, name: _Optional[str] = ..., view: _Optional[str] = ..., type: _Optional[_Union[ValueType, str]] = ..., values: _Optional[_Union[Vector, _Mapping]] = ..., statuses: _Optional[_Iterable[_Union[FieldStatus, str]]] = ..., event_timestamps_micros: _Optional[_Iterable[int]] = ..., nulls: _Optional[_Iterable[bool]] = ...) -> None: ...

class Vector(_message.Message):
    __slots__ = ("int32_values", "int64_values", "float_values", "double_values", "bool_values", "string_values", "bytes_values", "timestamp_values", "list_values")
    INT32_VALUES_FIELD_NUMBER: _ClassVar[int]
    INT64_VALUES_FIELD_NUMBER: _ClassVar[int]
    FLOAT_VALUES_FIELD_NUMBER: _ClassVar[int]
    DOUBLE_VALUES_FIELD_NUMBER: _ClassVar[int]
    BOOL_VALUES_FIELD_NUMBER: _ClassVar[int]
    STRING_VALUES_FIELD_NUMBER: _ClassVar[int]
    BYTES_VALUES_FIELD_NUMBER: _ClassVar[int]
    TIMESTAMP_VALUES_FIELD_NUMBER: _ClassVar[int]
    LIST_VALUES_FIELD_NUMBER: _ClassVar[int]
    int32_values: Int32List
    int64_values: Int64List
    float_values: FloatList
    double_values: DoubleList
    bool_values: BoolList
    string_values: StringList
    bytes_values: BytesList
    timestamp_values: TimestampList
    list_values: RepeatedValue
    def __init__(self, int32_values: _Optional[_Union[Int32List, _Mapping]] = ..., int64_values: _Optional[_Union[Int64List, _Mapping]] = ..., float_values: _Optional[_Union[FloatList, _Mapping]] = ..., double_values: _Optional[_Union[DoubleList, _Mapping]] = ..., bool_values: _Optional[_Union[BoolList, _Mapping]] = ..., string_values: _Optional[_Union[StringList, _Mapping]] = ..., bytes_values: _Optional[_Union[BytesList, _Mapping]] = ..., timestamp_values: _Optional[_Union[TimestampList, _Mapping]] = ..., list_values: _Optional[_Union[RepeatedValue, _Mapping]] = ...) -> None: ...

class GetOnlineFeaturesResponse(_message.Message):
    __slots__ = ("rows", "entities", "features")
    class EntitiesEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: RepeatedValue
        def __init__(self, key: _Optional[str] = ..., value: _Optional[_Union[RepeatedValue, _Mapping]] = ...) -> None: ...
    ROWS_FIELD_NUMBER: _ClassVar[int]
    ENTITIES_FIELD_NUMBER: _ClassVar[int]
    FEATURES_FIELD_NUMBER: _ClassVar[int]
    rows: int
    entities: _containers.MessageMap[str, RepeatedValue]
    features: _containers.RepeatedCompositeFieldContainer[FeatureColumn]
    def __init__(self, rows: _Optional[int] = ..., entities: _Optional[_Mapping[str, RepeatedValue]] = ..., features: _Optional[_Iterable[_Union[FeatureColumn, _Mapping]]] = ...) -> None: ...

class ModelRef(_message.Message):
    __slots__ = ("name", "version", "alias")
    NAME_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    ALIAS_FIELD_NUMBER: _ClassVar[int]
    name: str
    version: str
    alias: str
    def __init__(self, name: _Optional[str] = ..., version: _Optional[str] = ..., alias: _Optional[str] = ...) -> None: ...

class PredictRequest(_message.Message):
    __slots__ = ("model", "entities", "request_context", "include_features")
    class EntitiesEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: RepeatedValue
        def __init__(self, key: _Optional[str] = ..., value: _Optional[_Union[RepeatedValue, _Mapping]] = ...) -> None: ...
    class RequestContextEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: RepeatedValue
        def __init__(self, key: _Optional[str] = ..., value: _Optional[_Union[RepeatedValue, _Mapping]] = ...) -> None: ...
    MODEL_FIELD_NUMBER: _ClassVar[int]
    ENTITIES_FIELD_NUMBER: _ClassVar[int]
    REQUEST_CONTEXT_FIELD_NUMBER: _ClassVar[int]
    INCLUDE_FEATURES_FIELD_NUMBER: _ClassVar[int]
    model: ModelRef
    entities: _containers.MessageMap[str, RepeatedValue]
    request_context: _containers.MessageMap[str, RepeatedValue]
    include_features: bool
    def __init__(self, model: _Optional[_Union[ModelRef, _Mapping]] = ..., entities: _Optional[_Mapping[str, RepeatedValue]] = ..., request_context: _Optional[_Mapping[str, RepeatedValue]] = ..., include_features: _Optional[bool] = ...) -> None: ...

class ModelOutput(_message.Message):
    __slots__ = ("name", "shape", "values")
    NAME_FIELD_NUMBER: _ClassVar[int]
    SHAPE_FIELD_NUMBER: _ClassVar[int]
    VALUES_FIELD_NUMBER: _ClassVar[int]
    name: str
    shape: _containers.RepeatedScalarFieldContainer[int]
    values: _containers.RepeatedCompositeFieldContainer[Value]
    def __init__(self, name: _Optional[str] = ..., shape: _Optional[_Iterable[int]] = ..., values: _Optional[_Iterable[_Union[Value, _Mapping]]] = ...) -> None: ...

class PredictResponse(_message.Message):
    __slots__ = ("model_name", "model_version", "feature_service", "rows", "outputs", "features")
    MODEL_NAME_FIELD_NUMBER: _ClassVar[int]
    MODEL_VERSION_FIELD_NUMBER: _ClassVar[int]
    FEATURE_SERVICE_FIELD_NUMBER: _ClassVar[int]
    ROWS_FIELD_NUMBER: _ClassVar[int]
    OUTPUTS_FIELD_NUMBER: _ClassVar[int]
    FEATURES_FIELD_NUMBER: _ClassVar[int]
    model_name: str
    model_version: str
    feature_service: str
    rows: int
    outputs: _containers.RepeatedCompositeFieldContainer[ModelOutput]
    features: _containers.RepeatedCompositeFieldContainer[FeatureColumn]
    def __init__(self, model_name: _Optional[str] = ..., model_version: _Optional[str] = ..., feature_service: _Optional[str] = ..., rows: _Optional[int] = ..., outputs: _Optional[_Iterable[_Union[ModelOutput, _Mapping]]] = ..., features: _Optional[_Iterable[_Union[FeatureColumn, _Mapping]]] = ...) -> None: ...

class PushFeaturesRequest(_message.Message):
    __slots__ = ("feature_view", "columns", "event_timestamps_micros", "created_timestamps_micros")
    class ColumnsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: RepeatedValue
        def __init__(self, key: _Optional[str] = ..., value: _Optional[_Union[RepeatedValue, _Mapping]] = ...) -> None: ...
    FEATURE_VIEW_FIELD_NUMBER: _ClassVar[int]
    COLUMNS_FIELD_NUMBER: _ClassVar[int]
    EVENT_TIMESTAMPS_MICROS_FIELD_NUMBER: _ClassVar[int]
    CREATED_TIMESTAMPS_MICROS_FIELD_NUMBER: _ClassVar[int]
    feature_view: str
    columns: _containers.MessageMap[str, RepeatedValue]
    event_timestamps_micros: _containers.RepeatedScalarFieldContainer[int]
    created_timestamps_micros: _containers.RepeatedScalarFieldContainer[int]
    def __init__(self, feature_view: _Optional[str] = ..., columns: _Optional[_Mapping[str, RepeatedValue]] = ..., event_timestamps_micros: _Optional[_Iterable[int]] = ..., created_timestamps_micros: _Optional[_Iterable[int]] = ...) -> None: ...

class PushFeaturesResponse(_message.Message):
    __slots__ = ("rows", "online_rows", "log_sequence", "stale_rows")
    ROWS_FIELD_NUMBER: _ClassVar[int]
    ONLINE_ROWS_FIELD_NUMBER: _ClassVar[int]
    LOG_SEQUENCE_FIELD_NUMBER: _ClassVar[int]
    STALE_ROWS_FIELD_NUMBER: _ClassVar[int]
    rows: int
    online_rows: int
    log_sequence: int
    stale_rows: int
    def __init__(self, rows: _Optional[int] = ..., online_rows: _Optional[int] = ..., log_sequence: _Optional[int] = ..., stale_rows: _Optional[int] = ...) -> None: ...
