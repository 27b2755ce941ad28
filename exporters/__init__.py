"""Export Whisper checkpoints to deployment artifacts for many inference runtimes.

The front door is ``exporters.export(model, ExportOptions(...), out)``, as ``runtimes.load``
is the runtimes'. Nothing heavy is imported here: ``import exporters`` must stay cheap so
that runtimes and the CLI start fast and a missing optional runtime costs nothing until it
is used; ``export`` and ``ExportOptions`` are loaded on first use.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from exporters.api import export
    from exporters.model import WhisperModel
    from exporters.options import ExportOptions

__version__ = "0.1.0"
__all__ = ["ExportOptions", "WhisperModel", "export"]


def __getattr__(name: str) -> Any:
    """``exporters.export``, ``ExportOptions`` and ``WhisperModel``, imported when first
    used."""
    if name == "export":
        from exporters.api import export

        return export
    if name == "ExportOptions":
        from exporters.options import ExportOptions

        return ExportOptions
    if name == "WhisperModel":
        from exporters.model import WhisperModel

        return WhisperModel
    raise AttributeError(f"module 'exporters' has no attribute {name!r}")
