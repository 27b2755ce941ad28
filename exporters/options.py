"""What an export is asked to do: the options (``ExportOptions``) and the parsed
``--compress`` steps (``CompressionStep``), validated when made, so a bad value fails
before any work. Below the targets, the compression and the validation, which all read
them; it imports none of them.
"""

from __future__ import annotations

from dataclasses import dataclass

from exporters.calibration import CalibrationSet
from runtimes.base import DEVICES
from runtimes.errors import OptionError
from runtimes.precision import canonical

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
#: How dynamic int8 scales activations (``ExportOptions.int8_activations``): "clip" (each
#: clip on its own: batch-invariant; exporters.onnx_per_clip) or "batch" (one scale over
#: the whole batch, ONNX Runtime's ``quantize_dynamic`` as it is: batch-variant).
INT8_ACTIVATIONS = ("clip", "batch")


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
        compress: ``--compress`` steps (``METHOD[:ARGS]``, several joined by "+" in one value;
            see exporters.compress), applied
            in order to the reference model before the target converts it.
        distill: audio to fine-tune the compressed decoder on, labelled by the uncompressed
            model (exporters.distill); needs ``compress``.
        distill_steps: fine-tuning steps.
        int8_activations: how a dynamically quantised int8 artifact scales its activations,
            one of INT8_ACTIVATIONS (targets where it applies: ``Target.scales_activations``).
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
    int8_activations: str = "clip"

    def __post_init__(self) -> None:
        object.__setattr__(self, "precision", canonical(self.precision))
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
        if self.int8_activations not in INT8_ACTIVATIONS:
            raise OptionError(f"int8 activations {self.int8_activations!r} is not one of: "
                              f"{', '.join(INT8_ACTIVATIONS)}")

    def compression_steps(self) -> tuple[CompressionStep, ...]:
        """The parsed ``compress`` steps: each value is one step or several joined by '+'
        (the comparison's recipe syntax), in order."""
        return tuple(CompressionStep.parse(step) for spec in self.compress
                     for step in spec.split("+"))

    def resolved_int8_kernels(self) -> str:
        """"vnni" or "avx2": the option, or for "auto" what this machine's CPU has."""
        if self.int8_kernels != "auto":
            return self.int8_kernels
        from runtimes.cpu import cpu_info

        return "vnni" if cpu_info().int8_dot_product else "avx2"


METHODS = ("prune-unstructured", "prune-heads", "prune-ffn", "cluster", "drop-decoder-layers")
#: what a method changes in the layers' shapes (the targets that cannot hold it refuse it)
RESHAPES = {"prune-heads": "heads", "prune-ffn": "ffn"}
#: the third field of the methods that take one, the default first
_HOW = {"prune-unstructured": ("l1", "random"), "prune-heads": ("magnitude", "activation"),
        "prune-ffn": ("magnitude", "activation")}


@dataclass(frozen=True)
class CompressionStep:
    """One ``--compress`` value, parsed and checked.

    Attributes:
        method: one of METHODS.
        amount: sparsity in 0..1 (prune-unstructured), K (cluster), layers kept
            (drop-decoder-layers).
        how: "l1" or "random" (prune-unstructured), "magnitude" or "activation"
            (prune-heads, prune-ffn: how importance is measured).
    """

    method: str
    amount: float
    how: str = ""

    @classmethod
    def parse(cls, spec: str) -> CompressionStep:
        """``METHOD[:ARGS]``; OptionError naming the value and what is accepted."""
        method, _, args = spec.partition(":")
        parts = args.split(":") if args else []
        usage = {"prune-unstructured": "prune-unstructured:SPARSITY[:l1|random], SPARSITY in "
                                       "0..1 (e.g. 0.5)",
                 "prune-heads": "prune-heads:FRACTION[:magnitude|activation], FRACTION in "
                                "0..1 (e.g. 0.25)",
                 "prune-ffn": "prune-ffn:FRACTION[:magnitude|activation], FRACTION in 0..1 "
                              "(e.g. 0.25)",
                 "cluster": "cluster:K, K an integer in 2..256",
                 "drop-decoder-layers": "drop-decoder-layers:KEEP, KEEP an integer >= 1"}
        if method not in METHODS:
            raise OptionError(f"--compress {spec!r}: method {method!r} is not one of: "
                              f"{', '.join(METHODS)}")
        try:
            amount = float(parts[0])
            how = parts[1] if len(parts) > 1 else _HOW.get(method, ("",))[0]
            fits = {"cluster": amount.is_integer() and 2 <= amount <= 256,
                    "drop-decoder-layers": amount.is_integer() and amount >= 1}
            ok = (len(parts) <= (2 if method in _HOW else 1)
                  and how in _HOW.get(method, ("",)) and fits.get(method, 0 < amount < 1))
        except (IndexError, ValueError):
            ok = False
        if not ok:
            raise OptionError(f"--compress {spec!r}: expected {usage[method]}")
        return cls(method, amount, how)

    @property
    def needs_audio(self) -> bool:
        """Whether the step measures activations on --calibration audio."""
        return self.how == "activation"

    @property
    def reshapes(self) -> str | None:
        """"heads" or "ffn" where the step changes layers' shapes, else None."""
        return RESHAPES.get(self.method)

    def __str__(self) -> str:
        amount = f"{self.amount:g}"
        how = "" if self.how in ("", "magnitude") else f":{self.how}"  # the default, unsaid
        return f"{self.method}:{amount}{how}"
