"""Normalization and activation factories shared by the backbones and discriminators.

Layers are named by strings so that model configurations stay JSON-able (timm style), or
passed as callables for one-off experiments:

* :func:`get_norm_layer` ``(norm, num_channels) -> nn.Module`` where ``norm`` is a name
  registered in :data:`NORMS` (case-insensitive), ``None`` / ``"none"`` (identity), or a
  callable ``f(num_channels, **kwargs) -> nn.Module`` (e.g. ``nn.BatchNorm2d``).
* :func:`get_act_layer` ``(act, **kwargs) -> nn.Module`` where ``act`` is a name registered
  in :data:`ACTS`, ``None`` / ``"none"``, a callable returning a module (e.g. ``nn.GELU``)
  or a module instance (deep-copied).

Built-in norm names: ``in`` (instance norm without affine parameters, as in the paper),
``in_affine``, ``bn``, ``gn`` (group norm, up to 32 groups), ``ln`` (one group: layer norm
over ``(C, H, W)``), ``none``; more with ``@register_norm(name)`` (``NORMS.register``).

>>> list_norms()
['bn', 'gn', 'identity', 'in', 'in_affine', 'ln', 'none']

These are plain layers ``norm(x)``. The region-aware normalizations (``in``, ``rain``,
``bain``, ``srin``), called as ``norm(x, mask, regions)``, are another registry,
:data:`harmonykit.models.norms.REGION_NORMS` (:func:`~harmonykit.models.norms.create_region_norm`),
since a network must pass them the mask; ``"in"`` names a layer in both.

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

from harmonykit.registry import Registry

__all__ = [
    "InstanceNorm2d",
    "NORMS",
    "ACTS",
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

#: plain normalization layers ``norm(x)``: name -> ``f(num_channels, **kwargs) -> nn.Module``
NORMS: Registry[Callable[..., nn.Module]] = Registry("norm", case_insensitive=True)
#: activations: name -> ``f(**kwargs) -> nn.Module``
ACTS: Registry[Callable[..., nn.Module]] = Registry("activation", case_insensitive=True)

#: ``@register_norm(name, overwrite=False)``: register a builder in :data:`NORMS`, e.g.
#: ``def bn_no_stats(num_channels): return nn.BatchNorm2d(num_channels, track_running_stats=False)``
register_norm = NORMS.register
#: sorted names of :data:`NORMS`
list_norms = NORMS.names
#: ``@register_act(name, overwrite=False)``: register a builder in :data:`ACTS`
register_act = ACTS.register
#: sorted names of :data:`ACTS`
list_acts = ACTS.names


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
def get_norm_layer(norm: NormSpec, num_channels: int, **kwargs: Any) -> nn.Module:
    """Build a normalization layer for ``num_channels`` feature maps ``(B, C, H, W)``.

    Args:
        norm: a registered name (case-insensitive), ``None`` / ``"none"`` for identity, or
            a callable ``f(num_channels, **kwargs) -> nn.Module``.
        num_channels: number of channels ``C`` (positive).
        kwargs: forwarded to the builder (e.g. ``groups=8`` for ``gn``).

    Raises:
        ValueError: unknown name (:class:`~harmonykit.registry.UnknownNameError`, listing
            the registered names) or non-positive ``num_channels``.
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
        return NORMS.create(norm, num_channels, **kwargs)
    if callable(norm):
        return norm(num_channels, **kwargs)
    raise TypeError(f"norm must be a name, a callable or None, got {type(norm).__name__}")


def _group_count(num_channels: int, groups: int) -> int:
    g = math.gcd(num_channels, max(1, groups))
    return max(1, g)


@NORMS.register("none")
@NORMS.register("identity")
def _identity_norm(num_channels: int, **kwargs: Any) -> nn.Module:
    return nn.Identity()


@NORMS.register("in")
def _instance_norm(num_channels: int, eps: float = 1e-5) -> nn.Module:
    return InstanceNorm2d(num_channels, eps=eps, affine=False)


@NORMS.register("in_affine")
def _instance_norm_affine(num_channels: int, eps: float = 1e-5) -> nn.Module:
    return InstanceNorm2d(num_channels, eps=eps, affine=True)


@NORMS.register("bn")
def _batch_norm(num_channels: int, **kwargs: Any) -> nn.Module:
    return nn.BatchNorm2d(num_channels, **kwargs)


@NORMS.register("gn")
def _group_norm(num_channels: int, groups: int = 32, eps: float = 1e-5) -> nn.Module:
    return nn.GroupNorm(_group_count(num_channels, groups), num_channels, eps=eps)


@NORMS.register("ln")
def _layer_norm(num_channels: int, eps: float = 1e-5) -> nn.Module:
    return nn.GroupNorm(1, num_channels, eps=eps)


# ------------------------------------------------------------------ activations
def get_act_layer(act: ActSpec, **kwargs: Any) -> nn.Module:
    """Build an activation layer.

    Args:
        act: a registered name (case-insensitive; ``lrelu`` defaults to slope 0.2, the
            pix2pix encoder's), ``None`` / ``"none"`` for identity, a callable returning a
            module (e.g. ``nn.GELU``), or a module instance (returned as a deep copy).
        kwargs: forwarded to the builder (``negative_slope=0.1``, ``inplace=True``...).

    Raises:
        ValueError: unknown name (:class:`~harmonykit.registry.UnknownNameError`).
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
        return ACTS.create(act, **kwargs)
    if callable(act):
        return act(**kwargs)
    raise TypeError(f"act must be a name, a callable, a module or None, got {type(act).__name__}")


@ACTS.register("none")
@ACTS.register("identity")
def _identity_act() -> nn.Module:
    return nn.Identity()


@ACTS.register("relu")
def _relu(inplace: bool = False) -> nn.Module:
    return nn.ReLU(inplace=inplace)


@ACTS.register("lrelu")
@ACTS.register("leaky_relu")
def _leaky_relu(negative_slope: float = 0.2, inplace: bool = False) -> nn.Module:
    return nn.LeakyReLU(negative_slope, inplace=inplace)


@ACTS.register("gelu")
def _gelu(approximate: str = "none") -> nn.Module:
    return nn.GELU(approximate=approximate)


@ACTS.register("silu")
@ACTS.register("swish")
def _silu(inplace: bool = False) -> nn.Module:
    return nn.SiLU(inplace=inplace)


@ACTS.register("elu")
def _elu(alpha: float = 1.0, inplace: bool = False) -> nn.Module:
    return nn.ELU(alpha, inplace=inplace)


@ACTS.register("prelu")
def _prelu(num_parameters: int = 1, init: float = 0.25) -> nn.Module:
    return nn.PReLU(num_parameters, init)


@ACTS.register("tanh")
def _tanh() -> nn.Module:
    return nn.Tanh()


@ACTS.register("sigmoid")
def _sigmoid() -> nn.Module:
    return nn.Sigmoid()
