"""The FastAPI application: OpenAI's audio routes, health, metrics, and the protections.

Every error leaves as OpenAI's error shape ``{"error": {"message", "type", "param",
"code"}}`` with a 4xx/5xx status; tracebacks stay in the server log.
"""

from __future__ import annotations

import asyncio
import hmac
import logging
import time
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request
from starlette.datastructures import UploadFile
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import ClientDisconnect
from starlette.responses import JSONResponse, Response

from runtimes.audio.files import AudioTooLongError
from runtimes.errors import AudioError, ToolkitError
from runtimes.serve.config import ServeConfig
from runtimes.serve.engine import ServeEngine
from runtimes.serve.formats import FORMATS, render
from runtimes.serve.metrics import ServerMetrics

log = logging.getLogger("runtimes.serve")
OPEN_PATHS = ("/health",)  # answered without an API key (load-balancer probes)
KNOWN_PATHS = ("/health", "/metrics", "/v1/models", "/v1/audio/transcriptions",
               "/v1/audio/translations")


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


def create_app(engine: ServeEngine, config: ServeConfig, replica: str | None = None) -> FastAPI:
    """The application for one loaded model; the batcher runs while the app is up.
    ``replica`` names this copy in /health where several serve behind one address (Ray)."""
    state = {"in_flight": 0}
    metrics = ServerMetrics(lambda: engine.batcher.depth, lambda: state["in_flight"], replica)
    engine.batcher.observe = metrics.batch_size.observe

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        engine.start()
        yield
        engine.close()

    app = FastAPI(title="whisper-exporters server", lifespan=lifespan, docs_url=None,
                  redoc_url=None, openapi_url=None)
    app.add_middleware(UploadLimit, max_bytes=config.max_upload_bytes,
                       count_error=lambda code: metrics.errors.labels(code).inc())
    _install_error_handlers(app, metrics)

    @app.middleware("http")
    async def guard(request: Request, call_next):
        path = request.url.path if request.url.path in KNOWN_PATHS else "other"
        try:
            _authorize(request, config)
            response = await call_next(request)
        except ApiError as exc:  # raised before routing (auth): answered here
            response = error_response(exc)
            metrics.errors.labels(exc.code).inc()
        except Exception:
            metrics.requests.labels(path, "500").inc()
            raise
        metrics.requests.labels(path, str(response.status_code)).inc()
        return response

    @app.api_route("/health", methods=["GET", "HEAD"])  # probes use HEAD
    async def health() -> dict:
        found = {"status": "ok", "model": config.model_id, "queue_depth": engine.batcher.depth,
                 "in_flight": state["in_flight"]}
        return found if replica is None else {**found, "replica": replica}

    @app.api_route("/metrics", methods=["GET", "HEAD"])  # probes use HEAD
    async def prometheus() -> Response:
        return Response(metrics.render(), media_type="text/plain; version=0.0.4; charset=utf-8")

    @app.api_route("/v1/models", methods=["GET", "HEAD"])  # probes use HEAD
    async def models() -> dict:
        return {"object": "list", "data": [
            {"id": config.model_id, "object": "model", "created": 0,
             "owned_by": "whisper-exporters"}]}

    async def audio_route(request: Request, task: str) -> Response:
        # The upload is read first, within --timeout, and only then takes a --max-queue
        # slot: slow clients sending a byte at a time locked everyone out with 503s when
        # each held a slot while trickling in (hardening issue, item 4).
        started = time.perf_counter()
        form = await _read_form(request, config)
        args = _parse(form, engine, task, config.max_subtitle_s)
        if state["in_flight"] >= config.max_queue:
            raise ApiError(503, f"server busy: {config.max_queue} requests already queued "
                           "(--max-queue); retry shortly", "queue_full", type_="server_error",
                           headers={"Retry-After": "1"})
        state["in_flight"] += 1
        try:
            async def work():  # decoding the upload counts against the timeout too
                data = await args["file"].read()
                name = args["file"].filename or "upload"
                return await engine.transcribe_upload(data, name, args["language"],
                                                      args["prompt"], task, config.max_audio_s,
                                                      args["timestamps"], args["temperature"],
                                                      args["words"])

            result = await _with_timeout(work(), config)
        finally:
            state["in_flight"] -= 1
        metrics.latency.observe(time.perf_counter() - started)
        metrics.audio_seconds.inc(result.duration_s)
        return render(result, args["response_format"], task, config.max_subtitle_s)

    @app.post("/v1/audio/transcriptions")
    async def transcriptions(request: Request) -> Response:
        return await audio_route(request, "transcribe")

    @app.post("/v1/audio/translations")
    async def translations(request: Request) -> Response:
        return await audio_route(request, "translate")

    return app


