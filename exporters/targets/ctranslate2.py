"""CTranslate2 target: ``ctranslate2.converters.TransformersConverter`` with quantisation.

CTranslate2 stores weights in the quantised type, and computes in the type's compute
precision; ``int8`` means ``int8_float32`` on CPU and ``int8_float16`` on CUDA, which is
what faster-whisper users expect.
"""

from __future__ import annotations

from pathlib import Path

from exporters.options import ExportOptions
from exporters.registry import register
from exporters.sources import Source
from exporters.targets.base import Target
from exporters.validate import ParityTolerance
from runtimes.engines.ctranslate2 import COMPUTE_TYPES, check_compute_type
from runtimes.errors import OptionError

_SHORTHAND = {
    ("fp32", "cpu"): "float32", ("fp32", "cuda"): "float32",
    ("fp16", "cpu"): "float16", ("fp16", "cuda"): "float16",
    ("bf16", "cpu"): "bfloat16", ("bf16", "cuda"): "bfloat16",
    ("int8", "cpu"): "int8_float32", ("int8", "cuda"): "int8_float16",
}


@register
class CTranslate2Target(Target):
    name = "ctranslate2"
    format = "ctranslate2"
    aligns = True  # always: CTranslate2 aligns with the heads in its config.json

    def precision(self, requested: str | None, device: str) -> str:
        requested = requested or "fp32"
        if (requested, device) in _SHORTHAND:
            return _SHORTHAND[requested, device]
        if requested in COMPUTE_TYPES:
            return requested
        raise OptionError(
            f"precision {requested!r} is not offered by the ctranslate2 target; accepted: "
            f"--fp16, --int8, or --quantization one of {', '.join(COMPUTE_TYPES)}"
        )

    def offered(self, device: str) -> list[str]:
        from runtimes.engines.ctranslate2 import supported_compute_types

        # "int8" alone means int8 with the device's float type: the same as a listed pair.
        return sorted(set(COMPUTE_TYPES) & supported_compute_types(device) - {"int8"})

    def check(self, options: ExportOptions, precision: str) -> None:
        import importlib.util

        if importlib.util.find_spec("ctranslate2") is None:
            raise OptionError("the ctranslate2 target needs `pip install ctranslate2`")
        check_compute_type(precision, options.device)

    def convert(self, source: Source, out_dir: Path, precision: str,
                options: ExportOptions) -> list[Path]:
        from ctranslate2.converters import TransformersConverter

        class Converter(TransformersConverter):
            """Loads pruned feed-forward widths too (CTranslate2 sizes each layer from its
            weights; transformers' from_pretrained would refuse them)."""

            def load_model(self, model_class, model_name_or_path, **kwargs):
                from runtimes.artifacts.checkpoint import load_whisper

                return load_whisper(Path(model_name_or_path), kwargs.get("dtype"))

            def _load(self):
                spec = super()._load()
                _language_ids(spec.config, source.hf_dir)
                return spec

        converter = Converter(str(source.hf_dir))
        converter.convert(str(out_dir), quantization=precision, force=True)
        return sorted(p for p in out_dir.iterdir() if p.is_file())

    def refuses_reshape(self, kind: str) -> str | None:
        if kind == "heads":
            return ("CTranslate2's Whisper model has one head count for every layer; "
                    "prune-heads exports to onnx, openvino, torchscript or tensorrt")
        return None

    def tolerance(self, precision: str) -> ParityTolerance:
        if precision.startswith("int"):
            # Measured int8 encoder error on JFK, with VNNI / AVX2 only (qemu -cpu EPYC-Milan):
            # real tiny.en 0.040 / 0.057, the random test model 0.016 / 0.147; AVX2's
            # saturating u8 x s8 products cost the most. A broken export is ~1. Tokens are
            # not required to agree: int8 may change words, bench measures WER.
            return ParityTolerance(encoder_rel_error=0.3, token_agreement=0.0)
        if precision in ("float16", "bfloat16"):
            return ParityTolerance(encoder_rel_error=0.03, token_agreement=0.5)
        return ParityTolerance(encoder_rel_error=1e-3, token_agreement=0.9)

    def runtime_packages(self, device: str) -> tuple[str, ...]:
        return ("ctranslate2",)

    def versions(self) -> dict[str, str]:
        import ctranslate2

        return {"ctranslate2": ctranslate2.__version__}


def _language_ids(config, hf_dir: Path) -> None:
    """A multilingual checkpoint's language ids, from its tokenizer.json where CTranslate2
    found none: it reads them from ``generation_config.lang_to_id`` or the tokenizer's
    additional special tokens, which a fine-tuned checkpoint may both lack; without them
    its language detection returns nothing."""
    import json

    from runtimes.artifacts.graph_spec import is_multilingual
    from runtimes.decode.languages import language_tokens

    vocab = json.loads((Path(hf_dir) / "config.json").read_text())["vocab_size"]
    if not getattr(config, "lang_ids", None) and is_multilingual(vocab):
        config.lang_ids = sorted(language_tokens(Path(hf_dir) / "tokenizer.json").values())
