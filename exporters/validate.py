"""Check an exported model against the fp32 PyTorch reference before it becomes an artifact.

Measures, each with a tolerance stated per target and precision: the relative error of
the encoder output on a real clip (where the runtime exposes it), the relative error of the
decoder's logits along the reference's greedy tokens (where it does not: whisper.cpp), and
the agreement of greedy tokens on that clip.
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from exporters.errors import ParityError
from exporters.reference_memo import remembered
from runtimes.audio.features import batch_log_mel
from runtimes.audio.files import SAMPLE_RATE, load_audio
from runtimes.base import DecodingOptions, RuntimeOptions, WhisperRuntime
from runtimes.cpu import cpu_info
from runtimes.decode.tokens import TOKENIZER_FILE, load_tokenizer
from runtimes.transcript.pipeline import Transcriber


@dataclass(frozen=True)
class ParityTolerance:
    """How far an artifact may stray from the fp32 PyTorch reference and still be valid.

    Attributes:
        encoder_rel_error: max ||artifact - reference|| / ||reference|| of encoder output;
            None for a runtime that does not expose it.
        token_agreement: min fraction of equal greedy tokens on the parity clip.
        logits_rel_error: max relative error of the decoder's logits at every step of the
            reference's greedy tokens, teacher-forced (whisper.cpp, which hides its
            encoder output); None where not measured.
    """

    encoder_rel_error: float | None
    token_agreement: float
    logits_rel_error: float | None = None


@dataclass(frozen=True)
class ParityReport:
    """Outcome of the parity check, stored in artifact.json."""

    audio: str
    encoder_rel_error: float | None  # None: the runtime does not expose it (whisper.cpp)
    token_agreement: float
    reference_text: str
    artifact_text: str
    tolerance: dict[str, float]
    passed: bool
    machine: str = ""  # the CPU it was measured on (int8 kernels differ by instruction set)
    #: where a tokens-only candidate left the reference at a near-tie (see near_tie)
    near_tie: dict | None = None
    logits_rel_error: float | None = None  # see ParityTolerance

    def to_dict(self) -> dict:
        return asdict(self)


def default_parity_audio() -> Path | None:
    """``$WHISPER_EXPORTERS_PARITY_AUDIO``, else None (a synthetic signal is used). The
    command line passes the checkout's JFK clip when there is one (exporters.cli)."""
    if env := os.environ.get("WHISPER_EXPORTERS_PARITY_AUDIO"):
        return Path(env)
    return None


def _synthetic_audio(seconds: float = 5.0) -> np.ndarray:
    """Deterministic tones plus noise: exercises every layer when no real clip exists."""
    t = np.arange(int(seconds * SAMPLE_RATE)) / SAMPLE_RATE
    rng = np.random.default_rng(0)
    tones = sum(np.sin(2 * np.pi * f * t) for f in (220.0, 440.0, 1250.0)) / 6
    return (tones + 0.05 * rng.standard_normal(t.size)).astype(np.float32)


def token_agreement(a: tuple[int, ...], b: tuple[int, ...]) -> float:
    """1 - token edit distance / longer length: 1.0 for equal sequences (or both empty).

    Edit distance, not position-wise equality: one inserted comma must not count as every
    later token being wrong."""
    longest = max(len(a), len(b))
    if longest == 0:
        return 1.0
    row = list(range(len(b) + 1))
    for i, x in enumerate(a, start=1):
        prev, row[0] = row[0], i
        for j, y in enumerate(b, start=1):
            prev, row[j] = row[j], min(row[j] + 1, row[j - 1] + 1, prev + (x != y))
    return 1.0 - row[-1] / longest


#: A reference step whose two likeliest tokens are closer than this (logits) is a near-tie:
#: fp16 weights may pick either. Trained models rarely have one; random ones often do
#: (a random large-v3-shaped model: margins of 0.07-0.5 at 6 of its first 12 steps).
NEAR_TIE = 1.0


def near_tie(reference: WhisperRuntime, features: np.ndarray, prompt: list[int],
             ref: list[int], out: list[int]) -> dict | None:
    """Where ``out`` leaves ``ref`` at a near-tie of the reference, or None.

    Why: whisper.cpp exposes no encoder output, so its parity rests on its tokens and its
    logits along the reference's tokens (``logits_error``); f16 weights may flip a
    near-tied step's choice, after which every token differs (a random large-v3-shaped
    model agreed on 8% of its tokens while agreeing token for token up to its first
    near-tie). The candidate passes if it equals the
    reference up to the first difference, and there picked a token within ``NEAR_TIE`` of
    the reference's choice (teacher-forced on the reference's own tokens). A broken file
    leaves the reference at an unambiguous step, or with a token far from its choice.
    """
    at = next((i for i, (a, b) in enumerate(zip(ref, out)) if a != b), min(len(ref), len(out)))
    if at >= len(ref) or at >= len(out):
        return None  # one ended early: not a flip at a near-tie
    logits = reference.teacher_forced_logits(features, prompt + ref[:at])[-1]
    margin = float(logits[ref[at]] - logits[out[at]])
    if margin > NEAR_TIE:
        return None
    return {"token": at, "reference": ref[at], "artifact": out[at], "margin": round(margin, 4)}


