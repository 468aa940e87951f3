"""Model registry: ``register_model`` decorator and ``create_model(name, **kw)``.

A registered builder is a callable returning a :class:`~harmonykit.models.base.HarmonizationModel`.
``create_model`` records the name and keyword arguments on the model (``model.config``),
which is what ``save_pretrained`` writes and ``from_pretrained`` rebuilds from.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

__all__ = ["register_model", "create_model", "list_models", "is_model"]

_REGISTRY: dict[str, Callable[..., Any]] = {}


def register_model(name: str | None = None) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Register a model builder under ``name`` (default: the function's name)."""

    def deco(fn: Callable[..., Any]) -> Callable[..., Any]:
        key = name or fn.__name__
        if key in _REGISTRY and _REGISTRY[key] is not fn:
            raise ValueError(f"model {key!r} is already registered")
        _REGISTRY[key] = fn
        return fn

    return deco


def _ensure_builtin() -> None:
    # importing the architectures module registers the built-in models
    import harmonykit.models.zoo  # noqa: F401


def list_models(pattern: str | None = None) -> list[str]:
    """Names of registered models, optionally filtered by ``fnmatch`` pattern."""
    import fnmatch

    _ensure_builtin()
    names = sorted(_REGISTRY)
    return [n for n in names if pattern is None or fnmatch.fnmatch(n, pattern)]


def is_model(name: str) -> bool:
    _ensure_builtin()
    return name in _REGISTRY


def create_model(name: str, **kwargs: Any):
    """Build a registered model.

    >>> m = create_model("om_unet_tiny")
    >>> m.config["name"]
    'om_unet_tiny'
    """
    _ensure_builtin()
    if name not in _REGISTRY:
        from harmonykit.errors import ConfigError

        raise ConfigError(f"unknown model {name!r}; registered models: {', '.join(sorted(_REGISTRY))}")
    model = _REGISTRY[name](**kwargs)
    model.config = {"name": name, "kwargs": dict(kwargs)}
    return model
