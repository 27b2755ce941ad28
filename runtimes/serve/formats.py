"""OpenAI's five ``response_format`` values for a served transcript.

Segments are the decoded windows (the whole upload up to 30 s, VAD-cut windows beyond), so
their timestamps are window boundaries: every runtime decodes without timestamp tokens to
stay comparable, and the server does not fake finer timing than it has. Fields OpenAI fills
from sampling statistics (avg_logprob, no_speech_prob) are left out for the same reason.
"""

from __future__ import annotations

import zlib

from starlette.responses import JSONResponse, PlainTextResponse, Response

from runtimes.languages import LANGUAGES
from runtimes.serve.engine import Segment, ServedResult

FORMATS = ("json", "text", "srt", "vtt", "verbose_json")


def render(result: ServedResult, response_format: str, task: str) -> Response:
    """The HTTP response for ``response_format`` (one of FORMATS, checked by the caller)."""
    if response_format == "json":
        return JSONResponse({"text": result.text})
    if response_format == "text":
        return PlainTextResponse(result.text + "\n")
    if response_format == "srt":
        return PlainTextResponse(srt(result.segments))
    if response_format == "vtt":
        return PlainTextResponse(vtt(result.segments), media_type="text/vtt")
    return JSONResponse(verbose_json(result, task))


def timestamp(seconds: float, decimal: str) -> str:
    """``HH:MM:SS,mmm`` (SRT, decimal ",") or ``HH:MM:SS.mmm`` (WebVTT, decimal ".")."""
    ms = round(seconds * 1000)
    hours, ms = divmod(ms, 3_600_000)
    minutes, ms = divmod(ms, 60_000)
    secs, ms = divmod(ms, 1000)
    return f"{hours:02d}:{minutes:02d}:{secs:02d}{decimal}{ms:03d}"


def _spoken(segments: tuple[Segment, ...]) -> list[Segment]:
    return [s for s in segments if s.text]


def srt(segments: tuple[Segment, ...]) -> str:
    blocks = [
        f"{i}\n{timestamp(s.start, ',')} --> {timestamp(s.end, ',')}\n{s.text}\n"
        for i, s in enumerate(_spoken(segments), 1)
    ]
    return "\n".join(blocks)


def vtt(segments: tuple[Segment, ...]) -> str:
    blocks = [f"{timestamp(s.start, '.')} --> {timestamp(s.end, '.')}\n{s.text}\n"
              for s in _spoken(segments)]
    return "\n".join(["WEBVTT\n", *blocks])


def compression_ratio(text: str) -> float:
    """Bytes / zlib-compressed bytes: above ~2.4 a transcript is likely a repetition loop
    (openai/whisper's hallucination check)."""
    data = text.encode()
    return len(data) / len(zlib.compress(data)) if data else 0.0


def verbose_json(result: ServedResult, task: str) -> dict:
    return {
        "task": task,
        "language": LANGUAGES.get(result.language, result.language),
        "duration": round(result.duration_s, 3),
        "text": result.text,
        "segments": [
            {"id": i, "seek": round(s.start * 100), "start": round(s.start, 3),
             "end": round(s.end, 3), "text": s.text, "tokens": list(s.tokens),
             "temperature": 0.0, "compression_ratio": round(compression_ratio(s.text), 3)}
            for i, s in enumerate(result.segments)
        ],
    }
