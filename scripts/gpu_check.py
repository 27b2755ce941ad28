"""Run this first on an NVIDIA machine: what it has, and whether every GPU path works there.

    python scripts/gpu_check.py                      # bundled tiny.en, the `en` clips
    python scripts/gpu_check.py --model DIR --batch-sizes 1 8 32 --out results/gpu-check

It reports the driver, CUDA and every GPU library it finds with its version; exports the
model to every GPU target and precision (PyTorch fp32/fp16/bf16 run from the checkpoint
itself); transcribes JFK with each and checks the words; times the clips at each batch size
in a fresh process per row (RTFx, WER, VRAM, the execution providers that ran); and prints
one table, also written to ``--out``. A row whose library is missing or the wrong version
is listed with its one-line reason. Needs only torch, transformers and numpy: without PyAV
it reads the WAV clips only, without jiwer it scores with its own edit distance. Exits 0 on
a machine without a GPU after saying so, 1 if a row that ran gave wrong words or crashed.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import traceback
from dataclasses import asdict, dataclass, field
from importlib import metadata
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from runtimes.errors import ToolkitError  # noqa: E402

JFK_WORDS = ("and so my fellow americans ask not what your country can do for you ask what "
             "you can do for your country")
PACKAGES = ("torch", "transformers", "onnxruntime-gpu", "onnxruntime", "tensorrt",
            "tensorrt-cu13", "ctranslate2", "av", "jiwer", "nvidia-ml-py")


@dataclass
class Check:
    """One row: a system to run on the GPU, and what happened."""

    name: str
    target: str | None  # export target; None = PyTorch from the checkpoint
    precision: str
    provider: str | None = None  # ONNX Runtime provider ("tensorrt"), else the default
    status: str = "pending"  # "ok", "not run: <reason>", "FAILED: <reason>"
    jfk: str = ""
    backend: str = ""
    rtfx: dict[int, float] = field(default_factory=dict)
    wer: float = float("nan")
    vram_b1_mb: float = float("nan")
    vram_mb: float = float("nan")
    export_s: float = float("nan")


def build_parser() -> argparse.ArgumentParser:
    from bench.cli import CHECKOUT_MANIFEST

    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", default="bundled:tiny.en", help="source checkpoint (any --model)")
    p.add_argument("--manifest", type=Path, default=CHECKOUT_MANIFEST,
                   help="speech manifest TSV (default: ../shared/data/speech/manifest.tsv)")
    p.add_argument("--subset", default="en")
    p.add_argument("--limit", type=int, help="first N clips only")
    p.add_argument("--batch-sizes", type=int, nargs="+", default=[1, 8, 32])
    p.add_argument("--targets", nargs="+", help="only these export targets (default: all)")
    p.add_argument("--budget-s", type=float, default=None,
                   help="stop starting new rows after this many seconds (they are listed)")
    p.add_argument("--out", type=Path, default=None, help="default: results/gpu-check-<time>")
    p.add_argument("--device", default="cuda", choices=("cuda", "cpu"),
                   help="cpu runs the same rows on the CPU: a test of this script (CI runs it)")
    return p


def inventory() -> dict[str, str]:
    """What this machine has: GPU, driver, CUDA, and each GPU-relevant package's version."""
    from bench.memory import gpu_description

    found = {"python": sys.version.split()[0]}
    for package in PACKAGES:
        try:
            found[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            found[package] = "not installed"
    found["gpu"] = gpu_description() or "none visible to torch"
    try:
        import onnxruntime

        found["onnxruntime providers"] = ", ".join(onnxruntime.get_available_providers())
    except ImportError:
        pass
    try:
        import ctranslate2

        found["ctranslate2 CUDA devices"] = str(ctranslate2.get_cuda_device_count())
    except ImportError:
        pass
    return found


def plan(targets: list[str] | None, device: str = "cuda") -> list[Check]:
    """PyTorch rows, then every precision each export target offers on ``device`` here; a
    target that cannot say (its package or the GPU is missing) gets one row with the reason."""
    from exporters import registry

    floats = ("fp32", "fp16", "bf16") if device == "cuda" else ("fp32",)
    checks = [Check(f"pytorch {p}", None, p) for p in floats]
    for name in targets or registry.names():
        try:
            precisions = registry.get(name).offered(device)
        except (ToolkitError, ImportError) as exc:
            checks.append(Check(f"{name}", name, "", status=f"not run: {_line(exc)}"))
            continue
        checks += [Check(f"{name} {p}", name, p) for p in precisions]
        if name == "onnx" and "fp16" in precisions:
            checks.append(Check("onnx fp16 (TensorRT EP)", name, "fp16", provider="tensorrt"))
    return checks


def _line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0] if text else ''}"[:300]


