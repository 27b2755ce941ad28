"""faster-whisper's constructor and ``transcribe`` arguments, mapped to the toolkit's
options (``RuntimeOptions``, ``DecodingOptions``), with those it cannot honour refused.

Why a table of refusals rather than ignoring them: a faster-whisper user who passes
``prefix=...`` or ``patience=2`` expects it to act; silently decoding without it would
return other text than they asked for. At its default value each such argument is
accepted, so faster-whisper's examples run unchanged.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, fields
from pathlib import Path

from runtimes.audio.chunking import VadSettings
from runtimes.base import DecodingOptions, RuntimeOptions
from runtimes.errors import OptionError
from runtimes.options import FALLBACK_LADDER

_DEFAULTS_NOT_HONOURED = "the toolkit's decoding loops do not implement it"

#: transcribe arguments accepted only at faster-whisper's default: (default, why not).
UNSUPPORTED: dict[str, tuple[object, str]] = {
    "log_progress": (False, "segments are yielded as they are decoded; iterate to follow"),
    "patience": (1, _DEFAULTS_NOT_HONOURED),
    "length_penalty": (1, _DEFAULTS_NOT_HONOURED),
    "repetition_penalty": (1, _DEFAULTS_NOT_HONOURED),
    "no_repeat_ngram_size": (0, _DEFAULTS_NOT_HONOURED),
    "prefix": (None, _DEFAULTS_NOT_HONOURED),
    "suppress_blank": (True, "always on (openai/whisper's rule)"),
    "suppress_tokens": ([-1], "the artifact's own suppress list (-1) is always used"),
    "max_initial_timestamp": (1.0, "fixed at 1.0 s, as faster-whisper's default"),
    "prepend_punctuations": ("\"'“¿([{-", "word timestamps use faster-whisper's default"),
    "append_punctuations": ("\"'.。,，!！?？:：”)]}、",
                            "word timestamps use faster-whisper's default"),
    "multilingual": (False, "the language is detected once per file"),
    "chunk_length": (None, "windows are Whisper's 30 s"),
    "clip_timestamps": ("0", "the whole file is transcribed"),
    "hallucination_silence_threshold": (None, _DEFAULTS_NOT_HONOURED),
    "language_detection_threshold": (0.5, "the language is detected on the first window"),
    "language_detection_segments": (1, "the language is detected on the first window"),
}
#: faster-whisper's batched pipeline's own defaults where they differ from transcribe's.
_BATCHED = {"vad_filter": True, "without_timestamps": True}


@dataclass(frozen=True)
class TranscriptionOptions:
    """The options a call decoded with (faster-whisper's ``info.transcription_options``,
    the arguments this toolkit honours)."""

    beam_size: int = 5
    best_of: int = 5
    temperatures: tuple[float, ...] = FALLBACK_LADDER
    compression_ratio_threshold: float | None = 2.4
    log_prob_threshold: float | None = -1.0
    no_speech_threshold: float | None = 0.6
    condition_on_previous_text: bool = True
    prompt_reset_on_temperature: float = 0.5
    initial_prompt: str | None = None
    hotwords: str | None = None
    without_timestamps: bool = False
    word_timestamps: bool = False
    vad_filter: bool = False
    vad_parameters: dict | None = None
    max_new_tokens: int | None = None

    @classmethod
    def of(cls, given: dict, batched: bool = False) -> TranscriptionOptions:
        """The options of faster-whisper keyword arguments ``given``; OptionError for an
        unknown one or an unsupported one away from its default."""
        names = {f.name for f in fields(cls)} | {"temperature"}
        defaults = {name: default for name, (default, _) in UNSUPPORTED.items()}
        if batched:
            defaults["clip_timestamps"] = None
            if given.get("vad_filter", True) is not True:
                raise OptionError("vad_filter=False: the batched pipeline here always decodes "
                                  "VAD windows of speech (WhisperModel.transcribe seeks "
                                  "through the whole file)")
        for name, value in given.items():
            if name in names:
                continue
            if name not in defaults:
                raise OptionError(f"transcribe() got an unknown argument {name!r}")
            if value != defaults[name]:
                why = UNSUPPORTED[name][1]
                raise OptionError(f"{name}={value!r} is not supported here ({why}); leave it "
                                  f"at faster-whisper's default {defaults[name]!r}")
        values = {**(_BATCHED if batched else {}), **given}
        chosen = {k: v for k, v in values.items() if k in names and k != "temperature"}
        if "temperature" in values:
            temperature = values["temperature"]
            chosen["temperatures"] = tuple(temperature) if isinstance(
                temperature, (list, tuple)) else (temperature,)
        for name in ("initial_prompt", "hotwords"):
            if not isinstance(chosen.get(name, ""), (str, type(None))):
                raise OptionError(f"{name} must be text here (token ids are not accepted)")
        return cls(**chosen)


#: faster-whisper ``VadOptions`` fields taken only at their defaults (spans are cut at 30 s,
#: a window's length, whatever ``max_speech_duration_s`` says).
_VAD_DEFAULTS = {"neg_threshold": None, "max_speech_duration_s": float("inf"),
                 "min_silence_at_max_speech": 98, "use_max_poss_sil_at_max_speech": True}


def vad_settings(parameters) -> VadSettings:
    """``VadSettings`` of faster-whisper's ``vad_parameters`` (a dict or its ``VadOptions``);
    its defaults are the batched pipeline's (160 ms pauses split spans, 400 ms padding)."""
    given = dict(vars(parameters) if hasattr(parameters, "__dict__") else parameters or {})
    for name, default in _VAD_DEFAULTS.items():
        if name in given and given.pop(name) != default:
            raise OptionError(f"vad_parameters {name} is not supported here; leave it at "
                              f"{default!r}")
    known = {f.name for f in fields(VadSettings)}
    if unknown := sorted(set(given) - known):
        raise OptionError(f"vad_parameters {', '.join(unknown)}: not VAD settings (accepted: "
                          f"{', '.join(sorted(known | set(_VAD_DEFAULTS)))})")
    return VadSettings(**given)


