"""``python -m runtimes ARTIFACT AUDIO...``: transcribe files with any artifact."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from runtimes.cli import (
    add_decoding_arguments,
    add_runtime_arguments,
    decoding_options,
    fitted,
    runtime_options,
)
from runtimes.errors import OptionError, ToolkitError

FORMATS = ("text", "srt", "vtt", "tsv", "json")
#: formats that hold one file's segments (no way to tell several files apart in them)
ONE_FILE = ("srt", "vtt", "tsv")


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m runtimes", description=__doc__)
    p.add_argument("artifact", type=Path, help="artifact, transformers or CTranslate2 directory")
    p.add_argument("audio", type=Path, nargs="+", help="audio files (wav, flac, mp3, ogg, ...)")
    add_runtime_arguments(p)
    p.add_argument("--batch-size", type=int, default=8)
    add_decoding_arguments(p, timestamps_default=False,
                           timestamps_help="(implied by --format srt|vtt|tsv|json)",
                           words_help="shown by --format json")
    p.add_argument("--max-subtitle-s", type=float, default=None, metavar="S",
                   help="srt/vtt: cut segments longer than S seconds at word timestamps "
                   "(implies --word-timestamps), e.g. 7")
    p.add_argument("--format", default="text", choices=FORMATS,
                   help="text: one 'FILE<TAB>transcript' line per file (default); srt, vtt: "
                   "one file's subtitles; tsv: one file's segments (start and end in ms, "
                   "as openai-whisper writes them); json: one object per line per file, "
                   "with the segments")
    return p


def main(argv: list[str] | None = None) -> int:
    import runtimes

    args = build_parser().parse_args(argv)
    try:
        _check_inputs(args.audio, args.format)
        options = runtime_options(args)
        if args.max_subtitle_s is not None and not args.max_subtitle_s >= 1:
            raise OptionError(f"--max-subtitle-s must be a number of seconds >= 1, got "
                              f"{args.max_subtitle_s}")
        decoding = decoding_options(
            args, timestamps=args.timestamps or args.format != "text",
            word_timestamps=args.word_timestamps or args.max_subtitle_s is not None)
        decoding = fitted(args.artifact, decoding, args)
        with runtimes.load(args.artifact, options, decoding) as model:
            results = model.transcribe(args.audio, batch_size=args.batch_size)
    except (ToolkitError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    for path, result in zip(args.audio, results):
        if result.audio is not None and (damage := result.audio.describe(str(path))):
            print(f"warning: {damage}", file=sys.stderr)
        print(render(path, result, args.format, args.max_subtitle_s))
    return 0


def _check_inputs(audio: list[Path], fmt: str) -> None:
    """Before the model loads: every input is a file, and subtitles and TSV are one file's
    (SRT, WebVTT and TSV have no way to hold several files in one stream)."""
    for path in audio:
        if path.is_dir():
            raise OptionError(f"{path} is a directory: give audio files (python -m "
                              "runtimes.batch transcribes every audio file under a folder)")
    if fmt in ONE_FILE and len(audio) > 1:
        raise OptionError(f"--format {fmt} writes one file's segments to standard output, "
                          f"got {len(audio)} files: give one (or use --format json)")


def render(path: Path, result, fmt: str, max_subtitle_s: float | None = None) -> str:
    """One file's output in ``fmt`` (see --format); subtitles cut at ``max_subtitle_s``."""
    from runtimes.transcript.formats import segment_json, split_long, srt, tsv, vtt

    if fmt == "text":
        return f"{path}\t{result.text}"
    if fmt == "json":
        import json

        audio = result.audio
        return json.dumps({"file": str(path), "text": result.text, "language": result.language,
                           "duration": round(result.duration_s, 3),
                           "declared_duration": None if audio is None or audio.declared_s is None
                           else round(audio.declared_s, 3),
                           "skipped_frames": 0 if audio is None else audio.skipped_frames,
                           "segments": [segment_json(s) for s in result.segments]})
    if fmt == "tsv":
        return tsv(result.segments).rstrip("\n")
    segments = result.segments if max_subtitle_s is None else split_long(result.segments,
                                                                          max_subtitle_s)
    return srt(segments) if fmt == "srt" else vtt(segments)


if __name__ == "__main__":
    sys.exit(main())
