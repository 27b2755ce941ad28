"""What an export target is: the precisions it offers and one ``convert`` step.

Everything every target shares (resolving the source, the temp dir, copying the tokenizer,
validation, the manifest, the atomic move) lives once in ``exporters.api``.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path

from exporters.calibration import CalibrationSet
from exporters.sources import Source
from runtimes.base import DEVICES
from runtimes.errors import OptionError

#: Precision shorthands the CLI offers (--fp16, --int8, --int4); a target maps each to its
#: own concrete precision name, which may depend on the device.
SHORTHANDS = ("fp32", "fp16", "int8", "int4")
#: --distill-steps by default: batches of 8 windows (tiny.en: labelling and 100 steps took
#: 287 s on 2 AVX2 cores)
DISTILL_STEPS = 100
#: CPUs an int8 artifact can be tuned for (``ExportOptions.int8_kernels``): "vnni" (AVX-512
#: VNNI or AVX-VNNI dot products), "avx2" (no VNNI: u8 x s8 pairs are summed in saturating
#: 16-bit registers), or "auto" = the CPU of the machine that exports.
INT8_KERNELS = ("auto", "vnni", "avx2")


@dataclass(frozen=True)
class ExportOptions:
    """What to export.

    Attributes:
        target: registry name of the target, e.g. "ctranslate2".
        precision: a shorthand from SHORTHANDS or a target-specific name
            (e.g. "int8_float16"); None = the target's default.
        device: where the artifact will run, "cpu" or "cuda" (it picks kernels/precisions).
        threads: threads for the validation run; 0 = all cores.
        calibration: speech to calibrate activation quantisation with, for the precisions
            that quantise activations (``Target.calibrated``); refused for the others.
        int8_kernels: the CPU kind a dynamically quantised int8 artifact is tuned for, one
            of INT8_KERNELS (targets where it changes the weights: ``Target.tunes_int8``).
        word_timestamps: also export what word timestamps need, where the target has it
            (``Target.aligns``; CTranslate2 artifacts always can).
        compress: ``--compress`` steps (``METHOD[:ARGS]``, see exporters.compress), applied
            in order to the reference model before the target converts it.
        distill: audio to fine-tune the compressed decoder on, labelled by the uncompressed
            model (exporters.distill); needs ``compress``.
        distill_steps: fine-tuning steps.
    """

    target: str
    precision: str | None = None
    device: str = "cpu"
    threads: int = 0
    calibration: CalibrationSet | None = None
    int8_kernels: str = "auto"
    word_timestamps: bool = False
    compress: tuple[str, ...] = ()
    distill: CalibrationSet | None = None
    distill_steps: int = DISTILL_STEPS

    def __post_init__(self) -> None:
        object.__setattr__(self, "compress", tuple(self.compress))
        self.compression_steps()  # a bad step fails here, before any work
        if self.distill is not None and not self.compress:
            raise OptionError("--distill fine-tunes a compressed model: add --compress "
                              "(e.g. drop-decoder-layers:2)")
        if self.distill_steps < 1:
            raise OptionError(f"--distill-steps must be >= 1, got {self.distill_steps}")
        if self.device not in DEVICES:
            raise OptionError(f"device {self.device!r} is not one of: {', '.join(DEVICES)}")
        if self.threads < 0:
            raise OptionError(f"threads must be >= 0, got {self.threads!r}")
        if self.int8_kernels not in INT8_KERNELS:
            raise OptionError(f"int8 kernels {self.int8_kernels!r} is not one of: "
                              f"{', '.join(INT8_KERNELS)}")

    def compression_steps(self) -> tuple:
        """The parsed ``compress`` steps (exporters.compress.CompressionStep)."""
        from exporters.compress import CompressionStep

        return tuple(CompressionStep.parse(spec) for spec in self.compress)

    def resolved_int8_kernels(self) -> str:
        """"vnni" or "avx2": the option, or for "auto" what this machine's CPU has."""
        if self.int8_kernels != "auto":
            return self.int8_kernels
        from runtimes.cpu import cpu_info

        return "vnni" if cpu_info().int8_dot_product else "avx2"


