"""Every error is a JSON body `{"error": code, "message": one line}` with a fitting status."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from starlette.exceptions import HTTPException as StarletteHTTPException

from fl_server.db.errors import ConflictError, DatabaseError, NotFoundError, RecordError

log = logging.getLogger("fedkg.api")


class FieldError(BaseModel):
    location: str
    message: str


class ErrorBody(BaseModel):
    error: str
    message: str
    fields: list[FieldError] | None = None


class ApiError(Exception):
    """An error the API answers with; `status` is the HTTP status."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


def unauthorized(
    message: str = "missing or invalid API key; send 'Authorization: Bearer <key>'",
) -> ApiError:
    return ApiError(401, "unauthorized", message)


def forbidden(message: str) -> ApiError:
    return ApiError(403, "forbidden", message)


_STATUS_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    406: "not_acceptable",
    409: "conflict",
    413: "body_too_large",
    415: "unsupported_media_type",
    422: "invalid",
    500: "internal_error",
    503: "unavailable",
}

ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    status: {"model": ErrorBody, "description": code.replace("_", " ")}
    for status, code in _STATUS_CODES.items()
    if status in (400, 401, 403, 404, 409, 413, 422)
}


def error_response(
    status: int,
    code: str,
    message: str,
    fields: list[FieldError] | None = None,
    headers: dict[str, str] | None = None,
) -> JSONResponse:
    body = ErrorBody(error=code, message=message, fields=fields).model_dump(exclude_none=True)
    return JSONResponse(body, status_code=status, headers=headers)


def _location(loc: tuple[Any, ...]) -> str:
    return ".".join(str(p) for p in loc)


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(ApiError)
    async def _api_error(_: Request, exc: ApiError) -> JSONResponse:
        headers = {"WWW-Authenticate": "Bearer"} if exc.status == 401 else None
        return error_response(exc.status, exc.code, exc.message, headers=headers)

    @app.exception_handler(NotFoundError)
    async def _not_found(_: Request, exc: NotFoundError) -> JSONResponse:
        return error_response(404, "not_found", str(exc))

    @app.exception_handler(ConflictError)
    async def _conflict(_: Request, exc: ConflictError) -> JSONResponse:
        return error_response(409, "conflict", str(exc))

    @app.exception_handler(RecordError)
    async def _invalid(_: Request, exc: RecordError) -> JSONResponse:
        return error_response(422, "invalid", str(exc))

    @app.exception_handler(DatabaseError)
    async def _database(_: Request, exc: DatabaseError) -> JSONResponse:
        log.error("%s", exc)
        return error_response(
            503, "unavailable", "the coordinator's database is unavailable; try again later"
        )

    @app.exception_handler(RequestValidationError)
    async def _validation(_: Request, exc: RequestValidationError) -> JSONResponse:
        fields = [
            FieldError(location=_location(e.get("loc", ())), message=str(e.get("msg", "invalid")))
            for e in exc.errors()
        ]
        first = fields[0] if fields else FieldError(location="", message="invalid request")
        more = f" (and {len(fields) - 1} more)" if len(fields) > 1 else ""
        return error_response(422, "invalid", f"{first.location}: {first.message}{more}", fields)

    @app.exception_handler(StarletteHTTPException)
    async def _http(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = _STATUS_CODES.get(exc.status_code, "error")
        message = str(exc.detail) if exc.detail else code.replace("_", " ")
        if exc.status_code == 404 and message == "Not Found":
            message = "no such endpoint; the API is described at /docs"
        elif exc.status_code == 400 and message == "There was an error parsing the body":
            message = "the request body is not UTF-8 JSON; send Content-Type: application/json"
        return error_response(exc.status_code, code, message, headers=getattr(exc, "headers", None))

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unexpected error on %s %s", request.method, request.url.path)
        return error_response(
            500, "internal_error", "internal error; the coordinator's log has details"
        )
