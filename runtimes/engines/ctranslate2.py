"""CTranslate2 runtime: loads CTranslate2 artifacts and plain faster-whisper directories.

CTranslate2 runs its own encoder+decoder ``generate``; the options passed here are chosen
so that they mean the same as the shared decoding options of the other runtimes.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from runtimes.base import Alignment, Decoded, DecodingOptions, RuntimeOptions, WhisperRuntime
from runtimes.decode.reuse import LastPass
from runtimes.engines.registry import register
from runtimes.errors import ArtifactError, DeviceError, OptionError
from runtimes.precision import canonical, native

#: The toolkit's precision names in CTranslate2's spelling.
SPELLING = {"fp32": "float32", "fp16": "float16", "bf16": "bfloat16"}

#: Every compute type CTranslate2 knows; which ones run depends on the device.
COMPUTE_TYPES = (
    "int8", "int8_float32", "int8_float16", "int8_bfloat16",
    "int16", "float16", "bfloat16", "float32",
)


def supported_compute_types(device: str) -> set[str]:
    """Compute types this build of CTranslate2 can run on ``device`` here.

    Raises:
        DeviceError: ``device`` is "cuda" and no CUDA GPU is visible.
    """
    import ctranslate2

    if device == "cuda" and ctranslate2.get_cuda_device_count() == 0:
        raise DeviceError(
            "device 'cuda' was requested but CTranslate2 sees no CUDA GPU on this machine; "
            "use --device cpu"
        )
    if device == "cuda":
        _check_cublas(ctranslate2.__version__)
    return set(ctranslate2.get_supported_compute_types(device))


def _check_cublas(version: str) -> None:
    """ctranslate2 4.x wheels run on CUDA 12 and load its cuBLAS at the first model; a CUDA 13
    machine (torch 2.11+cu130, onnxruntime-gpu 1.31) lacks it, and loading failed deep inside.
    Say so before any work."""
    import ctypes

    try:
        ctypes.CDLL("libcublas.so.12")
    except OSError as exc:
        raise DeviceError(
            f"ctranslate2 {version} on cuda needs CUDA 12's cuBLAS (libcublas.so.12), not "
            f"found here ({exc}); pip install nvidia-cublas-cu12 and put its lib folder on "
            f"LD_LIBRARY_PATH") from exc


def check_compute_type(compute_type: str, device: str) -> None:
    """OptionError naming ``compute_type`` and the accepted ones if it cannot run here."""
    if compute_type not in COMPUTE_TYPES:
        raise OptionError(
            f"unknown CTranslate2 compute type {compute_type!r}; accepted: {', '.join(COMPUTE_TYPES)}"
        )
    supported = supported_compute_types(device)
    if compute_type not in supported:
        raise OptionError(
            f"compute type {compute_type!r} is not supported on device {device!r} here; "
            f"supported: {', '.join(sorted(supported))}"
        )


@register
class CTranslate2Runtime(WhisperRuntime):
    """Whisper on CTranslate2 (the engine behind faster-whisper)."""

    format = "ctranslate2"

    def __init__(self, model_dir: Path, options: RuntimeOptions) -> None:
        super().__init__(model_dir, options)
        if options.provider is not None:
            raise OptionError(f"provider {options.provider!r} applies to ONNX artifacts only")
        import ctranslate2

        compute_type = native(options.precision, SPELLING) or "default"
        if compute_type != "default":
            check_compute_type(compute_type, options.device)
        else:
            supported_compute_types(options.device)  # fails fast on a missing GPU
        try:
            self._model = ctranslate2.models.Whisper(
                str(self.model_dir),
                device=options.device,
                compute_type=compute_type,
                inter_threads=1,
                intra_threads=options.threads,
            )
        except (RuntimeError, ValueError) as exc:
            raise ArtifactError(f"CTranslate2 cannot load {self.model_dir}: {exc}") from exc
        self._rules, self._vocab_size = _suppress_rules(self.model_dir)
        self._last_pass = LastPass()

    @classmethod
    def sniff(cls, model_dir: Path) -> bool:
        config = Path(model_dir) / "config.json"
        if not ((Path(model_dir) / "model.bin").is_file() and config.is_file()):
            return False
        try:
            return "suppress_ids" in json.loads(config.read_text())
        except (json.JSONDecodeError, UnicodeDecodeError):
            return False

    @property
    def multilingual(self) -> bool:
        return bool(self._model.is_multilingual)

    @property
    def n_mels(self) -> int:
        return int(self._model.n_mels)

    @property
    def precision(self) -> str:
        return canonical(str(self._model.compute_type))  # float32 -> fp32; int8_float32 stays

    def _features(self, features: np.ndarray):
        import ctranslate2

        return ctranslate2.StorageView.from_array(np.ascontiguousarray(features, np.float32))

    def decode(self, features: np.ndarray, prompts: list[list[int]], options: DecodingOptions,
               temperature: float = 0.0, seeds: list[int] | None = None) -> list[Decoded]:
        scored = options.scored or temperature > 0
        results = self._model.generate(
            self._encoded(features),
            [list(p) for p in prompts],
            # CTranslate2's Whisper decodes at most max_length // 2 tokens after the prompt,
            # whatever the prompt's length (measured: max_length 100 -> 50 new tokens).
            max_length=2 * options.max_new_tokens,
            suppress_blank=options.suppress_blank,
            # the model's own suppress list with the control tokens (and the timestamps
            # without timestamps), as the shared filters suppress them
            suppress_tokens=self._rules.listed(options, self._vocab_size),
            return_scores=scored,
            return_no_speech_prob=scored,
            **self._search(options, temperature, seeds),
        )
        if not scored:
            return [Decoded(list(r.sequences_ids[0])) for r in results]
        return [max((_scored(ids, score, r.no_speech_prob, temperature)
                     for ids, score in zip(r.sequences_ids, r.scores)),
                    key=lambda d: d.avg_logprob) for r in results]

    @staticmethod
    def _search(options: DecodingOptions, temperature: float, seeds: list[int] | None) -> dict:
        """Greedy or beam search at 0; else ``best_of`` samples from the whole vocabulary
        (faster-whisper's settings). CTranslate2 draws from one generator per worker thread,
        seeded (here, with the batch's first seed) only at that thread's first draw: its
        sampled text depends on the batch and on what was sampled before in the process."""
        if temperature == 0:
            return dict(beam_size=options.beam_size, sampling_topk=1)
        import ctranslate2

        ctranslate2.set_random_seed(int((seeds or [options.seed])[0]))
        return dict(beam_size=1, num_hypotheses=options.best_of, sampling_topk=0,
                    sampling_temperature=temperature)

    aligns = True

    def align(self, features: np.ndarray, prompt: list[int], texts: list[list[int]],
              num_frames: list[int]) -> list[Alignment]:
        """CTranslate2's ``align`` (the alignment heads of the model's config, median filter
        and DTW in C++): it appends <|notimestamps|> to the start sequence itself."""
        results = self._model.align(self._encoded(features, reuse=True), list(prompt[:-1]),
                                    [list(t) for t in texts], list(num_frames),
                                    median_filter_width=7)
        return [Alignment(np.asarray([a for a, _ in r.alignments]),
                          np.asarray([b for _, b in r.alignments]),
                          np.asarray(r.text_token_probs)) for r in results]

    def _encoded(self, features: np.ndarray, reuse: bool = False):
        """Features for ``generate``: on CPU the encoder output computed one window at a
        time, since CTranslate2's encoder is slower per window in batches on a CPU (tiny.en
        int8, 2 cores: ~100 ms/window alone, 185-233 ms in a batch of 8) while its decoder
        gains from them; ``generate`` accepts encoder output in place of log-mel. Kept, and
        ``reuse`` (``align`` after ``generate``) takes it for the same features (LastPass)."""
        return self._last_pass.through(features, lambda: self._encode_for_generate(features),
                                       reuse)

    def _encode_for_generate(self, features: np.ndarray):
        import ctranslate2

        if self.options.device != "cpu" or len(features) == 1:
            return self._features(features)
        parts = [np.array(self._model.encode(self._features(features[i:i + 1]), to_cpu=True))
                 for i in range(len(features))]
        return ctranslate2.StorageView.from_array(np.concatenate(parts))

    def encode(self, features: np.ndarray) -> np.ndarray:
        encoded = self._model.encode(self._features(features), to_cpu=True)
        return np.array(encoded, dtype=np.float32)

    def language_probabilities(self, features: np.ndarray) -> list[dict[str, float]]:
        results = self._model.detect_language(self._features(features))
        return [{token.strip("<|>"): float(p) for token, p in ranked} for ranked in results]

    def close(self) -> None:
        self._model = None


def _scored(ids: list[int], score: float, no_speech_prob: float, temperature: float) -> Decoded:
    """A hypothesis with openai's average log-probability: CTranslate2's score is the sum
    over the tokens and the end token divided by the tokens' number (length penalty 1), as
    faster-whisper converts it."""
    ids = list(ids)
    return Decoded(ids, score * len(ids) / (len(ids) + 1), float(no_speech_prob), temperature)


def _suppress_rules(model_dir: Path):
    """The shared filters' rules (``runtimes.decode.step.SuppressRules``) of a CTranslate2
    directory, which has no generation config: its config.json's suppress lists and the
    control tokens' ids in its vocabulary (vocabulary.json, or faster-whisper's
    vocabulary.txt)."""
    from runtimes.decode.step import SuppressRules

    config = json.loads((model_dir / "config.json").read_text())
    listed = model_dir / "vocabulary.json"
    vocabulary = (json.loads(listed.read_text()) if listed.is_file()
                  else (model_dir / "vocabulary.txt").read_text().splitlines())
    ids = {token: i for i, token in enumerate(vocabulary)}
    rules = SuppressRules(ids["<|endoftext|>"], tuple(config.get("suppress_ids") or ()),
                          tuple(config.get("suppress_ids_begin") or ()),
                          ids.get("<|notimestamps|>"), sot=ids.get("<|startoftranscript|>"))
    return rules, len(vocabulary)
