"""OpenAI's five ``response_format`` values for a served transcript.

Segments come from Whisper's timestamp tokens when the request asked for them (``srt``,
``vtt`` and ``verbose_json`` do; see ``runtimes.transcript.segments``), else they are the decoded
windows. Fields OpenAI fills from sampling statistics (avg_logprob, no_speech_prob) are
left out until the runtimes report them.
"""

from __future__ import annotations

from starlette.responses import JSONResponse, PlainTextResponse, Response

from runtimes.decode.languages import LANGUAGES
from runtimes.serve.engine import ServedResult
from runtimes.transcript.formats import score_json, split_long, srt, vtt

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
    """OpenAI's verbose_json: segments with openai/whisper's fields, and ``words`` (word,
    start, end, as OpenAI spells them) when the request asked for word timestamps."""
    body = {
        "task": task,
        "language": LANGUAGES.get(result.language, result.language),
        "duration": round(result.duration_s, 3),
        "declared_duration": None if result.audio.declared_s is None
        else round(result.audio.declared_s, 3),
        "skipped_frames": result.audio.skipped_frames,
        "text": result.text,
        "segments": [
            {"id": i, "seek": round(s.start * 100), "start": round(s.start, 3),
             "end": round(s.end, 3), "text": s.text, "tokens": list(s.tokens),
             "temperature": s.temperature, "avg_logprob": score_json(s.avg_logprob),
             "compression_ratio": round(s.compression_ratio, 3),
             "no_speech_prob": score_json(s.no_speech_prob)}
            for i, s in enumerate(result.segments)
        ],
    }
    words = [w for s in result.segments for w in s.words]
    if words:
        body["words"] = [{"word": w.word.strip(), "start": round(w.start, 3),
                          "end": round(w.end, 3)} for w in words]
    return body
