"""``--distill AUDIO``: a short fine-tune of a compressed model's decoder on the user's own
audio, labelled by the uncompressed model (distil-whisper's recipe, minus its scale).

The teacher (the uncompressed reference) transcribes each 30 s window greedily; the student
(the compressed checkpoint) learns those transcripts by cross-entropy, its encoder frozen
(its outputs are computed once), its decoder layers trained with AdamW for ``steps`` batches
of ``BATCH`` windows. distil-whisper trained on 22,000 hours; minutes of audio can re-align a
few remaining layers to what was removed, not teach them what the removed ones knew, so the
bench's WER on audio the fine-tune never saw is the figure that says what it recovered.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from exporters.calibration import CalibrationSet
from exporters.teacher import BATCH, IGNORE, decoder_batch, pseudo_labels, windows

LEARNING_RATE = 5e-5


def distill(teacher_dir: Path, student_dir: Path, audio: CalibrationSet, steps: int,
            log: Callable[[str], None] = print) -> dict:
    """Fine-tune the checkpoint in ``student_dir`` in place on ``audio`` labelled by the
    model in ``teacher_dir``; return what the manifest records (windows, steps, the loss
    at the start and the end, seconds)."""
    import torch

    from runtimes.artifacts.checkpoint import load_whisper

    started = time.perf_counter()
    student = load_whisper(student_dir)
    features = windows(audio, student.config.num_mel_bins)
    log(f"      labelling {len(features)} windows of 30 s with the uncompressed model")
    labels = pseudo_labels(teacher_dir, features)
    with torch.no_grad():
        hidden = torch.cat([student.model.encoder(torch.from_numpy(features[i:i + BATCH]))
                            .last_hidden_state for i in range(0, len(features), BATCH)])
    losses = _train(student, hidden, labels, steps, log)
    student.save_pretrained(student_dir)
    return {"audio": audio.to_dict(len(audio.files())), "windows": len(features),
            "steps": steps, "batch": BATCH, "learning_rate": LEARNING_RATE,
            "loss_first": round(losses[0], 4), "loss_last": round(float(np.mean(losses[-10:])), 4),
            "seconds": round(time.perf_counter() - started, 1)}


def _train(student, hidden, labels: list[tuple[int, list[int]]], steps: int,
           log: Callable[[str], None]) -> list[float]:
    import torch

    eot = student.generation_config.eos_token_id
    torch.manual_seed(0)
    student.model.encoder.requires_grad_(False)
    # The token embedding is also the output projection: frozen, the student keeps the
    # teacher's vocabulary geometry, and a step costs a third less (its gradient and AdamW
    # state are 51864 x d_model).
    student.model.decoder.embed_tokens.requires_grad_(False)
    student.train()
    params = [p for p in student.model.decoder.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=LEARNING_RATE, weight_decay=0.0)
    order = torch.randperm(len(labels)).tolist()
    losses = []
    for step in range(steps):
        rows = [order[(step * BATCH + i) % len(order)] for i in range(min(BATCH, len(order)))]
        ids, targets, _ = decoder_batch(labels, rows, eot)
        out = student.model.decoder(input_ids=ids, encoder_hidden_states=hidden[rows])
        logits = student.proj_out(out.last_hidden_state)
        loss = torch.nn.functional.cross_entropy(logits.flatten(0, 1), targets.flatten(),
                                                 ignore_index=IGNORE)
        optimizer.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        optimizer.step()
        losses.append(loss.item())
        if (step + 1) % max(1, steps // 5) == 0 or step + 1 == steps:
            log(f"      distilling: step {step + 1}/{steps}, loss {np.mean(losses[-10:]):.3f}")
    student.eval()
    return losses
