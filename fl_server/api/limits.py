"""Refuse request bodies over a size limit before the application reads them."""

from __future__ import annotations

from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from fl_server.api.errors import error_response


def _message(max_bytes: int) -> str:
    return f"request body over {max_bytes} bytes; send less (cards and queries are small)"


class BodyTooLarge(HTTPException):
    """Raised while the body streams in; rendered as 413 by the HTTP error handler."""

    def __init__(self, max_bytes: int) -> None:
        super().__init__(413, _message(max_bytes))


class BodySizeLimit:
    """413 for a declared (Content-Length) or streamed body larger than `max_bytes`."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        for name, value in scope.get("headers", []):
            if name != b"content-length":
                continue
            declared = int(value) if value.isdigit() else None
            if declared is None:
                response = error_response(400, "bad_request", "invalid Content-Length header")
            elif declared > self.max_bytes:
                response = error_response(413, "body_too_large", _message(self.max_bytes))
            else:
                continue
            await response(scope, receive, send)
            return
        seen = 0

        async def counting_receive() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.max_bytes:
                    raise BodyTooLarge(self.max_bytes)
            return message

        await self.app(scope, counting_receive, send)
