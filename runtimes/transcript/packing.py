"""Packed windows: several short clips of one call decoded in one 30 s window.

Why: Whisper's encoder always runs on 30 s, so a 5 s clip pays for 30. Many short files
(an archive, a benchmark set) are placed side by side in one window, separated by a short
gap of faint noise, decoded and aligned, and each clip receives the words whose aligned
time lies inside its span. A word in the gap between two clips goes to the nearer one; a
clip never receives a word aligned inside another clip.

Whisper sometimes ends a packed window's text early, before its last clip (or the end of
it) is transcribed. A clip whose words stop more than ``TAIL_S`` before its end, with
speech after them (Silero VAD), or that received no words while it holds speech, is
therefore decoded again on its own: a clip's text is never a part of it.

Only clips of one call share a window: the server never packs strangers' audio. A packed
clip's text depends on the clips beside it (they are its decoding context).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace

import numpy as np

from runtimes.audio.features import N_SAMPLES
from runtimes.audio.files import SAMPLE_RATE
from runtimes.transcript.segments import AudioWindow, Segment
from runtimes.transcript.words import Word

#: The gap between two packed clips (measured on the `en` clips, see docs/packing.md).
GAP_SAMPLES = 3 * SAMPLE_RATE // 10

#: The gap's level (white noise, seeded): digital silence reads to Whisper as the zeros
#: that pad every window after the audio's end (with 1 s of zeros it stopped at the first
#: gap).
GAP_NOISE = 1e-3

#: A pack's clips and gaps end this far before the window's end, so the last clip and its
#: closing timestamp token (at most 30.00 s) lie inside the window (a margin, not tuned).
TAIL_SAMPLES = SAMPLE_RATE // 2


#: A clip whose packed words end this long before it does is checked for speech after them.
TAIL_S = 1.0
#: Speech (frames of 32 ms above Silero's threshold) that makes such a tail unfinished: 0.25 s.
TAIL_SPEECH_FRAMES = 8


@dataclass(frozen=True)
class Pack:
    """One window of packed clips.

    Attributes:
        owners: the inputs' indices, in their order in the window.
        language: theirs (only clips of one language share a window).
        offsets: where each clip starts in the window (samples).
        lengths: each clip's length (samples).
        samples: the window's audio: the clips with ``GAP_SAMPLES`` of faint noise between.
    """

    owners: tuple[int, ...]
    language: str
    offsets: tuple[int, ...]
    lengths: tuple[int, ...]
    samples: np.ndarray


def check_packing(runtime) -> None:
    """OptionError before any work where a runtime cannot pack: a packed clip's words are
    assigned by their aligned times."""
    from runtimes.errors import OptionError

    if not runtime.aligns:
        raise OptionError(f"pack (--pack) gives each clip the words aligned inside it, "
                          f"and this {runtime.format} artifact cannot align words "
                          f"(ONNX, OpenVINO, TorchScript: export with --word-timestamps)")


def packable(audio: np.ndarray) -> bool:
    """Whether a clip may share a window: one window long and not silent."""
    from runtimes.audio.files import is_silence

    return audio.size <= N_SAMPLES and not is_silence(audio)


def decode_packs(stamped, audios: Sequence[np.ndarray], languages: Sequence[str | None],
                 batch_size: int) -> Iterator[tuple[int, list[Segment]]]:
    """(input index, segments in its own seconds) of each packed clip that is finished,
    ``stamped`` (a ``Transcriber`` decoding with timestamps and words) decoding the
    windows ``batch_size`` at a time; a clip ``unfinished`` finds is not yielded."""
    packs = packs_of(audios, languages)
    windows = [AudioWindow(n, ((0, p.samples.size),), p.samples) for n, p in enumerate(packs)]
    for text in stamped.decode_windows(windows, [p.language for p in packs], batch_size):
        packed = packs[text.owner]
        split = split_segments(packed, text.segments)
        redo = set(unfinished(packed, split))
        yield from ((owner, parts) for k, (owner, parts) in enumerate(zip(packed.owners, split))
                    if k not in redo)


def packs_of(audios: Sequence[np.ndarray], languages: Sequence[str | None]) -> list[Pack]:
    """The windows that the clips with a language (None: not to be packed) are packed
    into; a clip in none of them is decoded as usual."""
    return [pack(audios, group, str(languages[group[0]]))
            for group in plan([a.size for a in audios], languages)]


def plan(lengths: Sequence[int], languages: Sequence[str | None],
         capacity: int = N_SAMPLES - TAIL_SAMPLES) -> list[list[int]]:
    """Groups of input indices to pack, in input order: consecutive clips of one language
    fill a window until the next one would not fit. A clip without a language, or one
    that fits no window with another (longer than ``capacity`` minus a gap and a second),
    is left out, as is a group of one."""
    groups: list[list[int]] = []
    open_groups: dict[str, tuple[list[int], int]] = {}
    for i, (length, language) in enumerate(zip(lengths, languages)):
        if language is None or length + GAP_SAMPLES + SAMPLE_RATE > capacity:
            continue
        members, used = open_groups.get(language, ([], 0))
        need = length + (GAP_SAMPLES if members else 0)
        if members and used + need > capacity:
            groups.append(members)
            members, used, need = [], 0, length
        open_groups[language] = (members + [i], used + need)
    groups += [members for members, _ in open_groups.values()]
    return sorted((g for g in groups if len(g) > 1), key=lambda g: g[0])


def pack(audios: Sequence[np.ndarray], owners: list[int], language: str) -> Pack:
    """The window of ``owners``' clips, in that order, with silence between them."""
    offsets, parts, at = [], [], 0
    gap = (GAP_NOISE * np.random.default_rng(0).standard_normal(GAP_SAMPLES)).astype(np.float32)
    for n, owner in enumerate(owners):
        if n:
            parts.append(gap)
            at += GAP_SAMPLES
        offsets.append(at)
        parts.append(audios[owner].astype(np.float32, copy=False))
        at += audios[owner].size
    return Pack(tuple(owners), language, tuple(offsets), tuple(audios[o].size for o in owners),
                np.concatenate(parts))


