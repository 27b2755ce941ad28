"""What a benchmark run is asked to do, as typed options: ``python -m bench`` builds a
:class:`BenchOptions`, ``whisper-exporters compare`` a :class:`CompareOptions`, and the
library functions take these, never argparse namespaces. Bad values fail here, before any
work, naming the option and what it accepts."""

from __future__ import annotations

import subprocess
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from pathlib import Path

from exporters.calibration import CalibrationSet
from exporters.options import DISTILL_STEPS
from runtimes.base import DEVICES, DecodingOptions, RuntimeOptions
from runtimes.engines.ctranslate2 import COMPUTE_TYPES
from runtimes.errors import OptionError

#: What the faster-whisper rows accept: CTranslate2's compute types, its "default", or none.
FASTER_WHISPER_TYPES = (*COMPUTE_TYPES, "default", "none")


@dataclass(frozen=True)
class MeasureOptions:
    """What every benchmark run shares.

    Attributes:
        manifest: speech manifest TSV, or a folder of audio files (speed only). No default
            here: an installed package has no speech data; the command lines default to the
            checkout's and say so.
        limit: first N clips of each subset.
        batch_sizes: batch sizes to time; 1 is always timed.
        repeats: alternating rounds, merged by medians.
        threads: threads per runtime (0 = all cores).
        beam_size, language: decoding settings (DecodingOptions).
        max_new_tokens: generated tokens per 30 s window.
        device: where every system runs.
        faster_whisper, faster_whisper_batched: compute types of the faster-whisper
            reference rows ("none" leaves a row out).
        trust_code: load TorchScript artifacts (programs: see RuntimeOptions.trust_code).
        long_form, condition_on_previous_text: how recordings over 30 s are decoded
            (DecodingOptions); faster-whisper's sequential row follows the second.
        start_error: also decode the recordings whose utterance starts are known (the
            `longform` subset) with timestamps, once, for the start-error columns.
        word_agreement: also decode every clip with word timestamps, once, and compare
            each row's word starts with faster-whisper's ``word_timestamps=True`` (the
            word-gap columns; needs a faster-whisper row).
        peers: other tools' rows (``bench.peers.PEERS``, or "all"), each run as its users
            run it on the same checkpoint.
    """

    manifest: Path
    limit: int | None = None
    batch_sizes: tuple[int, ...] = (1, 8)
    repeats: int = 1
    threads: int = 0
    beam_size: int = 1
    language: str | None = None
    max_new_tokens: int = 224
    device: str = "cpu"
    faster_whisper: str = "int8"
    faster_whisper_batched: str = "int8"
    trust_code: bool = False
    long_form: str = "vad"
    condition_on_previous_text: bool = True
    start_error: bool = True
    word_agreement: bool = False
    peers: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        from bench.peers import check_peers

        object.__setattr__(self, "peers", check_peers(tuple(self.peers)))
        if not self.batch_sizes or any(b < 1 for b in self.batch_sizes):
            raise OptionError(f"--batch-sizes must be >= 1, got {list(self.batch_sizes)}")
        if self.limit is not None and self.limit < 1:
            raise OptionError(f"--limit must be >= 1, got {self.limit}")
        if self.repeats < 1:
            raise OptionError(f"--repeats must be >= 1, got {self.repeats}")
        if self.threads < 0:
            raise OptionError(f"--threads must be >= 0, got {self.threads}")
        if self.device not in DEVICES:
            raise OptionError(f"--device {self.device!r} is not one of: {', '.join(DEVICES)}")
        for flag, value in (("--faster-whisper", self.faster_whisper),
                            ("--faster-whisper-batched", self.faster_whisper_batched)):
            if value not in FASTER_WHISPER_TYPES:
                raise OptionError(f"{flag} {value!r} is not one of: "
                                  f"{', '.join(FASTER_WHISPER_TYPES)}")
        if self.word_agreement and self.faster_whisper == "none" \
                and self.faster_whisper_batched == "none":
            raise OptionError("--word-agreement compares word starts with faster-whisper's: "
                              "it needs a faster-whisper row (--faster-whisper TYPE)")
        self.decoding()  # beam size and token count checked by DecodingOptions

    @property
    def sizes(self) -> list[int]:
        """Batch sizes to time, 1 included, sorted."""
        return sorted({1, *self.batch_sizes})

    def decoding(self) -> DecodingOptions:
        return DecodingOptions(beam_size=self.beam_size, language=self.language,
                               max_new_tokens=self.max_new_tokens, long_form=self.long_form,
                               condition_on_previous_text=self.condition_on_previous_text)

    def truth(self, clips: list) -> dict[int, list[float]]:
        """True utterance starts of the clips that have them (none when ``start_error`` is
        off or the clips come from a folder)."""
        from bench.timing import known_starts

        if not self.start_error or not Path(self.manifest).is_file():
            return {}
        return known_starts(clips, Path(self.manifest).parent)

    def runtime(self) -> RuntimeOptions:
        return RuntimeOptions(device=self.device, threads=self.threads,
                              trust_code=self.trust_code)


@dataclass(frozen=True)
class BenchOptions(MeasureOptions):
    """``python -m bench``: given artifacts against the PyTorch baseline.

    Attributes:
        artifacts: artifact directories, one row each.
        model: source of the PyTorch baseline.
        pytorch: PyTorch row precisions; the first is the ΔWER baseline.
        subset: manifest subset.
        out: report directory (None: results/bench-<time>).
        any_model: measure artifacts exported from another source than ``model`` (their
            WER deltas then compare two different models).
        pack: also each artifact with short clips packed into shared windows.
    """

    artifacts: tuple[Path, ...] = ()
    model: str = "bundled:tiny.en"
    pytorch: tuple[str, ...] = ("fp32",)
    subset: str | None = None
    out: Path | None = None
    any_model: bool = False
    pack: bool = False

    def __post_init__(self) -> None:
        super().__post_init__()
        from runtimes.engines.pytorch import PRECISIONS
        from runtimes.precision import canonical

        object.__setattr__(self, "pytorch", tuple(map(canonical, self.pytorch)))
        for precision in self.pytorch:
            if precision not in (*PRECISIONS, "none"):
                raise OptionError(f"--pytorch {precision!r} is not one of: "
                                  f"{', '.join(PRECISIONS)}, none")


