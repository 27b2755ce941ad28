"""The artifact contract, written by ``exporters`` and read by ``runtimes``: one definition
for both sides, below both, so a deployment ships ``runtimes`` alone.

- ``artifact.json`` (:class:`Manifest`): what an artifact is and how to verify it: the
  format (it picks the runtime), the precision, the source and its checksum, the export
  options, every file with sha256 and size, package versions and the parity report.
- ``graph.json``: see ``runtimes.artifacts.graph_spec``.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import MISSING, asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from runtimes.errors import ArtifactError

MANIFEST = "artifact.json"
SCHEMA_VERSION = 1
FAMILY = "whisper"


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
