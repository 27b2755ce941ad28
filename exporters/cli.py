"""Command line: ``python -m exporters whisper --to TARGET [precision flags] ...``."""

from __future__ import annotations

import argparse
import signal
import sys
from pathlib import Path

from exporters import registry
from exporters.calibration import DEFAULT_WINDOWS, CalibrationSet
from exporters.options import DISTILL_STEPS, INT8_ACTIVATIONS, INT8_KERNELS
from exporters.sources import BUNDLED, BUNDLED_PREFIX, DEFAULT_MODEL
from runtimes.cli import DEVICE_HELP
from runtimes.errors import ToolkitError
from runtimes.precision import QUANTIZATION_HELP

EXIT_ERROR = 2


def _whisper_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("whisper", help="export a Whisper checkpoint to a deployment artifact")
    p.add_argument("--to", required=True, choices=registry.names(), help="export target")
    p.add_argument(
        "--model", default=DEFAULT_MODEL,
        help="source: a transformers or CTranslate2/faster-whisper directory, a hub id, or "
        + ", ".join(BUNDLED_PREFIX + n for n in BUNDLED) + f" (default: {DEFAULT_MODEL})",
    )
    precision = p.add_mutually_exclusive_group()
    precision.add_argument("--fp16", dest="precision", action="store_const", const="fp16",
                           help="half precision weights and compute (ggml: f16)")
    precision.add_argument("--int8", dest="precision", action="store_const", const="int8",
                           help="int8 weights (ctranslate2: int8_float32 on cpu, int8_float16 on cuda)")
    precision.add_argument("--int4", dest="precision", action="store_const", const="int4",
                           help="int4 weights, where the target has kernels")
    precision.add_argument("--quantization", dest="precision", metavar="TYPE",
                           help=QUANTIZATION_HELP)
    p.add_argument("--device", default="cpu", choices=("cpu", "cuda"), help=DEVICE_HELP)
    p.add_argument("-o", "--output", type=Path,
                   help="artifact directory (default: artifacts/<model>-<target>-<precision>)")
    p.add_argument("--force", action="store_true", help="replace an existing output directory")
    p.add_argument("--bundle", action="store_true",
                   help="add serve/: pinned requirements, Dockerfile and serve command")
    _add_compression_arguments(p)
    p.add_argument("--word-timestamps", action="store_true",
                   help="onnx, openvino, torchscript: also export an alignment graph (the "
                   "alignment heads' cross-attention, an fp32 copy of the decoder) so the "
                   "artifact gives word timestamps (ctranslate2 artifacts always do)")
    p.add_argument("--int8-kernels", default="auto", choices=INT8_KERNELS,
                   help="CPU kind an onnx int8/int4 artifact is tuned for: vnni (CPUs with "
                   "AVX-512 VNNI or AVX-VNNI: full 8-bit weights), avx2 (CPUs without VNNI: "
                   "7-bit weights, which cannot saturate there and stay correct everywhere), "
                   "auto = this machine's CPU (default)")
    p.add_argument("--int8-activations", default="clip", choices=INT8_ACTIVATIONS,
                   help="how an onnx int8/int4 artifact scales its activations: clip (each "
                   "clip on its own: its transcript is the same in any batch, so the server "
                   "batches it; default), batch (one scale over the batch, ONNX Runtime's "
                   "quantize_dynamic as it is: batch-variant)")
    p.add_argument("--threads", type=int, default=0, help="threads for validation (0 = all)")
    p.add_argument("--parity-audio", type=Path,
                   help="clip for the parity check (default: $WHISPER_EXPORTERS_PARITY_AUDIO, "
                   "else the JFK clip of the checkout's speech data, else a synthetic signal)")
    add_calibration_arguments(p)


def _add_compression_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--compress", action="append", default=[], metavar="METHOD[:ARGS]",
                   help="compress the model before converting it, in order; steps joined by "
                   "'+' in one value (as the comparison's recipes) or the flag repeated: "
                   "prune-unstructured:SPARSITY[:l1|random], "
                   "prune-heads:FRACTION[:magnitude|activation], prune-ffn:FRACTION[:...], "
                   "cluster:K, drop-decoder-layers:KEEP (see exporters/compress.py); "
                   ":activation ranks by what each head or channel writes on --calibration "
                   "audio")
    p.add_argument("--distill", type=Path, metavar="PATH",
                   help="after --compress, fine-tune the compressed decoder on this audio (a "
                   "folder or a manifest TSV) labelled by the uncompressed model")
    p.add_argument("--distill-subset", nargs="+", default=[], metavar="SUBSET",
                   help="only these subsets of the --distill manifest")
    p.add_argument("--distill-steps", type=int, default=DISTILL_STEPS, metavar="N",
                   help=f"fine-tuning steps of 8 windows (default: {DISTILL_STEPS})")