def clips(manifest: Path, subset: str, limit: int | None) -> tuple[list, list[str]]:
    """The subset's clips (WAV only without PyAV) with JFK last, and notes on the choice."""
    from runtimes.audio.datasets import Clip, load_clips
    from runtimes.audio.files import pyav_available

    chosen, notes = load_clips(manifest, subset, limit), []
    if not pyav_available():
        chosen = [c for c in chosen if c.path.suffix.lower() == ".wav"]
        notes.append(f"PyAV is not installed: the {len(chosen)} WAV clips of `{subset}` only, "
                     f"read with the standard library (non-16 kHz ones resampled by scipy)")
    jfk = manifest.parent / "jfk" / "jfk.wav"
    chosen = [c for c in chosen if "jfk" not in c.id] + [Clip("jfk", jfk, JFK_WORDS)]
    return chosen, notes


def export_for(check: Check, source, out: Path, device: str) -> tuple[Path, float]:
    """The model directory the row runs: the checkpoint, or a fresh export for ``device``."""
    from exporters.api import export
    from exporters.options import ExportOptions

    if check.target is None:
        return source.hf_dir, float("nan")
    path = out / "artifacts" / f"{check.target}-{check.precision}"
    if (path / "artifact.json").is_file():  # the TensorRT EP row reuses the fp16 export
        return path, float("nan")
    result = export(source.spec, ExportOptions(check.target, check.precision, device), path,
                    force=True, log=lambda msg: print(f"  {msg}", file=sys.stderr, flush=True))
    return path, result.seconds


def measure(check: Check, model_dir: Path, clip_set: list, batch_sizes: list[int],
            trt_cache: Path, device: str) -> None:
    """Time and score one row in its own process (bench's worker), fill ``check``."""
    from bench import runner
    from bench.metrics import normalizer
    from bench.systems import SystemSpec
    from runtimes.base import DecodingOptions, RuntimeOptions

    precision = check.precision if check.target is None else None
    spec = SystemSpec(check.name, "toolkit", str(model_dir), precision)
    runtime = RuntimeOptions(device=device, provider=check.provider, cache_dir=str(trt_cache),
                             trust_code=True)  # the artifacts this script has just exported
    job = {"runtime": asdict(runtime), "decoding": asdict(DecodingOptions()),
           "audio": [str(c.path) for c in clip_set], "batch_sizes": batch_sizes,
           "system": spec.to_dict()}
    row = runner.to_row(spec, runner.run_worker(job, timeout_s=900), clip_set)
    check.jfk = row.texts[-1]
    check.backend, check.wer = row.backend, row.wer
    check.rtfx = {1: row.rtfx_b1, **row.rtfx_batched}
    check.vram_b1_mb, check.vram_mb = row.vram_b1_mb, row.vram_mb
    words = normalizer("en")(check.jfk)
    check.status = "ok" if words == JFK_WORDS else f"FAILED: JFK gave {check.jfk[:120]!r}"


