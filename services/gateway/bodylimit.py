"""Refuse a request body over a limit before reading it whole.

The JSON routes (scoring, events, labels, stream declarations) parse their
body in one piece, so their limits on records are checked only after a full
parse: without this, a client could make the gateway read and parse
gigabytes. A body whose Content-Length is over the limit is answered 413 at
once, unread; one sent without a length (chunked) is counted as it arrives
and refused the moment it passes the limit. Multipart uploads have their
own, larger limit (MAX_UPLOAD_BYTES), enforced while they stream to disk.
"""

from __future__ import annotations

from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from services.gateway.errors import json_response

_WITH_BODY = {"POST", "PUT", "PATCH"}


class BodyTooLarge(HTTPException):
    def __init__(self, limit: int) -> None:
        super().__init__(413, too_large_detail(limit))
        self.limit = limit


def too_large_detail(limit: int) -> str:
    return f"the request body is larger than the limit of {limit} bytes (MAX_JSON_BODY_BYTES)"


def limited(method: str, content_type: str) -> bool:
    """Whether a request's body falls under the JSON body limit."""
    return method in _WITH_BODY and not content_type.lower().startswith("multipart/form-data")


def declared_length(value: str | None) -> int | None:
    """A Content-Length header's value (None when absent or not a number)."""
    if value is None or not value.strip().isdigit():
        return None
    return int(value.strip())


class BodyLimitMiddleware:
    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = {name.decode("latin-1").lower(): value.decode("latin-1") for name, value in scope["headers"]}
        if not limited(scope["method"], headers.get("content-type", "")):
            await self.app(scope, receive, send)
            return
        length = declared_length(headers.get("content-length"))
        if length is not None and length > self.limit:
            response = json_response({"detail": too_large_detail(self.limit), "limit_bytes": self.limit}, 413)
            await response(scope, receive, send)
            return
        received = 0
        limit = self.limit

        async def counted() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise BodyTooLarge(limit)
            return message

        await self.app(scope, counted, send)
