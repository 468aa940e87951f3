"""The one image/tensor helper module: NumPy images and masks to torch tensors and back, and
the resizing rules, for every layer (data, models, evaluation, pipeline, runners, training).

It imports only NumPy, PyTorch and :mod:`harmonykit.errors` at module level, so every
package may import it and it imports none of them (nobody imports backwards).

Conventions: an *image* is ``(H, W, 3)`` uint8 on the NumPy side and ``(3, H, W)`` (or
``(B, 3, H, W)``) float32 in ``[0, 1]`` on the torch side; a *mask* is ``(H, W)`` float32 in
``[0, 1]`` (or uint8 0/255) and ``(1, H, W)`` float32.

Named variants that differ on purpose (each keeps the pixels of its callers):

* float -> uint8 rounding: :func:`to_uint8_tensor` / :func:`from_tensor_image` round half to
  even (``torch.round``, what saved results, the evaluator's resizes, baselines and
  training samples use); :func:`to_uint8_half_up` adds 0.5 and truncates (round half up,
  the full-resolution render of :mod:`harmonykit.pipeline`); :func:`round_uint8` is the NumPy
  rule for images in ``0..255`` units (``np.rint``, half to even, float64), used by the
  perturbation ops.
* image resizing: :func:`resize_image_tensor` (bilinear, antialiased, on the whole float
  image: training pairs and the evaluator, :func:`resize_image` rounds it to uint8);
  :func:`downsize` (the same rule done in row tiles without a float copy of the photo: equal
  to within float rounding, not bit for bit: the pipeline's work-size copy);
  :func:`resize_shorter_pil` (Pillow's bilinear filter on uint8, the on-the-fly training
  sources' load size).
* mask resizing: :func:`resize_mask_tensor` / :func:`resize_mask` (nearest neighbour at pixel
  centres, ``nearest-exact``); the feature-size mask resize inside the normalisation layers
  (``"area"``) is :func:`harmonykit.models.norm_ops.resize_mask`, a model operation.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F

from harmonykit.errors import ConfigError

__all__ = [
    "to_tensor_image",
    "to_tensor_mask",
    "to_tensor_images",
    "resize_image_tensor",
    "resize_mask_tensor",
    "size_tuple",
    "to_uint8_tensor",
    "to_uint8_half_up",
    "from_tensor_image",
    "round_uint8",
    "resize_image",
    "resize_mask",
    "resize_shorter_pil",
    "downsize",
]


def _writable(a: np.ndarray) -> np.ndarray:
    a = np.ascontiguousarray(a)
    return a if a.flags.writeable else a.copy()


# -- NumPy -> torch ------------------------------------------------------------------------


def to_tensor_image(image: np.ndarray) -> torch.Tensor:
    """``(H, W, 3)`` uint8 -> ``(3, H, W)`` float32 in ``[0, 1]``."""
    return torch.from_numpy(_writable(image)).permute(2, 0, 1).float().div_(255.0)


def to_tensor_mask(mask: np.ndarray) -> torch.Tensor:
    """``(H, W)`` float ``[0, 1]`` (or uint8 0/255) -> ``(1, H, W)`` float32 in ``[0, 1]``."""
    m = np.asarray(mask)
    t = torch.from_numpy(_writable(m)).float()
    if m.dtype == np.uint8:
        t = t.div_(255.0)
    return t[None]


def to_tensor_images(images: Sequence[np.ndarray], device: str | torch.device = "cpu") -> torch.Tensor:
    """Images of one size -> ``(B, 3, H, W)`` float32 in ``[0, 1]`` on ``device``."""
    return torch.stack([to_tensor_image(im) for im in images]).to(device)


# -- resizing --------------------------------------------------------------------------------


def resize_image_tensor(x: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Resize ``(C, H, W)`` float to ``size`` ``(H, W)``: bilinear, antialiased when
    shrinking (``F.interpolate(..., antialias=True, align_corners=False)``), clamped to
    ``[0, 1]``; values are not re-quantised to 8 bits."""
    if tuple(x.shape[-2:]) == tuple(size):
        return x
    return F.interpolate(x[None], size=tuple(size), mode="bilinear", align_corners=False, antialias=True)[0].clamp_(0.0, 1.0)


