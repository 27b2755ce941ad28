"""``python -m runtimes ARTIFACT AUDIO...``: transcribe files with any artifact."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from runtimes.cli import add_integrity_arguments, add_long_form_arguments
from runtimes.errors import OptionError, ToolkitError

FORMATS = ("text", "srt", "vtt", "json")


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m runtimes", description=__doc__)
    p.add_argument("artifact", type=Path, help="artifact, transformers or CTranslate2 directory")
    p.add_argument("audio", type=Path, nargs="+", help="audio files (wav, flac, mp3, ogg, ...)")
    p.add_argument("--device", default="cpu", choices=("cpu", "cuda"))
    p.add_argument("--precision", help="compute precision (default: the artifact's own)")
    p.add_argument("--threads", type=int, default=0, help="0 = all cores")
    p.add_argument("--provider", choices=("cuda", "tensorrt"),
                   help="ONNX Runtime execution provider on cuda (default: cuda)")
    p.add_argument("--cache-dir", help="TensorRT engine/timing cache directory")
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--beam-size", type=int, default=1)
    p.add_argument("--language", help="e.g. en, de (multilingual models; default: detect)")
    p.add_argument("--task", default="transcribe", choices=("transcribe", "translate"))
    p.add_argument("--timestamps", action="store_true",
                   help="decode Whisper's segment timestamps (implied by --format srt|vtt|json)")
    p.add_argument("--word-timestamps", action="store_true",
                   help="words with their times (CTranslate2 artifacts, ONNX, OpenVINO and "
                   "TorchScript artifacts exported with --word-timestamps, transformers "
                   "directories; implies "
                   "--timestamps; shown by --format json)")
    p.add_argument("--max-subtitle-s", type=float, default=None, metavar="S",
                   help="srt/vtt: cut segments longer than S seconds at word timestamps "
                   "(implies --word-timestamps), e.g. 7")
    p.add_argument("--temperature", type=float, nargs="+", default=[0.0], metavar="T",
                   help="0 = deterministic (default); several values = faster-whisper's "
                   "fallback ladder, e.g. 0 0.2 0.4 0.6 0.8 1.0 (with no-speech detection)")
    p.add_argument("--best-of", type=int, default=5, help="samples per window above 0")
    p.add_argument("--compression-ratio-threshold", type=float, default=2.4)
    p.add_argument("--log-prob-threshold", type=float, default=-1.0)
    p.add_argument("--no-speech-threshold", type=float, default=0.6)
    p.add_argument("--seed", type=int, default=0, help="seed of the sampling (default 0)")
    add_long_form_arguments(p)
    p.add_argument("--format", default="text", choices=FORMATS,
                   help="text: one 'FILE<TAB>transcript' line per file (default); srt, vtt: "
                   "subtitles, one block per file after a '# FILE' line; json: one object "
                   "per line with the segments")
    p.add_argument("--trust-torchscript", action="store_true",
                   help="load a TorchScript artifact: it is a program, so only one you made or "
                   "trust")
    add_integrity_arguments(p)
    return p


def main(argv: list[str] | None = None) -> int:
    import runtimes

    args = build_parser().parse_args(argv)
    try:
        options = runtimes.RuntimeOptions(args.device, args.precision, args.threads,
                                          args.provider, args.cache_dir,
                                          trust_code=args.trust_torchscript,
                                          verify_checksums=not args.skip_checksums,
                                          expect_digest=args.expect_digest)
        if args.max_subtitle_s is not None and not args.max_subtitle_s >= 1:
            raise OptionError(f"--max-subtitle-s must be a number of seconds >= 1, got "
                              f"{args.max_subtitle_s}")
        decoding = runtimes.DecodingOptions(
            args.beam_size, args.language, args.task,
            timestamps=args.timestamps or args.format != "text",
            word_timestamps=args.word_timestamps or args.max_subtitle_s is not None,
            temperature=tuple(args.temperature), best_of=args.best_of,
            compression_ratio_threshold=args.compression_ratio_threshold,
            log_prob_threshold=args.log_prob_threshold,
            no_speech_threshold=args.no_speech_threshold, seed=args.seed,
            long_form=args.long_form,
            condition_on_previous_text=not args.no_condition_on_previous_text)
        with runtimes.load(args.artifact, options, decoding) as model:
            results = model.transcribe(args.audio, batch_size=args.batch_size)
    except (ToolkitError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    for path, result in zip(args.audio, results):
        print(render(path, result, args.format, args.max_subtitle_s))
    return 0


def render(path: Path, result, fmt: str, max_subtitle_s: float | None = None) -> str:
    """One file's output in ``fmt`` (see --format); subtitles cut at ``max_subtitle_s``."""
    from runtimes.segments import split_long, srt, vtt

    if fmt == "text":
        return f"{path}\t{result.text}"
    if fmt == "json":
        import json

        return json.dumps({"file": str(path), "text": result.text, "language": result.language,
                           "duration": round(result.duration_s, 3),
                           "segments": [segment_json(s) for s in result.segments]})
    segments = result.segments if max_subtitle_s is None else split_long(result.segments,
                                                                          max_subtitle_s)
    return f"# {path}\n{srt(segments) if fmt == 'srt' else vtt(segments)}"


def segment_json(segment) -> dict:
    """A segment as JSON, scores rounded (null where not computed)."""
    from runtimes.segments import score_json as number

    found = {"start": segment.start, "end": segment.end, "text": segment.text,
             "temperature": segment.temperature, "avg_logprob": number(segment.avg_logprob),
             "compression_ratio": round(segment.compression_ratio, 3),
             "no_speech_prob": number(segment.no_speech_prob)}
    if segment.words:
        found["words"] = [{"start": w.start, "end": w.end, "word": w.word,
                           "probability": round(w.probability, 4)} for w in segment.words]
    return found


if __name__ == "__main__":
    sys.exit(main())
