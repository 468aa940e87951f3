"""Model registry: :data:`MODELS` and ``create_model(name, **kw)``.

A registered builder is a callable ``builder(**kwargs) -> HarmonizationModel``. The
built-in architectures are registered by :mod:`harmonykit.models.zoo`, which
:mod:`harmonykit.models` imports. Third-party models register with
``@register_model("name")`` (an alias of ``MODELS.register``).

:func:`create_model` is the one place that records a model's configuration: it sets
``model.config = {"name": name, "kwargs": kwargs}`` (the keyword arguments as given, the
builder's defaults are not expanded), which is what ``save_pretrained`` writes to
``config.json`` and ``load_model`` rebuilds from.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from harmonykit.registry import Registry

if TYPE_CHECKING:
    from torch import nn

# builders return a HarmonizationModel, typed here as an nn.Module: the registry sits below
# models.base (which imports it) and names no model class

__all__ = ["MODELS", "register_model", "create_model", "list_models", "is_model"]

#: harmonization models: name -> ``builder(**kwargs) -> HarmonizationModel``
MODELS: Registry[Callable[..., nn.Module]] = Registry("model")

#: decorator registering a model builder: ``@register_model("name")`` (``MODELS.register``)
register_model = MODELS.register


def list_models(pattern: str | None = None) -> list[str]:
    """Names of registered models, sorted, optionally filtered by ``fnmatch`` pattern.

    >>> list_models("om_unet*")
    ['om_unet', 'om_unet_small', 'om_unet_tiny']
    """
    return MODELS.list(pattern)


def is_model(name: object) -> bool:
    """True when ``name`` is a registered model name.

    >>> is_model("om_unet"), is_model("om_unet_huge")
    (True, False)
    """
    return name in MODELS


def create_model(name: str, **kwargs: Any) -> nn.Module:
    """Build a registered model and record ``model.config = {"name", "kwargs"}``.

    Raises:
        UnknownNameError: unknown ``name`` (a :class:`~harmonykit.errors.ConfigError`; the
            message lists the registered models).
        ValueError: invalid keyword arguments (raised by the builder).

    >>> m = create_model("om_unet_tiny", head="hls")
    >>> m.config
    {'name': 'om_unet_tiny', 'kwargs': {'head': 'hls'}}
    """
    model = MODELS.create(name, **kwargs)
    model.config = {"name": name, "kwargs": dict(kwargs)}
    return model