def logits_error(reference: WhisperRuntime, candidate: WhisperRuntime, features: np.ndarray,
                 prompt: list[int]) -> float:
    """Relative error of the candidate's decoder logits against the reference's, both
    teacher-forced on the reference's greedy tokens for the first window (every step
    scored on one path, so a near-tie's flip costs nothing and a wrong layer shows at every
    step)."""
    tokens, ours = remembered(reference, "logits", (features[:1], prompt),
                              lambda: _reference_logits(reference, features[:1], prompt))
    theirs = candidate.logits_along(features[0], prompt, tokens)
    return relative_error(theirs, ours)


def _reference_logits(reference: WhisperRuntime, features: np.ndarray,
                      prompt: list[int]) -> tuple[list[int], np.ndarray]:
    """The reference's greedy tokens for the window and its logits along them."""
    options = DecodingOptions(language="en" if reference.multilingual else None)
    tokens = list(reference.decode(features, [prompt], options)[0].tokens)
    return tokens, reference.teacher_forced_logits(features, prompt + tokens)[len(prompt) - 1:]


def relative_error(artifact: np.ndarray, reference: np.ndarray) -> float:
    """||artifact - reference|| / ||reference||."""
    return float(np.linalg.norm(artifact - reference) / max(np.linalg.norm(reference), 1e-12))


def check_parity(
    reference: WhisperRuntime,
    candidate: WhisperRuntime,
    model_dir: Path,
    tolerance: ParityTolerance,
    audio_path: Path | None,
) -> ParityReport:
    """Compare ``candidate`` with ``reference`` on one clip.

    Raises:
        ParityError: the candidate is outside ``tolerance``; the message gives both numbers.
    """
    samples = load_audio(audio_path) if audio_path else _synthetic_audio()
    features = batch_log_mel([samples], reference.n_mels)
    rel = _encoder_error(reference, candidate, features)
    tokenizer = load_tokenizer(model_dir, reference.multilingual)
    options = DecodingOptions(language="en" if reference.multilingual else None)
    vocabulary = (Path(model_dir) / TOKENIZER_FILE).read_bytes()  # the text depends on it
    ref = remembered(reference, "transcribe", (samples, options, vocabulary), lambda: (
        Transcriber(reference, tokenizer, options).transcribe([samples])[0]))
    out = Transcriber(candidate, tokenizer, options).transcribe([samples])[0]
    agreement = token_agreement(ref.tokens, out.tokens)
    prompt = tokenizer.prompt("en" if reference.multilingual else None, "transcribe")
    logits = (logits_error(reference, candidate, features, prompt)
              if tolerance.logits_rel_error is not None else None)
    within = [measured is None or (bound is not None and measured <= bound)
              for measured, bound in ((rel, tolerance.encoder_rel_error),
                                      (logits, tolerance.logits_rel_error))]
    passed = all(within) and agreement >= tolerance.token_agreement
    tie = None
    if all(within) and not passed and rel is None:  # tokens only: a near-tie may flip
        tie = near_tie(reference, features, prompt, list(ref.tokens), list(out.tokens))
        passed = tie is not None
    report = ParityReport(
        str(audio_path) if audio_path else "synthetic", rel, agreement,
        ref.text, out.text, asdict(tolerance), passed, cpu_info().label(), tie, logits,
    )
    if not passed:
        raise ParityError(_failure(rel, logits, agreement, tolerance))
    return report


def _encoder_error(reference: WhisperRuntime, candidate: WhisperRuntime,
                   features: np.ndarray) -> float | None:
    """None where the candidate hides its encoder output (whisper.cpp: tokens only)."""
    if not candidate.exposes_encoder:
        return None
    ours = remembered(reference, "encode", (features,), lambda: reference.encode(features))
    return relative_error(candidate.encode(features), ours)


def _failure(rel: float | None, logits: float | None, agreement: float,
             tolerance: ParityTolerance) -> str:
    measured = [f"encoder relative error {'not exposed' if rel is None else f'{rel:.3g}'} "
                f"(max {tolerance.encoder_rel_error})"]
    if logits is not None:
        measured.append(f"decoder logits relative error {logits:.3g} "
                        f"(max {tolerance.logits_rel_error})")
    measured.append(f"token agreement {agreement:.2f} (min {tolerance.token_agreement})")
    return "artifact fails parity with the PyTorch reference: " + ", ".join(measured)


def load_reference(hf_dir: Path, threads: int) -> WhisperRuntime:
    """The fp32 PyTorch reference on CPU."""
    from runtimes.engines.registry import runtime_class

    return runtime_class("transformers")(hf_dir, RuntimeOptions(threads=threads))
