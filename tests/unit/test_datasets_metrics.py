import pytest

from bench.metrics import error_rates
from runtimes.audio.datasets import DatasetError, load_clips


def test_manifest_without_reference_column(tmp_path):
    manifest = tmp_path / "m.tsv"
    manifest.write_text("id\tpath\nx\ta.wav\n")
    with pytest.raises(DatasetError, match="lacks column.*reference"):
        load_clips(manifest)


def test_manifest_with_missing_audio_files(tmp_path):
    manifest = tmp_path / "m.tsv"
    manifest.write_text("id\tpath\treference\nx\tnope.wav\thello\n")
    with pytest.raises(DatasetError, match="1 audio file.*do not exist.*nope.wav"):
        load_clips(manifest)


def test_unknown_subset_lists_the_available_ones(speech_rows):
    from tests.conftest import MANIFEST

    with pytest.raises(DatasetError, match="subset 'klingon'.*en, formats, longform, multi"):
        load_clips(MANIFEST, "klingon")
    clips = load_clips(MANIFEST, "en")
    assert len(clips) == 56 and all(c.reference for c in clips)


def test_folder_gives_clips_without_references(tmp_path, jfk):
    (tmp_path / "a.flac").write_bytes(jfk.read_bytes())
    (tmp_path / "readme.txt").write_text("not audio")
    clips = load_clips(tmp_path)
    assert [c.id for c in clips] == ["a"] and clips[0].reference is None
    with pytest.raises(DatasetError, match="manifest not found"):
        load_clips(tmp_path / "missing.tsv")


def test_corpus_wer_counts_errors_over_all_reference_words():
    # 1 substitution in 4 words + 1 deletion in 1 word = 2 / 5, not the mean of 25% and 100%.
    rates = error_rates(["the cat sat down", "hello"], ["the cat sat town", ""], ["en", "en"])
    assert rates.wer == pytest.approx(0.4)
    assert rates.words == 5


def test_english_normaliser_uses_the_spelling_map():
    rates = error_rates(["The colour, Mr. Smith!"], ["the color mister smith"], ["en"])
    assert rates.wer == 0.0


def test_error_rates_without_jiwer_match_jiwer(monkeypatch):
    import builtins

    from bench.metrics import error_rates

    refs = ["the cat sat on the mat", "hello world", "a b c d"]
    hyps = ["the cat sit on mat", "hello there world", ""]
    with_jiwer = error_rates(refs, hyps, ["en"] * 3)
    real_import = builtins.__import__

    def no_jiwer(name, *args, **kwargs):
        if name == "jiwer":
            raise ImportError("jiwer hidden by the test")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_jiwer)
    without = error_rates(refs, hyps, ["en"] * 3)
    assert without.wer == pytest.approx(with_jiwer.wer) and without.wer > 0
    assert without.cer == pytest.approx(with_jiwer.cer) and without.words == with_jiwer.words
