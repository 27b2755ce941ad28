"""Read a CTranslate2 ``model.bin`` into numpy arrays.

CTranslate2 ships no reader for its own format (only the C++ loader), yet many fine-tuned
Whisper models are published only as CTranslate2 / faster-whisper directories. This
module parses the binary layout written by ``ctranslate2.specs.model_spec._serialize``
so that such a model can be imported back into transformers weights.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import numpy as np

# Index into this tuple is the dtype id written by CTranslate2 (`_dtype_to_type_id`).
_DTYPES: tuple[str, ...] = ("float32", "int8", "int16", "int32", "float16", "bfloat16")
SUPPORTED_BINARY_VERSIONS = (5, 6)


class CT2FormatError(ValueError):
    """The file is not a CTranslate2 model.bin this reader understands."""


@dataclass(frozen=True)
class CT2Model:
    """The parsed content of a ``model.bin``.

    Attributes:
        spec_name: e.g. ``"WhisperSpec"``.
        revision: the spec revision.
        variables: name -> array (bfloat16 is widened to float32; scalars are 0-d arrays).
        aliases: alias name -> target variable name (tied weights).
    """

    spec_name: str
    revision: int
    variables: dict[str, np.ndarray]
    aliases: dict[str, str]

    def get(self, name: str) -> np.ndarray:
        """Return a variable, following an alias if ``name`` is one."""
        return self.variables[self.aliases.get(name, name)]


def _exact(f: BinaryIO, size: int, what: str) -> bytes:
    data = f.read(size)
    if len(data) != size:
        raise CT2FormatError(f"model.bin is truncated: unexpected end of file in {what}")
    return data


def _read(f: BinaryIO, fmt: str) -> tuple:
    return struct.unpack(fmt, _exact(f, struct.calcsize(fmt), "a header field"))


def _read_string(f: BinaryIO) -> str:
    (length,) = _read(f, "<H")
    return _exact(f, length, "a name")[:-1].decode("utf-8")


def _read_array(f: BinaryIO) -> np.ndarray:
    (ndim,) = _read(f, "<B")
    shape = _read(f, f"<{ndim}I") if ndim else ()
    (type_id,) = _read(f, "<B")
    (nbytes,) = _read(f, "<I")
    if type_id >= len(_DTYPES):
        raise CT2FormatError(f"unknown dtype id {type_id}")
    raw = _exact(f, nbytes, "the weights")
    dtype = _DTYPES[type_id]
    if dtype == "bfloat16":
        # numpy has no bfloat16: widen by placing the 16 bits in the high half of a float32.
        halves = np.frombuffer(raw, dtype="<u2").astype(np.uint32) << 16
        return halves.view(np.float32).reshape(shape)
    return np.frombuffer(raw, dtype=np.dtype(dtype).newbyteorder("<")).reshape(shape)


def read_model_bin(path: str | Path) -> CT2Model:
    """Parse a CTranslate2 ``model.bin``.

    Args:
        path: the ``model.bin`` file.

    Returns:
        The spec name, revision, variables and aliases.

    Raises:
        CT2FormatError: the file is truncated or not in a supported binary version.
    """
    with open(path, "rb") as f:
        (version,) = _read(f, "<I")
        if version not in SUPPORTED_BINARY_VERSIONS:
            raise CT2FormatError(
                f"{path}: binary version {version} is not supported "
                f"(supported: {', '.join(map(str, SUPPORTED_BINARY_VERSIONS))})"
            )
        spec_name = _read_string(f)
        (revision,) = _read(f, "<I")
        (count,) = _read(f, "<I")
        variables = {_read_string(f): _read_array(f) for _ in range(count)}
        (n_aliases,) = _read(f, "<I")
        aliases = {_read_string(f): _read_string(f) for _ in range(n_aliases)}
    return CT2Model(spec_name, revision, variables, aliases)
