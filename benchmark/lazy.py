"""Package faces whose names load on first use (PEP 562), so importing a package stays light.

A package lists ``{name: submodule}`` and sets ``__getattr__ = lazy.attributes(__name__, TABLE)``:
``package.name`` then imports ``package.submodule`` the first time it is asked for and keeps
the value in the package's namespace.
"""

from __future__ import annotations

import importlib
import sys


def attributes(package: str, table: dict[str, str]):
    """A module ``__getattr__`` that imports ``package.<table[name]>`` for ``name``."""

    def __getattr__(name: str):
        if name in table:
            value = getattr(importlib.import_module(f".{table[name]}", package), name)
            setattr(sys.modules[package], name, value)
            return value
        raise AttributeError(f"module {package!r} has no attribute {name!r}")

    return __getattr__