def resize_mask_tensor(m: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Resize ``(C, H, W)`` with nearest neighbour at pixel centres (``nearest-exact``):
    mask values are kept (a binary mask stays binary)."""
    if tuple(m.shape[-2:]) == tuple(size):
        return m
    return F.interpolate(m[None], size=tuple(size), mode="nearest-exact")[0]


def size_tuple(size: int | tuple[int, int] | None) -> tuple[int, int] | None:
    """``size`` (``int``: a square, ``(H, W)`` or ``None``) as ``(H, W)`` or ``None``.

    Raises:
        ConfigError: a side below 1.
    """
    if size is None:
        return None
    if isinstance(size, int):
        if size < 1:
            raise ConfigError(f"size must be positive, got {size}")
        return (size, size)
    h, w = size
    if int(h) < 1 or int(w) < 1:
        raise ConfigError(f"size must be positive, got {size}")
    return (int(h), int(w))


def resize_image(image: np.ndarray, size: int | tuple[int, int]) -> np.ndarray:
    """Resize ``(H, W, 3)`` uint8 to ``size`` (``int``: a square, or ``(H, W)``) uint8 with
    :func:`resize_image_tensor` (the training rule), rounded half to even; returned as is at
    that size already.

    >>> resize_image(np.full((40, 30, 3), 7, np.uint8), 16)[0, 0].tolist()
    [7, 7, 7]
    """
    hw = size_tuple(size)
    if tuple(image.shape[:2]) == hw:
        return image
    return from_tensor_image(resize_image_tensor(to_tensor_image(image), hw))


def resize_mask(mask: np.ndarray, size: int | tuple[int, int]) -> np.ndarray:
    """Resize a ``(H, W)`` float mask to ``size`` (``int``: a square, or ``(H, W)``) with
    :func:`resize_mask_tensor` (``nearest-exact``); returned as is at that size already.

    >>> m = np.zeros((4, 4), np.float32); m[:2] = 1.0
    >>> resize_mask(m, 2).tolist()
    [[1.0, 1.0], [0.0, 0.0]]
    """
    hw = size_tuple(size)
    if tuple(mask.shape[:2]) == hw:
        return mask
    return resize_mask_tensor(to_tensor_mask(mask), hw)[0].numpy()


def resize_shorter_pil(image: np.ndarray, shorter: int) -> np.ndarray:
    """Resize ``(H, W, 3)`` uint8 so that its shorter side is ``shorter`` (the longer one
    rounded, at least ``shorter``) with Pillow's bilinear filter (Pillow's own antialiasing
    and 8-bit arithmetic, so not equal to :func:`resize_image`); as is when it already is."""
    h, w = image.shape[:2]
    if min(h, w) == shorter:
        return image
    from PIL import Image

    s = shorter / min(h, w)
    size = (max(shorter, round(w * s)), max(shorter, round(h * s)))
    return np.asarray(Image.fromarray(image).resize(size, Image.Resampling.BILINEAR))


def downsize(rgb: np.ndarray, size: tuple[int, int], tile_rows: int | None = None) -> torch.Tensor:
    """``(H, W, C)`` (or ``(H, W)``) uint8 or float32 -> ``(1, C, h, w)`` float32, resized
    bilinearly with antialiasing; uint8 is scaled to ``[0, 1]``, float is taken as is.

    Equal (within float rounding, not bit for bit) to :func:`resize_image_tensor` on the whole
    float image (without its clamp), but done in row tiles without a float copy of the photo:
    PyTorch's antialiased resize is separable, so the width pass runs per tile (on the
    interleaved tile converted to float, no channel transpose) and the height pass on the
    narrow ``(C, H, w)`` intermediate; the ``1 / 255`` is applied to the small result. The
    work-size copy of :mod:`harmonykit.pipeline`.
    """
    from harmonykit.operators.tiling import for_each_tile, rows_per_tile, tensor_view

    arr = rgb if rgb.ndim == 3 else rgb[:, :, None]
    h, w, c = arr.shape
    scale = 1.0 / 255.0 if arr.dtype == np.uint8 else 1.0
    src = tensor_view(arr)
    if (h, w) == tuple(size):
        return src.permute(2, 0, 1).unsqueeze(0).float().mul_(scale)
    rows = min(rows_per_tile(w, tile_rows), h)
    mid = torch.empty(1, c, h, size[1])

    def work(y0: int, y1: int) -> None:
        xt = src[y0:y1].float().unsqueeze(0).permute(0, 3, 1, 2)  # (1, C, rows, W), channels-last
        if size[1] != w:
            xt = F.interpolate(xt, size=(y1 - y0, size[1]), mode="bilinear", align_corners=False, antialias=True)
        mid[:, :, y0:y1] = xt

    with torch.no_grad():
        for_each_tile(h, rows, work)
        if size[0] != h:
            mid = F.interpolate(mid, size=tuple(size), mode="bilinear", align_corners=False, antialias=True)
    return mid.mul_(scale) if scale != 1.0 else mid


# -- torch / float -> uint8 -----------------------------------------------------------------


def to_uint8_tensor(x: torch.Tensor) -> torch.Tensor:
    """Float in ``[0, 1]`` -> uint8 tensor of the same shape: ``x * 255`` rounded half to even
    (``torch.round``), clamped to ``0..255``. Finite values only (NaN is undefined)."""
    return (x.detach().float() * 255.0).round_().clamp_(0, 255).to(torch.uint8)


def from_tensor_image(x: torch.Tensor) -> np.ndarray:
    """``(..., C, H, W)`` float in ``[0, 1]`` -> ``(..., H, W, C)`` uint8 NumPy (contiguous,
    on the CPU), rounded half to even (:func:`to_uint8_tensor`)."""
    return np.ascontiguousarray(to_uint8_tensor(x).movedim(-3, -1).cpu().numpy())


def to_uint8_half_up(x: torch.Tensor) -> torch.Tensor:
    """Float in ``[0, 1]`` -> uint8 tensor: ``x * 255 + 0.5`` clamped and truncated (round
    half up). Differs from :func:`to_uint8_tensor` where ``x * 255`` ends in exactly ``.5``
    (e.g. 2.5 -> 3 here, 2 there): the rule of the full-resolution render."""
    return x.mul(255.0).add_(0.5).clamp_(0, 255).to(torch.uint8)


def round_uint8(x: np.ndarray) -> np.ndarray:
    """A NumPy float image in ``0..255`` units -> uint8: ``np.rint`` (half to even), clipped."""
    return np.clip(np.rint(x), 0, 255).astype(np.uint8)
