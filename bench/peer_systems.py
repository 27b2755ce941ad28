"""How each peer runs in its worker process: the tool's own transcribe call, as its users
call it (``bench.peers`` prepares what each needs and says which are installed). One class
per peer behind ``bench.systems``' interface, so the runner times them as it times the
toolkit's rows."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from bench.systems import Output, SystemSpec
from runtimes.base import DecodingOptions, RuntimeOptions

#: The transformers pipeline's chunk length for long recordings (its documented setting).
CHUNK_S = 30


def _threads(runtime: RuntimeOptions) -> int:
    import os

    return runtime.threads or os.cpu_count() or 1


def _language(decoding: DecodingOptions, multilingual: bool) -> str | None:
    """The language to force: the run's, or English for an English-only model."""
    return decoding.language or (None if multilingual else "en")


class _PeerBase:
    """What every peer row shares: no timestamps pass (each tool's own segments are not
    the toolkit's), no word pass, and ``settings``: the tool's own arguments that carry the
    run's decoding options (its long-form mode above all), in the tool's own names, so a
    reader and the tests see what the tool was asked to do."""

    sequential_batches = False
    settings: dict

    def called_with(self) -> str:
        """``settings`` as one line for the row's notes (results.jsonl), the console
        switches left out."""
        quiet = ("print_", "redirect_")
        return "called with " + ", ".join(f"{k}={v!r}" for k, v in self.settings.items()
                                          if not k.startswith(quiet))

    def segment_starts(self, audio: list[np.ndarray], batch_size: int) -> list[list[float]]:
        return []

    def word_starts(self, audio, batch_size):
        return None


class WhisperCppPeer(_PeerBase):
    """pywhispercpp's ``Model.transcribe``, one recording at a time (its API)."""

    runtime_name = "whisper.cpp (its transcribe)"
    batching = False

    def __init__(self, spec: SystemSpec, runtime: RuntimeOptions, decoding: DecodingOptions):
        from pywhispercpp.model import Model

        from runtimes.engines.whispercpp import MODEL_FILE

        self.precision, self.backend = spec.precision or "", "whisper.cpp cpu"
        d = decoding
        sequential = d.long_form == "sequential"
        params = dict(n_threads=_threads(runtime), print_progress=False, print_realtime=False,
                      redirect_whispercpp_logs_to=None, temperature=0.0,
                      no_context=not (sequential and d.condition_on_previous_text),
                      no_timestamps=not sequential,
                      temperature_inc=0.0, suppress_blank=d.suppress_blank,
                      suppress_nst=True)  # openai's default, as every other row
        if d.beam_size > 1:
            params.update(params_sampling_strategy=1,
                          beam_search={"beam_size": d.beam_size, "patience": -1.0})
        else:
            params.update(greedy={"best_of": 1})
        from runtimes.artifacts.ggml_file import read_ggml
        from runtimes.artifacts.graph_spec import is_multilingual

        path = Path(spec.path) / MODEL_FILE
        self._model = Model(str(path), **params)
        multilingual = is_multilingual(read_ggml(path, data=False).hparam("n_vocab"))
        self._kwargs = {"language": _language(d, multilingual) or "auto"} if multilingual else {}
        if d.task == "translate":
            self._kwargs["translate"] = True
        self.settings = {**params, **self._kwargs}

    def transcribe(self, audio: list[np.ndarray], batch_size: int) -> list[Output]:
        return [(" ".join(s.text.strip() for s in self._model.transcribe(a, **self._kwargs)
                          ).strip(), []) for a in audio]


