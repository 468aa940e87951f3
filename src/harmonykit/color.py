"""Differentiable colour-space conversions on tensors ``(*, 3, H, W)``.

Value ranges used throughout harmonykit:

* RGB: sRGB, float in ``[0, 1]``.
* CIELAB (D65, 2 degree observer, same constants as scikit-image): ``L`` in ``[0, 100]``,
  ``a`` and ``b`` roughly in ``[-128, 127]`` and centred on 0.
* HLS: ``H`` in degrees ``[0, 360)``, ``L`` and ``S`` in ``[0, 1]`` (same definition as
  :func:`colorsys.rgb_to_hls`, with hue scaled by 360).

Each conversion is a function plus a thin :class:`torch.nn.Module`.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

__all__ = [
    "EPS_LAB",
    "KAPPA",
    "WHITE_D65",
    "XYZ_FROM_RGB",
    "linear_to_srgb",
    "srgb_to_linear",
    "rgb_to_lab",
    "lab_to_rgb",
    "rgb_to_hls",
    "hls_to_rgb",
    "RgbToLab",
    "LabToRgb",
    "RgbToHls",
    "HlsToRgb",
]

# sRGB (linear) -> XYZ, D65; identical to skimage.color.colorconv.xyz_from_rgb.
XYZ_FROM_RGB = (
    (0.412453, 0.357580, 0.180423),
    (0.212671, 0.715160, 0.072169),
    (0.019334, 0.119193, 0.950227),
)
WHITE_D65 = (0.95047, 1.0, 1.08883)
EPS_LAB = 0.008856
KAPPA = 7.787


def _check_image(x: Tensor, name: str = "input") -> None:
    if not isinstance(x, Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(x).__name__}")
    if x.dim() < 3 or x.shape[-3] != 3:
        raise ValueError(f"expected {name} of shape (*, 3, H, W), got {tuple(x.shape)}")
    if not x.is_floating_point():
        raise TypeError(f"expected a floating point {name}, got {x.dtype}")


def _matrix(values: tuple[tuple[float, ...], ...], like: Tensor) -> Tensor:
    return torch.tensor(values, dtype=like.dtype, device=like.device)


def _apply_matrix(m: Tensor, x: Tensor) -> Tensor:
    # x: (*, 3, H, W); m: (3, 3) -> einsum over the channel axis
    return torch.einsum("ij,...jhw->...ihw", m, x)


def srgb_to_linear(c: Tensor) -> Tensor:
    low = c / 12.92
    high = ((c.clamp(min=0.04045) + 0.055) / 1.055) ** 2.4
    return torch.where(c > 0.04045, high, low)


def linear_to_srgb(c: Tensor) -> Tensor:
    low = c * 12.92
    high = 1.055 * c.clamp(min=0.0031308) ** (1.0 / 2.4) - 0.055
    return torch.where(c > 0.0031308, high, low)


def rgb_to_lab(rgb: Tensor) -> Tensor:
    r"""Convert sRGB in ``[0, 1]`` to CIELAB (D65).

    Args:
        rgb: tensor ``(*, 3, H, W)``, sRGB in ``[0, 1]``.

    Returns:
        tensor ``(*, 3, H, W)``: ``L`` in ``[0, 100]``, ``a``/``b`` centred on 0.

    >>> x = torch.ones(1, 3, 2, 2)
    >>> lab = rgb_to_lab(x)
    >>> [round(v, 2) + 0.0 for v in lab[0, :, 0, 0].tolist()]
    [100.0, 0.0, 0.0]
    """
    _check_image(rgb, "rgb")
    lin = srgb_to_linear(rgb)
    xyz = _apply_matrix(_matrix(XYZ_FROM_RGB, rgb), lin)
    white = torch.tensor(WHITE_D65, dtype=rgb.dtype, device=rgb.device).view(3, 1, 1)
    t = xyz / white
    f = torch.where(
        t > EPS_LAB, t.clamp(min=EPS_LAB) ** (1.0 / 3.0), KAPPA * t + 16.0 / 116.0
    )
    fx, fy, fz = f.unbind(-3)
    lum = 116.0 * fy - 16.0
    a = 500.0 * (fx - fy)
    b = 200.0 * (fy - fz)
    return torch.stack([lum, a, b], dim=-3)


def lab_to_rgb(lab: Tensor, clip: bool = True) -> Tensor:
    r"""Convert CIELAB (D65) to sRGB.

    Args:
        lab: tensor ``(*, 3, H, W)`` with ``L`` in ``[0, 100]`` and ``a``/``b`` centred on 0.
        clip: clamp the result to ``[0, 1]`` (out-of-gamut colours are clipped).

    Returns:
        tensor ``(*, 3, H, W)``, sRGB.

    >>> x = torch.rand(2, 3, 4, 4, dtype=torch.float64)
    >>> torch.allclose(lab_to_rgb(rgb_to_lab(x)), x, atol=1e-6)
    True
    """
    _check_image(lab, "lab")
    lum, a, b = lab.unbind(-3)
    fy = (lum + 16.0) / 116.0
    fx = a / 500.0 + fy
    fz = fy - b / 200.0
    f = torch.stack([fx, fy, fz], dim=-3)
    f3 = f.clamp(min=0.0) ** 3
    t = torch.where(f3 > EPS_LAB, f3, (f - 16.0 / 116.0) / KAPPA)
    white = torch.tensor(WHITE_D65, dtype=lab.dtype, device=lab.device).view(3, 1, 1)
    xyz = t * white
    rgb_from_xyz = torch.linalg.inv(_matrix(XYZ_FROM_RGB, lab).double()).to(lab.dtype)
    lin = _apply_matrix(rgb_from_xyz, xyz)
    rgb = linear_to_srgb(lin)
    return rgb.clamp(0.0, 1.0) if clip else rgb


def rgb_to_hls(rgb: Tensor, eps: float = 1e-8) -> Tensor:
    r"""Convert RGB in ``[0, 1]`` to HLS.

    Args:
        rgb: tensor ``(*, 3, H, W)`` in ``[0, 1]``.
        eps: guards the divisions for grey pixels (where hue and saturation are 0).

    Returns:
        tensor ``(*, 3, H, W)``: hue in degrees ``[0, 360)``, lightness and saturation in
        ``[0, 1]``.

    >>> red = torch.tensor([1.0, 0.0, 0.0]).view(1, 3, 1, 1)
    >>> rgb_to_hls(red).flatten().tolist()
    [0.0, 0.5, 1.0]
    """
    _check_image(rgb, "rgb")
    r, g, b = rgb.unbind(-3)
    maxc, argmax = rgb.max(dim=-3)
    minc = rgb.min(dim=-3).values
    delta = maxc - minc
    light = (maxc + minc) / 2.0
    denom = torch.where(light <= 0.5, maxc + minc, 2.0 - maxc - minc)
    sat = torch.where(delta > eps, delta / denom.clamp(min=eps), torch.zeros_like(delta))
    d = delta.clamp(min=eps)
    h_r = torch.remainder((g - b) / d, 6.0)
    h_g = (b - r) / d + 2.0
    h_b = (r - g) / d + 4.0
    hue = torch.where(argmax == 0, h_r, torch.where(argmax == 1, h_g, h_b)) * 60.0
    hue = torch.where(delta > eps, hue, torch.zeros_like(hue))
    hue = torch.remainder(hue, 360.0)
    return torch.stack([hue, light, sat], dim=-3)


def hls_to_rgb(hls: Tensor) -> Tensor:
    r"""Convert HLS (hue in degrees, any real value: it is wrapped) to RGB in ``[0, 1]``.

    Args:
        hls: tensor ``(*, 3, H, W)``: hue in degrees (wrapped modulo 360), lightness and
            saturation in ``[0, 1]`` (clamped).

    Returns:
        tensor ``(*, 3, H, W)`` in ``[0, 1]``.

    >>> x = torch.rand(1, 3, 3, 3, dtype=torch.float64)
    >>> torch.allclose(hls_to_rgb(rgb_to_hls(x)), x, atol=1e-6)
    True
    """
    _check_image(hls, "hls")
    hue, light, sat = hls.unbind(-3)
    hue = torch.remainder(hue, 360.0)
    light = light.clamp(0.0, 1.0)
    sat = sat.clamp(0.0, 1.0)
    amp = sat * torch.minimum(light, 1.0 - light)
    out = []
    for n in (0.0, 8.0, 4.0):
        k = torch.remainder(n + hue / 30.0, 12.0)
        m = torch.clamp(torch.minimum(k - 3.0, 9.0 - k), -1.0, 1.0)
        out.append(light - amp * m)
    return torch.stack(out, dim=-3)


class RgbToLab(nn.Module):
    """Module form of :func:`rgb_to_lab`."""

    def forward(self, rgb: Tensor) -> Tensor:
        return rgb_to_lab(rgb)


class LabToRgb(nn.Module):
    """Module form of :func:`lab_to_rgb`."""

    def __init__(self, clip: bool = True) -> None:
        super().__init__()
        self.clip = clip

    def forward(self, lab: Tensor) -> Tensor:
        return lab_to_rgb(lab, clip=self.clip)


class RgbToHls(nn.Module):
    """Module form of :func:`rgb_to_hls`."""

    def forward(self, rgb: Tensor) -> Tensor:
        return rgb_to_hls(rgb)


class HlsToRgb(nn.Module):
    """Module form of :func:`hls_to_rgb`."""

    def forward(self, hls: Tensor) -> Tensor:
        return hls_to_rgb(hls)
