"""``exporters.WhisperModel``: faster-whisper's constructor with a model name, exported on
first use.

faster-whisper users write ``WhisperModel("tiny.en")`` and it downloads a converted model.
Here a name (or any source ``whisper-exporters export --model`` takes) is exported once to
an artifact under ``download_root`` (default: ``~/.cache/whisper-exporters``), with the
export's checksums and parity check, and loaded from there on every later call. The
loading class is ``runtimes.WhisperModel``; this module lives in ``exporters`` because
``runtimes`` must not depend on the exporters (a deployment ships ``runtimes`` alone).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from runtimes.model import WhisperModel as LoadedModel

#: faster-whisper's model names that are a hub id of OpenAI's checkpoints.
SIZES = ("tiny", "tiny.en", "base", "base.en", "small", "small.en", "medium", "medium.en",
         "large-v1", "large-v2", "large-v3", "large-v3-turbo", "turbo")


def source_of(name: str) -> str:
    """The export source for a faster-whisper model name: the bundled copy where there is
    one, OpenAI's hub id for the other sizes, else ``name`` itself (a directory, a hub id,
    or ``bundled:...``)."""
    from exporters.sources import BUNDLED, BUNDLED_PREFIX

    if name in BUNDLED:
        return BUNDLED_PREFIX + name
    if name in SIZES:
        return f"openai/whisper-{'large-v3-turbo' if name == 'turbo' else name}"
    return name


def artifact_for(name: str, target: str = "ctranslate2", compute_type: str = "default",
                 device: str = "cpu", download_root: str | Path | None = None,
                 log=lambda line: print(line, file=sys.stderr, flush=True)) -> Path:
    """The artifact directory for ``name``, exported there first if it is not yet.

    ``compute_type`` "default"/"auto" exports fp32 (faster-whisper's "default" keeps the
    model's own precision); another value is the export precision (e.g. int8).
    """
    from exporters.api import export
    from exporters.options import ExportOptions

    precision = None if compute_type in ("default", "auto") else compute_type
    root = Path(download_root or os.environ.get("WHISPER_EXPORTERS_CACHE",
                                                Path.home() / ".cache" / "whisper-exporters"))
    label = f"{name.replace('/', '--').replace(':', '-')}-{target}-{precision or 'fp32'}-{device}"
    out = root / label
    if (out / "artifact.json").is_file():
        return out
    log(f"exporting {name} to {target} ({precision or 'fp32'}) in {out} (once; later loads "
        f"reuse it)")
    export(source_of(name), ExportOptions(target, precision, device), out, log=log)
    return out


class WhisperModel(LoadedModel):
    """``runtimes.WhisperModel`` that also takes a model name, exporting it on first use
    (to ``target``, default CTranslate2, in ``compute_type``)."""

    def __init__(self, model_size_or_path: str | Path, device: str = "auto",
                 device_index: int | list[int] = 0, compute_type: str = "default",
                 cpu_threads: int = 0, num_workers: int = 1, download_root: str | None = None,
                 local_files_only: bool = False, files: dict | None = None,
                 revision: str | None = None, use_auth_token: str | bool | None = None,
                 target: str = "ctranslate2", **model_kwargs) -> None:
        from runtimes.model_options import resolve_device

        path = Path(model_size_or_path)
        if not path.is_dir():
            path = artifact_for(str(model_size_or_path), target, compute_type,
                                resolve_device(device), download_root)
            compute_type = "default"  # the artifact is in it
        super().__init__(path, device, device_index, compute_type, cpu_threads, num_workers,
                         download_root, local_files_only, files, revision, use_auth_token,
                         **model_kwargs)
