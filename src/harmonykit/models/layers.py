"""Normalization and activation factories shared by the backbones and discriminators.

Layers are named by strings so that model configurations stay JSON-able (timm style), or
passed as callables for one-off experiments:

* :func:`get_norm_layer` ``(norm, num_channels) -> nn.Module`` where ``norm`` is a
  registered name (:func:`list_norms`), ``None`` / ``"none"`` (identity), or a callable
  ``f(num_channels, **kwargs) -> nn.Module`` (e.g. ``nn.BatchNorm2d``).
* :func:`get_act_layer` ``(act, **kwargs) -> nn.Module`` where ``act`` is a registered name
  (:func:`list_acts`), ``None`` / ``"none"``, a callable returning a module (e.g.
  ``nn.GELU``) or a module instance (deep-copied).

Built-in norm names: ``in`` (instance norm without affine parameters, as in the paper),
``in_affine``, ``bn``, ``gn`` (group norm, up to 32 groups), ``ln`` (one group: layer norm
over ``(C, H, W)``), ``none``; more with :func:`register_norm`. These are plain layers
``norm(x)``. The region-aware normalizations (``rain``, ``bain``, ``srin``), called as
``norm(x, mask, regions)``, live in :mod:`harmonykit.models.norms` with their own registry
(``create_norm``), since a network must pass them the mask.

Instance norm of a map with a single spatial element is degenerate (it returns zeros, and
PyTorch refuses it); :class:`InstanceNorm2d` leaves such maps unchanged instead, which
lets deep U-Nets run on inputs smaller than ``2 ** depth``.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable
from typing import Any

import torch  # noqa: F401  (doctests)
from torch import Tensor, nn

__all__ = [
    "InstanceNorm2d",
    "register_norm",
    "list_norms",
    "get_norm_layer",
    "register_act",
    "list_acts",
    "get_act_layer",
    "NormSpec",
    "ActSpec",
]

#: a norm given by name, by a callable ``f(num_channels, **kw) -> nn.Module``, or ``None``
NormSpec = str | Callable[..., nn.Module] | None
#: an activation given by name, by a callable ``f(**kw) -> nn.Module``, a module, or ``None``
ActSpec = str | Callable[..., nn.Module] | nn.Module | None

_NORMS: dict[str, Callable[..., nn.Module]] = {}
_ACTS: dict[str, Callable[..., nn.Module]] = {}


class InstanceNorm2d(nn.InstanceNorm2d):
    """Instance norm that passes ``(B, C, 1, 1)`` maps through unchanged.

    On a single spatial element instance normalization outputs zeros whatever the input
    (pix2pix therefore has no norm at its 1x1 bottleneck); this layer returns the input
    there instead of raising. Otherwise identical to :class:`torch.nn.InstanceNorm2d`.

    >>> norm = InstanceNorm2d(4)
    >>> x = torch.randn(2, 4, 1, 1)
    >>> bool(torch.equal(norm(x), x))
    True
    >>> y = norm(torch.randn(2, 4, 5, 5))
    >>> bool(y.mean(dim=(2, 3)).abs().max() < 1e-5)
    True
    """

    def forward(self, x: Tensor) -> Tensor:
        if x.dim() == 4 and x.shape[-1] * x.shape[-2] == 1:
            return x
        return super().forward(x)


# ---------------------------------------------------------------- normalization
def register_norm(
    name: str, *, overwrite: bool = False
) -> Callable[[Callable[..., nn.Module]], Callable[..., nn.Module]]:
    """Register a normalization builder ``f(num_channels, **kwargs) -> nn.Module`` as ``name``.

    Used as a decorator on a function or an ``nn.Module`` class::

        @register_norm("bn_no_stats")
        def bn_no_stats(num_channels: int) -> nn.Module:
            return nn.BatchNorm2d(num_channels, track_running_stats=False)
    """
    key = name.lower()

    def deco(fn: Callable[..., nn.Module]) -> Callable[..., nn.Module]:
        if key in _NORMS and _NORMS[key] is not fn and not overwrite:
            raise ValueError(f"norm {key!r} is already registered")
        _NORMS[key] = fn
        return fn

    return deco


def list_norms() -> list[str]:
    """Registered (plain) normalization names.

    >>> list_norms()
    ['bn', 'gn', 'identity', 'in', 'in_affine', 'ln', 'none']
    """
    return sorted(_NORMS)


def get_norm_layer(norm: NormSpec, num_channels: int, **kwargs: Any) -> nn.Module:
    """Build a normalization layer for ``num_channels`` feature maps ``(B, C, H, W)``.

    Args:
        norm: a registered name (case-insensitive), ``None`` / ``"none"`` for identity, or
            a callable ``f(num_channels, **kwargs) -> nn.Module``.
        num_channels: number of channels ``C`` (positive).
        kwargs: forwarded to the builder (e.g. ``groups=8`` for ``gn``).

    Raises:
        ValueError: unknown name or non-positive ``num_channels``.
        TypeError: ``norm`` is neither a string nor a callable.

    >>> norm = get_norm_layer("in", 8)
    >>> type(norm).__name__, norm.affine
    ('InstanceNorm2d', False)
    >>> get_norm_layer(None, 8)
    Identity()
    >>> type(get_norm_layer(nn.BatchNorm2d, 8)).__name__
    'BatchNorm2d'
    """
    if not isinstance(num_channels, int) or num_channels <= 0:
        raise ValueError(f"num_channels must be a positive int, got {num_channels!r}")
    if norm is None:
        return nn.Identity()
    if isinstance(norm, str):
        key = norm.lower()
        if key not in _NORMS:
            raise ValueError(
                f"unknown norm {norm!r}; expected one of {sorted(_NORMS)} or a callable"
            )
        return _NORMS[key](num_channels, **kwargs)
    if callable(norm):
        return norm(num_channels, **kwargs)
    raise TypeError(f"norm must be a name, a callable or None, got {type(norm).__name__}")


def _group_count(num_channels: int, groups: int) -> int:
    g = math.gcd(num_channels, max(1, groups))
    return max(1, g)


@register_norm("none")
@register_norm("identity")
def _identity_norm(num_channels: int, **kwargs: Any) -> nn.Module:
    return nn.Identity()


@register_norm("in")
def _instance_norm(num_channels: int, eps: float = 1e-5) -> nn.Module:
    return InstanceNorm2d(num_channels, eps=eps, affine=False)


@register_norm("in_affine")
def _instance_norm_affine(num_channels: int, eps: float = 1e-5) -> nn.Module:
    return InstanceNorm2d(num_channels, eps=eps, affine=True)


@register_norm("bn")
def _batch_norm(num_channels: int, **kwargs: Any) -> nn.Module:
    return nn.BatchNorm2d(num_channels, **kwargs)


@register_norm("gn")
def _group_norm(num_channels: int, groups: int = 32, eps: float = 1e-5) -> nn.Module:
    return nn.GroupNorm(_group_count(num_channels, groups), num_channels, eps=eps)


@register_norm("ln")
def _layer_norm(num_channels: int, eps: float = 1e-5) -> nn.Module:
    return nn.GroupNorm(1, num_channels, eps=eps)


# ------------------------------------------------------------------ activations
def register_act(
    name: str, *, overwrite: bool = False
) -> Callable[[Callable[..., nn.Module]], Callable[..., nn.Module]]:
    """Register an activation builder ``f(**kwargs) -> nn.Module`` as ``name``."""
    key = name.lower()

    def deco(fn: Callable[..., nn.Module]) -> Callable[..., nn.Module]:
        if key in _ACTS and _ACTS[key] is not fn and not overwrite:
            raise ValueError(f"activation {key!r} is already registered")
        _ACTS[key] = fn
        return fn

    return deco


def list_acts() -> list[str]:
    """Registered activation names."""
    return sorted(_ACTS)


def get_act_layer(act: ActSpec, **kwargs: Any) -> nn.Module:
    """Build an activation layer.

    Args:
        act: a registered name (case-insensitive; ``lrelu`` defaults to slope 0.2, the
            pix2pix encoder's), ``None`` / ``"none"`` for identity, a callable returning a
            module (e.g. ``nn.GELU``), or a module instance (returned as a deep copy).
        kwargs: forwarded to the builder (``negative_slope=0.1``, ``inplace=True``...).

    Raises:
        ValueError: unknown name.
        TypeError: unsupported type.

    >>> get_act_layer("lrelu")
    LeakyReLU(negative_slope=0.2)
    >>> get_act_layer(nn.GELU)
    GELU(approximate='none')
    """
    if act is None:
        return nn.Identity()
    if isinstance(act, nn.Module):
        return copy.deepcopy(act)
    if isinstance(act, str):
        key = act.lower()
        if key not in _ACTS:
            raise ValueError(
                f"unknown activation {act!r}; expected one of {sorted(_ACTS)} or a callable"
            )
        return _ACTS[key](**kwargs)
    if callable(act):
        return act(**kwargs)
    raise TypeError(f"act must be a name, a callable, a module or None, got {type(act).__name__}")


@register_act("none")
@register_act("identity")
def _identity_act() -> nn.Module:
    return nn.Identity()


@register_act("relu")
def _relu(inplace: bool = False) -> nn.Module:
    return nn.ReLU(inplace=inplace)


@register_act("lrelu")
@register_act("leaky_relu")
def _leaky_relu(negative_slope: float = 0.2, inplace: bool = False) -> nn.Module:
    return nn.LeakyReLU(negative_slope, inplace=inplace)


@register_act("gelu")
def _gelu(approximate: str = "none") -> nn.Module:
    return nn.GELU(approximate=approximate)


@register_act("silu")
@register_act("swish")
def _silu(inplace: bool = False) -> nn.Module:
    return nn.SiLU(inplace=inplace)


@register_act("elu")
def _elu(alpha: float = 1.0, inplace: bool = False) -> nn.Module:
    return nn.ELU(alpha, inplace=inplace)


@register_act("prelu")
def _prelu(num_parameters: int = 1, init: float = 0.25) -> nn.Module:
    return nn.PReLU(num_parameters, init)


@register_act("tanh")
def _tanh() -> nn.Module:
    return nn.Tanh()


@register_act("sigmoid")
def _sigmoid() -> nn.Module:
    return nn.Sigmoid()
