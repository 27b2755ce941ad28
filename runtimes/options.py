"""The options a runtime is loaded with (``RuntimeOptions``) and decodes with
(``DecodingOptions``), checked when made so that a bad value fails in one line before any
model loads."""

from __future__ import annotations

import os
import warnings
from dataclasses import dataclass

from runtimes.errors import OptionError
from runtimes.precision import canonical

TASKS = ("transcribe", "translate")
DEVICES = ("cpu", "cuda")
PROVIDERS = ("cuda", "tensorrt")
LONG_FORMS = ("vad", "sequential")
#: faster-whisper's (and openai/whisper's) temperatures: the command lines' default ladder.
FALLBACK_LADDER = (0.0, 0.2, 0.4, 0.6, 0.8, 1.0)


@dataclass(frozen=True)
class DecodingOptions:
    """Decoding settings that mean the same on every runtime (and are recorded in results).

    By default the temperature is a single 0: no sampling, no fallback, so every runtime
    runs the same deterministic search. ``timestamps``: decode Whisper's timestamp tokens
    (the prompt drops <|notimestamps|>, the timestamp rules apply) so a window splits into
    segments; the generated ids then include the timestamp tokens.

    Temperature fallback (faster-whisper's names and defaults, used only when
    ``temperature`` is more than a single 0): a window is decoded at the first temperature
    (0 = greedy or beam search), and again at the next one (sampling, ``best_of``
    candidates, the likeliest kept) while its text compresses better than
    ``compression_ratio_threshold`` (a loop) or its average log-probability is below
    ``log_prob_threshold``; a window whose no-speech probability is above
    ``no_speech_threshold`` and whose average log-probability is below
    ``log_prob_threshold`` is silence and gives no text. Sampling draws from a generator
    seeded by ``seed`` and the window's place in its recording, so a rerun gives the same
    text, whatever the batch holds, on the graph runtimes. PyTorch seeds one generator per
    call (its sampled text is reproducible but batch-variant); CTranslate2 seeds a worker
    thread's generator once, at its first draw (its sampled text is batch-variant and
    reproducible only as the same sequence of calls in a fresh process).

    ``long_form``: how a recording longer than 30 s is cut. "vad" (default): speech found
    by Silero VAD packed into 30 s windows decoded in parallel (faster-whisper's batched
    pipeline). "sequential": openai/whisper's seeking, each window starting where the last
    complete segment ended (implies ``timestamps``), prompted with the text before it when
    ``condition_on_previous_text`` (reset after a window decoded above
    ``prompt_reset_on_temperature``, as faster-whisper). ``runtimes.transcript.sequential`` says why
    both.
    """

    beam_size: int = 1  # 1 = greedy search; >1 = beam search with this many beams
    language: str | None = None  # e.g. "en"; None = detect (multilingual models only)
    task: str = "transcribe"  # "transcribe" or "translate"
    max_new_tokens: int = 224  # generated tokens per 30 s window (Whisper's sample_len, the max)
    suppress_blank: bool = True  # no blank/eot as the first generated token (as openai/whisper)
    timestamps: bool = False  # segment timestamps (Whisper's timestamp tokens)
    word_timestamps: bool = False  # words with times (cross-attention + DTW); implies timestamps
    temperature: float | tuple[float, ...] = 0.0  # one value, or the fallback ladder
    compression_ratio_threshold: float | None = 2.4
    log_prob_threshold: float | None = -1.0
    no_speech_threshold: float | None = 0.6
    best_of: int = 5  # sampled candidates per window at a temperature > 0
    seed: int = 0
    long_form: str = "vad"  # "vad" or "sequential"
    condition_on_previous_text: bool = True  # sequential only
    prompt_reset_on_temperature: float = 0.5  # sequential only
    #: text the first window is prompted with as if it came before (names, spelling,
    #: style); in VAD windows every window gets it (faster-whisper's batched pipeline)
    initial_prompt: str | None = None
    #: text every window is prompted with before its previous text (faster-whisper's
    #: ``hotwords``: names and terms the model should expect)
    hotwords: str | None = None

    def __post_init__(self) -> None:
        if self.long_form not in LONG_FORMS:
            raise OptionError(f"long_form {self.long_form!r} is not one of: "
                              f"{', '.join(LONG_FORMS)}")
        reset = self.prompt_reset_on_temperature
        if not (isinstance(reset, (int, float)) and 0.0 <= reset <= 1.0):
            raise OptionError(f"prompt_reset_on_temperature must be a number in 0..1, got "
                              f"{reset!r}")
        if (self.word_timestamps or self.long_form == "sequential") and not self.timestamps:
            object.__setattr__(self, "timestamps", True)  # words are placed in segments
        temps = self.temperature
        temps = tuple(temps) if isinstance(temps, (list, tuple)) else (temps,)
        if not temps or not all(isinstance(t, (int, float)) and 0.0 <= t <= 1.0 for t in temps):
            raise OptionError(f"temperature must be a number in 0..1 or a list of them, got "
                              f"{self.temperature!r}")
        object.__setattr__(self, "temperature", tuple(float(t) for t in temps))
        for name in ("compression_ratio_threshold", "no_speech_threshold"):
            value = getattr(self, name)
            if value is not None and not (isinstance(value, (int, float)) and value >= 0):
                raise OptionError(f"{name} must be a number >= 0 or None, got {value!r}")
        if self.log_prob_threshold is not None and not (
                isinstance(self.log_prob_threshold, (int, float))
                and self.log_prob_threshold == self.log_prob_threshold):
            raise OptionError(f"log_prob_threshold must be a number or None, got "
                              f"{self.log_prob_threshold!r}")
        if not isinstance(self.best_of, int) or self.best_of < 1:
            raise OptionError(f"best_of must be an integer >= 1, got {self.best_of!r}")
        if not isinstance(self.beam_size, int) or self.beam_size < 1:
            raise OptionError(f"beam_size must be an integer >= 1, got {self.beam_size!r}")
        for name in ("initial_prompt", "hotwords"):
            if getattr(self, name) is not None and not isinstance(getattr(self, name), str):
                raise OptionError(f"{name} must be text or None, got "
                                  f"{type(getattr(self, name)).__name__}")
        if self.task not in TASKS:
            raise OptionError(f"task {self.task!r} is not one of: {', '.join(TASKS)}")
        if not 1 <= self.max_new_tokens <= 224:
            raise OptionError(f"max_new_tokens must be in 1..224, got {self.max_new_tokens!r}")

    @property
    def fallback(self) -> bool:
        """Whether temperature fallback and no-speech detection are on."""
        return self.temperature != (0.0,)

    @property
    def scored(self) -> bool:
        """Whether decoding computes each window's average log-probability and no-speech
        probability (for segments and fallback; the text-only path skips the cost)."""
        return self.timestamps or self.fallback


