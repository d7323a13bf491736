"""One error body for every refusal: a summary and, per field, the reason.

``{"detail": "...", "errors": [{"field": "...", "reason": "...", "row": 3}]}``
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Iterator
from typing import Any

import asyncpg
import orjson
import structlog
from aiokafka.errors import KafkaError
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response

log = structlog.get_logger(__name__)


class ApiError(Exception):
    def __init__(
        self,
        status: int,
        detail: str,
        errors: list[dict[str, Any]] | None = None,
        headers: dict[str, str] | None = None,
        **extra: Any,
    ) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail
        self.errors = errors or []
        self.headers = headers
        self.extra = extra


def invalid(field: str, reason: str, **extra: Any) -> ApiError:
    """A 422 about one field."""
    return ApiError(422, f"{field}: {reason}", [{"field": field, "reason": reason}], **extra)


# Kafka or PostgreSQL away, or slower than the request's deadline.
UNAVAILABLE_ERRORS: tuple[type[BaseException], ...] = (
    TimeoutError,
    KafkaError,
    OSError,
    asyncpg.PostgresConnectionError,
    asyncpg.InterfaceError,
    asyncpg.CannotConnectNowError,
    asyncpg.TooManyConnectionsError,
    # A server shutting down, restarting or refusing connections for now
    # (AdminShutdown, CrashShutdown, CannotConnectNow, a cancelled statement),
    # out of resources, or read-only after a failover: all pass.
    asyncpg.exceptions.OperatorInterventionError,
    asyncpg.exceptions.InsufficientResourcesError,
    asyncpg.exceptions.ReadOnlySQLTransactionError,
)


@contextlib.contextmanager
def unavailable(what: str) -> Iterator[None]:
    """Answer 503 naming ``what`` could not be done when a dependency fails."""
    try:
        yield
    except UNAVAILABLE_ERRORS as error:
        log.warning("dependency_unavailable", what=what, error=f"{type(error).__name__}: {error}")
        raise ApiError(503, f"{what}: {type(error).__name__} {str(error)[:200]}".rstrip() + "; nothing was done, "
                       "try again") from None


@contextlib.asynccontextmanager
async def dependency(what: str, timeout: float) -> AsyncIterator[None]:
    """``unavailable`` with a deadline: Kafka or PostgreSQL calls inside the
    block answer 503 naming ``what`` once ``timeout`` seconds have passed."""
    with unavailable(what):
        async with asyncio.timeout(timeout):
            yield


def json_response(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(
        orjson.dumps(body, option=orjson.OPT_NAIVE_UTC | orjson.OPT_SERIALIZE_NUMPY),
        status_code=status,
        media_type="application/json",
        headers=headers,
    )


def _api_error(_: Request, error: Exception) -> Response:
    assert isinstance(error, ApiError)
    body: dict[str, Any] = {"detail": error.detail, **error.extra}
    if error.errors:
        body["errors"] = error.errors
    return json_response(body, error.status, error.headers)


def _location(loc: tuple[Any, ...]) -> str:
    # ("body", "stream") -> "stream"; ("query", "limit") -> "limit"
    parts = [str(p) for p in loc[1:]] if len(loc) > 1 and loc[0] in {"body", "query", "path", "header"} else [
        str(p) for p in loc
    ]
    return ".".join(parts) or "body"


def _validation_error(_: Request, error: Exception) -> Response:
    assert isinstance(error, RequestValidationError)
    errors = [{"field": _location(tuple(item.get("loc", ()))), "reason": item.get("msg", "invalid")}
              for item in error.errors()]
    summary = "; ".join(f"{e['field']}: {e['reason']}" for e in errors[:5]) or "invalid request"
    return json_response({"detail": summary, "errors": errors}, 422)


def _http_error(_: Request, error: Exception) -> Response:
    assert isinstance(error, StarletteHTTPException)
    body: dict[str, Any] = {"detail": error.detail}
    limit = getattr(error, "limit", None)  # bodylimit.BodyTooLarge names its limit
    if isinstance(limit, int):
        body["limit_bytes"] = limit
    return json_response(body, error.status_code, error.headers)


def _unexpected(request: Request, error: Exception) -> Response:
    log.error("unhandled_error", path=request.url.path, error=f"{type(error).__name__}: {error}", exc_info=error)
    return json_response({"detail": "internal error; the gateway's log has the details"}, 500)


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(ApiError, _api_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(Exception, _unexpected)
