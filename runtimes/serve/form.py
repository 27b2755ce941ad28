"""The audio routes' multipart form, read within the time limit and checked field by field.

Every bad field is a 400 naming the field and what it accepts, raised before any audio is
decoded, so a client's mistake costs the server nothing.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, replace

from starlette.datastructures import UploadFile
from starlette.requests import ClientDisconnect, Request

from runtimes.errors import ToolkitError
from runtimes.serve.config import ServeConfig
from runtimes.serve.engine import ServeEngine
from runtimes.serve.errors import ApiError
from runtimes.serve.formats import FORMATS


@dataclass(frozen=True)
class AudioRequest:
    """One transcription or translation request, its fields checked."""

    file: UploadFile
    language: str | None
    prompt: str | None
    response_format: str
    temperature: float
    timestamps: bool  # subtitles and verbose_json get Whisper's own segments
    words: bool


async def read_form(request: Request, config: ServeConfig):
    """The multipart form, read within --timeout (408 otherwise: the client sends too slowly)."""
    try:
        return await asyncio.wait_for(request.form(max_files=1, max_fields=16), config.timeout_s)
    except asyncio.TimeoutError:
        raise ApiError(408, f"the upload did not arrive within the server's {config.timeout_s:g} "
                       "s limit (--timeout)", "upload_timeout") from None
    except ClientDisconnect:  # the client went away mid-upload: its error, not the server's
        raise ApiError(400, "the client disconnected during the upload",
                       "client_disconnected") from None


def _field(form, name: str) -> str | None:
    value = form.get(name)
    if value is None or isinstance(value, UploadFile):
        return None
    return value.strip() or None


def parse_form(form, engine: ServeEngine, task: str, max_subtitle_s: float | None) -> AudioRequest:
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
    return AudioRequest(
        upload, language, _field(form, "prompt"), response_format, float(temperature),
        timestamps=response_format in ("srt", "vtt", "verbose_json"),
        words="word" in granularities or (max_subtitle_s is not None
                                          and response_format in ("srt", "vtt")))


def _check_decoding(engine: ServeEngine, response_format: str, temperature: float) -> None:
    """400 before any audio is decoded for what the artifact's runtime cannot decode (a
    whisper.cpp artifact decodes text at temperature 0 only)."""
    runtime, options = engine.transcriber.runtime, engine.transcriber.options
    wanted = replace(options, timestamps=response_format in ("srt", "vtt", "verbose_json"),
                     temperature=temperature if temperature > 0 else options.temperature)
    try:
        runtime.check_decoding(wanted)
    except ToolkitError as exc:
        field = "temperature" if temperature > 0 and "timestamps" not in str(exc) else \
            "response_format"
        raise ApiError(400, str(exc), "invalid_value", field) from None
