"""whisper.cpp runtime: ggml artifacts (``--to ggml``) through ``pywhispercpp``'s bindings.

whisper.cpp is driven at its C API, not through pywhispercpp's ``Model.transcribe``: each
window's log-mel comes from the toolkit's own pipeline (``whisper_set_mel``, then
``whisper_full`` on no samples, which skips whisper.cpp's own log-mel), so whisper.cpp sees
the same features as every other runtime and is judged on the same text. Its decoding
settings are set to mean what ``DecodingOptions`` means elsewhere: greedy (best_of 1) or
beam search, temperature 0 and no fallback (temperature_inc 0, its log-probability,
entropy and no-speech thresholds off), no timestamps, no context, one segment, the language
forced by the prompt (or detected with ``whisper_lang_auto_detect``). Its flash attention
stays on as whisper.cpp defaults (faster; keys, values and scores in f16), unless
``RuntimeOptions.flash_attention`` is False, as the export's parity check sets it.
``logits_along`` reads the decoder's logits for that check (``whispercpp_logits``).

whisper.cpp has no batch API: a batch's windows run one after another on one context (the
bench labels such rows), and the server joins them per batch (``--batching windows``).
Timestamps, temperature fallback and word timestamps are refused before any work.
"""

from __future__ import annotations

import os
import threading
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from runtimes.artifacts.ggml_file import MAGIC, check_whisper_cpp_can_load
from runtimes.base import Decoded, DecodingOptions, RuntimeOptions, WhisperRuntime
from runtimes.decode.languages import LANGUAGES
from runtimes.engines.registry import register
from runtimes.errors import ArtifactError, DeviceError, OptionError
from runtimes.precision import canonical

#: The artifact's model file (whisper.cpp's own downloads are ggml-<model>.bin).
MODEL_FILE = "ggml-model.bin"


