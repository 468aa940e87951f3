"""Operator masks: the editable, explainable output of Sg-MMH models.

An :class:`OperatorMasks` holds per-pixel operator values ``(B, C, h, w)`` with channel
names, and the colour space they act in. The retoucher (paper eq. 2) applies them to an
RGB image of any size:

* ``lab`` space, channels from ``l_mul l_add a_mul a_add b_mul b_add``:
  ``out_c = in_c * c_mul + c_add`` on CIELAB ``L`` (0..100), ``a``, ``b`` (centred on 0).
  ``add`` values are in natural units: L units for ``l_add``, CIELAB units for ``a/b_add``.
* ``hls`` space, channels from ``h_mul h_add l_mul l_add s_mul s_add``: same rule on hue
  (degrees, result wrapped modulo 360), lightness and saturation (0..1, clamped).

A channel that is absent is the identity (``mul = 1``, ``add = 0``), so ``lab_add``
models carry only ``l_add a_add b_add``. Masks predicted at a working size are resized to
the image with bilinear interpolation (``align_corners=False``) before being applied.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor

from harmonykit.color import hls_to_rgb, lab_to_rgb, rgb_to_hls, rgb_to_lab

__all__ = [
    "SPACES",
    "CHANNEL_SETS",
    "OperatorMasks",
    "apply_operator_values",
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


@dataclass(frozen=True)
class OperatorMasks:
    """Per-pixel operator values with channel names (see module docstring).

    Attributes:
        values: ``(B, C, h, w)`` float tensor; ``mul`` channels are factors (identity 1),
            ``add`` channels are offsets in natural units (identity 0).
        channels: names of the ``C`` channels, e.g. ``("l_mul", "l_add", ...)``.
        space: ``"lab"`` or ``"hls"``.
    """

    values: Tensor
    channels: tuple[str, ...]
    space: str = "lab"

    def __post_init__(self) -> None:
        if self.space not in SPACES:
            raise ValueError(f"unknown operator space {self.space!r}")
        if self.values.dim() != 4 or self.values.shape[1] != len(self.channels):
            raise ValueError(
                f"expected values (B, {len(self.channels)}, h, w) for channels {self.channels}, "
                f"got {tuple(self.values.shape)}"
            )
        comps = SPACES[self.space]
        for name in self.channels:
            comp, _, op = name.partition("_")
            if comp not in comps or op not in ("mul", "add"):
                raise ValueError(f"invalid channel {name!r} for space {self.space!r}")

    @classmethod
    def identity(
        cls, channels: tuple[str, ...] | str, batch: int, height: int, width: int, space: str | None = None,
        dtype: torch.dtype = torch.float32, device: torch.device | str | None = None,
    ) -> OperatorMasks:
        """Masks that leave any image unchanged."""
        if isinstance(channels, str):
            space = space or channels.split("_")[0]
            channels = CHANNEL_SETS[channels]
        space = space or "lab"
        ident = torch.tensor([1.0 if c.endswith("_mul") else 0.0 for c in channels], dtype=dtype, device=device)
        return cls(ident.view(1, -1, 1, 1).expand(batch, -1, height, width).contiguous(), tuple(channels), space)

    @property
    def size(self) -> tuple[int, int]:
        """Spatial size ``(h, w)`` of the stored values."""
        return int(self.values.shape[-2]), int(self.values.shape[-1])

    def __getitem__(self, name: str) -> Tensor:
        """One channel as ``(B, 1, h, w)``."""
        try:
            i = self.channels.index(name)
        except ValueError:
            raise KeyError(f"no operator channel {name!r}; channels are {self.channels}") from None
        return self.values[:, i : i + 1]

    def resized(self, height: int, width: int) -> Tensor:
        """Values resized (bilinear) to ``(height, width)``."""
        if (height, width) == self.size:
            return self.values
        return F.interpolate(self.values, size=(height, width), mode="bilinear", align_corners=False)

    def apply(self, image: Tensor) -> Tensor:
        """Retouch an RGB image ``(B, 3, H, W)`` in ``[0, 1]`` of any size."""
        h, w = image.shape[-2:]
        return apply_operator_values(image, self.resized(h, w).to(image.dtype), self.channels, self.space)

    def to(self, *args, **kwargs) -> OperatorMasks:
        return OperatorMasks(self.values.to(*args, **kwargs), self.channels, self.space)

    def detach(self) -> OperatorMasks:
        return OperatorMasks(self.values.detach(), self.channels, self.space)
