"""whisper.cpp's decoder logits, teacher-forced, through its C API (``ctypes``).

Why: pywhispercpp's bindings hand back one float where whisper.cpp returns the logits
(``whisper_get_logits``, and the logits-filter callback alike), and whisper.cpp exposes no
encoder output, so without this a ggml file could be judged on its greedy tokens only. A
random model's tokens leave PyTorch's within a few steps under 4- and 5-bit weights even
when the file is right, and a flip at one step says nothing about the rest; the logits at
every step of one token path say how far the whole computation is from the reference.

The library is the ``libwhisper`` that pywhispercpp's wheel ships (the one the runtime
drives). Its context is loaded with flash attention off or on as asked, through
``whisper_init_from_file_with_params``, whose parameters struct is passed by value: its
layout in whisper.cpp 1.8 (48 bytes) is checked against ``whisper_context_default_params``
before use.
"""

from __future__ import annotations

import ctypes
from pathlib import Path

import numpy as np

from runtimes.errors import ArtifactError, OptionError

#: whisper_context_params in whisper.cpp 1.8: use_gpu (bool, byte 0), flash_attn (bool,
#: byte 1), gpu_device, dtw_token_timestamps, dtw_aheads_preset, dtw_n_top, dtw_aheads
#: {n_heads, heads}, dtw_mem_size (size_t, bytes 40-47).
PARAMS_SIZE = 48
USE_GPU, FLASH_ATTN, DTW_N_TOP, DTW_MEM_SIZE = 0, 1, 16, 40


class _Params(ctypes.Structure):
    """The parameters struct as raw bytes (a struct over 16 bytes is passed in memory on
    x86-64, whatever its fields, so bytes of the right size pass as the struct does)."""

    _fields_ = [("raw", ctypes.c_ubyte * PARAMS_SIZE)]


def _library() -> ctypes.CDLL:
    import _pywhispercpp

    here = Path(_pywhispercpp.__file__).parent
    for name in ("libwhisper.so.1", "libwhisper.so", "libwhisper.dylib"):
        if (here / name).is_file():
            lib = ctypes.CDLL(str(here / name))
            break
    else:
        raise OptionError(f"whisper.cpp's library (libwhisper) is not beside pywhispercpp in "
                          f"{here}: its logits cannot be read")
    lib.whisper_context_default_params_by_ref.restype = ctypes.c_void_p
    lib.whisper_init_from_file_with_params.restype = ctypes.c_void_p
    lib.whisper_init_from_file_with_params.argtypes = [ctypes.c_char_p, _Params]
    lib.whisper_set_mel.argtypes = [ctypes.c_void_p, ctypes.POINTER(ctypes.c_float),
                                    ctypes.c_int, ctypes.c_int]
    lib.whisper_encode.argtypes = [ctypes.c_void_p, ctypes.c_int, ctypes.c_int]
    lib.whisper_decode.argtypes = [ctypes.c_void_p, ctypes.POINTER(ctypes.c_int32),
                                   ctypes.c_int, ctypes.c_int, ctypes.c_int]
    lib.whisper_get_logits.restype = ctypes.POINTER(ctypes.c_float)
    lib.whisper_get_logits.argtypes = [ctypes.c_void_p]
    lib.whisper_n_vocab.argtypes = [ctypes.c_void_p]
    lib.whisper_free.argtypes = [ctypes.c_void_p]
    return lib


def _params(lib: ctypes.CDLL, flash_attention: bool) -> _Params:
    """The default parameters, CPU only, flash attention as asked; refused if the bytes are
    not the 1.8 layout's defaults (a changed struct would be read wrong)."""
    defaults = ctypes.string_at(lib.whisper_context_default_params_by_ref(), PARAMS_SIZE)
    n_top = int.from_bytes(defaults[DTW_N_TOP:DTW_N_TOP + 4], "little", signed=True)
    memory = int.from_bytes(defaults[DTW_MEM_SIZE:DTW_MEM_SIZE + 8], "little")
    if defaults[USE_GPU] not in (0, 1) or defaults[FLASH_ATTN] not in (0, 1) or n_top != -1 \
            or memory != 128 << 20:
        raise OptionError("this whisper.cpp's context parameters are not laid out as in "
                          "1.8: its logits cannot be read here")
    params = _Params()
    ctypes.memmove(ctypes.addressof(params), defaults, PARAMS_SIZE)
    params.raw[USE_GPU], params.raw[FLASH_ATTN] = 0, int(flash_attention)
    return params


class WhisperCppLogits:
    """One whisper.cpp context for teacher-forced decoder logits (a context of its own:
    the runtime's context stays as ``whisper_full`` left it)."""

    def __init__(self, path: Path, threads: int, flash_attention: bool) -> None:
        self._lib = lib = _library()
        self._threads = threads
        self._ctx = lib.whisper_init_from_file_with_params(
            str(path).encode(), _params(lib, flash_attention))
        if not self._ctx:
            raise ArtifactError(f"whisper.cpp cannot load {path}")

    def logits(self, features: np.ndarray, prompt: list[int], tokens: list[int]) -> np.ndarray:
        """(len(tokens) + 1, vocab) float32: row i is the distribution after the prompt and
        ``tokens[:i]`` (row 0 scores the first generated token), as PyTorch's
        ``teacher_forced_logits`` from the prompt's last position on."""
        lib, ctx = self._lib, self._ctx
        n_mels, frames = features.shape
        mel = np.ascontiguousarray(features, np.float32)
        if lib.whisper_set_mel(ctx, mel.ctypes.data_as(ctypes.POINTER(ctypes.c_float)),
                               frames, n_mels) != 0 or lib.whisper_encode(ctx, 0, self._threads):
            raise ArtifactError(f"whisper.cpp could not encode a log-mel of {n_mels} x {frames}")
        vocab = lib.whisper_n_vocab(ctx)
        rows, past = [], 0
        for chunk in [prompt] + [[t] for t in tokens]:
            ids = (ctypes.c_int32 * len(chunk))(*chunk)
            if lib.whisper_decode(ctx, ids, len(chunk), past, self._threads) != 0:
                raise ArtifactError("whisper.cpp failed to decode a token")
            past += len(chunk)
            # one row per token decoded; the last scores the next token
            found = np.ctypeslib.as_array(lib.whisper_get_logits(ctx), (len(chunk), vocab))
            rows.append(found[-1].copy())
        return np.stack(rows)

    def close(self) -> None:
        if getattr(self, "_ctx", None):
            self._lib.whisper_free(self._ctx)
            self._ctx = None

    def __enter__(self) -> WhisperCppLogits:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
