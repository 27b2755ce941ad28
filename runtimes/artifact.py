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
from dataclasses import asdict, dataclass, field, fields, replace
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

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2, sort_keys=False) + "\n"

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Manifest:
        data = dict(data)
        data["files"] = tuple(FileEntry(**f) for f in data.get("files", ()))
        return cls(**data)


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
            spec = cls.from_json(path.read_text())
        except (json.JSONDecodeError, TypeError, UnicodeDecodeError) as exc:
            raise ArtifactError(f"{path} is not a valid graph spec: {exc}") from exc
        if spec.version > GRAPH_SPEC_VERSION:
            raise ArtifactError(f"{path} has version {spec.version}; this toolkit reads up to "
                                f"{GRAPH_SPEC_VERSION}: upgrade it")
        return spec

    def write(self, directory: Path) -> None:
        (Path(directory) / GRAPH_SPEC).write_text(self.to_json())
