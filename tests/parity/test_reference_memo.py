"""The reference's answers are kept per process (exporters.reference_memo), so a source
exported to several targets decodes its reference once; an edited checkpoint must be asked
again, never answered from what its earlier weights said."""

from __future__ import annotations

import shutil

import numpy as np

from exporters.reference_memo import remembered
from exporters.validate import load_reference
from runtimes.audio.features import batch_log_mel
from runtimes.audio.files import load_audio


def test_the_same_question_is_answered_once_and_an_edited_checkpoint_again(
        tiny_random, tmp_path, jfk):
    import torch
    from transformers import WhisperForConditionalGeneration

    source = tmp_path / "hf"
    shutil.copytree(tiny_random, source)
    features = batch_log_mel([load_audio(jfk)], 80)
    asked = []

    def encoded():
        with load_reference(source, 2) as reference:
            return remembered(reference, "encode", (features,),
                              lambda: asked.append(1) or reference.encode(features))

    first = encoded()
    assert encoded() is first and len(asked) == 1
    with torch.no_grad():  # the same directory with other weights
        model = WhisperForConditionalGeneration.from_pretrained(source)
        model.model.encoder.layer_norm.weight.mul_(2)
        model.save_pretrained(source)
    second = encoded()
    assert len(asked) == 2 and not np.allclose(first, second)
    assert not first.flags.writeable  # shared with every later caller