@dataclass(frozen=True)
class ParityTolerance:
    """How far an artifact may stray from the fp32 PyTorch reference and still be valid.

    Attributes:
        encoder_rel_error: max ||artifact - reference|| / ||reference|| of encoder output;
            None for a runtime that does not expose it (checked on tokens only).
        token_agreement: min fraction of equal greedy tokens on the parity clip.
    """

    encoder_rel_error: float | None
    token_agreement: float


class Target(ABC):
    """One export target. Subclasses are registered with ``exporters.registry.register``."""

    #: CLI name (``--to``).
    name: str = ""
    #: Artifact format written to artifact.json; picks the runtime that loads it.
    format: str = ""
    #: Whether ``ExportOptions.word_timestamps`` can be honoured.
    aligns: bool = False

    @abstractmethod
    def precision(self, requested: str | None, device: str) -> str:
        """Concrete precision for a shorthand or target-specific name.

        Raises:
            OptionError: naming the value and the precisions this target offers on ``device``.
        """

    @abstractmethod
    def offered(self, device: str) -> list[str]:
        """Concrete precisions this target can export and run on ``device`` on this machine
        (the bench matrix and the parity tests enumerate these)."""

    @abstractmethod
    def check(self, options: ExportOptions, precision: str) -> None:
        """Fail fast, before any work, if this machine cannot export or run ``precision``
        on ``options.device`` (missing GPU, missing package, unsupported kernels)."""

    @abstractmethod
    def convert(self, source: Source, out_dir: Path, precision: str,
                options: ExportOptions) -> list[Path]:
        """Write the model files into the empty ``out_dir``; return the files written."""

    @abstractmethod
    def tolerance(self, precision: str) -> ParityTolerance:
        """The parity tolerance stated for ``precision``."""

    def _one_of(self, requested: str | None, accepted: tuple[str, ...], hint: str = "") -> str:
        """``requested`` (default: the first accepted) if this target offers it; else an
        OptionError naming the value and the accepted ones."""
        requested = requested or accepted[0]
        if requested not in accepted:
            raise OptionError(
                f"precision {requested!r} is not offered by the {self.name} target; accepted: "
                f"{', '.join(accepted)}{f' ({hint})' if hint else ''}")
        return requested

    def unsupported(self, hf_dir: Path) -> str | None:
        """Why this target cannot hold the checkpoint in ``hf_dir`` (its shapes, pruned
        layers included), or None. ``export`` refuses such a source before converting."""
        import json

        from runtimes.checkpoint import layer_shapes

        config = json.loads((Path(hf_dir) / "config.json").read_text())
        for kind in layer_shapes(hf_dir).reshaped(config):
            if reason := self.refuses_reshape(kind):
                return f"{hf_dir} has pruned {kind}: {reason}"
        return None

    def refuses_reshape(self, kind: str) -> str | None:
        """Why this target cannot hold layers whose ``kind`` ("heads": per-layer head
        counts, "ffn": feed-forward widths) pruning changed, or None when it can. Checked
        for ``--compress`` steps before any work."""
        return None

    def calibrated(self, precision: str) -> bool:
        """Whether ``precision`` quantises activations, so the export needs calibration
        audio (``ExportOptions.calibration``)."""
        return False

    def batch_invariant(self, precision: str) -> bool:
        """Whether a window's transcript is the same alone and in any batch. Precisions that
        quantise activations per batch (dynamic int8) are not, and say so in the manifest,
        so the server never batches strangers' windows together for them."""
        return True

    def tunes_int8(self, precision: str) -> bool:
        """Whether ``precision``'s weights depend on ``ExportOptions.int8_kernels`` (the
        manifest then records the resolved choice)."""
        return False

    def parity_precision(self, precision: str) -> str | None:
        """The runtime precision the parity check loads the artifact with (the export's own
        by default; a target whose runtime picks an inference precision may pin one)."""
        return precision

    def versions(self) -> dict[str, str]:
        """Versions of the packages this target used (recorded in the manifest)."""
        return {}

    def runtime_packages(self, device: str) -> tuple[str, ...]:
        """pip distributions the runtime needs to load this target's artifacts on ``device``
        (``--bundle`` pins them in the artifact's serve/requirements.txt)."""
        return ()