def run_check(check: Check, source, out: Path, clip_set: list, batch_sizes: list[int],
              device: str) -> None:
    """Export and measure one row; a toolkit error (a missing library, the wrong version)
    is the row's one-line reason, anything else a failure with its traceback on stderr."""
    try:
        model_dir, check.export_s = export_for(check, source, out, device)
        measure(check, model_dir, clip_set, batch_sizes, out / "trt-cache", device)
    except ToolkitError as exc:
        check.status = f"not run: {_line(exc)}"
    except RuntimeError as exc:  # the worker's last error line
        known = any(k in str(exc) for k in ("DeviceError", "OptionError", "ArtifactError"))
        check.status = f"{'not run' if known else 'FAILED'}: {str(exc)[:300]}"
    except Exception as exc:  # noqa: BLE001 - a crash is this row's result, not the run's
        traceback.print_exc()
        check.status = f"FAILED: {_line(exc)}"


def table(checks: list[Check], batch_sizes: list[int]) -> str:
    from bench.report import fmt

    head = (["system", "status", "backend"] + [f"RTFx b{b}" for b in batch_sizes]
            + ["WER %", "VRAM b1 MB", "VRAM max MB", "export s"])
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for c in checks:
        cells = [c.name, c.status, c.backend, *(fmt(c.rtfx.get(b, float("nan"))) for b in batch_sizes),
                 fmt(100 * c.wer, 2), fmt(c.vram_b1_mb, 0), fmt(c.vram_mb, 0), fmt(c.export_s)]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    started = time.perf_counter()
    found = inventory()
    print("\n".join(f"{key}: {value}" for key, value in found.items()), flush=True)
    import torch

    if args.device == "cuda" and not torch.cuda.is_available():
        print("no CUDA GPU visible to torch: nothing to check on this machine")
        return 0
    from exporters import sources

    out = args.out or ROOT / "results" / time.strftime("gpu-check-%Y%m%d-%H%M%S")
    out.mkdir(parents=True, exist_ok=True)
    try:
        source = sources.resolve(args.model)
        clip_set, notes = clips(args.manifest, args.subset, args.limit)
    except ToolkitError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    audio_s = sum(_duration(c.path) for c in clip_set)
    checks = plan(args.targets, args.device)
    for i, check in enumerate(checks, 1):
        if check.status != "pending":
            continue
        if args.budget_s is not None and time.perf_counter() - started > args.budget_s:
            check.status = "not run: --budget-s spent"
            continue
        print(f"[{i}/{len(checks)}] {check.name}", file=sys.stderr, flush=True)
        run_check(check, source, out, clip_set, args.batch_sizes, args.device)
        print(f"  {check.status}", file=sys.stderr, flush=True)
        _write(out, found, notes, checks, args.batch_sizes, audio_s)
    text = _write(out, found, notes, checks, args.batch_sizes, audio_s)
    print(text)
    print(f"wrote {out}/gpu_check.md and results.jsonl in {time.perf_counter() - started:.0f} s",
          file=sys.stderr)
    return 1 if any(c.status.startswith("FAILED") for c in checks) else 0


def _duration(path: Path) -> float:
    from runtimes.audio.files import duration_s, load_audio

    return duration_s(load_audio(path))


def _write(out: Path, found: dict, notes: list[str], checks: list[Check],
           batch_sizes: list[int], audio_s: float) -> str:
    machine = "; ".join(f"{k} {v}" for k, v in found.items())
    text = (f"# GPU check\n\n{table(checks, batch_sizes)}\n\n- machine: {machine}\n"
            f"- clips: {audio_s:.0f} s of audio with JFK (16 kHz WAV) last; greedy decoding; "
            f"each row in its own process (bench's worker: RTFx over log-mel + generate + "
            f"detokenise, the GPU synchronised inside the timer)\n"
            + "".join(f"- {n}\n" for n in notes))
    (out / "gpu_check.md").write_text(text)
    with open(out / "results.jsonl", "w") as f:
        for c in checks:
            f.write(json.dumps(asdict(c)) + "\n")
    return text


if __name__ == "__main__":
    sys.exit(main())
