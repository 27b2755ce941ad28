"""Peer rows: the tools a user would otherwise pick, each used the way its own users use it,
on the same checkpoint, beside the toolkit's artifacts (``--peers``).

- ``whisper.cpp``: pywhispercpp's ``Model.transcribe`` (its own log-mel and loop) on the
  toolkit's ggml file (a given ggml artifact, else one exported here in q8_0).
- ``optimum-onnx``: ``optimum-cli export onnx`` of the checkpoint, then
  ``ORTModelForSpeechSeq2Seq`` in the transformers ASR pipeline (optimum's documented use).
- ``optimum-openvino``: ``optimum-cli export openvino --weight-format int8``, then
  ``OVModelForSpeechSeq2Seq`` in the pipeline.
- ``openai-whisper``: ``whisper.load_model`` + ``transcribe`` on the checkpoint converted to
  openai's state-dict layout (the same weights).
- ``transformers-pipeline``: ``pipeline("automatic-speech-recognition")`` on the
  checkpoint itself.

Every peer decodes greedily (or with the run's beam), at temperature 0 without fallback, in
the run's long-form mode as the tool itself offers it: with ``--long-form vad`` (the
default) text only, no previous-text prompt; with ``--long-form sequential`` its timestamped
long-form mode (openai's timestamped seeking, prompted with the previous text as the run
says; the pipeline's chunks merged on timestamps, ``return_timestamps=True``; whisper.cpp's
loop with its context as the run says). Long recordings are cut as each tool cuts them (the
pipeline's 30 s chunks with stride, openai's and whisper.cpp's seeking). A peer whose
package is missing is left out with the reason. Exports run here, in the parent, timed (the
report's export column); each peer then runs in its own worker process like every row.
"""

from __future__ import annotations

import importlib.util
import json
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from bench.systems import Output, SystemSpec
from runtimes.base import DecodingOptions, RuntimeOptions
from runtimes.errors import OptionError, ToolkitError

#: Peer name -> (import name, pip requirement that provides it).
PACKAGES = {
    "whisper.cpp": ("_pywhispercpp", "the 'ggml' extra (pywhispercpp)"),
    "optimum-onnx": ("optimum.onnxruntime", "the 'peers' extra (optimum-onnx)"),
    "optimum-openvino": ("optimum.intel", "the 'peers' extra (optimum-intel)"),
    "openai-whisper": ("whisper", "the 'peers' extra (openai-whisper)"),
    "transformers-pipeline": ("transformers", "transformers"),
}
PEERS = tuple(PACKAGES)
#: The transformers pipeline's chunk length for long recordings (its documented setting).
CHUNK_S = 30


def check_peers(names: tuple[str, ...]) -> tuple[str, ...]:
    """The peers named (``all`` = every one), in PEERS order; OptionError naming an unknown
    one and the accepted names."""
    if "all" in names:
        return PEERS
    unknown = [n for n in names if n not in PEERS]
    if unknown:
        raise OptionError(f"--peers {unknown[0]!r} is not one of: {', '.join(PEERS)}, all")
    return tuple(n for n in PEERS if n in names)


def _installed(peer: str) -> bool:
    module = PACKAGES[peer][0]
    try:
        return importlib.util.find_spec(module) is not None
    except ModuleNotFoundError:  # a parent package (optimum) is missing
        return False


def prepare(names: tuple[str, ...], source, artifacts: dict[str, Path], work_dir: Path,
            log: Callable[[str], None] = lambda m: print(m, file=sys.stderr, flush=True)
            ) -> tuple[list[SystemSpec], dict[str, float], list[str]]:
    """Export what each peer needs from ``source`` into ``work_dir`` (timed) and return its
    rows, the export seconds by row name, and a note for each peer left out."""
    specs, seconds, notes = [], {}, []
    for peer in check_peers(names):
        if not _installed(peer):
            notes.append(f"peer {peer} skipped: {PACKAGES[peer][1]} is not installed")
            continue
        log(f"[peer] preparing {peer}")
        started = time.perf_counter()
        try:
            spec, exported = _PREPARE[peer](source, artifacts, work_dir / peer.replace(".", "-"))
        except (OSError, RuntimeError, subprocess.CalledProcessError, ToolkitError) as exc:
            notes.append(f"peer {peer} skipped: its export failed: {_last_line(exc)}")
            continue
        specs.append(spec)
        if exported:
            seconds[spec.name] = time.perf_counter() - started
    return specs, seconds, notes


