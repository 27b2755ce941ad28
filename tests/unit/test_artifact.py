from pathlib import Path

import pytest

from runtimes.artifacts.manifest import (
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


def test_graph_spec_round_trips_and_reads_old_files(tmp_path):
    import json

    from runtimes.artifacts.graph_spec import GRAPH_SPEC_VERSION, GraphSpec

    spec = GraphSpec(80, 4, 6, 384, 51864, "int8", {}, True, traced_on="cuda", opset=17)
    spec.write(tmp_path)
    assert GraphSpec.read(tmp_path) == spec and spec.version == GRAPH_SPEC_VERSION
    # written before the spec had a version: every key it had, plus one we never knew
    old = {"n_mels": 80, "n_layers": 4, "n_heads": 6, "d_model": 384, "vocab_size": 51865,
           "precision": "fp32", "languages": {"en": 50259}, "opset": 17, "novel": [1]}
    (tmp_path / "graph.json").write_text(json.dumps(old))
    read = GraphSpec.read(tmp_path)
    assert read.version == 0 and not read.cache_lengths and read.traced_on == "cpu"
    assert read.multilingual and read.languages == {"en": 50259} and read.extra == {"novel": [1]}
    assert json.loads(read.to_json())["novel"] == [1]  # kept on a rewrite


def test_graph_spec_from_a_newer_writer_or_broken_is_refused(tmp_path):
    from runtimes.artifacts.graph_spec import GraphSpec

    GraphSpec(80, 4, 6, 384, 51864, version=99).write(tmp_path)
    with pytest.raises(ArtifactError, match="version 99; this toolkit reads up to"):
        GraphSpec.read(tmp_path)
    (tmp_path / "graph.json").write_text('{"precision": "fp32"}')
    with pytest.raises(ArtifactError, match="not a valid graph spec"):
        GraphSpec.read(tmp_path)
    with pytest.raises(ArtifactError, match="has no graph.json"):
        GraphSpec.read(tmp_path / "nowhere")


def test_manifest_of_another_family_is_refused(tmp_path):
    import runtimes
    from runtimes.artifacts.manifest import Manifest, write_manifest

    write_manifest(tmp_path, Manifest("onnx", "fp32", "cpu", "wav2vec2", {}, {}, {}, (), {},
                                      {}, "now"))
    with pytest.raises(ArtifactError, match="holds a 'wav2vec2' model"):
        runtimes.load_runtime(tmp_path)


@pytest.mark.parametrize("change, message", [
    ({"schema": 99}, "schema 99 is newer than this toolkit reads \\(up to 1\\): upgrade"),
    ({"schema": "1"}, "schema '1' is not a schema version"),
    ({"files": [{"path": "model.bin"}]}, "a files entry must have exactly the keys"),
])
def test_a_manifest_from_a_newer_writer_or_edited_is_refused_in_one_line(tmp_path, change,
                                                                         message):
    """Issue 32: schema 99 loaded silently; an unknown key failed with Python internals."""
    import json

    directory, _ = _artifact(tmp_path)
    data = json.loads((directory / "artifact.json").read_text())
    (directory / "artifact.json").write_text(json.dumps({**data, **change}))
    with pytest.raises(ArtifactError, match=message) as caught:
        read_manifest(directory)
    assert "__init__" not in str(caught.value) and "\n" not in str(caught.value)


def test_a_manifest_key_this_schema_does_not_know_is_kept(tmp_path):
    """Issue 32: an unknown key failed with 'Manifest.__init__() got an unexpected keyword
    argument'; a writer of the same schema may add keys, so they load and are kept."""
    import json

    directory, manifest = _artifact(tmp_path)
    data = json.loads((directory / "artifact.json").read_text())
    (directory / "artifact.json").write_text(json.dumps({**data, "novel": [1]}))
    read = read_manifest(directory)
    assert read.extra == {"novel": [1]} and read.files == manifest.files


def test_a_manifest_missing_a_key_names_it(tmp_path):
    import json

    directory, _ = _artifact(tmp_path)
    data = json.loads((directory / "artifact.json").read_text())
    del data["precision"]
    (directory / "artifact.json").write_text(json.dumps(data))
    with pytest.raises(ArtifactError, match="missing keys 'precision'"):
        read_manifest(directory)


@pytest.mark.parametrize("change, message", [
    ({"n_layers": -4}, "n_layers must be a whole number >= 1, got -4"),
    ({"n_heads": 0}, "n_heads must be a whole number >= 1, got 0"),
    ({"d_model": 385}, "d_model 385 is not a multiple of n_heads 6"),
    ({"vocab_size": "51864"}, "vocab_size must be a whole number >= 1, got '51864'"),
    ({"decoder_heads": [6, 6]}, "decoder_heads must list one head count per decoder layer"),
    ({"cross_heads": [6, 6, 0, 6]}, "cross_heads must be a whole number >= 1, got 0"),
    ({"languages": {"en": 99999}}, "languages must map language codes to token ids"),
])
def test_an_edited_graph_spec_is_refused_when_read(tmp_path, change, message):
    """Issue 32: n_layers -4 under --skip-checksums ended in an IndexError in the decoder."""
    import json

    from runtimes.artifacts.graph_spec import GraphSpec

    GraphSpec(80, 4, 6, 384, 51864).write(tmp_path)
    data = json.loads((tmp_path / "graph.json").read_text())
    (tmp_path / "graph.json").write_text(json.dumps({**data, **change}))
    with pytest.raises(ArtifactError, match=f"not a valid graph spec: {message}"):
        GraphSpec.read(tmp_path)