@dataclass(frozen=True)
class RuntimeOptions:
    """How to load an artifact.

    Attributes:
        device: "cpu" or "cuda".
        precision: compute precision; None = the artifact's own. Stored in the toolkit's
            names (``float32`` becomes ``fp32``, see runtimes.precision); accepted values
            depend on the runtime, which answers a bad one with the list it accepts.
        threads: intra-op threads; 0 = the runtime's default (all cores).
        provider: ONNX Runtime execution provider on cuda: "cuda" (default) or "tensorrt".
        cache_dir: where a provider keeps compiled engines (TensorRT), reused across loads.
        profile: collect per-operator times for ``operator_profile()`` (ONNX Runtime,
            OpenVINO); slows inference down, for profiling runs only.
        shared_cores: the process does other work beside the model (the server decodes
            uploads while the model runs), so the runtime's idle threads should sleep
            rather than spin (ONNX Runtime; measured in the README's load test).
        verify_checksums: check every listed file's sha256 at load (an edit of the same
            size, such as swapped token ids, is caught only so); off for trusted hot paths.
        expect_digest: "sha256:<hex>" the artifact's manifest must have (printed by the
            export): a deployment pins exactly what it serves.
        trust_code: the caller trusts the artifact with code execution. TorchScript
            artifacts are programs (``torch.jit.load`` runs what a scripted module does, a
            crafted one read and wrote files), so they load only with this set; the other
            formats hold data only and ignore it.
        flash_attention: whisper.cpp's flash attention, its default: faster (ggml f16
            tiny.en on `en`, one round here: RTFx 9.2 against 7.0), but keys, values and
            scores in f16 move its text from PyTorch's (WER 5.94% against 5.83%). False
            computes attention in fp32 as every other runtime does; the export's parity
            check loads so, to judge the file alone. Other runtimes ignore it.
        io_binding: ONNX: run both graphs with IO binding on torch tensors, so caches stay
            where the model runs. None: on cuda only (the default); True on cpu runs the
            CUDA path's code on CPU tensors (its stand-in in CI); False: plain numpy runs.
            Other runtimes ignore it.
    """

    device: str = "cpu"
    precision: str | None = None
    threads: int = 0
    provider: str | None = None
    cache_dir: str | None = None
    profile: bool = False
    shared_cores: bool = False
    trust_code: bool = False
    verify_checksums: bool = True
    expect_digest: str | None = None
    flash_attention: bool = True
    io_binding: bool | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "precision", canonical(self.precision))
        if self.device not in DEVICES:
            raise OptionError(f"device {self.device!r} is not one of: {', '.join(DEVICES)}")
        if self.threads < 0:
            raise OptionError(f"threads must be >= 0, got {self.threads!r}")
        if self.threads > (os.cpu_count() or self.threads):
            warnings.warn(f"threads={self.threads} is more than this machine's "
                          f"{os.cpu_count()} cores: the runtime's threads will fight for them "
                          f"(reported: 64 threads on 2 cores ran 14x slower)", stacklevel=3)
        if self.provider not in (None, *PROVIDERS):
            raise OptionError(
                f"provider {self.provider!r} is not one of: {', '.join(PROVIDERS)}")
        if self.provider is not None and self.device != "cuda":
            raise OptionError(f"provider {self.provider!r} needs device 'cuda'")
