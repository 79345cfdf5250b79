"""The client's errors, each carrying the process exit code scripts can rely on.

=====  ==============================================================================
code   meaning
=====  ==============================================================================
0      success
1      generic failure (for example, a watched job ended other than ``succeeded``)
2      usage error: bad arguments (argparse) or an unusable config file
3      authentication: the token is missing, invalid, expired or revoked (HTTP 401)
4      permission: the token's user may not do this (HTTP 403)
5      not found (HTTP 404)
6      conflict: already exists, or the object is in the wrong state (HTTP 409)
7      invalid input (HTTP 400, 413, 422, or a local spec file that cannot be used)
8      server or network error (HTTP 5xx, or the server cannot be reached)
130    interrupted (Ctrl-C)
=====  ==============================================================================
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_USAGE = 2
EXIT_AUTH = 3
EXIT_PERMISSION = 4
EXIT_NOT_FOUND = 5
EXIT_CONFLICT = 6
EXIT_INVALID = 7
EXIT_UNAVAILABLE = 8
EXIT_LIMIT = 9
EXIT_PAYMENT = 10
EXIT_INTERRUPTED = 130


@dataclass(frozen=True)
class FieldError:
    field: str
    message: str


class CliError(Exception):
    """Base of every error the client reports; ``exit_code`` is what the process returns."""

    exit_code = EXIT_FAILURE

    def __init__(self, message: str, *, field_errors: Sequence[FieldError] = ()) -> None:
        super().__init__(message)
        self.message = message
        self.field_errors = list(field_errors)
        self.source: str | None = None
        """The file the rejected input came from (``examples/job.yaml``), when there was one."""


class ConfigError(CliError):
    exit_code = EXIT_USAGE


class InputError(CliError):
    """A local input (a spec file, a ``KEY=VALUE`` flag) that cannot be sent."""

    exit_code = EXIT_INVALID


class UnreachableError(CliError):
    exit_code = EXIT_UNAVAILABLE


class ApiError(CliError):
    """The server answered with an error (an RFC 9457 problem document when it could)."""

    def __init__(
        self, status: int, message: str, *, field_errors: Sequence[FieldError] = ()
    ) -> None:
        super().__init__(message, field_errors=field_errors)
        self.status = status


class AuthenticationError(ApiError):
    exit_code = EXIT_AUTH


class PermissionDeniedError(ApiError):
    exit_code = EXIT_PERMISSION


class NotFoundError(ApiError):
    exit_code = EXIT_NOT_FOUND


class ConflictError(ApiError):
    exit_code = EXIT_CONFLICT


class InvalidInputError(ApiError):
    exit_code = EXIT_INVALID


class LimitExceededError(ApiError):
    """A per-user limit refused the request (HTTP 429), e.g. too many queued jobs."""

    exit_code = EXIT_LIMIT


class PaymentRequiredError(ApiError):
    """The tenant's wallet or the member's budget is exhausted (HTTP 402)."""

    exit_code = EXIT_PAYMENT


class ServerError(ApiError):
    exit_code = EXIT_UNAVAILABLE


_BY_STATUS: dict[int, type[ApiError]] = {
    400: InvalidInputError,
    401: AuthenticationError,
    402: PaymentRequiredError,
    403: PermissionDeniedError,
    404: NotFoundError,
    409: ConflictError,
    413: InvalidInputError,
    422: InvalidInputError,
    429: LimitExceededError,
}


def error_for_status(
    status: int, message: str, field_errors: Sequence[FieldError] = ()
) -> ApiError:
    kind = ServerError if status >= 500 else _BY_STATUS.get(status, ApiError)
    return kind(status, message, field_errors=field_errors)
