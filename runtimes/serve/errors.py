"""Errors in OpenAI's shape: ``{"error": {"message", "type", "param", "code"}}`` with a 4xx
or 5xx status, whatever raised them (a bad field, a library, the upload limit, a route that
does not exist). Tracebacks stay in the server log; every answer is counted by its code."""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import JSONResponse

from runtimes.audio.limits import AudioTooLongError
from runtimes.errors import AudioError, ToolkitError
from runtimes.serve.metrics import ServerMetrics

log = logging.getLogger("runtimes.serve")


class ApiError(Exception):
    """An error answered in OpenAI's shape."""

    def __init__(self, status: int, message: str, code: str, param: str | None = None,
                 type_: str = "invalid_request_error", headers: dict | None = None) -> None:
        super().__init__(message)
        self.status, self.message, self.code, self.param = status, message, code, param
        self.type, self.headers = type_, headers


def error_response(error: ApiError) -> JSONResponse:
    body = {"error": {"message": error.message, "type": error.type, "param": error.param,
                      "code": error.code}}
    return JSONResponse(body, status_code=error.status, headers=error.headers)


class UploadLimit:
    """ASGI middleware: 413 for bodies over ``max_bytes``, by Content-Length before the
    body is read, or while reading it when the length is not declared."""

    def __init__(self, app, max_bytes: int, count_error=lambda code: None) -> None:
        self.app, self.max_bytes, self.count_error = app, max_bytes, count_error

    def _too_large(self) -> ApiError:
        mb = self.max_bytes / 1024 / 1024
        return ApiError(413, f"upload larger than the server's limit of {mb:g} MB "
                        "(--max-upload-mb)", "upload_too_large", "file")

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        length = dict(scope["headers"]).get(b"content-length")
        if length is not None and length.isdigit() and int(length) > self.max_bytes:
            error = self._too_large()  # answered here, before the app: counted here too
            self.count_error(error.code)
            return await error_response(error)(scope, receive, send)
        received = 0

        async def limited_receive():
            nonlocal received
            message = await receive()
            received += len(message.get("body", b""))
            if received > self.max_bytes:
                raise self._too_large()
            return message

        await self.app(scope, limited_receive, send)


def install_error_handlers(app: FastAPI, metrics: ServerMetrics) -> None:
    def answer(error: ApiError) -> JSONResponse:
        metrics.errors.labels(error.code).inc()
        return error_response(error)

    @app.exception_handler(ApiError)
    async def api_error(request: Request, exc: ApiError) -> JSONResponse:
        return answer(exc)

    @app.exception_handler(ToolkitError)
    async def toolkit_error(request: Request, exc: ToolkitError) -> JSONResponse:
        # AudioError (not audio, empty, no samples) and OptionError are the client's to fix.
        if isinstance(exc, AudioTooLongError):
            return answer(ApiError(413, str(exc), "audio_too_long", "file"))
        if isinstance(exc, AudioError):
            return answer(ApiError(400, str(exc), "invalid_audio", "file"))
        return answer(ApiError(400, str(exc), "invalid_value"))

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
        message = (f"no route {request.method} {request.url.path}" if exc.status_code in (404, 405)
                   else str(exc.detail))
        return answer(ApiError(exc.status_code, message, code))

    @app.exception_handler(Exception)
    async def internal_error(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        return answer(ApiError(500, "internal server error (details are in the server log)",
                               "internal_error", type_="server_error"))
