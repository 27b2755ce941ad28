"""Where an export is written: the output checks, the temp directory beside it, the atomic
swap into place, and the leftovers of killed exports.

Kept apart from ``exporters.api`` because it is about the user's files, not the model: an
existing output that is not an artifact is never replaced, and whatever happens, nothing
half-written is left at the output path.
"""

from __future__ import annotations

import glob
import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path

from exporters.errors import ExportError, OutputExistsError
from runtimes.artifacts.manifest import MANIFEST, read_manifest
from runtimes.errors import ToolkitError


def make_temp(output: Path) -> Path:
    """An empty directory beside ``output`` (same file system, so the final move is a
    rename), named with this process's id so a later export can tell it was left behind."""
    try:
        output.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ExportError(f"cannot create the output's folder {output.parent}: {exc}") from exc
    try:
        tmp = Path(tempfile.mkdtemp(prefix=f".{output.name}.partial-{os.getpid()}-",
                                    dir=output.parent))
    except OSError as exc:  # a read-only folder, no space left for even a directory
        raise ExportError(f"cannot write in {output.parent}: {exc.strerror or exc}") from exc
    tmp.chmod(0o755)  # mkdtemp makes it private; the artifact is meant to be shared
    return tmp


def check_output(output: Path, force: bool) -> None:
    """Before any work: an existing output is refused without ``force``, and with it only an
    artifact (a valid manifest) or an empty directory may be replaced, never a user's data."""
    if not output.exists():
        return
    if not force:
        raise OutputExistsError(f"output directory {output} exists; pass --force to replace it")
    if output.is_dir() and not any(output.iterdir()):
        return
    try:
        read_manifest(output)
    except ToolkitError:
        raise OutputExistsError(
            f"--force replaces artifacts only, and {output} is not one (no valid "
            f"{MANIFEST}); choose another -o or remove it yourself") from None


def replace_output(tmp: Path, output: Path, force: bool) -> None:
    """Move ``tmp`` to ``output``. Without ``force`` the rename itself refuses an output
    that appeared meanwhile (another export to the same -o), so nothing is overwritten; with
    it, the existing artifact is checked again and swapped out."""
    if not force:
        try:
            os.rename(tmp, output)  # fails if output is now a file or a non-empty directory
        except OSError:
            raise OutputExistsError(f"output directory {output} appeared while exporting "
                                    f"(another export to it?); nothing replaced") from None
        return
    check_output(output, force)
    old = None
    if output.exists():
        old = output.with_name(f".{output.name}.old-{os.getpid()}")
        os.replace(output, old)
    os.replace(tmp, output)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def remove_stale(output: Path, log: Callable[[str], None]) -> None:
    """Partial and swapped-out directories that exports to ``output`` left when they were
    killed (SIGKILL leaves them): removed, and said so. Each name carries its export's
    process id, so one still running is left alone."""
    for prefix in (f".{output.name}.partial-", f".{output.name}.compressed-",
                   f".{output.name}.old-"):
        for stale in output.parent.glob(f"{glob.escape(prefix)}*"):
            pid = stale.name[len(prefix):].split("-")[0]
            if stale.is_dir() and not _alive(pid):
                shutil.rmtree(stale, ignore_errors=True)
                log(f"removed {stale}, left by an export that was killed")


def _alive(pid: str) -> bool:
    """Whether process ``pid`` (a directory name's field) still runs; a field that is no
    number (names from before the pid was added) counts as dead."""
    if not pid.isdigit():
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process: alive
        return True
    return int(pid) != 0
