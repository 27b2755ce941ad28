"""Command-line options the toolkit's command lines share (``python -m runtimes``,
``python -m runtimes.serve``, ``python -m bench`` and the comparison)."""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING

from runtimes.precision import RUNTIME_HELP

if TYPE_CHECKING:
    from runtimes.base import DecodingOptions, RuntimeOptions

#: One help text per flag that several command lines take (a test holds them to it).
THREADS_HELP = "intra-op threads per runtime; 0 = all cores"
LANGUAGE_HELP = "e.g. en, de (multilingual models; default: detect)"
DEVICE_HELP = "where the models run: cpu (default) or cuda (an NVIDIA GPU)"
TRUST_HELP = ("load TorchScript artifacts: they are programs, so only ones you made or trust "
              "(RuntimeOptions.trust_code)")
BATCH_SIZE_HELP = "windows per model call (default 8)"
SUBTITLE_HELP = ("srt/vtt: cut segments longer than S seconds at word timestamps (the artifact "
                 "must align: CTranslate2, transformers, or ONNX, OpenVINO and TorchScript "
                 "exported with --word-timestamps), e.g. 7")
PACK_HELP = ("short clips share 30 s windows: several clips of this run in one window, "
             "separated by 0.3 s of faint noise, each given the words aligned inside it "
             "(the artifact must align, as for --word-timestamps). Faster on many short "
             "files; a clip's text then depends on the clips beside it "
             "(docs/packing.md)")
ADDRESS_HELP = ("join a running Ray cluster (auto, HOST:PORT, ray://HOST:PORT); default: start "
                "a local Ray")
BEAM_HELP = ("beams per window; 1 = greedy search (default here). faster-whisper's default "
             "is 5: measured on tiny.en CTranslate2 int8, 1.34x the time for 0.83 fewer WER "
             "points on short clips (6.25 -> 5.42%%), 1.64x for 0.32 on long recordings "
             "(docs/benchmarks/flag-cost-*.md)")


def add_integrity_arguments(p: argparse.ArgumentParser) -> None:
    """--expect-digest and --skip-checksums (shared with ``python -m runtimes.serve``)."""
    p.add_argument("--expect-digest", metavar="sha256:HEX",
                   help="refuse the artifact unless its manifest has this digest (the export "
                   "prints it): pins exactly what is deployed")
    p.add_argument("--skip-checksums", action="store_true",
                   help="check files' presence and size only, not their sha256 (trusted hot "
                   "paths; measured: 0.11-0.17 s for the 153 MB tiny.en ONNX fp32 artifact)")


def add_long_form_arguments(p: argparse.ArgumentParser) -> None:
    """--long-form and --no-condition-on-previous-text (DecodingOptions.long_form and
    condition_on_previous_text), for every command line that decodes."""
    p.add_argument("--long-form", default="vad", choices=("vad", "sequential"),
                   help="recordings over 30 s: vad = speech windows decoded in parallel "
                   "(default; faster-whisper's batched pipeline); sequential = openai/whisper's "
                   "seeking from segment to segment, each window prompted with the text before "
                   "it (implies timestamps; faster-whisper's WhisperModel default). Measured on "
                   "tiny.en CTranslate2 int8 long recordings: sequential 1.28x the time at "
                   "5.60%% WER against 5.28%%; with --beam-size 5 (faster-whisper's settings) "
                   "2.06x at 4.74%% (docs/benchmarks/flag-cost-longform.md)")
    p.add_argument("--no-condition-on-previous-text", action="store_true",
                   help="sequential: do not prompt a window with the text before it")


def add_runtime_arguments(p: argparse.ArgumentParser) -> None:
    """Where and how the artifact runs (``RuntimeOptions``; see :func:`runtime_options`)."""
    p.add_argument("--device", default="cpu", choices=("cpu", "cuda"), help=DEVICE_HELP)
    p.add_argument("--precision", metavar="NAME", help=RUNTIME_HELP)
    p.add_argument("--threads", type=int, default=0, help=THREADS_HELP)
    p.add_argument("--provider", choices=("cuda", "tensorrt"),
                   help="ONNX Runtime execution provider on cuda (default: cuda)")
    p.add_argument("--cache-dir", help="TensorRT engine/timing cache directory")
    p.add_argument("--trust-torchscript", action="store_true", help=TRUST_HELP)
    add_integrity_arguments(p)


def runtime_options(args: argparse.Namespace) -> RuntimeOptions:
    """The ``RuntimeOptions`` of :func:`add_runtime_arguments`' flags."""
    from runtimes.base import RuntimeOptions

    return RuntimeOptions(args.device, args.precision, args.threads, args.provider,
                          args.cache_dir, trust_code=args.trust_torchscript,
                          verify_checksums=not args.skip_checksums,
                          expect_digest=args.expect_digest)


