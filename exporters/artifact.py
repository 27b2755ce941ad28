"""The artifact manifest (``artifact.json``): what an artifact is and how to verify it.

An artifact directory is a deployment unit: weights, tokenizer, feature-extractor config
and this manifest, which records the format (it picks the runtime), the precision, the
source and its checksum, the export options, every file with sha256 and size, package
versions and the parity report against the PyTorch reference.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from runtimes.errors import ArtifactError

MANIFEST = "artifact.json"
SCHEMA_VERSION = 1


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
        return Manifest.from_dict(json.loads(path.read_text()))
    except (json.JSONDecodeError, TypeError) as exc:
        raise ArtifactError(f"{path} is not a valid manifest: {exc}") from exc


def write_manifest(directory: Path, manifest: Manifest) -> None:
    (Path(directory) / MANIFEST).write_text(manifest.to_json())


def verify(directory: Path, manifest: Manifest, checksums: bool = True) -> None:
    """Check that every listed file is present with its size (and sha256 if ``checksums``).

    Raises:
        ArtifactError: naming the first file that is missing, truncated or altered.
    """
    directory = Path(directory)
    for entry in manifest.files:
        path = directory / entry.path
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