def decoding_of(chosen: TranscriptionOptions, language: str | None,
                task: str) -> DecodingOptions:
    """The toolkit's decoding for faster-whisper's options: with ``vad_filter`` the speech
    in VAD windows (as its batched pipeline), else openai's sequential seeking (as its
    ``WhisperModel.transcribe``)."""
    return DecodingOptions(
        beam_size=chosen.beam_size, language=language, task=task,
        max_new_tokens=chosen.max_new_tokens or 224,
        timestamps=not chosen.without_timestamps, word_timestamps=chosen.word_timestamps,
        temperature=chosen.temperatures, best_of=chosen.best_of,
        compression_ratio_threshold=chosen.compression_ratio_threshold,
        log_prob_threshold=chosen.log_prob_threshold,
        no_speech_threshold=chosen.no_speech_threshold,
        long_form="vad" if chosen.vad_filter else "sequential",
        condition_on_previous_text=chosen.condition_on_previous_text,
        prompt_reset_on_temperature=chosen.prompt_reset_on_temperature,
        initial_prompt=chosen.initial_prompt, hotwords=chosen.hotwords)


def runtime_options(model: str | Path, device: str, device_index, compute_type: str,
                    cpu_threads: int, num_workers: int, files, extra: dict) -> RuntimeOptions:
    """``RuntimeOptions`` for faster-whisper's constructor arguments."""
    if not Path(model).is_dir():
        raise OptionError(
            f"{str(model)!r} is not a model directory: give an artifact directory (export "
            f"one: whisper-exporters export --to ctranslate2 --int8 --model {model} -o DIR), "
            f"or use exporters.WhisperModel, which exports a model name on first use")
    for name, value, default in (("device_index", device_index, 0),
                                 ("num_workers", num_workers, 1), ("files", files, None)):
        if value != default:
            raise OptionError(f"{name}={value!r} is not supported here; leave it at {default!r}")
    if extra:
        raise OptionError(f"WhisperModel() got unknown arguments: {', '.join(sorted(extra))}")
    device = resolve_device(device)
    precision = None if compute_type in ("default", "auto") else compute_type
    return RuntimeOptions(device=device, precision=precision, threads=cpu_threads)


def resolve_device(device: str) -> str:
    """faster-whisper's "auto": cuda when a CUDA GPU is visible (its device files exist and
    CUDA_VISIBLE_DEVICES does not hide them), else cpu; other values unchanged."""
    if device != "auto":
        return device
    visible = os.path.exists("/dev/nvidiactl") and os.environ.get("CUDA_VISIBLE_DEVICES") != ""
    return "cuda" if visible else "cpu"
