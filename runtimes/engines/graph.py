"""What every graph runtime (ONNX Runtime, OpenVINO, TorchScript, TensorRT) shares: the
artifact's graph spec (``runtimes.artifacts.manifest.GraphSpec``) and suppress rules, and the
decoding loops of ``runtimes.decode.loops``. An engine adds loading, ``cross_cache``,
``decode_step``, ``empty_cache``, ``select`` and ``encode``."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from runtimes.artifacts.graph_spec import GRAPH_SPEC, GraphSpec
from runtimes.base import Alignment, Decoded, DecodingOptions, RuntimeOptions, WhisperRuntime
from runtimes.decode.loops import concat_rows, decode, language_probabilities
from runtimes.decode.reuse import LastPass
from runtimes.decode.step import SuppressRules, encoder_pass
from runtimes.errors import OptionError
from runtimes.precision import canonical


class GraphRuntime(WhisperRuntime):
    """Base of the runtimes that drive the two exported Whisper graphs."""

    #: The encoder and decoder files of this format, e.g. ("encoder.onnx", "decoder.onnx").
    graph_files: tuple[str, str] = ("", "")
    #: Whether this format's exporter can add the alignment graph (--word-timestamps).
    exports_alignment: bool = False
    #: Most windows per encoder call; 0 = the whole batch (see runtimes.decode.step.StepModel).
    encoder_batch: int = 0

    def __init__(self, model_dir: Path, options: RuntimeOptions) -> None:
        super().__init__(model_dir, options)
        self._spec = GraphSpec.read(self.model_dir)
        self._rules = SuppressRules.load(self.model_dir)
        self.last_pass = LastPass()  # see runtimes.decode.step.encoder_pass
        if options.provider is not None and self.format != "onnx":
            raise OptionError(f"provider {options.provider!r} applies to ONNX artifacts only")

    def _check_precision(self, requested: str | None, *also: str) -> None:
        """A graph artifact computes in the precision it was exported with (or a runtime
        hint listed in ``also``)."""
        accepted = (self._spec.precision, *also)
        if requested not in (None, *map(canonical, accepted)):
            raise OptionError(
                f"precision {requested!r} is not available for this {self.format} artifact "
                f"(accepted: {', '.join(accepted)}); another weight precision needs its own "
                f"export")

    @classmethod
    def sniff(cls, model_dir: Path) -> bool:
        return all((Path(model_dir) / f).is_file() for f in (*cls.graph_files, GRAPH_SPEC))

    @property
    def multilingual(self) -> bool:
        return self._spec.multilingual

    @property
    def n_mels(self) -> int:
        return self._spec.n_mels

    @property
    def precision(self) -> str:
        return self._spec.precision

    @property
    def rules(self) -> SuppressRules:
        """The suppress rules the decoding loops apply (the server's stepper too)."""
        return self._rules

    @property
    def ragged(self) -> bool:
        """Whether rows of one decoder step may have different cache lengths (the server's
        iteration-level batching needs it; artifacts exported before it lack the input)."""
        return self._spec.cache_lengths

    def _lengths(self, tokens, cache, lengths: np.ndarray | None) -> np.ndarray | None:
        """The decoder's ``cache_lengths`` feed (None when the graph has no such input):
        every row has the whole cache unless told."""
        if not self.ragged:
            return None
        if lengths is None:
            return np.full(len(tokens), cache[0].shape[2], np.int64)
        return np.asarray(lengths, np.int64)

    def _cache_shapes(self, batch: int) -> list[tuple[int, int, int, int]]:
        """The empty self-attention caches' shapes, in the decoder's input order (layers
        may differ in heads: a pruned model's)."""
        return [self._spec.kv_shape(name, batch, 0) for name in self._spec.input_names()
                if name.startswith("past")]

    def concat(self, parts: list) -> object:
        """Cross caches of consecutive chunks joined (numpy; torch engines override)."""
        return concat_rows(parts)

    def decode(self, features: np.ndarray, prompts: list[list[int]], options: DecodingOptions,
               temperature: float = 0.0, seeds: list[int] | None = None) -> list[Decoded]:
        return decode(self, features, prompts, options, self._rules, temperature, seeds)

    def alignment_pass(self, tokens: np.ndarray, cross) -> tuple[np.ndarray, np.ndarray]:
        """(logits (B, T, vocab), alignment heads' attention (B, heads, T, frames)) of a
        teacher-forced pass. Engines whose artifacts carry an alignment graph override it
        (and set ``aligns``); ``align`` never calls it otherwise."""
        raise OptionError(f"{self.model_dir}: this {self.format} runtime has no alignment graph")

    def align(self, features: np.ndarray, prompt: list[int], texts: list[list[int]],
              num_frames: list[int]) -> list[Alignment]:
        if not self.aligns and self.exports_alignment:
            raise OptionError(f"{self.model_dir} has no alignment graph: word timestamps need "
                              f"an artifact exported with `python -m exporters whisper --to "
                              f"{self.format} --word-timestamps`")
        if not self.aligns:
            return super().align(features, prompt, texts, num_frames)
        from runtimes.decode.alignment import attention_path, token_probs

        eot = self._rules.eot
        width = max(len(t) for t in texts) + 1
        ids = np.asarray([prompt + t + [eot] * (width - len(t)) for t in texts], np.int64)
        logits, attention = self.alignment_pass(ids, encoder_pass(self, features,
                                                                   reuse=True))
        start = len(prompt) - 1  # <|notimestamps|>: its position predicts the first text token
        out = []
        for row, (text, frames) in enumerate(zip(texts, num_frames)):
            path = attention_path(attention[row, :, start:start + len(text) + 1], frames)
            out.append(Alignment(*path, token_probs(logits[row, start:start + len(text), :eot],
                                                    text)))
        return out

    def language_probabilities(self, features: np.ndarray) -> list[dict[str, float]]:
        return language_probabilities(self, features, self._spec.languages, self.model_dir)

