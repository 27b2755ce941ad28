"""The comparison's pure parts: the plan of variants, the Pareto front, the recommendation,
token agreement and the repetition signal."""

from __future__ import annotations

from pathlib import Path

import pytest

from bench.compare import packed_mb, plan, recommend, with_recipes
from bench.compare_files import peer_ratios
from bench.metrics import repeated_ngram_clips, token_agreement
from bench.plots import pareto_front
from bench.runner import Row
from runtimes.errors import ToolkitError


def test_plan_lists_runnable_variants_and_skips_what_this_machine_cannot_run():
    variants = {v.name: v for v in plan("cpu")}
    assert variants["onnx int8"].skip_reason is None
    assert variants["ctranslate2 int8_float32"].skip_reason is None
    assert "cuda" in variants["onnx fp16"].skip_reason
    assert "NVIDIA GPU" in variants["tensorrt fp32"].skip_reason
    assert "ctranslate2 int4" not in variants  # not a precision of that target at all


def test_plan_rejects_unknown_targets_by_name():
    with pytest.raises(ToolkitError, match="unknown target.*nope.*available: ctranslate2"):
        plan("cpu", ["onnx", "nope"])


def test_recipes_add_rows_per_named_row_and_skip_what_a_target_cannot_hold():
    from bench.options import CompareOptions

    recipes = CompareOptions(Path("m.tsv"), compress=("prune-heads:0.25+prune-ffn:.25",
                                                      "cluster:16"),
                             compress_with=("onnx int8",)).compression_recipes()
    assert recipes == [("prune-heads:0.25", "prune-ffn:0.25"), ("cluster:16",)]
    base = plan("cpu", ["onnx", "ctranslate2"])
    variants = {v.name: v for v in with_recipes(base, recipes[:1])}
    pruned = variants["onnx int8 + prune-heads:0.25+prune-ffn:0.25"]
    assert pruned.skip_reason is None and pruned.slug == "onnx-int8-prune-heads0.25-prune-ffn0.25"
    assert "one head count" in variants[
        "ctranslate2 int8_float32 + prune-heads:0.25+prune-ffn:0.25"].skip_reason
    assert "onnx fp16 + prune-heads:0.25+prune-ffn:0.25" not in variants  # not runnable here
    only = with_recipes(base, recipes[1:], ("onnx int8",))
    assert [v.name for v in only[len(base):]] == ["onnx int8 + cluster:16"]
    with pytest.raises(ToolkitError, match="--compress-with onnx int3: not a row"):
        with_recipes(base, recipes, ("onnx int3",))


def test_activation_recipes_need_calibration_audio():
    from bench.options import CompareOptions
    from exporters.calibration import CalibrationSet
    from runtimes.errors import OptionError

    with pytest.raises(OptionError, match=":activation importance needs --calibration"):
        CompareOptions(Path("m.tsv"), compress=("prune-ffn:0.25:activation",)
                       ).compression_recipes()
    recipes = CompareOptions(Path("m.tsv"), calibration=CalibrationSet(Path(".")),
                             compress=("prune-ffn:0.25:activation+prune-heads:.1:magnitude",)
                             ).compression_recipes()
    assert recipes == [("prune-ffn:0.25:activation", "prune-heads:0.1")]  # the default unsaid
    variants = with_recipes(plan("cpu", ["onnx"]), recipes, ("onnx int8",))
    assert variants[-1].slug == "onnx-int8-prune-ffn0.25activation-prune-heads0.1"


def test_packed_size_shrinks_with_redundancy(tmp_path):
    import os

    (tmp_path / "zeros").write_bytes(bytes(1_000_000))
    (tmp_path / "noise").write_bytes(os.urandom(1_000_000))
    assert packed_mb(tmp_path / "zeros") < 0.01 < 0.99 < packed_mb(tmp_path / "noise")
    assert packed_mb(tmp_path) == pytest.approx(packed_mb(tmp_path / "zeros")
                                                + packed_mb(tmp_path / "noise"))


def test_pareto_front():
    # (wer %, rtfx): b beats a on both; c is fastest; d is most accurate; e is dominated by c.
    points = [(6.0, 10.0), (5.5, 12.0), (7.0, 30.0), (5.0, 8.0), (7.5, 20.0)]
    assert pareto_front(points) == [3, 1, 2]