def add_fallback_arguments(p: argparse.ArgumentParser) -> None:
    """The temperature-fallback ladder (on by default, as faster-whisper decodes) or plain
    greedy decoding, and the thresholds that judge a window; see :func:`temperatures`."""
    ladder = p.add_mutually_exclusive_group()
    ladder.add_argument("--temperature", type=float, nargs="+", default=None, metavar="T",
                        help="temperatures tried in turn for a window whose text fails the "
                        "thresholds below (default: faster-whisper's 0 0.2 0.4 0.6 0.8 1.0, "
                        "with windows judged silent giving no text); one value: that "
                        "temperature alone")
    ladder.add_argument("--no-fallback", action="store_true",
                        help="plain greedy decoding at temperature 0: no retries and no "
                        "silence judgment (faster, but a repetition loop stays in the text)")
    p.add_argument("--best-of", type=int, default=5,
                   help="samples per window at a temperature above 0 (default 5)")
    p.add_argument("--compression-ratio-threshold", type=float, default=2.4,
                   help="fallback: a window whose text compresses more than this (a "
                   "repetition loop) is decoded again hotter (default 2.4, as faster-whisper)")
    p.add_argument("--log-prob-threshold", type=float, default=-1.0,
                   help="fallback: a window whose average log-probability is below this is "
                   "decoded again hotter (default -1.0, as faster-whisper)")
    p.add_argument("--no-speech-threshold", type=float, default=0.6,
                   help="fallback: a window whose no-speech probability is above this and "
                   "whose log-probability is low gives no text (default 0.6, as faster-whisper)")
    p.add_argument("--seed", type=int, default=0, help="seed of the sampling (default 0)")


def fallback_fields(args: argparse.Namespace) -> dict:
    """The ``DecodingOptions`` fields of :func:`add_fallback_arguments`' flags."""
    return dict(temperature=temperatures(args), best_of=args.best_of,
                compression_ratio_threshold=args.compression_ratio_threshold,
                log_prob_threshold=args.log_prob_threshold,
                no_speech_threshold=args.no_speech_threshold, seed=args.seed)


def temperatures(args: argparse.Namespace) -> tuple[float, ...]:
    """The temperatures the flags ask for: the default ladder, the given ones, or 0."""
    from runtimes.options import FALLBACK_LADDER

    if args.no_fallback:
        return (0.0,)
    return tuple(args.temperature) if args.temperature else FALLBACK_LADDER


def fitted(model_dir, decoding: DecodingOptions, args: argparse.Namespace,
           note=lambda line: print(line, file=sys.stderr)) -> DecodingOptions:
    """``decoding`` for the artifact at ``model_dir``: the default ladder is dropped, with a
    note, where its runtime cannot decode it (whisper.cpp artifacts decode text at
    temperature 0 only); a ladder the user asked for is left for the runtime to refuse."""
    from dataclasses import replace

    from runtimes.engines.registry import detect_format, runtime_class

    if args.temperature or args.no_fallback or not decoding.fallback:
        return decoding
    fmt = detect_format(model_dir)
    if runtime_class(fmt).falls_back:
        return decoding
    note(f"note: {fmt} artifacts decode at temperature 0 only here: greedy decoding, without "
         "the fallback ladder")
    return replace(decoding, temperature=0.0)


def add_decoding_arguments(p: argparse.ArgumentParser, timestamps_default: bool,
                           timestamps_help: str = "", words_help: str = "") -> None:
    """Decoding flags (``DecodingOptions``; see :func:`decoding_options`): --timestamps
    where they are off by default, --no-timestamps where they are on."""
    p.add_argument("--beam-size", type=int, default=1, help=BEAM_HELP)
    p.add_argument("--language", help=LANGUAGE_HELP)
    p.add_argument("--task", default="transcribe", choices=("transcribe", "translate"),
                   help="transcribe (default) or translate into English (multilingual models)")
    if timestamps_default:
        p.add_argument("--no-timestamps", dest="timestamps", action="store_false",
                       help="no segment timestamps: one segment per window " + timestamps_help)
    else:
        p.add_argument("--timestamps", action="store_true",
                       help="decode Whisper's segment timestamps " + timestamps_help)
    p.add_argument("--word-timestamps", action="store_true",
                   help="words with their times (CTranslate2 artifacts, ONNX, OpenVINO and "
                   "TorchScript artifacts exported with --word-timestamps, transformers "
                   f"directories; implies timestamps; {words_help})")
    add_fallback_arguments(p)
    add_long_form_arguments(p)


def decoding_options(args: argparse.Namespace, timestamps: bool,
                     word_timestamps: bool) -> DecodingOptions:
    """The ``DecodingOptions`` of :func:`add_decoding_arguments`' flags; ``timestamps``
    and ``word_timestamps`` as the command line decided them (formats may imply them)."""
    from runtimes.base import DecodingOptions

    return DecodingOptions(
        args.beam_size, args.language, args.task, timestamps=timestamps,
        word_timestamps=word_timestamps, **fallback_fields(args), long_form=args.long_form,
        condition_on_previous_text=not args.no_condition_on_previous_text)
