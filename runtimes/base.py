"""The runtime interface every inference engine implements, and the options they share."""

from __future__ import annotations

import os
import warnings
from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from runtimes.errors import OptionError

TASKS = ("transcribe", "translate")
DEVICES = ("cpu", "cuda")
PROVIDERS = ("cuda", "tensorrt")


@dataclass(frozen=True)
class DecodingOptions:
    """Decoding settings that mean the same on every runtime (and are recorded in results).

    Temperature is always 0 (no sampling, no fallback), so that every runtime runs the same
    deterministic search. ``timestamps``: decode Whisper's timestamp tokens (the prompt
    drops <|notimestamps|>, the timestamp rules apply) so a window splits into segments;
    the generated ids then include the timestamp tokens.
    """

    beam_size: int = 1  # 1 = greedy search; >1 = beam search with this many beams
    language: str | None = None  # e.g. "en"; None = detect (multilingual models only)
    task: str = "transcribe"  # "transcribe" or "translate"
    max_new_tokens: int = 224  # generated tokens per 30 s window (Whisper's sample_len, the max)
    suppress_blank: bool = True  # no blank/eot as the first generated token (as openai/whisper)
    timestamps: bool = False  # segment timestamps (Whisper's timestamp tokens)

    def __post_init__(self) -> None:
        if not isinstance(self.beam_size, int) or self.beam_size < 1:
            raise OptionError(f"beam_size must be an integer >= 1, got {self.beam_size!r}")
        if self.task not in TASKS:
            raise OptionError(f"task {self.task!r} is not one of: {', '.join(TASKS)}")
        if not 1 <= self.max_new_tokens <= 224:
            raise OptionError(f"max_new_tokens must be in 1..224, got {self.max_new_tokens!r}")


@dataclass(frozen=True)
class RuntimeOptions:
    """How to load an artifact.

    Attributes:
        device: "cpu" or "cuda".
        precision: compute precision; None = the artifact's own. Accepted values depend on
            the runtime, which answers a bad one with the list it accepts.
        threads: intra-op threads; 0 = the runtime's default (all cores).
        provider: ONNX Runtime execution provider on cuda: "cuda" (default) or "tensorrt".
        cache_dir: where a provider keeps compiled engines (TensorRT), reused across loads.
        profile: collect per-operator times for ``operator_profile()`` (ONNX Runtime,
            OpenVINO); slows inference down, for profiling runs only.
        shared_cores: the process does other work beside the model (the server decodes
            uploads while the model runs), so the runtime's idle threads should sleep
            rather than spin (ONNX Runtime; measured in the README's load test).
        verify_checksums: check every listed file's sha256 at load (an edit of the same
            size, such as swapped token ids, is caught only so); off for trusted hot paths.
        expect_digest: "sha256:<hex>" the artifact's manifest must have (printed by the
            export): a deployment pins exactly what it serves.
        trust_code: the caller trusts the artifact with code execution. TorchScript
            artifacts are programs (``torch.jit.load`` runs what a scripted module does, a
            crafted one read and wrote files), so they load only with this set; the other
            formats hold data only and ignore it.
    """

    device: str = "cpu"
    precision: str | None = None
    threads: int = 0
    provider: str | None = None
    cache_dir: str | None = None
    profile: bool = False
    shared_cores: bool = False
    trust_code: bool = False
    verify_checksums: bool = True
    expect_digest: str | None = None

    def __post_init__(self) -> None:
        if self.device not in DEVICES:
            raise OptionError(f"device {self.device!r} is not one of: {', '.join(DEVICES)}")
        if self.threads < 0:
            raise OptionError(f"threads must be >= 0, got {self.threads!r}")
        if self.threads > (os.cpu_count() or self.threads):
            warnings.warn(f"threads={self.threads} is more than this machine's "
                          f"{os.cpu_count()} cores: the runtime's threads will fight for them "
                          f"(reported: 64 threads on 2 cores ran 14x slower)", stacklevel=3)
        if self.provider not in (None, *PROVIDERS):
            raise OptionError(
                f"provider {self.provider!r} is not one of: {', '.join(PROVIDERS)}")
        if self.provider is not None and self.device != "cuda":
            raise OptionError(f"provider {self.provider!r} needs device 'cuda'")


class WhisperRuntime(ABC):
    """A loaded Whisper model that turns log-mel batches into token ids.

    Subclasses are registered in ``runtimes.registry`` under the artifact format they load.
    Pre-processing (audio, log-mel) and post-processing (detokenisation) live in the
    pipeline, so every runtime sees the same features and is judged on the same text.
    """

    #: The artifact format this runtime loads (``artifact.json`` "format").
    format: str = ""

    def __init__(self, model_dir: Path, options: RuntimeOptions) -> None:
        self.model_dir = Path(model_dir)
        self.options = options

    @classmethod
    @abstractmethod
    def sniff(cls, model_dir: Path) -> bool:
        """True if ``model_dir`` (without artifact.json) holds a model this runtime loads."""

    @property
    @abstractmethod
    def multilingual(self) -> bool:
        """Whether the model has language and task tokens (vocabulary >= 51865)."""

    @property
    @abstractmethod
    def n_mels(self) -> int:
        """Mel bins the encoder expects (80, or 128 for large-v3)."""

    @property
    @abstractmethod
    def precision(self) -> str:
        """The precision the model computes in, e.g. "float32" or "int8_float32"."""

    @abstractmethod
    def generate(
        self, features: np.ndarray, prompts: list[list[int]], options: DecodingOptions
    ) -> list[list[int]]:
        """Decode a batch.

        Args:
            features: float32 log-mel, shape (batch, n_mels, 3000).
            prompts: the forced decoder prefix of each item (they differ only by language).
            options: decoding settings.

        Returns:
            For each item, the generated ids after the prompt, without the end token.
        """

    @abstractmethod
    def encode(self, features: np.ndarray) -> np.ndarray:
        """Encoder output, float32 (batch, frames // 2, d_model): used by parity checks."""

    @abstractmethod
    def detect_language(self, features: np.ndarray) -> list[str]:
        """Most likely language code ("en", "de", ...) of each item in the batch."""

    @property
    def backend(self) -> str:
        """Where the model runs, as results record it (ONNX lists the execution providers
        that actually run)."""
        return f"{self.format} {self.options.device}"

    def operator_profile(self) -> list[tuple[str, float, int]]:
        """(operator type, total ms, calls) collected since load with ``profile=True``."""
        raise OptionError(f"operator profiling is not available for {self.format} artifacts")

    def close(self) -> None:  # noqa: B027 - optional hook, not abstract
        """Release the model's memory; engines that hold one override this."""

    def __enter__(self) -> WhisperRuntime:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