def _row(name, wer, delta, rtfx, batched=None):
    return Row(name=name, precision="p", wer=wer, delta_wer=delta, rtfx_b1=rtfx,
               rtfx_batched=batched or {}, size_mb=10.0)


def test_recommendation_is_the_fastest_artifact_within_the_budget():
    rows = [_row("pytorch fp32", 0.058, 0.0, 9.0), _row("onnx int8", 0.050, -0.008, 26.0),
            _row("openvino int8", 0.058, 0.0, 31.0, {8: 42.0}),
            _row("onnx int4", 0.071, 0.0125, 40.0)]
    artifacts = {"onnx int8", "openvino int8", "onnx int4"}
    text = recommend(rows, artifacts, 0.5)
    assert "**openvino int8**" in text and "42.0 at batch 8" in text
    assert "**onnx int4**" in recommend(rows, artifacts, 2.0)
    assert recommend(rows, {"onnx int4"}, 0.5).startswith("No artifact")
    assert "at batch 1, WER" in recommend(rows, {"onnx int8"}, 0.5)  # no batched figure


def test_peers_are_never_recommended_but_a_faster_one_is_named_and_compared():
    rows = [_row("pytorch fp32", 0.058, 0.0, 9.0), _row("onnx int8", 0.050, -0.008, 26.0),
            _row("ctranslate2 int8_float32", 0.058, 0.0, 20.0),
            _row("peer whisper.cpp q8_0", 0.058, 0.0, 13.0),
            _row("peer optimum-openvino int8", 0.059, 0.001, 30.0)]
    rows[0].runtime = "transformers"
    rows[3].peer = rows[4].peer = True
    text = recommend(rows, {"onnx int8", "ctranslate2 int8_float32"}, 0.5)
    assert "**onnx int8**" in text
    assert text.endswith("Faster at batch 1 within the same WER: peer optimum-openvino int8.")
    assert peer_ratios(rows) == [
        "onnx int8 (RTFx b1 26.0, WER 5.00%) is 2.00x peer whisper.cpp q8_0 (RTFx b1 13.0, "
        "WER 5.80%)",
        "onnx int8 (RTFx b1 26.0, WER 5.00%) is 0.87x peer optimum-openvino int8 (RTFx b1 "
        "30.0, WER 5.90%)"]
    assert peer_ratios(rows, 0.5) == peer_ratios(rows)  # the fastest is also within 0.5
    rows.append(_row("onnx int4", 0.080, 0.022, 39.0))  # faster, 2.2 points worse
    lines = peer_ratios(rows, 0.5)
    assert lines[0].startswith("onnx int4 (RTFx b1 39.0, WER 8.00%) is 3.00x peer whisper.cpp")
    assert lines[2:] == [
        "onnx int8, the fastest within 0.5 WER points (RTFx b1 26.0, WER 5.00%) is 2.00x peer "
        "whisper.cpp q8_0 (RTFx b1 13.0, WER 5.80%)",
        "onnx int8, the fastest within 0.5 WER points (RTFx b1 26.0, WER 5.00%) is 0.87x peer "
        "optimum-openvino int8 (RTFx b1 30.0, WER 5.90%)"]


def test_plan_offers_every_ggml_type_whisper_cpp_runs():
    pytest.importorskip("_pywhispercpp", reason="the 'ggml' extra is not installed")
    variants = {v.name: v for v in plan("cpu", ["ggml"])}
    assert sorted(variants) == sorted(f"ggml {t}" for t in
                                      ("fp16", "q8_0", "q5_0", "q5_1", "q4_0", "q4_1"))


def test_corpus_token_agreement_weights_clips_by_length():
    assert token_agreement([[1, 2, 3, 4]], [[1, 2, 3, 4]]) == 1.0
    assert token_agreement([[1, 2, 3, 4], [5]], [[1, 2, 9, 4], [5]]) == pytest.approx(4 / 5)
    assert token_agreement([[]], [[]]) == 1.0


def test_repeated_ngrams_count_only_repetition_the_reference_lacks():
    loop = "thank you for watching " * 3
    assert repeated_ngram_clips(["a b c d e f"], [loop]) == 1
    assert repeated_ngram_clips([loop], [loop]) == 0
    assert repeated_ngram_clips(["one two three"], ["one two three"]) == 0
