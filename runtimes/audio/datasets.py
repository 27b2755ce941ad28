"""Sets of audio files: a manifest TSV with references, or a folder of audio files.

The benchmark measures on them and an export calibrates on them, so they live with the
runtimes, the lowest layer both import. The manifest format is the one of
the project's speech data (``shared/data/speech/manifest.tsv`` beside a checkout):
with at least the columns ``id``, ``path`` (relative to the manifest) and ``reference``;
``language``, ``subset`` and ``duration_s`` are used when present.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

from runtimes.errors import ToolkitError

REQUIRED_COLUMNS = ("id", "path", "reference")
AUDIO_SUFFIXES = (".wav", ".flac", ".mp3", ".ogg", ".opus", ".m4a", ".webm")


class DatasetError(ToolkitError):
    """The manifest or audio folder cannot be used; the message names what is wrong."""


@dataclass(frozen=True)
class Clip:
    """One utterance: its audio file and (if known) its reference transcript."""

    id: str
    path: Path
    reference: str | None
    language: str = "en"
    subset: str = ""


def _read_tsv(manifest: Path) -> list[dict[str, str]]:
    try:
        with open(manifest, newline="", encoding="utf-8") as f:
            reader = csv.DictReader(f, delimiter="\t", quoting=csv.QUOTE_NONE)
            missing = [c for c in REQUIRED_COLUMNS if c not in (reader.fieldnames or [])]
            if missing:
                raise DatasetError(
                    f"manifest {manifest} lacks column(s) {', '.join(missing)}; required: "
                    f"{', '.join(REQUIRED_COLUMNS)} (tab-separated, with a header row)"
                )
            rows = list(reader)
    except UnicodeDecodeError as exc:
        raise DatasetError(f"manifest {manifest} is not UTF-8 text ({exc})") from exc
    for line, row in enumerate(rows, start=2):
        if any(row.get(c) in (None, "") for c in ("id", "path")) or row.get("reference") is None:
            raise DatasetError(f"manifest {manifest} line {line} has fewer fields than its "
                               f"header (id, path and reference are required on every row)")
    if not rows:
        raise DatasetError(f"manifest {manifest} lists no clips (only a header)")
    return rows


def from_manifest(manifest: Path, subset: str | None = None, limit: int | None = None) -> list[Clip]:
    """Clips of a manifest TSV, optionally one subset and the first ``limit`` clips.

    Raises:
        DatasetError: missing columns, an unknown subset, or audio files that do not exist.
    """
    rows = _read_tsv(manifest)
    if subset is not None:
        subsets = sorted({r.get("subset", "") for r in rows})
        rows = [r for r in rows if r.get("subset") == subset]
        if not rows:
            raise DatasetError(f"subset {subset!r} not in {manifest}; available: {', '.join(subsets)}")
    clips = [
        Clip(r["id"], manifest.parent / r["path"], r["reference"],
             r.get("language") or "en", r.get("subset") or "")
        for r in rows[:limit]
    ]
    missing = [str(c.path) for c in clips if not c.path.is_file()]
    if missing:
        raise DatasetError(
            f"{len(missing)} audio file(s) listed in {manifest} do not exist, e.g. {missing[0]}"
        )
    return clips


def from_folder(folder: Path, limit: int | None = None) -> list[Clip]:
    """Every audio file in a folder (sorted), without references: speed figures only."""
    files = sorted(p for p in folder.iterdir() if p.suffix.lower() in AUDIO_SUFFIXES)
    if not files:
        raise DatasetError(f"no audio files ({', '.join(AUDIO_SUFFIXES)}) in {folder}")
    return [Clip(p.stem, p, None) for p in files[:limit]]


def load_clips(source: Path, subset: str | None = None, limit: int | None = None) -> list[Clip]:
    """A manifest TSV or an audio folder, whichever ``source`` is."""
    if source.is_dir():
        return from_folder(source, limit)
    if not source.is_file():
        raise DatasetError(f"manifest not found: {source}")
    return from_manifest(source, subset, limit)
