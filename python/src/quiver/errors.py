"""Errors raised by the Quiver client.

Every failure of a call is a :class:`QuiverError` carrying the gRPC status ``code`` and the
server's ``message``. The codes a caller usually handles have their own subclass, which also
derives from the matching built-in exception where one fits (``InvalidArgumentError`` is a
``ValueError``, ``UnavailableError`` a ``ConnectionError``, ``DeadlineExceededError`` a
``TimeoutError``), so ``except ValueError`` keeps working in code that does not know Quiver.

Bad input the client can see before sending (a ragged entity column, a value of an
unsupported type) raises ``InvalidArgumentError`` too, with ``code`` INVALID_ARGUMENT, exactly
as the server would.
"""

from __future__ import annotations

import grpc

__all__ = [
    "QuiverError",
    "InvalidArgumentError",
    "NotFoundError",
    "UnauthenticatedError",
    "PermissionDeniedError",
    "UnavailableError",
    "DeadlineExceededError",
    "FailedPreconditionError",
    "InternalError",
    "from_grpc_error",
]


class QuiverError(Exception):
    """A failed Quiver call: ``code`` is the gRPC status code, ``message`` the server's text."""

    #: The status code instances of this class carry when none is given.
    default_code: grpc.StatusCode = grpc.StatusCode.UNKNOWN

    def __init__(self, message: str, code: grpc.StatusCode | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.code = code if code is not None else self.default_code

    @property
    def code_name(self) -> str:
        """The code's name as the server's logs and grpcurl print it: ``NOT_FOUND``, ..."""
        return self.code.name

    def __str__(self) -> str:
        return f"{self.code.name}: {self.message}"

    def __repr__(self) -> str:
        return f"{type(self).__name__}(code={self.code.name}, message={self.message!r})"


class InvalidArgumentError(QuiverError, ValueError):
    """The request is wrong: an unknown feature service, view or feature, a missing or
    ill-typed entity column or request field, a pushed batch that does not fit the view."""

    default_code = grpc.StatusCode.INVALID_ARGUMENT


class NotFoundError(QuiverError, LookupError):
    """The named thing does not exist (an unknown model for ``predict``)."""

    default_code = grpc.StatusCode.NOT_FOUND


class UnauthenticatedError(QuiverError):
    """No credentials, or credentials the server does not accept (bad, expired token)."""

    default_code = grpc.StatusCode.UNAUTHENTICATED


class PermissionDeniedError(QuiverError):
    """The caller is authenticated but the server's policy grants it nothing it asked for."""

    default_code = grpc.StatusCode.PERMISSION_DENIED


class UnavailableError(QuiverError, ConnectionError):
    """The server, or a store behind it, cannot be reached (also a failed TLS handshake)."""

    default_code = grpc.StatusCode.UNAVAILABLE


class DeadlineExceededError(QuiverError, TimeoutError):
    """The call's timeout passed before the server answered."""

    default_code = grpc.StatusCode.DEADLINE_EXCEEDED


class FailedPreconditionError(QuiverError):
    """The server cannot do this in its current state (a model fed a feature type it cannot
    take, a push to a server started with ``--push=false``)."""

    default_code = grpc.StatusCode.FAILED_PRECONDITION


class InternalError(QuiverError):
    """The server failed (a model that errored, a push log that cannot be written)."""

    default_code = grpc.StatusCode.INTERNAL


_BY_CODE = {
    cls.default_code: cls
    for cls in (
        InvalidArgumentError,
        NotFoundError,
        UnauthenticatedError,
        PermissionDeniedError,
        UnavailableError,
        DeadlineExceededError,
        FailedPreconditionError,
        InternalError,
    )
}


def from_grpc_error(err: grpc.RpcError) -> QuiverError:
    """The QuiverError for a failed gRPC call: its class chosen by the status code."""
    code = err.code() if hasattr(err, "code") else grpc.StatusCode.UNKNOWN
    message = err.details() if hasattr(err, "details") else str(err)
    if code is None:
        code = grpc.StatusCode.UNKNOWN
    cls = _BY_CODE.get(code, QuiverError)
    return cls(message or code.name.lower(), code)