@register
class WhisperCppRuntime(WhisperRuntime):
    """Whisper in whisper.cpp (CPU), from a ggml file written by ``exporters.ggml_format``."""

    format = "ggml"
    exposes_encoder = False  # whisper.cpp's API gives no encoder output
    sequential_batches = True
    falls_back = False  # text at temperature 0 only (see check_decoding)

    def __init__(self, model_dir: Path, options: RuntimeOptions) -> None:
        super().__init__(model_dir, options)
        if options.device != "cpu":
            raise DeviceError("the whisper.cpp runtime runs on cpu only (pywhispercpp's wheel "
                              "carries the CPU library); use --device cpu")
        if options.provider is not None:
            raise OptionError(f"provider {options.provider!r} applies to ONNX artifacts only")
        try:
            import _pywhispercpp as pw
        except ImportError as exc:
            raise OptionError("ggml artifacts need whisper.cpp's bindings: pip install -e "
                              "'.[ggml]' (pywhispercpp)") from exc
        self._pw = pw
        path = self.model_dir / MODEL_FILE
        self._file = check_whisper_cpp_can_load(path)
        if options.precision not in (None, canonical(self._file.dtype)):
            raise OptionError(f"precision {options.precision!r}: a ggml artifact runs in the "
                              f"type it was written in ({self._file.dtype}); export another "
                              f"with --quantization")
        self._ctx = self._load(path)
        self._threads = options.threads or os.cpu_count() or 1
        self._nst = _suppresses_non_speech(self.model_dir)
        self._languages: set[str] | None = None  # read from the tokenizer when first needed
        self._lock = threading.Lock()  # one context: one window at a time

    def _load(self, path: Path):
        """The context, with whisper.cpp's load log silenced."""
        pw = self._pw
        params = pw.whisper_context_default_params()
        params.use_gpu = False
        params.flash_attn = self.options.flash_attention
        with self._quiet():
            ctx = pw.whisper_init_from_file_with_params(str(path), params)
        if ctx is None:
            raise ArtifactError(f"whisper.cpp cannot load {path}")
        return ctx

    @contextmanager
    def _quiet(self):
        """whisper.cpp's log silenced while a context loads (the Python log callback is
        removed again at once: called at interpreter exit it aborted the process)."""
        self._pw.whisper_log_set(lambda *args: None)
        try:
            yield
        finally:
            self._pw.whisper_log_set(None)

    @classmethod
    def sniff(cls, model_dir: Path) -> bool:
        path = Path(model_dir) / MODEL_FILE
        if not path.is_file():
            return False
        with open(path, "rb") as f:
            return int.from_bytes(f.read(4), "little") == MAGIC

    @property
    def multilingual(self) -> bool:
        return bool(self._pw.whisper_is_multilingual(self._ctx))

    @property
    def n_mels(self) -> int:
        return int(self._file.hparam("n_mels"))

    @property
    def precision(self) -> str:
        return canonical(self._file.dtype)  # ggml's f16 is the toolkit's fp16

    @property
    def backend(self) -> str:
        return "whisper.cpp cpu"

    def check_decoding(self, options: DecodingOptions) -> None:
        unsupported = [name for name, on in (("timestamps", options.timestamps),
                                             ("temperature fallback", options.fallback),
                                             ("word timestamps", options.word_timestamps)) if on]
        if unsupported:
            raise OptionError(f"{unsupported[0]}: not available for ggml (whisper.cpp) "
                              f"artifacts here, which decode text at temperature 0 only")

    def decode(self, features: np.ndarray, prompts: list[list[int]], options: DecodingOptions,
               temperature: float = 0.0, seeds: list[int] | None = None) -> list[Decoded]:
        self.check_decoding(options)
        if temperature > 0:
            raise OptionError("sampling is not available for ggml (whisper.cpp) artifacts here")
        if any(p[0] != self._pw.whisper_token_sot(self._ctx) for p in prompts):
            raise OptionError("previous text (initial_prompt, hotwords, a request's prompt) is "
                              "not available for ggml (whisper.cpp) artifacts here")
        with self._lock:
            return [Decoded(self._decode_one(f, p, options)) for f, p in zip(features, prompts)]

    def _decode_one(self, features: np.ndarray, prompt: list[int],
                    options: DecodingOptions) -> list[int]:
        pw, ctx = self._pw, self._ctx
        self._set_mel(features)
        if pw.whisper_full(ctx, self._params(prompt, options), np.zeros(0, np.float32), 0) != 0:
            raise ArtifactError("whisper.cpp failed to decode a window")
        eot = pw.whisper_token_eot(ctx)
        tokens = [token for s in range(pw.whisper_full_n_segments(ctx))
                  for t in range(pw.whisper_full_n_tokens(ctx, s))
                  if (token := pw.whisper_full_get_token_id(ctx, s, t)) < eot]
        # whisper.cpp stops one token past max_tokens (it counts from 0): cut to the limit
        # every other runtime stops at
        return tokens[:options.max_new_tokens]

    def _set_mel(self, features: np.ndarray) -> None:
        n_mels, frames = features.shape
        mel = np.ascontiguousarray(features, np.float32).ravel()
        if self._pw.whisper_set_mel(self._ctx, mel, frames, n_mels) != 0:
            raise ArtifactError(f"whisper.cpp refused a log-mel of {n_mels} x {frames}")

    def _params(self, prompt: list[int], options: DecodingOptions):
        pw = self._pw
        beam = options.beam_size > 1
        params = pw.whisper_full_default_params(
            pw.WHISPER_SAMPLING_BEAM_SEARCH if beam else pw.WHISPER_SAMPLING_GREEDY)
        if beam:
            params.beam_search = {"beam_size": options.beam_size, "patience": -1.0}
        else:
            params.greedy = {"best_of": 1}
        params.n_threads = self._threads
        params.temperature, params.temperature_inc = 0.0, 0.0
        params.logprob_thold, params.entropy_thold, params.no_speech_thold = -1e9, 0.0, 1.0
        params.no_timestamps, params.no_context, params.single_segment = True, True, True
        # suppress_nst: the non-speech symbols openai suppresses, where the model's
        # generation config suppresses them (the other runtimes apply its suppress_tokens)
        params.suppress_blank, params.suppress_nst = options.suppress_blank, self._nst
        params.max_tokens = options.max_new_tokens
        params.print_progress = params.print_realtime = params.print_timestamps = False
        if self.multilingual:
            params.language = self._language(prompt)
            params.translate = options.task == "translate"
            params.detect_language = False
        return params

    def _language(self, prompt: list[int]) -> str:
        """The language code forced by the prompt's second token (the toolkit's prompt is
        <|startoftranscript|><|lang|><|task|><|notimestamps|>)."""
        offset = prompt[1] - self._pw.whisper_token_sot(self._ctx) - 1
        if not 0 <= offset < len(LANGUAGES):
            raise OptionError(f"the prompt {prompt} names no language")
        return list(LANGUAGES)[offset]

    def language_probabilities(self, features: np.ndarray) -> list[dict[str, float]]:
        pw = self._pw
        if not self.multilingual:
            return [{"en": 1.0} for _ in features]
        found = []
        with self._lock:
            for window in features:
                self._set_mel(window)
                probs = np.zeros(pw.whisper_lang_max_id() + 1, np.float32)
                if pw.whisper_lang_auto_detect(self._ctx, 0, self._threads, probs) < 0:
                    raise ArtifactError("whisper.cpp failed to detect the language")
                found.append(self._known({pw.whisper_lang_str(i): float(p)
                                          for i, p in enumerate(probs)}))
        return found

    def _known(self, probs: dict[str, float]) -> dict[str, float]:
        """Only the languages the model's vocabulary has, renormalised. whisper.cpp scores
        all 100 of large-v3 on every model: on a 99-language vocabulary its "yue" is the
        <|translate|> token."""
        from runtimes.decode.languages import language_tokens

        if self._languages is None:
            path = self.model_dir / "tokenizer.json"
            self._languages = ({t.strip("<|>") for t in language_tokens(path)}
                               if path.is_file() else set(probs))
        kept = {code: p for code, p in probs.items() if code in self._languages}
        total = sum(kept.values()) or 1.0
        return {code: p / total for code, p in kept.items()}

    def encode(self, features: np.ndarray) -> np.ndarray:
        raise OptionError("whisper.cpp does not expose its encoder output")

    def logits_along(self, window: np.ndarray, prompt: list[int],
                     tokens: list[int]) -> np.ndarray:
        """The decoder's logits before the filters, (len(tokens) + 1, vocab), after the
        prompt and each of ``tokens`` in turn (the parity check's measure: whisper.cpp
        hides its encoder output). Read through whisper.cpp's C API in a context of its
        own (``whispercpp_logits``)."""
        from runtimes.engines.whispercpp_logits import WhisperCppLogits

        with self._quiet():
            probe = WhisperCppLogits(self.model_dir / MODEL_FILE, self._threads,
                                     self.options.flash_attention)
        with probe:
            return probe.logits(window, prompt, tokens)

    def close(self) -> None:
        if getattr(self, "_ctx", None) is not None:
            self._pw.whisper_free(self._ctx)
            self._ctx = None


def _suppresses_non_speech(model_dir: Path) -> bool:
    """Whether the checkpoint's generation config suppresses tokens (every released Whisper
    lists openai's non-speech symbols; a fine-tune or a random test model may list none).

    Why: whisper.cpp can suppress only its own fixed list of those symbols, or nothing.
    Suppressing them for a model that does not made a random large-v3-shaped model's ggml
    export agree with PyTorch on 5-8% of its tokens (the parity check failed); a trained
    model rarely emits them, so real checkpoints agreed either way. An artifact written
    before the config travelled with it suppresses them, as it always did.
    """
    import json

    path = Path(model_dir) / "generation_config.json"
    if not path.is_file():
        return True
    return bool(json.loads(path.read_text()).get("suppress_tokens"))
