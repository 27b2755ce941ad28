from pathlib import Path

import pytest

from exporters.artifact import (
    Manifest,
    describe_files,
    read_manifest,
    verify,
    write_manifest,
)
from runtimes.errors import ArtifactError


def _artifact(tmp_path: Path) -> tuple[Path, Manifest]:
    (tmp_path / "model.bin").write_bytes(b"weights" * 100)
    (tmp_path / "tokenizer.json").write_text("{}")
    manifest = Manifest(
        format="ctranslate2", precision="int8_float32", device="cpu", family="whisper",
        model={"multilingual": False}, source={"spec": "x"}, options={},
        files=describe_files(tmp_path), versions={}, parity={}, created="now",
    )
    write_manifest(tmp_path, manifest)
    return tmp_path, manifest


def test_manifest_round_trip_and_checksums(tmp_path):
    directory, manifest = _artifact(tmp_path)
    assert read_manifest(directory) == manifest
    assert [f.path for f in manifest.files] == ["model.bin", "tokenizer.json"]
    assert manifest.total_bytes == 702
    verify(directory, manifest)


def test_verify_names_missing_truncated_and_altered_files(tmp_path):
    directory, manifest = _artifact(tmp_path)
    (directory / "model.bin").write_bytes(b"weights" * 99)
    with pytest.raises(ArtifactError, match="model.bin has 693 bytes, the manifest says 700"):
        verify(directory, manifest)
    (directory / "model.bin").write_bytes(b"WEIGHTS" * 100)
    verify(directory, manifest, checksums=False)  # same size passes the quick check
    with pytest.raises(ArtifactError, match="sha256 of model.bin does not match"):
        verify(directory, manifest)
    (directory / "tokenizer.json").unlink()
    with pytest.raises(ArtifactError, match="tokenizer.json is missing"):
        verify(directory, manifest, checksums=False)


def test_read_manifest_errors(tmp_path):
    with pytest.raises(ArtifactError, match="artifact.json is missing"):
        read_manifest(tmp_path)
    (tmp_path / "artifact.json").write_text("{not json")
    with pytest.raises(ArtifactError, match="not a valid manifest"):
        read_manifest(tmp_path)