class OpenAIWhisperPeer(_PeerBase):
    """openai-whisper's ``transcribe`` (its own log-mel and 30 s seeking), one recording at
    a time; fp32 on a CPU."""

    runtime_name = "openai-whisper"
    batching = False

    def __init__(self, spec: SystemSpec, runtime: RuntimeOptions, decoding: DecodingOptions):
        import torch
        import whisper

        torch.set_num_threads(_threads(runtime))
        self.precision, self.backend = "fp32", f"torch {runtime.device}"
        self._model = whisper.load_model(spec.path, device=runtime.device)
        d = decoding
        sequential = d.long_form == "sequential"
        self.settings = dict(temperature=0.0, fp16=False, verbose=None, task=d.task,
                             condition_on_previous_text=(sequential
                                                         and d.condition_on_previous_text),
                             without_timestamps=not sequential,
                             language=_language(d, self._model.is_multilingual),
                             beam_size=d.beam_size if d.beam_size > 1 else None,
                             suppress_blank=d.suppress_blank)

    def transcribe(self, audio: list[np.ndarray], batch_size: int) -> list[Output]:
        return [(self._model.transcribe(a, **self.settings)["text"].strip(), []) for a in audio]


class PipelinePeer(_PeerBase):
    """The transformers ASR pipeline (30 s chunks with its default stride for long
    recordings, ``batch_size`` chunks per call), on PyTorch or on an optimum model."""

    batching = True

    def __init__(self, spec: SystemSpec, runtime: RuntimeOptions, decoding: DecodingOptions):
        import torch
        from transformers import AutoProcessor, pipeline

        torch.set_num_threads(_threads(runtime))
        self.precision = spec.precision or "fp32"
        self.runtime_name, model, self.backend = self._model(spec, runtime)
        processor = AutoProcessor.from_pretrained(spec.path)
        if processor.tokenizer.pad_token_id is None:  # what the pipeline asks users to do
            processor.tokenizer.pad_token_id = processor.tokenizer.eos_token_id
        self._pipe = pipeline("automatic-speech-recognition", model=model,
                              tokenizer=processor.tokenizer,
                              feature_extractor=processor.feature_extractor,
                              chunk_length_s=CHUNK_S, device=runtime.device if spec.kind ==
                              "transformers-pipeline" else None)
        multilingual = json.loads((Path(spec.path) / "config.json").read_text()).get(
            "vocab_size", 0) >= 51865
        d = decoding
        generate = {"num_beams": d.beam_size, "max_new_tokens": d.max_new_tokens}
        if multilingual:
            generate.update(task=d.task, language=_language(d, True))
        # sequential: chunks merged on timestamps
        self._call = {"return_timestamps": d.long_form == "sequential",
                      "generate_kwargs": generate}
        self.settings = {"chunk_length_s": CHUNK_S, **self._call}

    @staticmethod
    def _model(spec: SystemSpec, runtime: RuntimeOptions):
        if spec.kind == "optimum-onnx":
            from optimum.onnxruntime import ORTModelForSpeechSeq2Seq

            return ("optimum ORTModelForSpeechSeq2Seq",
                    ORTModelForSpeechSeq2Seq.from_pretrained(spec.path), "onnxruntime cpu")
        if spec.kind == "optimum-openvino":
            from optimum.intel import OVModelForSpeechSeq2Seq

            return ("optimum-intel OVModelForSpeechSeq2Seq",
                    OVModelForSpeechSeq2Seq.from_pretrained(spec.path), "openvino CPU")
        from transformers import WhisperForConditionalGeneration

        return ("transformers pipeline", WhisperForConditionalGeneration.from_pretrained(
            spec.path), f"torch {runtime.device}")

    def transcribe(self, audio: list[np.ndarray], batch_size: int) -> list[Output]:
        found = self._pipe([{"raw": a, "sampling_rate": 16000} for a in audio],
                           batch_size=batch_size, **self._call)
        return [(f["text"].strip(), []) for f in found]


KINDS = {"whisper.cpp": WhisperCppPeer, "openai-whisper": OpenAIWhisperPeer,
         "optimum-onnx": PipelinePeer, "optimum-openvino": PipelinePeer,
         "transformers-pipeline": PipelinePeer}
