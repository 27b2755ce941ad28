import pytest

from exporters import sources


def test_unknown_bundled_model_lists_the_available_ones():
    with pytest.raises(sources.SourceError, match="bundled:large.*bundled:tiny.en, bundled:base"):
        sources.resolve("bundled:large")


def test_hub_id_offline_says_how_to_pass_a_local_path(monkeypatch, tmp_path):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path))
    with pytest.raises(sources.SourceError, match="could not be fetched.*Pass a local"):
        sources.resolve("openai/whisper-tiny")


def test_file_instead_of_directory(tmp_path):
    (tmp_path / "model.bin").write_bytes(b"x")
    with pytest.raises(sources.SourceError, match="is a file; pass the model's directory"):
        sources.resolve(str(tmp_path / "model.bin"))


def test_cache_dir_honours_the_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("WHISPER_EXPORTERS_CACHE", str(tmp_path))
    assert sources.cache_dir() == tmp_path
