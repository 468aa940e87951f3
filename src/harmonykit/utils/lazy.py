"""Lazy package attributes (PEP 562): a package names its public objects and the submodule
each lives in; the submodule is imported on first use (so, e.g., ``harmonykit.inference``
does not import PyTorch until a name that needs it is used)."""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from typing import Any

__all__ = ["lazy_getattr"]


def lazy_getattr(package: str, names: Mapping[str, str], namespace: dict[str, Any]) -> Callable[[str], Any]:
    """A module ``__getattr__`` for ``package``: ``names`` maps a public name to the
    submodule that defines it; the value is cached in ``namespace`` (the package's globals).

    >>> ns: dict = {}
    >>> get = lazy_getattr("harmonykit", {"lazy_getattr": "utils.lazy"}, ns)
    >>> get("lazy_getattr") is lazy_getattr and "lazy_getattr" in ns
    True
    """

    def __getattr__(name: str) -> Any:
        module = names.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(f"{package}.{module}"), name)
        namespace[name] = value
        return value

    return __getattr__