def owner_of(word: Word, packed: Pack) -> int:
    """The position in ``packed`` of the clip a word belongs to: the clip its aligned
    midpoint lies in, else (in a gap) the nearer clip."""
    middle = (word.start + word.end) / 2 * SAMPLE_RATE
    distances = [max(start - middle, middle - start - length, 0.0)
                 for start, length in zip(packed.offsets, packed.lengths)]
    return int(np.argmin(distances))


def split_segments(packed: Pack, segments: Sequence[Segment]) -> list[list[Segment]]:
    """Each clip's segments, from the window's (times in window seconds, with words): a
    segment's words are divided among the clips they belong to, each part a segment of
    its clip from its first word to its last, in the clip's own seconds."""
    out: list[list[Segment]] = [[] for _ in packed.owners]
    for segment in segments:
        parts: dict[int, list[Word]] = {}
        for word in segment.words:
            parts.setdefault(owner_of(word, packed), []).append(word)
        for k, words in parts.items():
            out[k].append(_clip_segment(segment, _moved(words, packed, k)))
    return out


def _moved(words: list[Word], packed: Pack, k: int) -> tuple[Word, ...]:
    """Words in clip ``k``'s seconds, inside the clip."""
    start, end = packed.offsets[k] / SAMPLE_RATE, packed.lengths[k] / SAMPLE_RATE
    return tuple(replace(w, start=round(min(max(w.start - start, 0.0), end), 3),
                         end=round(min(max(w.end - start, 0.0), end), 3)) for w in words)


def _clip_segment(segment: Segment, words: tuple[Word, ...]) -> Segment:
    tokens = tuple(t for w in words for t in w.tokens)
    return replace(segment, start=words[0].start, end=max(words[-1].end, words[0].start),
                   text="".join(w.word for w in words), tokens=tokens, words=words)


def unfinished(packed: Pack, parts: Sequence[Sequence[Segment]]) -> list[int]:
    """The positions in ``packed`` of the clips whose words (``parts``, in clip seconds)
    may stop before their speech does: decoded again alone."""
    out = []
    for k, segments in enumerate(parts):
        spoken = max((w.end for s in segments for w in s.words), default=0.0)
        length = packed.lengths[k] / SAMPLE_RATE
        if length - spoken > TAIL_S and _has_speech(packed, k, spoken):
            out.append(k)
    return out


def _has_speech(packed: Pack, k: int, after_s: float) -> bool:
    from runtimes.audio.chunking import DEFAULT_VAD
    from runtimes.audio.vad import speech_probs

    start = packed.offsets[k] + int(after_s * SAMPLE_RATE)
    tail = packed.samples[start:packed.offsets[k] + packed.lengths[k]]
    return int((speech_probs(tail) > DEFAULT_VAD.threshold).sum()) >= TAIL_SPEECH_FRAMES
