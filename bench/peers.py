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
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

from bench.systems import SystemSpec
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