@dataclass(frozen=True)
class CompareOptions(MeasureOptions):
    """``whisper-exporters compare``: every target x precision exported and measured.

    Attributes:
        model: source checkpoint every artifact is exported from.
        targets: only these export targets (empty: all).
        subsets: manifest subsets, each its own table.
        max_wer_delta: name the fastest artifact within this many WER points.
        profile: the row whose top operators are reported.
        calibration: audio for the precisions that quantise activations.
        parity_audio: the clip every export's parity check runs on (None: synthetic).
        trust_code: True: the artifacts measured are the ones this comparison exports.
        compress: compression recipes (``--compress`` steps joined by "+", e.g.
            "prune-heads:0.25+prune-ffn:0.25"), each adding rows exported through it.
        compress_with: the rows ("target precision") each recipe is exported to (empty:
            every row the plan runs).
        distill, distill_steps: audio and steps for the recipes that end in "+distill"
            (``--distill``: the compressed decoder fine-tuned on it, exporters.distill).
    """

    model: str = "bundled:tiny.en"
    targets: tuple[str, ...] = ()
    subsets: tuple[str, ...] = ("en", "longform")
    max_wer_delta: float | None = None
    profile: str | None = None
    calibration: CalibrationSet | None = None
    parity_audio: Path | None = None
    faster_whisper_batched: str = "int8"
    trust_code: bool = True
    compress: tuple[str, ...] = ()
    compress_with: tuple[str, ...] = ()
    distill: CalibrationSet | None = None
    distill_steps: int = DISTILL_STEPS

    def __post_init__(self) -> None:
        super().__post_init__()
        object.__setattr__(self, "compress", tuple(self.compress))
        object.__setattr__(self, "compress_with", tuple(self.compress_with))
        self.compression_recipes()  # a bad step fails here, before any work
        if self.compress_with and not self.compress:
            raise OptionError("--compress-with names rows for --compress recipes; pass "
                              "--compress too")
        if self.distill is not None and not any(r.endswith("+distill") for r in self.compress):
            raise OptionError("--distill is the audio for --compress recipes ending in "
                              "+distill (e.g. drop-decoder-layers:2+distill); none does")
        if self.distill_steps < 1:
            raise OptionError(f"--distill-steps must be >= 1, got {self.distill_steps}")
        if self.max_wer_delta is not None and self.max_wer_delta < 0:
            raise OptionError(f"--max-wer-delta must be >= 0 (WER points), got {self.max_wer_delta}")
        if not self.subsets:
            raise OptionError("--subsets needs at least one subset")

    def compression_recipes(self) -> list[tuple[str, ...]]:
        """Each ``compress`` recipe as its steps (canonical strings); OptionError for a bad
        step, an empty recipe, or audio a recipe needs and was not given."""
        from exporters.options import CompressionStep

        recipes = []
        for recipe in self.compress:
            parts = [part for part in recipe.split("+") if part]
            distill = parts[-1:] == ["distill"]
            steps = parts[:-1] if distill else parts
            if not steps:
                raise OptionError(f"--compress {recipe!r}: expected METHOD[:ARGS] steps "
                                  f"joined by '+', optionally ending in +distill")
            if distill and self.distill is None:
                raise OptionError(f"--compress {recipe!r}: +distill needs --distill (the "
                                  f"audio to fine-tune on)")
            parsed = [CompressionStep.parse(part) for part in steps]
            if self.calibration is None and any(step.needs_audio for step in parsed):
                raise OptionError(f"--compress {recipe!r}: :activation importance needs "
                                  f"--calibration (the audio to measure on)")
            recipes.append(tuple(map(str, parsed)) + (("distill",) if distill else ()))
        return recipes


def checkout_commit() -> str:
    """The commit of the checkout this code runs from, "+dirty" when its tracked files
    differ from it, or "unknown" outside a git checkout (an installed package): a report
    generated from the results names the code that measured them."""
    root = Path(__file__).resolve().parent.parent
    try:
        head = subprocess.run(["git", "-C", str(root), "rev-parse", "--short=10", "HEAD"],
                              capture_output=True, text=True, timeout=10, check=True).stdout
        dirty = subprocess.run(["git", "-C", str(root), "status", "--porcelain",
                                "--untracked-files=no"], capture_output=True, text=True,
                               timeout=10, check=True).stdout
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return head.strip() + ("+dirty" if dirty.strip() else "")


def provenance(command: str, threads: int, device: str = "cpu") -> dict:
    """What a generated page's caption says of a result: the command, the commit, the
    date (UTC) and the machine (bench.docs)."""
    from bench.runner import environment

    return {"command": command, "commit": checkout_commit(),
            "date": datetime.now(timezone.utc).strftime("%Y-%m-%d"),
            "environment": environment(threads, device)}


def run_info(options: MeasureOptions, dataset: dict, normalizers: list[str], notes: list[str],
             command: str, **more) -> dict:
    """The settings recorded with every result and printed under every table (one
    definition for the bench and the comparison)."""
    return {
        "decoding": asdict(options.decoding()),
        **provenance(command, options.threads, options.device),
        "dataset": dataset, "normalizers": normalizers, "notes": notes,
        "repeats": options.repeats, **more,
    }
