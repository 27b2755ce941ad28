"""Which export targets exist. Each module in ``exporters/targets/`` registers its class;
the CLI's ``--to`` choices, the bench matrix and the tests enumerate this registry."""

from __future__ import annotations

import importlib
import pkgutil
from functools import lru_cache

from exporters.targets.base import Target
from runtimes.errors import OptionError

_TARGETS: dict[str, Target] = {}


def register(cls: type[Target]) -> type[Target]:
    """Class decorator: make an instance of ``cls`` the target called ``cls.name``."""
    _TARGETS[cls.name] = cls()
    return cls


@lru_cache(maxsize=1)
def _discover() -> None:
    from exporters import targets

    for module in pkgutil.iter_modules(targets.__path__):
        if module.name != "base":
            importlib.import_module(f"{targets.__name__}.{module.name}")


def names() -> list[str]:
    """Every registered target name, sorted."""
    _discover()
    return sorted(_TARGETS)


def get(name: str) -> Target:
    """The target called ``name``; OptionError listing the available ones otherwise."""
    _discover()
    if name not in _TARGETS:
        raise OptionError(f"unknown target {name!r}; available: {', '.join(names())}")
    return _TARGETS[name]
