"""What an export target is: the precisions it offers and one ``convert`` step.

Everything every target shares (resolving the source, the temp dir, copying the tokenizer,
validation, the manifest, the atomic move) lives once in ``exporters.api``.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from pathlib import Path

from exporters.options import ExportOptions
from exporters.sources import Source
from exporters.validate import ParityTolerance
from runtimes.errors import OptionError
from runtimes.precision import canonical


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
        spelled = {canonical(name): name for name in accepted}  # f16 is ggml's fp16
        requested = spelled.get(canonical(requested), requested)
        if requested not in accepted:
            raise OptionError(
                f"precision {requested!r} is not offered by the {self.name} target; accepted: "
                f"{', '.join(accepted)}{f' ({hint})' if hint else ''}")
        return requested

    def unsupported(self, hf_dir: Path) -> str | None:
        """Why this target cannot hold the checkpoint in ``hf_dir`` (its shapes, pruned
        layers included), or None. ``export`` refuses such a source before converting."""
        import json

        from runtimes.artifacts.checkpoint import layer_shapes

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

    def batch_invariant(self, precision: str, options: ExportOptions) -> bool:
        """Whether a window's transcript is the same alone and in any batch. Precisions that
        quantise activations per batch (dynamic int8 with ``--int8-activations batch``) are
        not, and say so in the manifest, so the server never batches strangers' windows
        together for them."""
        return True

    def scales_activations(self, precision: str) -> bool:
        """Whether ``precision`` quantises activations dynamically, so that
        ``ExportOptions.int8_activations`` applies (the manifest then records it)."""
        return False

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
