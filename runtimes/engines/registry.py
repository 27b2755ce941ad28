"""Which runtime loads which artifact format.

Engines live in ``runtimes/engines/``, one module each, and register themselves with
``@register``; this module discovers them. Adding a runtime is adding one file there.
Engine modules import their framework lazily, so discovery costs nothing heavy.
"""

from __future__ import annotations

import importlib
import pkgutil
from functools import lru_cache
from pathlib import Path
from typing import TypeVar

from runtimes.base import WhisperRuntime
from runtimes.errors import ArtifactError

_REGISTRY: dict[str, type[WhisperRuntime]] = {}
R = TypeVar("R", bound=type[WhisperRuntime])


def register(cls: R) -> R:
    """Class decorator: make ``cls`` the runtime for artifacts of ``cls.format``."""
    _REGISTRY[cls.format] = cls
    return cls


@lru_cache(maxsize=1)
def _discover() -> None:
    from runtimes import engines

    for module in pkgutil.iter_modules(engines.__path__):
        importlib.import_module(f"{engines.__name__}.{module.name}")


def formats() -> list[str]:
    """Every artifact format some runtime can load, sorted."""
    _discover()
    return sorted(_REGISTRY)


def runtime_class(fmt: str) -> type[WhisperRuntime]:
    """The runtime for ``fmt``; ArtifactError listing the supported formats otherwise."""
    _discover()
    if fmt not in _REGISTRY:
        raise ArtifactError(
            f"no runtime for artifact format {fmt!r}; supported: {', '.join(formats())}"
        )
    return _REGISTRY[fmt]


def detect_format(model_dir: Path) -> str:
    """Format of a directory: from ``artifact.json`` if present, else by sniffing its files.

    Sniffing lets plain transformers checkpoints and faster-whisper directories load too.
    """
    from runtimes.artifacts.manifest import MANIFEST, read_manifest

    model_dir = Path(model_dir)
    if not model_dir.is_dir():
        raise ArtifactError(f"model directory not found: {model_dir}")
    if (model_dir / MANIFEST).is_file():
        return read_manifest(model_dir).format
    _discover()
    for fmt, cls in sorted(_REGISTRY.items()):
        if cls.sniff(model_dir):
            return fmt
    raise ArtifactError(
        f"{model_dir} is not a Whisper artifact or model directory "
        f"(no {MANIFEST}; not a transformers or CTranslate2 Whisper model)"
    )
