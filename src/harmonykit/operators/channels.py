"""Operator channels, colour spaces and the reference retoucher (paper eq. 2).

Operator values ``(B, C, h, w)`` carry channel names and act in a colour space; the
retoucher (:func:`apply_operator_values`) applies them to an RGB image:

* ``lab`` space, channels from ``l_mul l_add a_mul a_add b_mul b_add``:
  ``out_c = in_c * c_mul + c_add`` on CIELAB ``L`` (0..100), ``a``, ``b`` (centred on 0).
  ``add`` values are in natural units: L units for ``l_add``, CIELAB units for ``a/b_add``.
* ``hls`` space, channels from ``h_mul h_add l_mul l_add s_mul s_add``: same rule on hue
  (degrees, result wrapped modulo 360), lightness and saturation (0..1, clamped).

A channel that is absent is the identity (``mul = 1``, ``add = 0``, :func:`identity_value`),
so ``lab_add`` models carry only ``l_add a_add b_add``. Masks predicted at a working size are
resized to the image with bilinear interpolation (``align_corners=False``) before being
applied (:meth:`harmonykit.operators.OperatorMasks.apply`).

:func:`apply_operator_values` is the differentiable reference used in training; the fast
full-resolution path (:mod:`harmonykit.operators.fast_apply`) computes the same maths.
"""

from __future__ import annotations

import torch
from torch import Tensor

from harmonykit.color import hls_to_rgb, lab_to_rgb, rgb_to_hls, rgb_to_lab

__all__ = [
    "SPACES",
    "CHANNEL_SETS",
    "CHANNEL_UNITS",
    "apply_operator_values",
    "identity_value",
]

#: colour space -> names of its three components, in order
SPACES: dict[str, tuple[str, str, str]] = {"lab": ("l", "a", "b"), "hls": ("h", "l", "s")}

#: named channel sets used by the model heads
CHANNEL_SETS: dict[str, tuple[str, ...]] = {
    "lab": ("l_mul", "l_add", "a_mul", "a_add", "b_mul", "b_add"),
    "lab_add": ("l_add", "a_add", "b_add"),
    "hls": ("h_mul", "h_add", "l_mul", "l_add", "s_mul", "s_add"),
    "hls_add": ("h_add", "l_add", "s_add"),
}

#: (space, channel) -> unit of the channel's values (and of an ``edit`` offset)
CHANNEL_UNITS: dict[tuple[str, str], str] = {
    **{("lab", f"{c}_mul"): "factor" for c in "lab"},
    **{("hls", f"{c}_mul"): "factor" for c in "hls"},
    ("lab", "l_add"): "L units (L is 0..100)",
    ("lab", "a_add"): "CIELAB a units",
    ("lab", "b_add"): "CIELAB b units",
    ("hls", "h_add"): "degrees",
    ("hls", "l_add"): "HLS lightness (0..1)",
    ("hls", "s_add"): "HLS saturation (0..1)",
}


def identity_value(channel: str) -> float:
    """The identity value of a channel: 1 for ``*_mul``, 0 for ``*_add``.

    >>> identity_value("l_mul"), identity_value("a_add")
    (1.0, 0.0)
    """
    return 1.0 if channel.endswith("_mul") else 0.0


def _to_space(rgb: Tensor, space: str) -> Tensor:
    return rgb_to_lab(rgb) if space == "lab" else rgb_to_hls(rgb)


def _from_space(x: Tensor, space: str) -> Tensor:
    if space == "lab":
        return lab_to_rgb(x, clip=True)
    hue, light, sat = x.unbind(-3)
    return hls_to_rgb(torch.stack([torch.remainder(hue, 360.0), light.clamp(0, 1), sat.clamp(0, 1)], -3))


def apply_operator_values(image: Tensor, values: Tensor, channels: tuple[str, ...], space: str) -> Tensor:
    """Apply operator values to an RGB image (the retoucher).

    Args:
        image: ``(B, 3, H, W)`` RGB in ``[0, 1]``.
        values: ``(B, C, H, W)`` operator values at the image's size.
        channels: names of the ``C`` channels (see :data:`CHANNEL_SETS`).
        space: ``"lab"`` or ``"hls"``.

    Returns:
        ``(B, 3, H, W)`` RGB in ``[0, 1]``.

    >>> img = torch.rand(1, 3, 4, 4, dtype=torch.float64)
    >>> ident = torch.tensor([1.0, 0.0] * 3, dtype=torch.float64).view(1, 6, 1, 1).expand(1, 6, 4, 4)
    >>> torch.allclose(apply_operator_values(img, ident, CHANNEL_SETS["lab"], "lab"), img, atol=1e-6)
    True
    """
    if space not in SPACES:
        raise ValueError(f"unknown operator space {space!r}, expected one of {sorted(SPACES)}")
    if image.dim() != 4 or image.shape[1] != 3:
        raise ValueError(f"expected image (B, 3, H, W), got {tuple(image.shape)}")
    if values.shape[1] != len(channels) or values.shape[-2:] != image.shape[-2:]:
        raise ValueError(
            f"operator values {tuple(values.shape)} do not match channels {channels} and image size {tuple(image.shape[-2:])}"
        )
    x = _to_space(image, space)
    index = {name: i for i, name in enumerate(channels)}
    comps = []
    for ci, comp in enumerate(SPACES[space]):
        c = x[:, ci : ci + 1]
        if f"{comp}_mul" in index:
            c = c * values[:, index[f"{comp}_mul"]].unsqueeze(1)
        if f"{comp}_add" in index:
            c = c + values[:, index[f"{comp}_add"]].unsqueeze(1)
        comps.append(c)
    return _from_space(torch.cat(comps, dim=1), space)
