"""The FastAPI application: OpenAI's audio routes, health, metrics, and the protections
(API key, upload size, queue slots, time limits). Errors leave in OpenAI's shape
(``runtimes.serve.errors``); the form's fields are checked in ``runtimes.serve.form``.
"""

from __future__ import annotations

import asyncio
import hmac
import time
from contextlib import asynccontextmanager
from dataclasses import dataclass

from fastapi import FastAPI, Request
from starlette.responses import Response

from runtimes.serve.config import ServeConfig
from runtimes.serve.engine import ServeEngine
from runtimes.serve.errors import ApiError, UploadLimit, error_response, install_error_handlers
from runtimes.serve.form import AudioRequest, parse_form, read_form
from runtimes.serve.formats import render
from runtimes.serve.metrics import ServerMetrics

OPEN_PATHS = ("/health",)  # answered without an API key (load-balancer probes)
KNOWN_PATHS = ("/health", "/metrics", "/v1/models", "/v1/audio/transcriptions",
               "/v1/audio/translations")


def create_app(engine: ServeEngine, config: ServeConfig, replica: str | None = None) -> FastAPI:
    """The application for one loaded model; the batcher runs while the app is up.
    ``replica`` names this copy in /health where several serve behind one address (Ray)."""
    state = _State()
    metrics = ServerMetrics(lambda: engine.batcher.depth, lambda: state.in_flight, replica)
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
    install_error_handlers(app, metrics)
    _add_guard(app, config, metrics)
    _add_info_routes(app, engine, config, state, metrics, replica)
    audio = _AudioRoute(engine, config, state, metrics)

    @app.post("/v1/audio/transcriptions")
    async def transcriptions(request: Request) -> Response:
        return await audio(request, "transcribe")

    @app.post("/v1/audio/translations")
    async def translations(request: Request) -> Response:
        return await audio(request, "translate")

    return app


@dataclass
class _State:
    """What the routes share: the requests being transcribed now."""

    in_flight: int = 0


def _add_guard(app: FastAPI, config: ServeConfig, metrics: ServerMetrics) -> None:
    """Authorisation before routing, and every answer counted by path and status."""

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


def _add_info_routes(app: FastAPI, engine: ServeEngine, config: ServeConfig, state: _State,
                     metrics: ServerMetrics, replica: str | None) -> None:
    """/health, /metrics and /v1/models, each answering HEAD as GET (probes use HEAD)."""

    @app.api_route("/health", methods=["GET", "HEAD"])
    async def health() -> dict:
        found = {"status": "ok", "model": config.model_id, "queue_depth": engine.batcher.depth,
                 "in_flight": state.in_flight}
        return found if replica is None else {**found, "replica": replica}

    @app.api_route("/metrics", methods=["GET", "HEAD"])
    async def prometheus() -> Response:
        return Response(metrics.render(), media_type="text/plain; version=0.0.4; charset=utf-8")

    @app.api_route("/v1/models", methods=["GET", "HEAD"])
    async def models() -> dict:
        return {"object": "list", "data": [
            {"id": config.model_id, "object": "model", "created": 0,
             "owned_by": "whisper-exporters"}]}


class _AudioRoute:
    """POST /v1/audio/transcriptions and /translations: form, queue slot, transcription.

    The upload is read first, within --timeout, and only then takes a --max-queue slot:
    slow clients sending a byte at a time would otherwise lock everyone out with 503s,
    each holding a slot while trickling in."""

    def __init__(self, engine: ServeEngine, config: ServeConfig, state: _State,
                 metrics: ServerMetrics) -> None:
        self.engine, self.config, self.state, self.metrics = engine, config, state, metrics

    async def __call__(self, request: Request, task: str) -> Response:
        config, started = self.config, time.perf_counter()
        form = await read_form(request, config)
        args = parse_form(form, self.engine, task, config.max_subtitle_s)
        if self.state.in_flight >= config.max_queue:
            raise ApiError(503, f"server busy: {config.max_queue} requests already queued "
                           "(--max-queue); retry shortly", "queue_full", type_="server_error",
                           headers={"Retry-After": "1"})
        self.state.in_flight += 1
        try:  # decoding the upload counts against the timeout too
            result = await _with_timeout(self._transcribe(args, task), config)
        finally:
            self.state.in_flight -= 1
        self.metrics.latency.observe(time.perf_counter() - started)
        self.metrics.audio_seconds.inc(result.duration_s)
        return render(result, args.response_format, task, config.max_subtitle_s)

    async def _transcribe(self, args: AudioRequest, task: str):
        data = await args.file.read()
        return await self.engine.transcribe_upload(
            data, args.file.filename or "upload", args.language, args.prompt, task,
            self.config.max_audio_s, args.timestamps, args.temperature, args.words)


def _authorize(request: Request, config: ServeConfig) -> None:
    if config.api_key is None or request.url.path in OPEN_PATHS:
        return
    header = request.headers.get("authorization", "")
    scheme, _, key = header.partition(" ")
    if scheme.lower() != "bearer" or not hmac.compare_digest(key.strip().encode(),
                                                             config.api_key.encode()):
        raise ApiError(401, "missing or wrong API key (send Authorization: Bearer <key>)",
                       "invalid_api_key")


async def _with_timeout(work, config: ServeConfig):
    try:
        return await asyncio.wait_for(work, config.timeout_s)
    except asyncio.TimeoutError:
        raise ApiError(504, f"transcription took longer than the server's {config.timeout_s:g} s "
                       "limit (--timeout)", "timeout", type_="server_error") from None


