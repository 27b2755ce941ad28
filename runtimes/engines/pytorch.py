"""PyTorch runtime: a transformers Whisper checkpoint, the baseline every artifact is
compared with. fp32 by default; fp16, bf16 and dynamic int8 as options.

Decoding goes through transformers' own ``generate`` (what users of the baseline run);
the shared prompt is translated back into its ``language`` / ``task`` arguments.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from runtimes.artifacts.graph_spec import is_multilingual
from runtimes.base import Alignment, Decoded, DecodingOptions, RuntimeOptions, WhisperRuntime
from runtimes.decode.languages import complete_generation_config
from runtimes.engines.registry import register
from runtimes.errors import ArtifactError, DeviceError, OptionError

PRECISIONS = ("fp32", "fp16", "bf16", "int8")


def _torch_device(device: str):
    import torch

    if device == "cuda" and not torch.cuda.is_available():
        raise DeviceError("device 'cuda' was requested but PyTorch sees no CUDA GPU; use cpu")
    return torch.device(device)


@register
class PyTorchRuntime(WhisperRuntime):
    """transformers ``WhisperForConditionalGeneration``."""

    format = "transformers"

    def __init__(self, model_dir: Path, options: RuntimeOptions) -> None:
        super().__init__(model_dir, options)
        if options.provider is not None:
            raise OptionError(f"provider {options.provider!r} applies to ONNX artifacts only")
        self._precision = options.precision or "fp32"
        if self._precision not in PRECISIONS:
            raise OptionError(
                f"PyTorch precision {self._precision!r} is not one of: {', '.join(PRECISIONS)} "
                f"(float32, float16 and bfloat16 are accepted too)"
            )
        if self._precision == "int8" and options.device != "cpu":
            raise OptionError("PyTorch dynamic int8 runs on cpu only")
        import torch

        if options.threads:
            torch.set_num_threads(options.threads)
        self._device = _torch_device(options.device)
        self._model = self._load(torch)
        gen = complete_generation_config(self._model.generation_config,
                                         self.model_dir / "tokenizer.json",
                                         is_multilingual(self._model.config.vocab_size))
        self._languages = {v: k.strip("<|>") for k, v in (getattr(gen, "lang_to_id", None) or {}).items()}
        self._tasks = {v: k for k, v in (getattr(gen, "task_to_id", None) or {}).items()}
        self._rules = None  # the shared filters' rules (see the rules property)

    def _load(self, torch):
        from transformers.utils import logging as hf_logging

        from runtimes.artifacts.checkpoint import load_whisper

        hf_logging.set_verbosity_error()  # generate() warns about its own defaults on every call

        dtype = {"fp16": torch.float16, "bf16": torch.bfloat16}.get(
            self._precision, torch.float32
        )
        try:
            model = load_whisper(self.model_dir, dtype=dtype)  # pruned layers included
        except (OSError, ValueError) as exc:
            raise ArtifactError(f"transformers cannot load {self.model_dir}: {exc}") from exc
        model = model.eval().to(self._device)
        if self._precision == "int8":
            model = torch.ao.quantization.quantize_dynamic(
                model, {torch.nn.Linear}, dtype=torch.qint8
            )
        return model

    @classmethod
    def sniff(cls, model_dir: Path) -> bool:
        config = Path(model_dir) / "config.json"
        try:
            return json.loads(config.read_text()).get("model_type") == "whisper"
        except (OSError, json.JSONDecodeError, UnicodeDecodeError):
            return False

    @property
    def multilingual(self) -> bool:
        return is_multilingual(self._model.config.vocab_size)

    @property
    def n_mels(self) -> int:
        return int(self._model.config.num_mel_bins)

    @property
    def precision(self) -> str:
        return self._precision

    @property
    def model(self):
        """The underlying transformers model (for parity checks and profiling)."""
        return self._model

    def _generate_kwargs(self, prompt: list[int], options: DecodingOptions) -> dict:
        """transformers' arguments for the shared prompt: its language and task tokens, and
        the previous text before <|startoftranscript|> (``<|startofprev|> ...``) as
        ``prompt_ids``."""
        import torch

        at = prompt.index(self._model.generation_config.decoder_start_token_id)
        previous, prompt = prompt[:at], prompt[at:]
        kwargs = dict(
            num_beams=options.beam_size,
            do_sample=False,
            max_new_tokens=options.max_new_tokens,
            return_timestamps=options.timestamps,
        )
        if options.timestamps:
            # One decoding of the window, as the other runtimes: without it transformers
            # decodes a window that ends inside a segment again from that segment's start
            # and appends the result, with timestamps that start over from 0.
            kwargs["force_unique_generate_call"] = True
        if previous:
            kwargs["prompt_ids"] = torch.tensor(previous, device=self._device)
        if self.multilingual:
            kwargs["language"] = self._languages[prompt[1]]
            kwargs["task"] = self._tasks[prompt[2]]
        if not options.suppress_blank:
            kwargs["begin_suppress_tokens"] = []
        kwargs["suppress_tokens"] = self.rules.listed(options, self._model.config.vocab_size)
        return kwargs

    @property
    def rules(self):
        """The shared filters' rules, from the model's generation config."""
        from runtimes.decode.step import SuppressRules

        if self._rules is None:
            self._rules = SuppressRules.of(self._model.generation_config.to_dict())
        return self._rules

    def _strip(self, row: list[int], prompt: list[int]) -> list[int]:
        """The generated ids of a returned row (transformers returns the forced prompt with
        them, the previous text included or not)."""
        eos = self._model.generation_config.eos_token_id
        start = prompt[prompt.index(self._model.generation_config.decoder_start_token_id):]
        for head in (prompt, start):
            if row[: len(head)] == head:
                row = row[len(head) :]
                break
        return row[: row.index(eos)] if eos in row else row

    def decode(self, features: np.ndarray, prompts: list[list[int]], options: DecodingOptions,
               temperature: float = 0.0, seeds: list[int] | None = None) -> list[Decoded]:
        import torch

        out: list[Decoded] = [Decoded([]) for _ in prompts]
        k = options.best_of if temperature > 0 else 1
        for prompt in {tuple(p) for p in prompts}:  # one generate call per distinct prompt
            rows = [i for i, p in enumerate(prompts) if tuple(p) == prompt]
            inputs = torch.from_numpy(features[rows]).to(self._device, self._model.dtype)
            kwargs = self._generate_kwargs(list(prompt), options)
            if temperature > 0:  # one generator per call: sampled text is batch-variant
                torch.manual_seed(int((seeds or [options.seed] * len(prompts))[rows[0]]))
                kwargs.update(num_beams=1, temperature=temperature, do_sample=True, top_k=0,
                              num_return_sequences=k)
            with torch.inference_mode():
                sequences = self._model.generate(input_features=inputs, **kwargs)
            found = [self._strip(seq, list(prompt)) for seq in sequences.tolist()]
            if options.scored or temperature > 0:
                scored = self._score(inputs.repeat_interleave(k, 0), list(prompt), found,
                                     options, temperature)
                for j, i in enumerate(rows):
                    out[i] = max(scored[j * k:(j + 1) * k], key=lambda d: d.avg_logprob)
            else:
                for i, ids in zip(rows, found):
                    out[i] = Decoded(ids)
        return out

    def _score(self, inputs, prompt: list[int], found: list[list[int]],
               options: DecodingOptions, temperature: float) -> list[Decoded]:
        """Average log-probability and no-speech probability of decoded ids, by one
        teacher-forced decoder pass through the shared logit filters: transformers'
        ``generate`` does not return them for timestamped output, and this gives them
        exactly the graph runtimes' meaning."""
        import torch

        from runtimes.decode.step import token_scores

        eot = self.rules.eot
        width = max(len(ids) for ids in found) + 1
        ids = torch.tensor([prompt + t + [eot] * (width - len(t)) for t in found],
                           device=self._device)
        with torch.inference_mode():
            encoded = self._model.model.encoder(inputs).last_hidden_state
            hidden = self._model.model.decoder(input_ids=ids, encoder_hidden_states=encoded)
            logits = self._model.proj_out(hidden.last_hidden_state).float().cpu().numpy()
        return token_scores(logits, prompt, found, options, self.rules, temperature)

    aligns = True

    def align(self, features: np.ndarray, prompt: list[int], texts: list[list[int]],
              num_frames: list[int]) -> list[Alignment]:
        """The alignment heads' cross-attention (``generation_config.alignment_heads``) of
        one teacher-forced decoder pass, computed from the layers' own projections (so any
        attention implementation works), then the shared DTW."""
        import torch

        from runtimes.decode.alignment import attention_path

        heads = self._model.generation_config.alignment_heads
        if not heads:
            raise ArtifactError(f"{self.model_dir}: generation_config.json has no "
                                "alignment_heads, which word timestamps need")
        eot = self._model.generation_config.eos_token_id
        width = max(len(t) for t in texts) + 1
        ids = torch.tensor([prompt + t + [eot] * (width - len(t)) for t in texts],
                           device=self._device)
        layers = sorted({layer for layer, _ in heads})
        seen: dict[int, torch.Tensor] = {}
        hooks = [self._model.model.decoder.layers[i].encoder_attn.register_forward_pre_hook(
            lambda _, args, kwargs, i=i: seen.__setitem__(
                i, kwargs.get("hidden_states", args[0] if args else None)), with_kwargs=True)
            for i in layers]
        try:
            with torch.inference_mode():
                inputs = torch.from_numpy(features).to(self._device, self._model.dtype)
                encoded = self._model.model.encoder(inputs).last_hidden_state
                hidden = self._model.model.decoder(input_ids=ids, encoder_hidden_states=encoded)
                logits = self._model.proj_out(hidden.last_hidden_state).float()
                weights = {i: self._cross_weights(i, seen[i], encoded) for i in layers}
        finally:
            for hook in hooks:
                hook.remove()
        start = len(prompt) - 1  # <|notimestamps|>: its position predicts the first text token
        attention = torch.stack([weights[layer][:, head] for layer, head in heads], 1)
        attention = attention[:, :, start:].float().cpu().numpy()
        probs = torch.softmax(logits[:, start:, :eot], -1).cpu().numpy()
        out = []
        for row, (text, frames) in enumerate(zip(texts, num_frames)):
            text_index, time_index = attention_path(attention[row, :, : len(text) + 1], frames)
            out.append(Alignment(text_index, time_index, probs[row, np.arange(len(text)), text]))
        return out

    def _cross_weights(self, layer: int, hidden, encoded):
        """softmax(q k^T / sqrt(head dim)) of a decoder layer's cross-attention:
        (batch, heads, tokens, frames)."""
        import torch

        attn = self._model.model.decoder.layers[layer].encoder_attn
        b, t, _ = hidden.shape
        h = attn.num_heads  # per layer: a pruned model's layers may differ
        q = attn.q_proj(hidden).view(b, t, h, -1).transpose(1, 2)
        k = attn.k_proj(encoded).view(b, encoded.shape[1], h, -1).transpose(1, 2)
        return torch.softmax(q.float() @ k.float().transpose(-1, -2) * q.shape[-1] ** -0.5, -1)

    def encode(self, features: np.ndarray) -> np.ndarray:
        import torch

        inputs = torch.from_numpy(features).to(self._device, self._model.dtype)
        with torch.inference_mode():
            hidden = self._model.model.encoder(inputs).last_hidden_state
        return hidden.float().cpu().numpy()

    def teacher_forced_logits(self, features: np.ndarray, tokens: list[int]) -> np.ndarray:
        """The logits after each of ``tokens`` (one window), fed as given: what the parity
        check reads a near-tie from (exporters.validate.near_tie)."""
        import torch

        inputs = torch.from_numpy(features[:1]).to(self._device, self._model.dtype)
        ids = torch.tensor([tokens], dtype=torch.long, device=self._device)
        with torch.inference_mode():
            logits = self._model(input_features=inputs, decoder_input_ids=ids).logits
        return logits[0].float().cpu().numpy()

    def language_probabilities(self, features: np.ndarray) -> list[dict[str, float]]:
        """transformers' ``detect_language`` gives the argmax only: the first step's
        logits over the language tokens, as it computes them, give every probability."""
        import torch

        if not self._languages:
            raise ArtifactError(f"{self.model_dir} records no language tokens (English-only "
                                f"model?)")
        inputs = torch.from_numpy(features).to(self._device, self._model.dtype)
        sot = self._model.generation_config.decoder_start_token_id
        start = torch.full((len(features), 1), sot, dtype=torch.long, device=self._device)
        ids = list(self._languages)
        with torch.inference_mode():
            logits = self._model(input_features=inputs, decoder_input_ids=start).logits
            probs = logits[:, -1, ids].float().softmax(-1).cpu().numpy()
        return [dict(zip(self._languages.values(), map(float, row))) for row in probs]

    def close(self) -> None:
        self._model = None