#: The JFK clip of the speech data beside a checkout; an installed package has none.
CHECKOUT_CLIP = Path(__file__).resolve().parents[2] / "shared/data/speech/jfk/jfk.flac"


def parity_clip(given: Path | None) -> Path | None:
    """--parity-audio, else the environment's clip, else the checkout's JFK, else None: the
    export then checks parity on a synthetic signal. The manifest records the clip used."""
    from exporters.validate import default_parity_audio

    if given is not None or default_parity_audio() is not None:
        return given or default_parity_audio()
    return CHECKOUT_CLIP if CHECKOUT_CLIP.is_file() else None


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m exporters",
        description="Export speech models to deployment artifacts for many runtimes.",
    )
    sub = parser.add_subparsers(dest="command", required=True)
    _whisper_parser(sub)
    verify = sub.add_parser("verify", help="check an artifact's files against its manifest")
    verify.add_argument("artifact", type=Path)
    sub.add_parser("targets", help="list the export targets")
    return parser


def _run(args: argparse.Namespace) -> int:
    from runtimes.artifacts.manifest import manifest_digest, read_manifest, verify

    if args.command == "targets":
        print("\n".join(registry.names()))
        return 0
    if args.command == "verify":
        manifest = read_manifest(args.artifact)
        verify(args.artifact, manifest, checksums=True)
        print(f"ok: {args.artifact} ({manifest.format} {manifest.precision}, "
              f"{len(manifest.files)} files verified; manifest digest "
              f"{manifest_digest(args.artifact)})")
        return 0
    from exporters.api import export
    from exporters.options import ExportOptions

    options = ExportOptions(args.to, args.precision, args.device, args.threads,
                            calibration_set(args), args.int8_kernels,
                            args.word_timestamps, tuple(args.compress),
                            distill_audio(args), args.distill_steps, args.int8_activations)
    if args.parity_audio is not None and not args.parity_audio.is_file():
        raise ToolkitError(f"--parity-audio {args.parity_audio} is not a file")
    result = export(args.model, options, args.output, args.force, parity_clip(args.parity_audio),
                    args.bundle)
    m = result.manifest
    rel = m.parity["encoder_rel_error"]
    print(f"exported {args.model} -> {result.path} ({m.format} {m.precision}, "
          f"{m.total_bytes / 1e6:.1f} MB, parity: encoder rel. error "
          f"{'not exposed' if rel is None else f'{rel:.2g}'}, token agreement "
          f"{m.parity['token_agreement']:.0%}) in {result.seconds:.1f} s; manifest digest "
          f"{manifest_digest(result.path)} (pin it with --expect-digest)")
    return 0


def _interrupt(signum, frame) -> None:
    """SIGTERM (a container stop, ``kill``) unwinds like Ctrl-C, so the export's cleanup runs."""
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    """Entry point; ToolkitErrors become one line on stderr and exit code 2."""
    args = build_parser().parse_args(argv)
    signal.signal(signal.SIGTERM, _interrupt)
    try:
        return _run(args)
    except ToolkitError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_ERROR
    except KeyboardInterrupt:
        print("interrupted; nothing was written", file=sys.stderr)
        return 130


def distill_audio(args) -> CalibrationSet | None:
    """The --distill audio (a CalibrationSet: the same folder-or-manifest choice)."""
    if args.distill is None:
        if args.distill_subset:
            raise ToolkitError("--distill-subset needs --distill")
        return None
    return CalibrationSet(args.distill, tuple(args.distill_subset), flag="--distill")


def add_calibration_arguments(parser) -> None:
    """The calibration options, shared by the export and comparison command lines."""
    parser.add_argument("--calibration", type=Path, metavar="PATH",
                        help="speech to calibrate activation quantisation (openvino "
                        "int8_static) and :activation pruning importance: a folder of audio "
                        "files or a manifest TSV, in every language the model will serve")
    parser.add_argument("--calibration-subset", nargs="+", default=[], metavar="SUBSET",
                        help="only these subsets of the --calibration manifest")
    parser.add_argument("--calibration-size", type=int, default=DEFAULT_WINDOWS, metavar="N",
                        help=f"most 30 s windows to calibrate on (default: {DEFAULT_WINDOWS})")


def calibration_set(args) -> CalibrationSet | None:
    """The CalibrationSet the options name, or None without --calibration."""
    if args.calibration is None:
        if args.calibration_subset:
            raise ToolkitError("--calibration-subset needs --calibration")
        return None
    return CalibrationSet(args.calibration, tuple(args.calibration_subset), args.calibration_size)
