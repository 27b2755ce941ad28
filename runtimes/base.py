"""The runtime interface every inference engine implements, and what it returns.

The options it is loaded and called with live in ``runtimes.options`` (re-exported here,
where most callers have always found them)."""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from runtimes.errors import ArtifactError, OptionError
from runtimes.options import (  # noqa: F401 - re-exported
    DEVICES,
    LONG_FORMS,
    PROVIDERS,
    TASKS,
    DecodingOptions,
    RuntimeOptions,
)


@dataclass(frozen=True)
class Decoded:
    """One window's decoding.

    Attributes:
        tokens: generated ids after the prompt, without the end token.
        avg_logprob: sum of the log-probabilities of the tokens and the end token, divided
            by their number (openai/whisper's and faster-whisper's measure); nan when the
            decoding was not ``scored``.
        no_speech_prob: probability of <|nospeech|> after <|startoftranscript|>; nan when
            not ``scored``.
        temperature: the temperature that produced it.
    """

    tokens: list[int]
    avg_logprob: float = float("nan")
    no_speech_prob: float = float("nan")
    temperature: float = 0.0


@dataclass(frozen=True)
class Alignment:
    """Where a window's text tokens lie in its audio (for word timestamps).

    Attributes:
        text_indices, time_indices: the DTW path through the alignment heads' attention:
            pairs (text token index, encoder frame of 20 ms), text index running over the
            text tokens and the end token.
        token_probs: each text token's probability (after the previous ones).
    """

    text_indices: np.ndarray
    time_indices: np.ndarray
    token_probs: np.ndarray


class WhisperRuntime(ABC):
    """A loaded Whisper model that turns log-mel batches into token ids.

    Subclasses are registered in ``runtimes.engines.registry`` under the artifact format they load.
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

    @property
    def ragged(self) -> bool:
        """Whether one decoder step may take rows of different cache lengths, so that the
        server's stepper can let windows join a running batch (graph runtimes whose decoder
        graph has ``cache_lengths``; the others decode a window-level batch whole)."""
        return False

    @abstractmethod
    def decode(self, features: np.ndarray, prompts: list[list[int]], options: DecodingOptions,
               temperature: float = 0.0, seeds: list[int] | None = None) -> list[Decoded]:
        """Decode a batch at one temperature.

        Args:
            features: float32 log-mel, shape (batch, n_mels, 3000).
            prompts: the forced decoder prefix of each item (they differ only by language).
            options: decoding settings (scores are computed when ``options.scored``).
            temperature: 0 = greedy or beam search; above 0, ``options.best_of`` samples
                per item at this temperature, the likeliest kept.
            seeds: one per item for sampling (default ``options.seed``).

        Returns:
            For each item, its ``Decoded``.
        """

    def generate(
        self, features: np.ndarray, prompts: list[list[int]], options: DecodingOptions
    ) -> list[list[int]]:
        """The generated ids of each item at temperature 0 (``decode`` without scores)."""
        return [d.tokens for d in self.decode(features, prompts, options)]

    aligns = False  # whether ``align`` is implemented (word timestamps)

    def align(self, features: np.ndarray, prompt: list[int], texts: list[list[int]],
              num_frames: list[int]) -> list[Alignment]:
        """Align each item's text ids (no timestamp tokens) with its audio, for word
        timestamps.

        Args:
            features: float32 log-mel (batch, n_mels, 3000).
            prompt: the text-only prompt (ending with <|notimestamps|>) shared by the batch.
            texts: each item's text ids.
            num_frames: each item's log-mel frames of real audio (100 per second).

        Raises:
            OptionError: this runtime has no cross-attention output.
        """
        raise OptionError(f"word timestamps are not available for {self.format} artifacts yet "
                          "(they are for CTranslate2, ONNX, OpenVINO and TorchScript artifacts and "
                          "transformers directories)")

    def check_aligns(self) -> None:
        """Fail before any work where word timestamps would fail after decoding."""
        if not self.aligns:
            self.align(np.zeros((0, self.n_mels, 3000), np.float32), [], [], [])

    def check_decoding(self, options: DecodingOptions) -> None:
        """OptionError before any work for decoding settings this runtime cannot honour
        (the pipeline calls it once; by default only word timestamps can be missing)."""
        if options.word_timestamps:
            self.check_aligns()

    #: Whether ``encode`` gives the encoder output (parity checks compare it); engines whose
    #: library hides it (whisper.cpp) are checked on their tokens only.
    exposes_encoder = True
    #: Whether ``decode`` runs a batch's windows one after another (no batch API): batched
    #: figures then measure sequential decoding, and the bench says so.
    sequential_batches = False
    #: Whether the runtime decodes the temperature-fallback ladder (sampling, scores): the
    #: command lines' default ladder is dropped, with a note, where it cannot (whisper.cpp).
    falls_back = True

    @abstractmethod
    def encode(self, features: np.ndarray) -> np.ndarray:
        """Encoder output, float32 (batch, frames // 2, d_model): used by parity checks."""

    def detect_language(self, features: np.ndarray) -> list[str]:
        """Most likely language code ("en", "de", ...) of each item in the batch."""
        found = self.language_probabilities(features)
        if not all(found):
            raise ArtifactError(f"{self.model_dir} records no language tokens: it cannot "
                                f"detect a language (give one)")
        return [max(probs, key=probs.__getitem__) for probs in found]

    @abstractmethod
    def language_probabilities(self, features: np.ndarray) -> list[dict[str, float]]:
        """Each item's probability of every language the model knows (the softmax over
        the language tokens after <|startoftranscript|>, as openai/whisper detects it;
        faster-whisper's ``info.all_language_probs``)."""

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
