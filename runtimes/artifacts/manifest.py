"""The artifact contract, written by ``exporters`` and read by ``runtimes``: one definition
for both sides, below both, so a deployment ships ``runtimes`` alone.

- ``artifact.json`` (:class:`Manifest`): what an artifact is and how to verify it: the
  format (it picks the runtime), the precision, the source and its checksum, the export
  options, every file with sha256 and size, package versions and the parity report.
- ``graph.json`` (:class:`GraphSpec`): what a graph runtime (ONNX Runtime, OpenVINO,
  TorchScript, TensorRT) needs to drive the two exported Whisper graphs.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import MISSING, asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from runtimes.errors import ArtifactError

MANIFEST = "artifact.json"
SCHEMA_VERSION = 1
GRAPH_SPEC = "graph.json"
#: graph.json's version; files written before it had one read as version 0. 2: per-layer
#: head counts (pruned models), which a version-1 reader would ignore and then feed caches
#: of the wrong shape, so it refuses version 2 instead.
GRAPH_SPEC_VERSION = 2
#: Multilingual Whisper vocabularies have 51865 tokens (large-v3: 51866), English-only 51864.
MULTILINGUAL_VOCAB = 51865
FAMILY = "whisper"


def is_multilingual(vocab_size: int) -> bool:
    """Whether a Whisper vocabulary has language and task tokens."""
    return vocab_size >= MULTILINGUAL_VOCAB


@dataclass(frozen=True)
class FileEntry:
    """One file of the artifact, relative to its directory."""

    path: str
    bytes: int
    sha256: str


@dataclass(frozen=True)
class Manifest:
    """Typed content of ``artifact.json``."""

    format: str
    precision: str
    device: str
    family: str
    model: dict[str, Any]
    source: dict[str, Any]
    options: dict[str, Any]
    files: tuple[FileEntry, ...]
    versions: dict[str, str]
    parity: dict[str, Any]
    created: str
    schema: int = SCHEMA_VERSION
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def total_bytes(self) -> int:
        return sum(f.bytes for f in self.files)

    @property
    def batch_invariant(self) -> bool:
        """Whether a window's result is the same alone and in any batch (``options``'
        "batch_invariant"). Manifests from before the key: all but dynamic-int8 ONNX
        artifacts (int8, and int4's int8 vocabulary) were."""
        legacy = not (self.format == "onnx" and self.precision in ("int8", "int4"))
        value = self.options.get("batch_invariant", legacy)
        if not isinstance(value, bool):
            raise ArtifactError(f"batch_invariant must be true or false, got {value!r}")
        return value

    @property
    def int8_kernels(self) -> str | None:
        """The CPU kind a dynamically quantised int8 artifact was tuned for ("vnni" or
        "avx2"), or None where the export's weights do not depend on it."""
        value = self.options.get("int8_kernels")
        if value not in (None, "vnni", "avx2"):
            raise ArtifactError(f"int8_kernels must be 'vnni' or 'avx2', got {value!r}")
        return value

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2, sort_keys=False) + "\n"

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Manifest:
        """The manifest of ``data``; ValueError naming a newer schema, a missing key or a
        malformed file entry (a reader must not guess what a newer writer meant: a schema-2
        manifest may change what a key means). Keys this schema does not know, added by a
        writer of the same schema, are kept in ``extra``."""
        schema = data.get("schema", SCHEMA_VERSION)
        if not isinstance(schema, int) or schema < 1:
            raise ValueError(f"schema {schema!r} is not a schema version (a whole number >= 1)")
        if schema > SCHEMA_VERSION:
            raise ValueError(f"schema {schema} is newer than this toolkit reads (up to "
                             f"{SCHEMA_VERSION}): upgrade the toolkit")
        names = {f.name for f in fields(cls)}
        unknown = {k: v for k, v in data.items() if k not in names}
        required = [f.name for f in fields(cls) if f.default is MISSING
                    and f.default_factory is MISSING]
        missing = [name for name in required if name not in data]
        if missing:
            raise ValueError(f"missing keys {', '.join(map(repr, missing))}")
        data = {k: v for k, v in data.items() if k in names}
        data["files"] = tuple(_file_entry(f) for f in data["files"])
        if unknown:
            data["extra"] = {**data.get("extra", {}), **unknown}
        return cls(**data)


def _file_entry(entry: Any) -> FileEntry:
    """One ``files`` item; ValueError naming what is wrong with it."""
    keys = {f.name for f in fields(FileEntry)}
    if not isinstance(entry, dict) or set(entry) != keys:
        raise ValueError(f"a files entry must have exactly the keys path, bytes, sha256; got "
                         f"{entry!r}")
    return FileEntry(**entry)


def sha256_file(path: Path, chunk: int = 1 << 20) -> str:
    """Hex sha256 of a file, read in 1 MiB chunks so large weights stay out of memory."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def describe_files(directory: Path) -> tuple[FileEntry, ...]:
    """FileEntry for every regular file below ``directory`` except the manifest, sorted."""
    entries = []
    for path in sorted(p for p in directory.rglob("*") if p.is_file()):
        rel = path.relative_to(directory).as_posix()
        if rel != MANIFEST:
            entries.append(FileEntry(rel, path.stat().st_size, sha256_file(path)))
    return tuple(entries)


def read_manifest(directory: Path) -> Manifest:
    """Parse ``artifact.json``; ArtifactError naming the directory if absent or invalid."""
    path = Path(directory) / MANIFEST
    if not path.is_file():
        raise ArtifactError(f"{directory} is not an artifact: {MANIFEST} is missing")
    try:
        data = json.loads(path.read_text())
        if not isinstance(data, dict):
            raise TypeError(f"a JSON {type(data).__name__}, not an object")
        return Manifest.from_dict(data)
    except (json.JSONDecodeError, TypeError, ValueError, UnicodeDecodeError) as exc:
        raise ArtifactError(f"{path} is not a valid manifest: {exc}") from exc


def manifest_digest(directory: Path) -> str:
    """"sha256:<hex>" of ``artifact.json``'s bytes. The manifest lists every file's sha256,
    so this one value pins the whole artifact (``RuntimeOptions.expect_digest``)."""
    return "sha256:" + sha256_file(Path(directory) / MANIFEST)


def write_manifest(directory: Path, manifest: Manifest) -> None:
    (Path(directory) / MANIFEST).write_text(manifest.to_json())


def verify(directory: Path, manifest: Manifest, checksums: bool = True) -> None:
    """Check that every listed file is present with its size (and sha256 if ``checksums``),
    inside the directory, and that the manifest lists files at all.

    Raises:
        ArtifactError: naming the first file that is missing, truncated, altered or outside.
    """
    directory = Path(directory)
    if not manifest.files:
        raise ArtifactError(f"artifact {directory} is not verifiable: its manifest lists no files")
    root = directory.resolve()
    for entry in manifest.files:
        path = directory / entry.path
        if Path(entry.path).is_absolute() or not path.resolve().is_relative_to(root):
            raise ArtifactError(f"artifact {directory} lists {entry.path!r}, outside its directory")
        if not path.is_file():
            raise ArtifactError(f"artifact {directory} is incomplete: {entry.path} is missing")
        size = path.stat().st_size
        if size != entry.bytes:
            raise ArtifactError(
                f"artifact {directory} is corrupted: {entry.path} has {size} bytes, "
                f"the manifest says {entry.bytes}"
            )
        if checksums and sha256_file(path) != entry.sha256:
            raise ArtifactError(
                f"artifact {directory} is corrupted: sha256 of {entry.path} does not match"
            )


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
