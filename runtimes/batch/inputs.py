"""What a batch job transcribes: files, folders, glob patterns and manifest TSVs, as one
sorted list of absolute paths (the key a rerun uses to skip finished files)."""

from __future__ import annotations

import glob
from pathlib import Path

from runtimes.audio.datasets import AUDIO_SUFFIXES, from_manifest
from runtimes.errors import OptionError

GLOB_CHARS = "*?["


def list_inputs(inputs: list[str], subsets: list[str] | None = None) -> list[Path]:
    """Every audio file the inputs name, each once, sorted.

    A folder gives its audio files (by suffix, recursively); a ``.tsv`` file is a manifest
    (its ``path`` column; with ``subsets``, the rows of those subsets); a pattern with
    ``*``, ``?`` or ``[`` is expanded (``**`` recurses); any other file is taken as audio
    whatever its name, so a corrupt one is reported by the job rather than skipped here.

    Raises:
        OptionError: an input that matches nothing, or a subset without a manifest.
    """
    found: set[Path] = set()
    manifests = 0
    for item in inputs:
        paths, is_manifest = _expand(item, subsets)
        manifests += is_manifest
        if not paths:
            raise OptionError(f"input {item!r} matches no audio file (accepted: audio files, "
                              f"folders of {', '.join(AUDIO_SUFFIXES)} files, glob patterns, "
                              f"manifest .tsv files)")
        found.update(p.resolve() for p in paths)
    if subsets and not manifests:
        raise OptionError(f"--subset {' '.join(subsets)} needs a manifest .tsv among the inputs")
    return sorted(found)


def _expand(item: str, subsets: list[str] | None) -> tuple[list[Path], bool]:
    path = Path(item)
    if path.is_dir():
        return [p for p in path.rglob("*") if p.suffix.lower() in AUDIO_SUFFIXES
                and p.is_file()], False
    if path.is_file() and path.suffix.lower() == ".tsv":
        return [clip.path for subset in subsets or [None]
                for clip in from_manifest(path, subset)], True
    if path.is_file():
        return [path], False
    if any(c in item for c in GLOB_CHARS):
        return [Path(p) for p in glob.glob(item, recursive=True) if Path(p).is_file()], False
    return [], False
