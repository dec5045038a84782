"""Python client of the Quiver feature store.

>>> import quiver
>>> with quiver.Client("localhost:6566") as client:
...     features = client.get_online_features(
...         feature_service="churn_v1", entity_rows=[{"user_id": 7}, {"user_id": 8}]
...     ).to_dict()

See docs/python.md. The generated gRPC stubs of the serving API are in
``quiver.serving.v1`` (``serving_pb2``, ``serving_pb2_grpc``) for callers that need the raw API.
"""

from .client import Client, TLSConfig
from .datasets import DatasetInfo, HistoricalFeatures
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
from .response import FieldStatus, OnlineResponse, Prediction, PushResult

__version__ = "0.1.0"

__all__ = [
    "Client",
    "TLSConfig",
    "FieldStatus",
    "OnlineResponse",
    "Prediction",
    "PushResult",
    "DatasetInfo",
    "HistoricalFeatures",
    "QuiverError",
    "InvalidArgumentError",
    "NotFoundError",
    "UnauthenticatedError",
    "PermissionDeniedError",
    "UnavailableError",
    "DeadlineExceededError",
    "FailedPreconditionError",
    "InternalError",
]
