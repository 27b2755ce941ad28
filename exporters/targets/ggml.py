"""ggml target: whisper.cpp's model file, written directly from the reference weights
(``exporters.ggml_format``), in float16 or one of whisper.cpp's block-quantised types.

Precisions: f16 (the default, as whisper.cpp's own converter writes), q8_0 (``--int8``),
q5_0, q5_1, q4_0 (``--int4``), q4_1. f32 files are written by ``exporters.ggml_format`` but
not offered: whisper.cpp 1.8.5's CPU convolution asserts float16 kernels while its loader
wants float32 ones in a float32 file, so no f32 file runs. The k-quants need rows divisible
by 256 (tiny's d_model 384 is not).
"""

from __future__ import annotations

import importlib.util
import json
import shutil
from pathlib import Path

from exporters.options import ExportOptions
from exporters.registry import register
from exporters.sources import Source
from exporters.targets.base import Target
from exporters.validate import ParityTolerance
from runtimes.artifacts.ggml_file import QUANTISED
from runtimes.errors import OptionError

PRECISIONS = ("f16", *QUANTISED)
_SHORTHAND = {"fp16": "f16", "int8": "q8_0", "int4": "q4_0"}


@register
class GGMLTarget(Target):
    name = "ggml"
    format = "ggml"

    def precision(self, requested: str | None, device: str) -> str:
        requested = _SHORTHAND.get(requested or "fp16", requested)
        if requested in ("f32", "fp32"):
            raise OptionError("precision 'f32' is not offered by the ggml target: whisper.cpp "
                              "1.8.5 cannot run float32 ggml files on a CPU; accepted: "
                              f"{', '.join(PRECISIONS)}")
        return self._one_of(requested, PRECISIONS, "--fp16, --int8 = q8_0, --int4 = q4_0")

    def offered(self, device: str) -> list[str]:
        return list(PRECISIONS) if device == "cpu" and _installed() else []

    def check(self, options: ExportOptions, precision: str) -> None:
        if options.device != "cpu":
            raise OptionError("the ggml target runs on cpu only here (pywhispercpp's wheel "
                              "carries whisper.cpp's CPU library); use --device cpu")
        if not _installed():
            raise OptionError("the ggml target needs the 'ggml' extra: pip install -e "
                              "'.[ggml]' (gguf and pywhispercpp)")

    def convert(self, source: Source, out_dir: Path, precision: str,
                options: ExportOptions) -> list[Path]:
        from transformers import WhisperForConditionalGeneration

        from exporters.ggml_format import write_ggml
        from runtimes.engines.whispercpp import MODEL_FILE

        model = WhisperForConditionalGeneration.from_pretrained(source.hf_dir)  # never pruned
        write_ggml(model, source.hf_dir, out_dir / MODEL_FILE, precision)
        # the suppress list travels too: whisper.cpp can suppress openai's non-speech
        # tokens or none, and the runtime picks what the checkpoint asks for
        shutil.copy2(Path(source.hf_dir) / "generation_config.json", out_dir)
        return [out_dir / MODEL_FILE, out_dir / "generation_config.json"]

    def unsupported(self, hf_dir: Path) -> str | None:
        """whisper.cpp sizes the feed-forward layers as 4 x d_model (every released Whisper):
        another width would make a file its loader cannot read."""
        config = json.loads((Path(hf_dir) / "config.json").read_text())
        d_model = config["d_model"]
        for key in ("encoder_ffn_dim", "decoder_ffn_dim"):
            if config.get(key, 4 * d_model) != 4 * d_model:
                return (f"{key} {config[key]} is not 4 x d_model ({4 * d_model}), which "
                        f"whisper.cpp assumes: this checkpoint cannot be a ggml file")
        return super().unsupported(hf_dir)

    def refuses_reshape(self, kind: str) -> str | None:
        return ("whisper.cpp sizes every layer from one head count and 4 x d_model; pruned "
                f"{kind} cannot be a ggml file (drop-decoder-layers, prune-unstructured and "
                "cluster can)")

    def tolerance(self, precision: str) -> ParityTolerance:
        # whisper.cpp hides its encoder output: parity rests on its decoder logits along
        # the reference's tokens (exporters.validate.logits_error, attention in fp32) and
        # on its tokens. Measured logits errors on JFK, real tiny.en / base / the random
        # shapes of tests/shapes.py: f16 0.0019 / 0.0011 / 0.0012-0.0023, q8_0 0.015 /
        # 0.0067 / 0.025-0.048, q5 0.050 / 0.038 / 0.14-0.26, q4 0.14 / 0.079 / 0.29-0.43;
        # one decoder matrix's rows permuted (an f16 writer bug): 0.56. f16 and q8_0 also keep 90% of
        # tokens (measured on real tiny.en: 100%); the 4- and 5-bit types change a word or
        # two of a real model (bench measures their WER) and a random model's every token
        # after its first flip, so their tokens are not bounded.
        if precision == "f16":
            return ParityTolerance(None, token_agreement=0.9, logits_rel_error=0.01)
        if precision == "q8_0":
            return ParityTolerance(None, token_agreement=0.9, logits_rel_error=0.1)
        if precision.startswith("q5"):
            return ParityTolerance(None, token_agreement=0.0, logits_rel_error=0.4)
        return ParityTolerance(None, token_agreement=0.0, logits_rel_error=0.6)

    def runtime_packages(self, device: str) -> tuple[str, ...]:
        return ("pywhispercpp",)

    def versions(self) -> dict[str, str]:
        from importlib import metadata

        return {p: metadata.version(p) for p in ("gguf", "pywhispercpp")}


def _installed() -> bool:
    return all(importlib.util.find_spec(p) is not None for p in ("gguf", "_pywhispercpp"))