def _last_line(exc: BaseException) -> str:
    text = getattr(exc, "stderr", None) or str(exc)
    lines = [ln for ln in str(text).strip().splitlines() if ln.strip()]
    return lines[-1] if lines else type(exc).__name__


def _whisper_cpp(source, artifacts: dict[str, Path], out: Path) -> tuple[SystemSpec, bool]:
    """The toolkit's ggml file: a ggml artifact of the run (q8_0 preferred, as whisper.cpp's
    users pick for CPUs), else one exported here."""
    from runtimes.artifacts.manifest import read_manifest

    manifests = {p: read_manifest(p) for p in artifacts.values()}
    ggml = {m.precision: p for p, m in manifests.items() if m.format == "ggml"}
    path = ggml.get("q8_0") or next(iter(ggml.values()), None)
    exported = path is None
    if exported:
        from exporters.api import export
        from exporters.cli import parity_clip
        from exporters.options import ExportOptions

        path = export(source.spec, ExportOptions("ggml", "q8_0"), out, force=True,
                      parity_audio=parity_clip(None), log=lambda _: None).path
    precision = read_manifest(path).precision
    return SystemSpec(f"peer whisper.cpp {precision}", "whisper.cpp", str(path), precision,
                      peer=True), exported


def _optimum_cli(args: list[str]) -> None:
    cli = shutil.which("optimum-cli") or str(Path(sys.executable).with_name("optimum-cli"))
    subprocess.run([cli, *args], check=True, capture_output=True, text=True)


def _optimum_onnx(source, artifacts, out: Path) -> tuple[SystemSpec, bool]:
    shutil.rmtree(out, ignore_errors=True)
    _optimum_cli(["export", "onnx", "--model", str(source.hf_dir), "--task",
                  "automatic-speech-recognition-with-past", str(out)])
    return SystemSpec("peer optimum-onnx fp32", "optimum-onnx", str(out), "fp32",
                      peer=True), True


def _optimum_openvino(source, artifacts, out: Path) -> tuple[SystemSpec, bool]:
    shutil.rmtree(out, ignore_errors=True)
    _optimum_cli(["export", "openvino", "--model", str(source.hf_dir), "--task",
                  "automatic-speech-recognition-with-past", "--weight-format", "int8",
                  str(out)])
    return SystemSpec("peer optimum-openvino int8", "optimum-openvino", str(out), "int8",
                      peer=True), True


def _openai_whisper(source, artifacts, out: Path) -> tuple[SystemSpec, bool]:
    """The checkpoint in openai-whisper's layout (``{"dims", "model_state_dict"}``, the
    names whisper.cpp also uses), for ``whisper.load_model(path)``."""
    import torch
    from transformers import WhisperForConditionalGeneration

    from exporters.ggml_format import ggml_name

    model = WhisperForConditionalGeneration.from_pretrained(source.hf_dir)
    c = model.config
    dims = dict(n_mels=c.num_mel_bins, n_audio_ctx=c.max_source_positions,
                n_audio_state=c.d_model, n_audio_head=c.encoder_attention_heads,
                n_audio_layer=c.encoder_layers, n_vocab=c.vocab_size,
                n_text_ctx=c.max_target_positions, n_text_state=c.d_model,
                n_text_head=c.decoder_attention_heads, n_text_layer=c.decoder_layers)
    state = {name: value for key, value in model.state_dict().items()
             if (name := ggml_name(key)) is not None}
    out.mkdir(parents=True, exist_ok=True)
    torch.save({"dims": dims, "model_state_dict": state}, out / "model.pt")
    return SystemSpec("peer openai-whisper fp32", "openai-whisper", str(out / "model.pt"),
                      "fp32", peer=True), True


def _pipeline(source, artifacts, out: Path) -> tuple[SystemSpec, bool]:
    return SystemSpec("peer transformers-pipeline fp32", "transformers-pipeline",
                      str(source.hf_dir), "fp32", peer=True), False


_PREPARE = {"whisper.cpp": _whisper_cpp, "optimum-onnx": _optimum_onnx,
            "optimum-openvino": _optimum_openvino, "openai-whisper": _openai_whisper,
            "transformers-pipeline": _pipeline}


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
