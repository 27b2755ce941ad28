"""Output formats of a transcript's segments: SubRip, WebVTT, TSV, JSON, OpenAI's
verbose_json, and subtitles cut to a reading length at word timestamps. One module for the
CLI, the batch job's rows and the server's ``response_format``s, so a format means the same
wherever it is written.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

from runtimes.audio.files import AudioReport
from runtimes.decode.fallback import compression_ratio
from runtimes.decode.languages import LANGUAGES
from runtimes.transcript.segments import Segment
from runtimes.transcript.words import Word


def score_json(value: float) -> float | None:
    """A score for JSON output: rounded to 4 places, or null where it was not computed."""
    return None if value != value else round(value, 4)


def segment_json(segment: Segment) -> dict:
    """A segment as JSON (``python -m runtimes --format json``, the batch job's rows),
    scores rounded (null where not computed); "words" only where aligned."""
    found = {"start": segment.start, "end": segment.end, "text": segment.text,
             "temperature": segment.temperature, "avg_logprob": score_json(segment.avg_logprob),
             "compression_ratio": round(segment.compression_ratio, 3),
             "no_speech_prob": score_json(segment.no_speech_prob)}
    if segment.words:
        found["words"] = [{"start": w.start, "end": w.end, "word": w.word,
                           "probability": round(w.probability, 4)} for w in segment.words]
    return found


def clock(seconds: float, decimal: str) -> str:
    """``HH:MM:SS,mmm`` (SRT, decimal ",") or ``HH:MM:SS.mmm`` (WebVTT, decimal ".")."""
    ms = round(seconds * 1000)
    hours, ms = divmod(ms, 3_600_000)
    minutes, ms = divmod(ms, 60_000)
    secs, ms = divmod(ms, 1000)
    return f"{hours:02d}:{minutes:02d}:{secs:02d}{decimal}{ms:03d}"


def srt(segments: Sequence[Segment]) -> str:
    """SubRip subtitles of the segments."""
    spoken = [s for s in segments if s.text]
    return "\n".join(f"{i}\n{clock(s.start, ',')} --> {clock(s.end, ',')}\n{s.text}\n"
                     for i, s in enumerate(spoken, 1))


def vtt(segments: Sequence[Segment]) -> str:
    """WebVTT subtitles of the segments."""
    blocks = [f"{clock(s.start, '.')} --> {clock(s.end, '.')}\n{s.text}\n"
              for s in segments if s.text]
    return "\n".join(["WEBVTT\n", *blocks])


def tsv(segments: Sequence[Segment]) -> str:
    """Tab-separated segments as openai-whisper's ``--output_format tsv`` writes them: a
    ``start, end, text`` header, times in integer milliseconds, tabs in the text as spaces."""
    rows = [f"{round(1000 * s.start)}\t{round(1000 * s.end)}\t{s.text.replace(chr(9), ' ')}"
            for s in segments if s.text]
    return "\n".join(["start\tend\ttext", *rows]) + "\n"


def verbose_json(text: str, language: str, duration_s: float, audio: AudioReport | None,
                 segments: Sequence[Segment], task: str) -> dict:
    """OpenAI's verbose_json: segments with openai/whisper's fields, and ``words`` (word,
    start, end, as OpenAI spells them) where the segments have words; the audio decoded
    against what the container declares, and the damaged frames skipped."""
    declared = None if audio is None else audio.declared_s
    body = {
        "task": task,
        "language": LANGUAGES.get(language, language),
        "duration": round(duration_s, 3),
        "declared_duration": None if declared is None else round(declared, 3),
        "skipped_frames": 0 if audio is None else audio.skipped_frames,
        "text": text,
        "segments": [
            {"id": i, "seek": round(s.start * 100), "start": round(s.start, 3),
             "end": round(s.end, 3), "text": s.text, "tokens": list(s.tokens),
             "temperature": s.temperature, "avg_logprob": score_json(s.avg_logprob),
             "compression_ratio": round(s.compression_ratio, 3),
             "no_speech_prob": score_json(s.no_speech_prob)}
            for i, s in enumerate(segments)
        ],
    }
    words = [w for s in segments for w in s.words]
    if words:
        body["words"] = [{"word": w.word.strip(), "start": round(w.start, 3),
                          "end": round(w.end, 3)} for w in words]
    return body


def split_long(segments: Sequence[Segment], max_seconds: float) -> list[Segment]:
    """Subtitle-sized segments: one longer than ``max_seconds`` is cut at its word
    timestamps into pieces of at most that length where the words allow (a single longer
    word stays whole), preferring a cut after punctuation in the second half of a piece.
    Segments without words are kept as they are."""
    out: list[Segment] = []
    for segment in segments:
        if segment.end - segment.start <= max_seconds or not segment.words:
            out.append(segment)
            continue
        for piece in _word_runs(segment.words, max_seconds):
            text = "".join(w.word for w in piece).strip()
            out.append(replace(segment, start=piece[0].start, end=piece[-1].end, text=text,
                               tokens=tuple(t for w in piece for t in w.tokens),
                               compression_ratio=compression_ratio(text), words=tuple(piece)))
    return out


def _word_runs(words: Sequence[Word], max_seconds: float) -> list[list[Word]]:
    runs: list[list[Word]] = []
    run: list[Word] = []
    for word in words:
        if run and word.end - run[0].start > max_seconds:
            cut = next((i for i in range(len(run) - 1, len(run) // 2 - 1, -1)
                        if run[i].word.rstrip()[-1:] in ",.;:!?"), len(run) - 1) + 1
            runs.append(run[:cut])
            run = run[cut:]
        run.append(word)
    return runs + [run] if run else runs
