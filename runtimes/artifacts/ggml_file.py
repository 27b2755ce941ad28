"""whisper.cpp's ggml model file: its layout, and a reader (the writer is
``exporters.ggml_format``; this side sits below both so the runtime checks a file without the
exporters).

The layout is the one ``whisper_model_load`` reads (whisper.cpp ``src/whisper.cpp``, and its
``models/convert-h5-to-ggml.py``): int32 magic ``ggml``, eleven int32 hyper-parameters (the
last the file type), the mel filters (n_mel x n_fft float32), the vocabulary (count, then
each token's bytes with their length), then each tensor: int32 n_dims, name length, ggml
type, the dimensions innermost first, the name, the data.

Why the runtime reads the whole table before whisper.cpp sees the file: whisper.cpp's loader
answers a file it cannot use (a truncated one, a feed-forward width other than 4 x d_model,
which it assumes) with a null context that pywhispercpp wraps and a later call dereferences:
the process dies. Checked here, the same file is one clear ArtifactError.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import numpy as np

from runtimes.errors import ArtifactError

MAGIC = 0x67676D6C  # "ggml"
#: ggml_type ids of the tensor types a Whisper file holds.
GGML_TYPES = {"f32": 0, "f16": 1, "q4_0": 2, "q4_1": 3, "q5_0": 6, "q5_1": 7, "q8_0": 8}
TYPE_NAMES = {v: k for k, v in GGML_TYPES.items()}
#: The file's ggml_ftype per type (whisper.cpp picks the matrices' type from it).
FILE_TYPES = {"f32": 0, "f16": 1, "q4_0": 2, "q4_1": 3, "q8_0": 7, "q5_0": 8, "q5_1": 9}
FILE_TYPE_NAMES = {v: k for k, v in FILE_TYPES.items()}
QUANTISED = ("q8_0", "q5_0", "q5_1", "q4_0", "q4_1")
QNT_VERSION_FACTOR = 1000  # the file type carries GGML_QNT_VERSION * this for q types
#: (values per block, bytes per block) of each type (ggml's type traits).
BLOCKS = {"f32": (1, 4), "f16": (1, 2), "q4_0": (32, 18), "q4_1": (32, 20),
          "q5_0": (32, 22), "q5_1": (32, 24), "q8_0": (32, 34)}
HPARAMS = ("n_vocab", "n_audio_ctx", "n_audio_state", "n_audio_head", "n_audio_layer",
           "n_text_ctx", "n_text_state", "n_text_head", "n_text_layer", "n_mels", "ftype")


@dataclass(frozen=True)
class GGMLModel:
    """A ggml file's content: hyper-parameters (named as whisper.cpp names them), filters,
    vocabulary and raw tensors (``tensors[name] = (ggml type id, numpy shape, bytes)``;
    empty bytes when read without data)."""

    hparams: tuple[int, ...]
    filters: np.ndarray
    vocab: list[bytes]
    tensors: dict[str, tuple[int, tuple[int, ...], bytes]]

    def hparam(self, name: str) -> int:
        return self.hparams[HPARAMS.index(name)]

    @property
    def dtype(self) -> str:
        """The file's type name ("f16", "q5_0", ...)."""
        return FILE_TYPE_NAMES.get(self.hparam("ftype") % QNT_VERSION_FACTOR, "unknown")


def tensor_bytes(kind: str, shape: tuple[int, ...]) -> int:
    """Bytes of a tensor of ggml type ``kind`` (blocks run along the last axis)."""
    block, size = BLOCKS[kind]
    rows = int(np.prod(shape[:-1])) if len(shape) > 1 else 1
    return rows * (shape[-1] // block) * size


def read_ggml(path: Path, data: bool = True) -> GGMLModel:
    """Parse a ggml Whisper file; ``data=False`` skips over the tensors' bytes (a check of
    the whole table without reading the weights).

    Raises:
        ArtifactError: not a ggml file, or cut short, naming the file and where.
    """
    path = Path(path)
    try:
        with open(path, "rb") as f:
            return _read(f, path, data)
    except (struct.error, KeyError, UnicodeDecodeError, ValueError) as exc:
        raise ArtifactError(f"{path} is not a complete whisper.cpp ggml file "
                            f"({type(exc).__name__}: {exc})") from exc
    except OSError as exc:
        raise ArtifactError(f"cannot read {path}: {exc.strerror or exc}") from exc


def _read(f: BinaryIO, path: Path, data: bool) -> GGMLModel:
    magic, *hparams = struct.unpack("<12i", f.read(48))
    if magic != MAGIC:
        raise ArtifactError(f"{path} is not a whisper.cpp ggml file (magic {magic:#x})")
    n_mel, n_fft = struct.unpack("<2i", f.read(8))
    filters = np.frombuffer(_exactly(f, 4 * n_mel * n_fft), "<f4").reshape(n_mel, n_fft)
    (n_vocab,) = struct.unpack("<i", f.read(4))
    vocab = []
    for _ in range(n_vocab):
        (length,) = struct.unpack("<i", f.read(4))
        vocab.append(_exactly(f, length))
    tensors = {}
    while header := f.read(12):
        ndim, length, kind = struct.unpack("<3i", header)
        shape = tuple(reversed(struct.unpack(f"<{ndim}i", f.read(4 * ndim))))
        name = _exactly(f, length).decode()
        size = tensor_bytes(TYPE_NAMES[kind], shape)
        if data:
            tensors[name] = (kind, shape, _exactly(f, size))
        else:
            f.seek(size, 1)
            tensors[name] = (kind, shape, b"")
    if not data and f.tell() > path.stat().st_size:
        raise ValueError(f"the tensor table runs {f.tell() - path.stat().st_size} bytes past "
                         f"the end of the file")
    return GGMLModel(tuple(hparams), filters, vocab, tensors)


def _exactly(f: BinaryIO, size: int) -> bytes:
    chunk = f.read(size)
    if len(chunk) != size:
        raise ValueError(f"the file ends {size - len(chunk)} bytes early")
    return chunk


def check_whisper_cpp_can_load(path: Path) -> GGMLModel:
    """The file's table (without weights) if whisper.cpp's loader can use it.

    Raises:
        ArtifactError: the file is cut short or not ggml, or its feed-forward width is not
            4 x d_model (whisper.cpp sizes the MLP so and would crash on it).
    """
    model = read_ggml(path, data=False)
    d_model = model.hparam("n_audio_state")
    mlp = model.tensors.get("encoder.blocks.0.mlp.0.weight")
    if mlp is None or mlp[1][0] != 4 * d_model:
        width = mlp[1][0] if mlp else "missing"
        raise ArtifactError(f"{path}: feed-forward width {width} is not 4 x d_model "
                            f"({4 * d_model}), which whisper.cpp assumes")
    return model


def decode_tensor(kind: int, shape: tuple[int, ...], data: bytes) -> np.ndarray:
    """A tensor of :func:`read_ggml` as float32 (q types dequantised with the ``gguf``
    package, the quantisers' own inverse)."""
    name = TYPE_NAMES[kind]
    if name in ("f32", "f16"):
        return np.frombuffer(data, "<f4" if name == "f32" else "<f2").astype(np.float32).reshape(shape)
    from gguf import GGMLQuantizationType
    from gguf.quants import dequantize

    raw = np.frombuffer(data, np.uint8).reshape(*shape[:-1], -1)
    return dequantize(raw, GGMLQuantizationType[name.upper()]).reshape(shape)
