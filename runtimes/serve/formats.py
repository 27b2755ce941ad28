"""OpenAI's five ``response_format`` values for a served transcript.

Segments come from Whisper's timestamp tokens when the request asked for them (``srt``,
``vtt`` and ``verbose_json`` do; see ``runtimes.transcript.segments``), else they are the decoded
windows. The bodies themselves are ``runtimes.transcript.formats``', as the command line
writes them.
"""

from __future__ import annotations

from starlette.responses import JSONResponse, PlainTextResponse, Response

from runtimes.serve.engine import ServedResult
from runtimes.transcript import formats
from runtimes.transcript.formats import split_long, srt, vtt

FORMATS = ("json", "text", "srt", "vtt", "verbose_json")


def render(result: ServedResult, response_format: str, task: str,
           max_subtitle_s: float | None = None) -> Response:
    """The HTTP response for ``response_format`` (one of FORMATS, checked by the caller),
    with ``audio_headers`` whatever the format."""
    response = _body(result, response_format, task, max_subtitle_s)
    response.headers.update(audio_headers(result))
    return response


def audio_headers(result: ServedResult) -> dict[str, str]:
    """How much audio the transcript covers, on every response: the seconds decoded, the
    duration the container declares and the damaged frames skipped (a client sees that a
    damaged upload was transcribed past its damage, in any response format)."""
    audio = result.audio
    headers = {"X-Audio-Duration": f"{result.duration_s:.3f}",
               "X-Audio-Skipped-Frames": str(audio.skipped_frames)}
    if audio.declared_s is not None:
        headers["X-Audio-Declared-Duration"] = f"{audio.declared_s:.3f}"
    return headers


def _body(result: ServedResult, response_format: str, task: str,
          max_subtitle_s: float | None) -> Response:
    if response_format == "json":
        return JSONResponse({"text": result.text})
    if response_format == "text":
        return PlainTextResponse(result.text + "\n")
    segments = result.segments
    if max_subtitle_s is not None and response_format in ("srt", "vtt"):
        segments = tuple(split_long(segments, max_subtitle_s))
    if response_format == "srt":
        return PlainTextResponse(srt(segments))
    if response_format == "vtt":
        return PlainTextResponse(vtt(segments), media_type="text/vtt")
    return JSONResponse(verbose_json(result, task))


def verbose_json(result: ServedResult, task: str) -> dict:
    """OpenAI's verbose_json of a served result (``runtimes.transcript.formats``)."""
    return formats.verbose_json(result.text, result.language, result.duration_s, result.audio,
                                result.segments, task)
