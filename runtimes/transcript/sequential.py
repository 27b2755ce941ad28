"""openai/whisper's sequential decoding of long recordings: a 30 s window decoded with
timestamps, then the next window starts at the last complete segment's end ("seek"), so no
segment is cut in two; each window may be prompted with the text before it
(``condition_on_previous_text``).

Why both this and VAD windows (``runtimes.audio.chunking``): VAD windows are decoded in parallel
and are faster on a batch-friendly runtime, but a sentence split across two windows is
decoded from half its audio each time; seeking never splits one, and the previous text keeps
names and spelling consistent. It is what openai/whisper and faster-whisper's
``WhisperModel.transcribe`` do, so their users get the same output here.

Recordings are decoded side by side: each round decodes the next window of every unfinished
recording, in batches of windows whose prompts have the same length (the decoding loops need
that). Without the previous text every prompt has the same length, so a round is one batch;
with it, a round usually splits into one batch per recording.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field, replace

import numpy as np

from runtimes.audio.chunking import Window
from runtimes.audio.features import HOP_LENGTH, N_FRAMES, recording_log_mel
from runtimes.transcript.segments import Segment, WindowText, assemble

#: Log-mel frames (10 ms) per timestamp step (20 ms).
FRAMES_PER_TIMESTAMP = 2


def seek_step(tokens: Sequence[int], timestamp_begin: int,
              window_frames: int) -> tuple[list[int], int]:
    """What to keep of a window's decoded ids and how many log-mel frames to move on
    (openai/whisper's rule).

    A window that ends inside a segment (its last pair of timestamps is followed by text
    without a closing timestamp) keeps its complete segments only and moves to the last
    one's end, where the cut segment is decoded again whole. A window that ends with a
    single closing timestamp, or that has no pair of timestamps, is kept whole and the
    next starts after it. A move of zero frames (the timestamp rules allow none) moves a
    whole window, so decoding always ends.
    """
    is_time = [t >= timestamp_begin for t in tokens]
    single_ending = len(tokens) >= 2 and is_time[-1] and not is_time[-2]
    pairs = [i for i in range(1, len(tokens)) if is_time[i - 1] and is_time[i]]
    if pairs and not single_ending:
        last = pairs[-1]
        frames = (tokens[last - 1] - timestamp_begin) * FRAMES_PER_TIMESTAMP
        if frames > 0:
            return list(tokens[:last]), min(frames, window_frames)
    return list(tokens), window_frames


@dataclass
class _Recording:
    """One recording's decoding state."""

    owner: int  # its index among the inputs
    mel: np.ndarray  # the whole recording's log-mel (``recording_log_mel``)
    frames: int  # log-mel frames of the recording itself (100 per second)
    language: str
    seek: int = 0  # log-mel frames decoded so far
    windows: int = 0  # windows decoded so far (seeds each window's sampling)
    previous: list[int] = field(default_factory=list)  # ids since the last prompt reset

    @property
    def done(self) -> bool:
        return self.seek >= self.frames

    def window(self) -> tuple[Window, np.ndarray, int]:
        """The next window: its span on the recording (samples), its log-mel (the
        recording's frames from ``seek``, zeros after its end, as openai pads), and how
        many of its frames are the recording's."""
        frames = min(N_FRAMES, self.frames - self.seek)
        mel = np.zeros((self.mel.shape[0], N_FRAMES), np.float32)
        mel[:, :frames] = self.mel[:, self.seek:self.seek + frames]
        start = self.seek * HOP_LENGTH
        return ((start, start + frames * HOP_LENGTH),), mel, frames


@dataclass(frozen=True)
class _Item:
    """A recording's next window to decode, by its prompt (the log-mel is cut per batch,
    so a round over many recordings holds one batch of windows, not one per recording)."""

    recording: _Recording
    prompt: list[int]


def transcribe_sequential(transcriber, audios: Sequence[np.ndarray], languages: list[str],
                          batch_size: int) -> list[tuple[list[int], list[Segment], int]]:
    """(generated ids, segments, windows) of each recording, decoded openai-style.

    ``transcriber``: a ``runtimes.transcript.pipeline.Transcriber`` (its runtime, tokenizer and
    options; its ``decode_batch`` decodes, with the fallback the options ask for).
    """
    tokens: list[list[int]] = [[] for _ in audios]
    segments: list[list[Segment]] = [[] for _ in audios]
    windows = [0] * len(audios)
    for found in iter_sequential(transcriber, audios, languages, batch_size):
        tokens[found.owner] += found.tokens
        segments[found.owner] += found.segments
        windows[found.owner] += 1
    return list(zip(tokens, segments, windows))


def iter_sequential(transcriber, audios: Sequence[np.ndarray], languages: list[str],
                    batch_size: int) -> Iterator[WindowText]:
    """What each window adds to its recording's transcript, as it is decoded: lazily, so
    a caller that stops iterating stops the work (``runtimes.model``'s segments)."""
    n_mels = transcriber.runtime.n_mels
    recordings = [_Recording(i, recording_log_mel(a, n_mels), a.shape[-1] // HOP_LENGTH, lang,
                             previous=_initial(transcriber))
                  for i, (a, lang) in enumerate(zip(audios, languages))]
    while todo := [r for r in recordings if not r.done]:
        items = [_item(transcriber, r) for r in todo]
        for group in _batches(items, batch_size):
            yield from _decode_batch(transcriber, group)


def _initial(transcriber) -> list[int]:
    """The ``initial_prompt``'s ids, as if they were the text before the first window."""
    text = transcriber.options.initial_prompt
    return transcriber.tokenizer.text_ids(text) if text else []


def _item(transcriber, recording: _Recording) -> _Item:
    tokenizer, options = transcriber.tokenizer, transcriber.options
    prompt = tokenizer.prompt(recording.language, options.task, True)
    previous = recording.previous if (options.condition_on_previous_text
                                      or not recording.windows) else []
    return _Item(recording, tokenizer.context(previous, options.hotwords) + prompt)


def _batches(items: list[_Item], batch_size: int) -> list[list[_Item]]:
    """Items with prompts of the same length, at most ``batch_size`` together, in order."""
    by_length: dict[int, list[_Item]] = {}
    for item in items:
        by_length.setdefault(len(item.prompt), []).append(item)
    return [group[i:i + batch_size] for group in by_length.values()
            for i in range(0, len(group), batch_size)]


def _decode_batch(transcriber, items: list[_Item]) -> list[WindowText]:
    """Decode one window of each item's recording and move each recording on; return
    what each window adds."""
    tokenizer, options = transcriber.tokenizer, transcriber.options
    windows = [item.recording.window() for item in items]  # (spans, log-mel, frames)
    features = np.ascontiguousarray(np.stack([mel for _, mel, _ in windows]))
    seeds = [options.seed * 1_000_000 + item.recording.windows for item in items]
    decoded = transcriber.decode_batch(features, [item.prompt for item in items], seeds)
    kept = []
    for (_, _, window_frames), found in zip(windows, decoded):
        tokens, frames = seek_step(found.tokens, tokenizer.timestamp_begin, window_frames)
        kept.append((replace(found, tokens=tokens), frames))
    words = (transcriber.align_batch(features, [k for k, _ in kept],
                                     [frames for _, _, frames in windows],
                                     [item.recording.language for item in items])
             if options.word_timestamps else [None] * len(items))
    out = []
    for item, (window, _, _), (found, frames), found_words in zip(items, windows, kept, words):
        recording = item.recording
        spans = ((window[0][0], window[0][0] + frames * HOP_LENGTH),)
        out.append(WindowText(recording.owner, spans[0][0], list(found.tokens),
                              assemble(spans, found, tokenizer, True, found_words)))
        recording.previous += found.tokens
        if not options.condition_on_previous_text \
                or found.temperature > options.prompt_reset_on_temperature:
            recording.previous = []
        recording.seek += frames
        recording.windows += 1
    return out
