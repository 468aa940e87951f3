r"""Classical, training-free harmonization baselines.

A baseline is a callable ``baseline(image, mask) -> image`` on NumPy arrays:

* ``image``: ``(H, W, 3)`` uint8 RGB (the composite);
* ``mask``: ``(H, W)`` float in ``[0, 1]`` (foreground) or ``None`` when
  ``needs_mask`` is false;
* result: ``(H, W, 3)`` uint8 RGB.

Statistics are taken on the binarised mask (``mask >= 0.5``: foreground ``F``, the rest
background ``B``); the result is blended with the soft mask,
``out = m * transferred + (1 - m) * image``, so background pixels (``m = 0``) are returned
unchanged.

Built-ins (registered in :data:`BASELINES`, a :class:`~harmonykit.registry.Registry`;
:func:`get_baseline` / :func:`is_baseline` look names up):

* ``identity`` - returns the composite (the "Composite" row of the papers' tables).
* ``reinhard`` - Reinhard et al. 2001 colour transfer, in CIELAB (D65, scikit-image's
  conversion, the same constants as :mod:`harmonykit.color`): per channel ``c in (L, a, b)``,
  ``out_c = (x_c - mu_F) * sd_B / sd_F + mu_B`` (population std; ``sd_F = 0`` keeps the
  scale at 1), converted back to sRGB (clipped) and rounded.
* ``histogram`` - per RGB channel histogram matching of the foreground to the background:
  a foreground value ``v`` maps to ``interp(CDF_F(v), CDF_B(u_k), u_k)`` over the
  background's distinct values ``u_k`` (the rule of ``skimage.exposure.match_histograms``),
  rounded.

With an empty foreground or background (fewer than 2 pixels) the mask-based baselines
return the image unchanged.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

import numpy as np

from harmonykit.errors import HarmonykitError
from harmonykit.registry import Registry

__all__ = [
    "Baseline",
    "FunctionBaseline",
    "identity",
    "reinhard",
    "histogram",
    "BASELINES",
    "get_baseline",
    "is_baseline",
]

_MASK_THRESHOLD = 0.5
_MIN_PIXELS = 2


@runtime_checkable
class Baseline(Protocol):
    """A training-free harmonizer: ``(image uint8 HxWx3, mask float HxW | None) -> uint8 HxWx3``."""

    name: str
    needs_mask: bool

    def __call__(self, image: np.ndarray, mask: np.ndarray | None = None) -> np.ndarray: ...


def _check(image: np.ndarray, mask: np.ndarray | None, name: str, needs_mask: bool) -> np.ndarray | None:
    if not isinstance(image, np.ndarray) or image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
        desc = f"{image.dtype} {image.shape}" if isinstance(image, np.ndarray) else type(image).__name__
        raise ValueError(f"baseline {name!r}: expected a uint8 (H, W, 3) image, got {desc}")
    if mask is None:
        if needs_mask:
            raise HarmonykitError(f"baseline {name!r} needs a foreground mask")
        return None
    m = np.asarray(mask, dtype=np.float64)
    if m.ndim == 3 and m.shape[2] == 1:
        m = m[..., 0]
    if m.shape != image.shape[:2]:
        raise ValueError(f"baseline {name!r}: mask {m.shape} does not match image {image.shape[:2]}")
    return np.clip(m, 0.0, 1.0)


def _blend(image: np.ndarray, transferred: np.ndarray, soft: np.ndarray) -> np.ndarray:
    """``round(m * transferred + (1 - m) * image)`` as uint8."""
    w = soft[..., None]
    out = w * transferred + (1.0 - w) * image.astype(np.float64)
    return np.clip(np.round(out), 0, 255).astype(np.uint8)


@dataclass(frozen=True)
class FunctionBaseline:
    """A :class:`Baseline` made from a function ``fn(image uint8, soft mask float64 | None)``.

    Input checking (dtype, shapes, a missing mask) is done here, once for every baseline.
    """

    name: str
    fn: Callable[[np.ndarray, np.ndarray | None], np.ndarray]
    needs_mask: bool
    description: str = ""

    def __call__(self, image: np.ndarray, mask: np.ndarray | None = None) -> np.ndarray:
        soft = _check(image, mask, self.name, self.needs_mask)
        return self.fn(image, soft if self.needs_mask else None)


def _identity(image: np.ndarray, mask: np.ndarray | None) -> np.ndarray:
    return image.copy()


def _split(mask: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
    fg = mask >= _MASK_THRESHOLD
    n_fg = int(fg.sum())
    if n_fg < _MIN_PIXELS or fg.size - n_fg < _MIN_PIXELS:
        return None
    return fg, ~fg


def _rgb_to_lab(image: np.ndarray) -> np.ndarray:
    from skimage.color import rgb2lab

    return rgb2lab(image)


def _lab_to_rgb255(lab: np.ndarray) -> np.ndarray:
    import warnings

    from skimage.color import lab2rgb

    with warnings.catch_warnings():  # out-of-gamut colours are clipped, as documented
        warnings.simplefilter("ignore")
        return lab2rgb(lab) * 255.0


def _reinhard(image: np.ndarray, mask: np.ndarray | None) -> np.ndarray:
    assert mask is not None
    parts = _split(mask)
    if parts is None:
        return image.copy()
    fg, bg = parts
    lab = _rgb_to_lab(image)
    mu_f, sd_f = lab[fg].mean(axis=0), lab[fg].std(axis=0)
    mu_b, sd_b = lab[bg].mean(axis=0), lab[bg].std(axis=0)
    scale = np.where(sd_f > 1e-6, sd_b / np.maximum(sd_f, 1e-6), 1.0)
    touched = mask > 0
    out_lab = lab.copy()
    out_lab[touched] = (lab[touched] - mu_f) * scale + mu_b
    return _blend(image, _lab_to_rgb255(out_lab), mask)


def _match_lut(src: np.ndarray, ref: np.ndarray) -> np.ndarray:
    """256-entry map sending ``src``'s distribution (uint8 values) onto ``ref``'s."""
    values = np.arange(256)
    src_cdf = np.cumsum(np.bincount(src, minlength=256)) / src.size
    ref_counts = np.bincount(ref, minlength=256)
    ref_values = values[ref_counts > 0]
    ref_cdf = np.cumsum(ref_counts[ref_counts > 0]) / ref.size
    return np.interp(src_cdf, ref_cdf, ref_values)


def _histogram(image: np.ndarray, mask: np.ndarray | None) -> np.ndarray:
    assert mask is not None
    parts = _split(mask)
    if parts is None:
        return image.copy()
    fg, bg = parts
    matched = np.empty(image.shape, dtype=np.float64)
    for c in range(3):
        ch = image[..., c]
        matched[..., c] = _match_lut(ch[fg], ch[bg])[ch]
    return _blend(image, matched, mask)


identity: Baseline = FunctionBaseline(
    "identity", _identity, needs_mask=False, description="the composite, unchanged"
)
reinhard: Baseline = FunctionBaseline(
    "reinhard", _reinhard, needs_mask=True,
    description="Reinhard et al. 2001 mean/std transfer of the foreground to the background, CIELAB",
)
histogram: Baseline = FunctionBaseline(
    "histogram", _histogram, needs_mask=True,
    description="per-RGB-channel histogram matching of the foreground to the background",
)

#: name -> baseline (iterates in registration order: identity, reinhard, histogram)
BASELINES: Registry[Baseline] = Registry("baseline")
BASELINES.register(identity.name, identity)
BASELINES.register(reinhard.name, reinhard)
BASELINES.register(histogram.name, histogram)


def is_baseline(name: object) -> bool:
    """True when ``name`` names a built-in baseline.

    >>> is_baseline("reinhard"), is_baseline("runs/om")
    (True, False)
    """
    return name in BASELINES


def get_baseline(name: str) -> Baseline:
    """Look a baseline up by name.

    Raises:
        ConfigError: unknown name (:class:`~harmonykit.registry.UnknownNameError`; the
            message lists the baselines).

    >>> img = np.zeros((4, 4, 3), np.uint8)
    >>> get_baseline("identity")(img).shape
    (4, 4, 3)
    """
    return BASELINES.get(name)
