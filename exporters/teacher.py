"""The uncompressed model's greedy transcripts of calibration windows: the labels that
``--distill`` trains on and that activation importance (``prune-heads:F:activation``)
feeds through the decoder, so both see the decoder on the text it is meant to produce.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np

from exporters.calibration import CalibrationSet, encoder_inputs

BATCH = 8
IGNORE = -100  # a target position the loss skips (the forced prompt, the padding)


def windows(audio: CalibrationSet, n_mels: int) -> np.ndarray:
    """The audio's log-mel windows, (N, n_mels, 3000), at most ``audio.max_windows``."""
    with warnings.catch_warnings():  # its few-windows warning is about quantisation ranges
        warnings.simplefilter("ignore")
        return np.concatenate(encoder_inputs(audio.files(), n_mels, audio.max_windows))


def pseudo_labels(teacher_dir: Path, features: np.ndarray) -> list[tuple[int, list[int]]]:
    """Per window: (prompt length, the teacher's prompt + greedy transcript + end token);
    a multilingual teacher detects each window's language first."""
    from exporters.validate import load_reference
    from runtimes.base import DecodingOptions
    from runtimes.decode.tokens import load_tokenizer

    with load_reference(teacher_dir, 0) as teacher:
        tokenizer = load_tokenizer(teacher_dir, teacher.multilingual)
        languages = (teacher.detect_language(features) if teacher.multilingual
                     else [None] * len(features))
        prompts = [tokenizer.prompt(language, "transcribe") for language in languages]
        out = []
        for i in range(0, len(features), BATCH):
            texts = teacher.generate(features[i:i + BATCH], prompts[i:i + BATCH],
                                     DecodingOptions())
            out += [(len(prompt), prompt + text + [tokenizer.eot])
                    for prompt, text in zip(prompts[i:i + BATCH], texts)]
    return out


def decoder_batch(labels: list[tuple[int, list[int]]], rows: list[int], eot: int):
    """Decoder inputs (all but the last token), targets (all but the first; the forced
    prompt's positions and the padding IGNORE) and the mask of real input positions, padded
    on the right to the longest row."""
    import torch

    width = max(len(labels[r][1]) for r in rows) - 1
    ids = torch.full((len(rows), width), eot, dtype=torch.long)
    targets = torch.full((len(rows), width), IGNORE, dtype=torch.long)
    mask = torch.zeros((len(rows), width), dtype=torch.bool)
    for n, r in enumerate(rows):
        prompt, sequence = labels[r]
        ids[n, : len(sequence) - 1] = torch.as_tensor(sequence[:-1])
        targets[n, prompt - 1: len(sequence) - 1] = torch.as_tensor(sequence[prompt:])
        mask[n, : len(sequence) - 1] = True
    return ids, targets, mask
