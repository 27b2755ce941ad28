"""One vocabulary of precision names for every command and runtime.

Each runtime has its own spellings (PyTorch's ``float32``, ggml's ``f16``, OpenVINO's
``f32`` hint, CTranslate2's ``float16``); a user met three names for one thing. The
toolkit's names are ``fp32``, ``fp16``, ``bf16`` and ``int8``; the long and short forms
are accepted as the same value everywhere, and each runtime translates to its own name
at its boundary. Names that only one format has (CTranslate2's ``int8_float16``, ggml's
``q5_0``, OpenVINO's ``int8_static``) keep that format's spelling.
"""

from __future__ import annotations

#: Other spellings of the toolkit's names, accepted wherever a precision is.
ALIASES: dict[str, str] = {
    "float32": "fp32", "f32": "fp32",
    "float16": "fp16", "f16": "fp16", "half": "fp16",
    "bfloat16": "bf16",
}

#: The toolkit's names, in the order help texts list them.
NAMES: tuple[str, ...] = ("fp32", "fp16", "bf16", "int8")

#: What ``--precision`` takes, for every command that loads an artifact.
RUNTIME_HELP = (
    "compute precision (default: the artifact's own): fp32, fp16, bf16 or int8 "
    "(float32/f32, float16/f16 and bfloat16 mean the same); CTranslate2 takes any compute "
    "type (e.g. int8_float32, int8_bfloat16), OpenVINO the inference precision fp32 or bf16, "
    "PyTorch fp32, fp16, bf16 or int8 (dynamic); ONNX, TorchScript, TensorRT and ggml "
    "artifacts compute in the precision they were exported with")


def canonical(name: str | None) -> str | None:
    """The toolkit's name for ``name`` (``float32`` -> ``fp32``); other names unchanged."""
    return None if name is None else ALIASES.get(name, name)


def native(name: str | None, spelling: dict[str, str]) -> str | None:
    """``name`` in a runtime's own spelling: ``spelling`` maps the toolkit's names to it
    (e.g. {"fp32": "float32"}); names it does not list pass through."""
    name = canonical(name)
    return None if name is None else spelling.get(name, name)


#: What the exporter's ``--quantization`` takes besides --fp16, --int8 and --int4.
QUANTIZATION_HELP = (
    "a precision by name: fp32 (default), fp16, bf16, int8, int4 where the target offers "
    "them (float32, float16, bfloat16 mean the same), or the target's own: ctranslate2 "
    "any compute type (int8_float32, int8_float16, int8_bfloat16, int16, ...); openvino "
    "int8_static (calibrated), int4_mixed; ggml f16 (its fp16), q8_0, q5_0, q5_1, q4_0, "
    "q4_1")
