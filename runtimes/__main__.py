"""``python -m runtimes ARTIFACT AUDIO...``: transcribe files with any artifact."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from runtimes.cli import (
    BATCH_SIZE_HELP,
    PACK_HELP,
    SUBTITLE_HELP,
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
#: a format's file name extension with --output-dir
EXTENSIONS = {"text": "txt", "srt": "srt", "vtt": "vtt", "tsv": "tsv", "json": "json"}


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m runtimes", description=__doc__)
    p.add_argument("artifact", type=Path, help="artifact, transformers or CTranslate2 directory")
    p.add_argument("audio", type=Path, nargs="+", help="audio files (wav, flac, mp3, ogg, ...)")
    add_runtime_arguments(p)
    p.add_argument("--batch-size", type=int, default=8, help=BATCH_SIZE_HELP)
    p.add_argument("--pack", action="store_true", help=PACK_HELP)
    add_decoding_arguments(p, timestamps_default=False,
                           timestamps_help="(implied by --format srt|vtt|tsv|json)",
                           words_help="shown by --format json")
    p.add_argument("--max-subtitle-s", type=float, default=None, metavar="S",
                   help=SUBTITLE_HELP)
    p.add_argument("--format", default="text", choices=(*FORMATS, "all"),
                   help="text: one 'FILE<TAB>transcript' line per file (default); srt, vtt: "
                   "one file's subtitles; tsv: one file's segments (start and end in ms, "
                   "as openai-whisper writes them); json: one object per line per file, the "
                   "server's verbose_json body (OpenAI's: language, duration, segments with "
                   "scores, words) with the file's name; all: every format (with --output-dir)")
    p.add_argument("--output-dir", type=Path, metavar="DIR",
                   help="write one file per input and format, DIR/NAME.txt|srt|vtt|tsv|json "
                   "(NAME: the audio file's name without its extension), as whisper.cpp and "
                   "openai-whisper do, instead of printing")
    return p


def main(argv: list[str] | None = None) -> int:
    import runtimes

    args = build_parser().parse_args(argv)
    try:
        _check_inputs(args.audio, args.format, args.output_dir)
        options = runtime_options(args)
        if args.max_subtitle_s is not None and not args.max_subtitle_s >= 1:
            raise OptionError(f"--max-subtitle-s must be a number of seconds >= 1, got "
                              f"{args.max_subtitle_s}")
        decoding = decoding_options(
            args, timestamps=args.timestamps or args.format != "text" or (
                args.output_dir is not None),
            word_timestamps=args.word_timestamps or args.max_subtitle_s is not None)
        decoding = fitted(args.artifact, decoding, args)
        with runtimes.load(args.artifact, options, decoding) as model:
            results = model.transcribe(args.audio, batch_size=args.batch_size,
                                       pack=args.pack)
    except (ToolkitError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    for path, result in zip(args.audio, results):
        if result.audio is not None and (damage := result.audio.describe(str(path))):
            print(f"warning: {damage}", file=sys.stderr)
        if args.output_dir is None:
            print(render(path, result, args.format, args.max_subtitle_s, task=args.task))
            continue
        try:  # the folder is made once there is something to write in it
            args.output_dir.mkdir(parents=True, exist_ok=True)
            written = [_write(args.output_dir / f"{path.stem}.{EXTENSIONS[fmt]}",
                              render(path, result, fmt, args.max_subtitle_s, True, args.task))
                       for fmt in (FORMATS if args.format == "all" else (args.format,))]
        except OSError as exc:
            print(f"error: cannot write in --output-dir {args.output_dir}: "
                  f"{exc.strerror or exc}", file=sys.stderr)
            return 2
        print(f"{path}: wrote {', '.join(map(str, written))}", file=sys.stderr)
    return 0


def _write(out: Path, text: str) -> Path:
    """``text`` to ``out`` through a temporary file beside it, so an interrupted run never
    leaves a half-written output under the final name."""
    partial = out.with_name(f".{out.name}.partial-{os.getpid()}")
    partial.write_text(text if text.endswith("\n") else text + "\n", encoding="utf-8")
    os.replace(partial, out)
    return out


def _check_inputs(audio: list[Path], fmt: str, output_dir: Path | None) -> None:
    """Before the model loads: every input is a file; on standard output, subtitles and
    TSV are one file's (SRT, WebVTT and TSV have no way to hold several files in one
    stream); with --output-dir, no two inputs may write the same names."""
    for path in audio:
        if path.is_dir():
            raise OptionError(f"{path} is a directory: give audio files (python -m "
                              "runtimes.batch transcribes every audio file under a folder)")
    if output_dir is not None:
        _check_output_dir(audio, output_dir)
    elif fmt == "all":
        raise OptionError("--format all writes one file per format: give --output-dir DIR")
    elif fmt in ONE_FILE and len(audio) > 1:
        raise OptionError(f"--format {fmt} writes one file's segments to standard output, "
                          f"got {len(audio)} files: give one, or --output-dir DIR for a file "
                          "per input")


def _check_output_dir(audio: list[Path], output_dir: Path) -> None:
    stems = [path.stem for path in audio]
    twice = sorted({stem for stem in stems if stems.count(stem) > 1})
    if twice:
        raise OptionError(f"--output-dir: several inputs are named {twice[0]!r} (without their "
                          "extension), so their outputs would overwrite each other: rename "
                          "them or transcribe them separately")
    if output_dir.exists() and not output_dir.is_dir():
        raise OptionError(f"--output-dir {output_dir} exists and is not a directory")


def render(path: Path, result, fmt: str, max_subtitle_s: float | None = None,
           bare: bool = False, task: str = "transcribe") -> str:
    """One file's output in ``fmt`` (see --format); subtitles cut at ``max_subtitle_s``;
    ``bare``: without the file's name (a file of its own)."""
    from runtimes.transcript.formats import split_long, srt, tsv, verbose_json, vtt

    if fmt == "text":
        return result.text if bare else f"{path}\t{result.text}"
    if fmt == "json":  # OpenAI's verbose_json body, as the server answers it
        import json

        body = verbose_json(result.text, result.language, result.duration_s, result.audio,
                            result.segments, task)
        return json.dumps(body if bare else {"file": str(path), **body}, ensure_ascii=False)
    if fmt == "tsv":
        return tsv(result.segments).rstrip("\n")
    segments = result.segments if max_subtitle_s is None else split_long(result.segments,
                                                                          max_subtitle_s)
    return srt(segments) if fmt == "srt" else vtt(segments)


if __name__ == "__main__":
    sys.exit(main())
