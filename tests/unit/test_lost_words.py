"""The comparison's per-recording diff of lost words (bench/lost_words.py)."""

from __future__ import annotations

from pathlib import Path

from bench.lost_words import lost, section
from bench.runner import Row
from runtimes.audio.datasets import Clip

REFERENCE = "ask not what your country can do for you ask what you can do for your country"


def test_lost_words_are_the_reference_words_deleted_or_replaced():
    words = REFERENCE.split()
    hypothesis = "ask not what your county can do for you ask what you can do"
    assert [words[i] for i in lost(REFERENCE, hypothesis, "en")] == [
        "country", "for", "your", "country"]
    assert lost(REFERENCE, REFERENCE.upper() + ".", "en") == []


def test_the_section_lists_each_rows_difference_with_faster_whispers_batched_row():
    clips = [Clip("jfk", Path("jfk.flac"), REFERENCE), Clip("same", Path("x.flac"), "a b c")]
    ours = Row("onnx int8", runtime="onnxruntime",
               texts=["ask not what your country can do for you", "a b c"])
    theirs = Row("faster-whisper batched int8", runtime="faster-whisper batched",
                 texts=["ask not what your county can do for you ask what you can do for "
                        "your country", "a b c"])
    table = section([ours, theirs], clips)
    assert "| jfk | onnx int8 | ask@9 what@10 you@11 can@12 do@13 for@14 your@15 " \
           "country@16 | country@4 |" in table
    assert "| same |" not in table
    assert section([ours], clips) == ""
    assert "No row lost other" in section([theirs, Row("copy", runtime="x",
                                                       texts=theirs.texts)], clips)