def _authorize(request: Request, config: ServeConfig) -> None:
    if config.api_key is None or request.url.path in OPEN_PATHS:
        return
    header = request.headers.get("authorization", "")
    scheme, _, key = header.partition(" ")
    if scheme.lower() != "bearer" or not hmac.compare_digest(key.strip().encode(),
                                                             config.api_key.encode()):
        raise ApiError(401, "missing or wrong API key (send Authorization: Bearer <key>)",
                       "invalid_api_key")


async def _read_form(request: Request, config: ServeConfig):
    """The multipart form, read within --timeout (408 otherwise: the client sends too slowly)."""
    try:
        return await asyncio.wait_for(request.form(max_files=1, max_fields=16), config.timeout_s)
    except asyncio.TimeoutError:
        raise ApiError(408, f"the upload did not arrive within the server's {config.timeout_s:g} "
                       "s limit (--timeout)", "upload_timeout") from None
    except ClientDisconnect:  # the client went away mid-upload: its error, not the server's
        raise ApiError(400, "the client disconnected during the upload",
                       "client_disconnected") from None


async def _with_timeout(work, config: ServeConfig):
    try:
        return await asyncio.wait_for(work, config.timeout_s)
    except asyncio.TimeoutError:
        raise ApiError(504, f"transcription took longer than the server's {config.timeout_s:g} s "
                       "limit (--timeout)", "timeout", type_="server_error") from None


def _field(form, name: str) -> str | None:
    value = form.get(name)
    if value is None or isinstance(value, UploadFile):
        return None
    return value.strip() or None


def _parse(form, engine: ServeEngine, task: str, max_subtitle_s: float | None) -> dict:
    """The request's fields, checked; ApiError(400) names the bad field and what is accepted."""
    upload = form.get("file")
    if not isinstance(upload, UploadFile):
        raise ApiError(400, "missing 'file': send the audio as a multipart file field", "missing_file",
                       "file")
    response_format = _field(form, "response_format") or "json"
    if response_format not in FORMATS:
        raise ApiError(400, f"response_format {response_format!r} is not one of: "
                       f"{', '.join(FORMATS)}", "invalid_value", "response_format")
    temperature = _field(form, "temperature") or "0"
    try:
        ok = 0.0 <= float(temperature) <= 1.0
    except ValueError:
        ok = False
    if not ok:
        raise ApiError(400, f"temperature {temperature!r} must be a number in 0..1 (0 = "
                       "deterministic greedy decoding, above 0 = sampling)", "invalid_value",
                       "temperature")
    granularities = form.getlist("timestamp_granularities[]")
    unknown = [g for g in granularities if g not in ("segment", "word")]
    if unknown:
        raise ApiError(400, f"timestamp_granularities {unknown[0]!r} is not one of: segment, "
                       "word", "invalid_value", "timestamp_granularities")
    if granularities and response_format != "verbose_json":
        raise ApiError(400, "timestamp_granularities needs response_format 'verbose_json'",
                       "invalid_value", "timestamp_granularities")
    if "word" in granularities and not engine.transcriber.runtime.aligns:
        try:
            engine.transcriber.runtime.check_aligns()
        except ToolkitError as exc:
            raise ApiError(400, f"{exc}; or ask for 'segment' only", "invalid_value",
                           "timestamp_granularities") from None
    language = _field(form, "language")
    language = language.lower() if language else None
    try:
        engine.check_language(language, task)
    except ToolkitError as exc:
        raise ApiError(400, str(exc), "invalid_value", "language") from None
    _check_decoding(engine, response_format, float(temperature))
    return {"file": upload, "language": language, "prompt": _field(form, "prompt"),
            "response_format": response_format, "temperature": float(temperature),
            # subtitles and verbose_json get Whisper's own segments (timestamp tokens)
            "timestamps": response_format in ("srt", "vtt", "verbose_json"),
            "words": "word" in granularities or (
                max_subtitle_s is not None and response_format in ("srt", "vtt"))}


def _check_decoding(engine: ServeEngine, response_format: str, temperature: float) -> None:
    """400 before any audio is decoded for what the artifact's runtime cannot decode (a
    whisper.cpp artifact decodes text at temperature 0 only)."""
    from dataclasses import replace

    runtime, options = engine.transcriber.runtime, engine.transcriber.options
    wanted = replace(options, timestamps=response_format in ("srt", "vtt", "verbose_json"),
                     temperature=temperature if temperature > 0 else options.temperature)
    try:
        runtime.check_decoding(wanted)
    except ToolkitError as exc:
        field = "temperature" if temperature > 0 and "timestamps" not in str(exc) else \
            "response_format"
        raise ApiError(400, str(exc), "invalid_value", field) from None


def _install_error_handlers(app: FastAPI, metrics: ServerMetrics) -> None:
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
