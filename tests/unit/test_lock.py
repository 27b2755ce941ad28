"""requirements.lock pins every dependency pyproject.toml asks for, at a version it accepts,
so scripts/setup.sh installs one known environment (regenerate with scripts/lock.sh)."""

from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[2]
# what scripts/setup.sh installs
EXTRAS = ("dev", "base", "onnx", "openvino", "serve", "ray", "ggml", "peers", "plots")


def _locked() -> dict[str, str]:
    pins = {}
    for line in (ROOT / "requirements.lock").read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            name, _, version = line.partition("==")
            assert version, f"requirements.lock line {line!r} is not an exact pin"
            pins[canonicalize_name(name)] = version
    return pins


def _required() -> list[Requirement]:
    tomllib = pytest.importorskip("tomllib")
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    extras = project["optional-dependencies"]
    return [Requirement(r) for r in project["dependencies"] + [r for e in EXTRAS for r in extras[e]]]


def test_every_requirement_is_pinned_at_an_accepted_version():
    pins = _locked()
    for requirement in _required():
        name = canonicalize_name(requirement.name)
        assert name in pins, f"{requirement.name} is in pyproject.toml but not in requirements.lock"
        version = pins[name].split("+")[0]  # torch's +cpu local label
        assert requirement.specifier.contains(version, prereleases=True), (
            f"requirements.lock pins {name}=={pins[name]}, pyproject.toml wants {requirement}")


def test_the_lock_pins_what_changes_numerics():
    pins = _locked()
    assert {"torch", "numpy", "av", "scipy", "pip"} <= set(pins)
    assert pins["torch"].endswith("+cpu")  # never the multi-GB CUDA build
