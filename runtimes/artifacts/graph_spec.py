"""``graph.json`` (:class:`GraphSpec`): what a graph runtime (ONNX Runtime, OpenVINO,
TorchScript, TensorRT) needs to drive the two exported Whisper graphs: shapes, precision
and decoding facts, versioned and validated when read (written by ``exporters``, read by
the graph engines).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from runtimes.errors import ArtifactError

GRAPH_SPEC = "graph.json"
#: graph.json's version; files written before it had one read as version 0. 2: per-layer
#: head counts (pruned models), which a version-1 reader would ignore and then feed caches
#: of the wrong shape, so it refuses version 2 instead.
GRAPH_SPEC_VERSION = 2
#: Multilingual Whisper vocabularies have 51865 tokens (large-v3: 51866), English-only 51864.
MULTILINGUAL_VOCAB = 51865


def is_multilingual(vocab_size: int) -> bool:
    """Whether a Whisper vocabulary has language and task tokens."""
    return vocab_size >= MULTILINGUAL_VOCAB


@dataclass(frozen=True)
class GraphSpec:
    """The two graphs of a graph artifact: shapes, precision and decoding facts.

    Attributes:
        n_mels, n_layers, n_heads, d_model, vocab_size: the model's shapes (decoder
            layers and heads: the caches' shapes).
        decoder_heads, cross_heads: per decoder layer, the self- and cross-attention heads
            where pruning made them differ from ``n_heads`` (None: every layer has n_heads).
        precision: the precision the weights were exported in, e.g. "int8".
        languages: language code -> token id (empty for English-only models).
        cache_lengths: the decoder step takes per-row cache lengths (the server's
            iteration-level batching needs it; artifacts from before it lack the input).
        n_frames, n_audio_ctx: log-mel frames per 30 s window and encoder positions.
        traced_on: the device a TorchScript trace was made on (a trace keeps it).
        opset, graph_optimization: how an ONNX graph was written and is optimised.
        torch: the torch version of a TorchScript trace.
        trt_identity: GPU, compute capability and TensorRT version an engine was built
            for; max_batch, max_prompt: its optimisation profile's limits.
        extra: keys this version does not know (from a newer writer), kept as they are.
        version: GRAPH_SPEC_VERSION of the writer.
    """

    n_mels: int
    n_layers: int
    n_heads: int
    d_model: int
    vocab_size: int
    precision: str = "fp32"
    languages: dict[str, int] = field(default_factory=dict)
    cache_lengths: bool = False
    n_frames: int = 3000
    n_audio_ctx: int = 1500
    traced_on: str = "cpu"
    opset: int | None = None
    graph_optimization: str | None = None
    torch: str | None = None
    trt_identity: dict[str, str] = field(default_factory=dict)
    max_batch: int | None = None
    max_prompt: int | None = None
    decoder_heads: list[int] | None = None
    cross_heads: list[int] | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    version: int = GRAPH_SPEC_VERSION

    def __post_init__(self) -> None:
        """A graph.json edited by hand (or written by a broken exporter) fails here with the
        value named, not as an IndexError deep in a decoder step."""
        for name in ("n_mels", "n_layers", "n_heads", "d_model", "vocab_size", "n_frames",
                     "n_audio_ctx"):
            _positive_int(name, getattr(self, name))
        if self.d_model % self.n_heads:
            raise ValueError(f"d_model {self.d_model} is not a multiple of n_heads "
                             f"{self.n_heads}")
        for name in ("decoder_heads", "cross_heads"):
            heads = getattr(self, name)
            if heads is None:
                continue
            if not isinstance(heads, list) or len(heads) != self.n_layers:
                raise ValueError(f"{name} must list one head count per decoder layer "
                                 f"({self.n_layers}), got {heads!r}")
            for count in heads:
                _positive_int(name, count)
        if not isinstance(self.languages, dict) or not all(
                isinstance(k, str) and isinstance(v, int) and 0 <= v < self.vocab_size
                for k, v in self.languages.items()):
            raise ValueError("languages must map language codes to token ids below "
                             f"vocab_size {self.vocab_size}")

    @property
    def head_dim(self) -> int:
        return self.d_model // self.n_heads

    def heads_of(self, name: str) -> int:
        """Heads of the cache tensor ``name`` (past_/present_/cross_ key/value _LAYER)."""
        layer = int(name.rsplit("_", 1)[1])
        per_layer = self.cross_heads if name.startswith("cross") else self.decoder_heads
        return per_layer[layer] if per_layer else self.n_heads

    def kv_shape(self, name: str, batch: int, length: int) -> tuple[int, int, int, int]:
        """(batch, heads, length, head size) of the cache tensor ``name``."""
        return (batch, self.heads_of(name), length, self.head_dim)

    @property
    def multilingual(self) -> bool:
        return is_multilingual(self.vocab_size)

    def input_names(self) -> list[str]:
        """The decoder step's inputs, in order."""
        names = ["input_ids"]
        for i in range(self.n_layers):
            names += [f"past_key_{i}", f"past_value_{i}"]
        return names + self.cross_names() + ["cache_lengths"]

    def cross_names(self) -> list[str]:
        return [n for i in range(self.n_layers) for n in (f"cross_key_{i}", f"cross_value_{i}")]

    def present_names(self) -> list[str]:
        return [n for i in range(self.n_layers) for n in (f"present_key_{i}", f"present_value_{i}")]

    def with_(self, **changes: Any) -> GraphSpec:
        """A copy with ``changes`` (dataclasses.replace)."""
        return replace(self, **changes)

    def to_json(self) -> str:
        data = {k: v for k, v in asdict(self).items() if k != "extra" and v not in (None, {})}
        return json.dumps({**data, **self.extra}, indent=2) + "\n"

    @classmethod
    def from_json(cls, text: str) -> GraphSpec:
        """Parse graph.json; files without a version are read as version 0 (the keys were
        the same, minus those added since), unknown keys go to ``extra``."""
        data = json.loads(text)
        if not isinstance(data, dict):
            raise TypeError(f"a JSON {type(data).__name__}, not an object")
        version = data.get("version", 0)
        if not isinstance(version, int) or version > GRAPH_SPEC_VERSION:
            # checked before the values: a newer writer's keys may mean something else
            raise ArtifactError(f"graph.json has version {version!r}; this toolkit reads up "
                                f"to {GRAPH_SPEC_VERSION}: upgrade it")
        known = {f.name for f in fields(cls)} - {"extra"}
        spec = {k: v for k, v in data.items() if k in known}
        spec.setdefault("version", 0)
        return cls(**spec, extra={k: v for k, v in data.items() if k not in known})

    @classmethod
    def read(cls, directory: Path) -> GraphSpec:
        """``directory``/graph.json; ArtifactError naming what is missing or wrong."""
        path = Path(directory) / GRAPH_SPEC
        if not path.is_file():
            raise ArtifactError(f"{directory} has no {GRAPH_SPEC}")
        try:
            return cls.from_json(path.read_text())
        except ArtifactError as exc:
            raise ArtifactError(f"{path}: {exc}") from None
        except (json.JSONDecodeError, TypeError, ValueError, UnicodeDecodeError) as exc:
            raise ArtifactError(f"{path} is not a valid graph spec: {exc}") from exc

    def write(self, directory: Path) -> None:
        (Path(directory) / GRAPH_SPEC).write_text(self.to_json())


def _positive_int(name: str, value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{name} must be a whole number >= 1, got {value!r}")
