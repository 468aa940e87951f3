r"""Per-image harmonization metrics on RGB ``0..255``.

Every function takes NumPy arrays: images ``(H, W, 3)`` (uint8 or float, values in
``[0, 255]``; converted to float64) and masks ``(H, W)`` float in ``[0, 1]``. Each returns
one Python ``float`` per image; the evaluator averages them over images ("All" = mean of
the per-image values, the iHarmony4 convention).

Definitions (``x`` = output, ``y`` = target/real, ``e = x - y``, ``N = H * W``):

* **MSE** = ``sum(e^2) / (3 N)``: mean over all pixels and the three channels.
* **fMSE** = ``sum(m * e^2) / (3 * sum(m))`` with ``m`` the foreground mask *binarised at
  0.5* (``m = mask >= 0.5``). Binarising makes the value independent of anti-aliased or
  JPEG-saved mask edges; for the usual 0/255 masks it is the soft formula exactly. An
  empty mask gives ``NaN`` (undefined), never 0.
* **PSNR** = ``10 log10(255^2 / MSE)`` (data range fixed at 255; the public iHarmony4
  scripts disagree on it). An exact match (MSE = 0) would be infinite: per-image PSNR is
  capped at :data:`PSNR_CAP_DB` = 100 dB so that means stay finite.
  **fPSNR** is the same with fMSE.
* **SSIM**: Wang et al. 2004 with a Gaussian window (sigma 1.5, truncated at 3.5 sigma =
  11 taps, ``reflect`` borders), population (co)variances, ``C1 = (0.01 * 255)^2``,
  ``C2 = (0.03 * 255)^2``, computed per RGB channel; the score is the mean of the SSIM map
  after cropping 5 border pixels, averaged over channels. This equals
  ``skimage.metrics.structural_similarity(x, y, gaussian_weights=True, sigma=1.5,
  use_sample_covariance=False, data_range=255, channel_axis=2)``.
* **fSSIM**: the SSIM map averaged over channels, then over the binarised foreground
  pixels (no border crop, so foregrounds touching the border count). Empty mask: ``NaN``.
* **OM IoU** (operator-mask localisation, Sg-MMH supplement): a pixel is "changed" when
  any ``add`` operator channel satisfies ``|add| > rel * unit`` with the channel's natural
  unit (``L``: 100, CIELAB ``a``/``b``: 255, hue: 360 degrees, HLS ``l``/``s``: 1) and
  ``rel`` = :data:`OM_THRESHOLD_REL` (0.01 by default, i.e. 1 L unit, 2.55 a/b units,
  3.6 degrees, 0.01 lightness/saturation). IoU = ``|P & G| / |P | G|`` against the
  binarised ground-truth union mask ``G``; ``NaN`` when both are empty. The paper's
  protocol (``om_iou_protocol="paper"`` in the evaluator) uses ``rel`` =
  :data:`OM_PAPER_THRESHOLD` (``1e-4``) on an add-only model.
* **LPIPS** (VGG): computed by :mod:`harmonykit.perceptual` on the whole image when its
  weights are available; otherwise the metric is reported as unavailable (``None``),
  never 0.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import numpy as np
from scipy.ndimage import gaussian_filter

if TYPE_CHECKING:
    from harmonykit.operators import OperatorMasks

__all__ = [
    "DATA_RANGE",
    "MASK_THRESHOLD",
    "PSNR_CAP_DB",
    "OM_THRESHOLD_REL",
    "OM_PAPER_THRESHOLD",
    "OM_CHANNEL_UNITS",
    "BUCKETS",
    "METRIC_DEFINITIONS",
    "binarize_mask",
    "foreground_ratio",
    "bucket_of",
    "mse",
    "fmse",
    "psnr",
    "fpsnr",
    "psnr_from_mse",
    "ssim_map",
    "ssim",
    "fssim",
    "om_change_mask",
    "iou",
    "om_iou",
    "LOCALISATION_THRESHOLD",
    "localisation_iou",
    "image_metrics",
]

#: data range of the images (RGB 0..255)
DATA_RANGE = 255.0
#: masks are binarised with ``mask >= MASK_THRESHOLD``
MASK_THRESHOLD = 0.5
#: per-image PSNR / fPSNR cap in dB (reached only for MSE <= 6.5e-6, i.e. exact matches)
PSNR_CAP_DB = 100.0
#: default relative threshold for binarising ``add`` operator masks
OM_THRESHOLD_REL = 0.01
#: the Sg-MMH supplement's OM IoU threshold (``om_iou_protocol="paper"``): ``|add| > 1e-4``
#: of the channel's unit, on an add-only model
OM_PAPER_THRESHOLD = 1e-4
#: natural unit (value range) of each operator component, per colour space
OM_CHANNEL_UNITS: dict[str, dict[str, float]] = {
    "lab": {"l": 100.0, "a": 255.0, "b": 255.0},
    "hls": {"h": 360.0, "l": 1.0, "s": 1.0},
}
#: foreground-ratio buckets ``(name, low, high)``: ``low <= ratio < high`` (last one closed)
BUCKETS: tuple[tuple[str, float, float], ...] = (
    ("0-5%", 0.0, 0.05),
    ("5-15%", 0.05, 0.15),
    ("15-100%", 0.15, 1.0),
)

#: one-line definitions written into every report
METRIC_DEFINITIONS: dict[str, str] = {
    "mse": "mean over pixels and RGB channels of (output - real)^2, RGB 0..255",
    "fmse": "sum(m * (output - real)^2) / (3 * sum(m)), m = mask >= 0.5; NaN if the mask is empty",
    "psnr": "10 * log10(255^2 / MSE), data range 255, capped at 100 dB",
    "fpsnr": "10 * log10(255^2 / fMSE), data range 255, capped at 100 dB",
    "ssim": "Gaussian SSIM (sigma 1.5, 11 taps, population covariance, K1 0.01, K2 0.03, "
    "data range 255) per RGB channel, map mean after 5 px border crop, channel mean "
    "(= skimage structural_similarity(gaussian_weights=True, use_sample_covariance=False))",
    "fssim": "channel-averaged SSIM map averaged over foreground pixels (mask >= 0.5), no border crop",
    "lpips": "LPIPS-VGG distance (harmonykit.perceptual), whole image; absent when weights are unavailable",
    "om_iou": "IoU of the changed-pixel map (any |add| > 0.01 x channel unit: L 100, a/b 255, "
    "H 360, HLS l/s 1) with the ground-truth union mask (mask >= 0.5); NaN if both are empty. "
    "For models with a localisation gate (gate=learned), by default the map p > 0.5 of the model's "
    "localisation instead (EvalOptions.om_iou_from)",
    "fg_ratio": "fraction of foreground pixels (mask >= 0.5) at the scoring size",
}


# --------------------------------------------------------------------------- helpers
def _as_float(image: np.ndarray, name: str) -> np.ndarray:
    arr = np.asarray(image)
    if arr.ndim != 3 or arr.shape[2] != 3:
        raise ValueError(f"expected {name} of shape (H, W, 3), got {arr.shape}")
    return arr.astype(np.float64, copy=False)


def _pair(output: np.ndarray, target: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    x, y = _as_float(output, "output"), _as_float(target, "target")
    if x.shape != y.shape:
        raise ValueError(f"output {x.shape} and target {y.shape} differ in shape")
    return x, y


def binarize_mask(mask: np.ndarray, shape: tuple[int, ...] | None = None) -> np.ndarray:
    """Boolean ``(H, W)`` foreground: ``mask >= 0.5``.

    Args:
        mask: ``(H, W)`` float in ``[0, 1]`` (or bool).
        shape: expected ``(H, W)``; a mismatch raises ``ValueError``.

    >>> binarize_mask(np.array([[0.0, 0.49], [0.5, 1.0]])).tolist()
    [[False, False], [True, True]]
    """
    m = np.asarray(mask)
    if m.ndim == 3 and m.shape[2] == 1:
        m = m[..., 0]
    if m.ndim != 2:
        raise ValueError(f"expected a mask of shape (H, W), got {m.shape}")
    if shape is not None and tuple(m.shape) != tuple(shape[:2]):
        raise ValueError(f"mask {m.shape} does not match image size {tuple(shape[:2])}")
    if m.dtype == bool:
        return m
    return m >= MASK_THRESHOLD


def foreground_ratio(mask: np.ndarray) -> float:
    """Fraction of foreground pixels, ``mean(mask >= 0.5)`` in ``[0, 1]``.

    >>> foreground_ratio(np.array([[1.0, 0.0], [0.0, 0.0]]))
    0.25
    """
    return float(binarize_mask(mask).mean())


def bucket_of(ratio: float) -> str:
    """Foreground-ratio bucket name: ``0-5%`` / ``5-15%`` / ``15-100%`` (``low <= r < high``).

    >>> [bucket_of(r) for r in (0.0, 0.049, 0.05, 0.15, 1.0)]
    ['0-5%', '0-5%', '5-15%', '15-100%', '15-100%']
    """
    for name, low, high in BUCKETS:
        if low <= ratio < high:
            return name
    return BUCKETS[-1][0]


# --------------------------------------------------------------------- MSE / PSNR
def mse(output: np.ndarray, target: np.ndarray) -> float:
    """Mean squared error over pixels and channels, RGB ``0..255``.

    >>> a = np.zeros((2, 2, 3), np.uint8); b = a.copy(); b[0, 0, 0] = 6
    >>> mse(a, b)  # 36 / 12
    3.0
    """
    x, y = _pair(output, target)
    return float(np.mean((x - y) ** 2))


def fmse(output: np.ndarray, target: np.ndarray, mask: np.ndarray) -> float:
    """Foreground MSE ``sum(m e^2) / (3 sum(m))``, ``m = mask >= 0.5``; NaN for an empty mask.

    >>> a = np.zeros((2, 2, 3), np.uint8); b = a.copy(); b[0, 0, 0] = 6
    >>> m = np.array([[1.0, 1.0], [0.0, 0.0]])
    >>> fmse(a, b, m)  # 36 / (3 * 2)
    6.0
    >>> fmse(a, b, np.zeros((2, 2)))
    nan
    """
    x, y = _pair(output, target)
    m = binarize_mask(mask, x.shape)
    n = int(m.sum())
    if n == 0:
        return math.nan
    return float(((x - y) ** 2)[m].sum() / (3.0 * n))


def psnr_from_mse(value: float, data_range: float = DATA_RANGE) -> float:
    """``10 log10(data_range^2 / value)`` capped at :data:`PSNR_CAP_DB`; NaN stays NaN.

    >>> round(psnr_from_mse(65.025), 4)  # 255^2 / 65.025 = 1000
    30.0
    >>> psnr_from_mse(0.0)
    100.0
    """
    if math.isnan(value):
        return math.nan
    if value <= 0.0:
        return PSNR_CAP_DB
    return float(min(PSNR_CAP_DB, 10.0 * math.log10(data_range**2 / value)))


def psnr(output: np.ndarray, target: np.ndarray, data_range: float = DATA_RANGE) -> float:
    """PSNR in dB with data range 255 (see module docstring)."""
    return psnr_from_mse(mse(output, target), data_range)


def fpsnr(output: np.ndarray, target: np.ndarray, mask: np.ndarray, data_range: float = DATA_RANGE) -> float:
    """Foreground PSNR ``10 log10(255^2 / fMSE)``; NaN for an empty mask."""
    return psnr_from_mse(fmse(output, target, mask), data_range)


# ---------------------------------------------------------------------------- SSIM
_SSIM_SIGMA = 1.5
_SSIM_TRUNCATE = 3.5
_SSIM_PAD = int(_SSIM_TRUNCATE * _SSIM_SIGMA + 0.5)  # 5 -> 11-tap window


def ssim_map(output: np.ndarray, target: np.ndarray, data_range: float = DATA_RANGE) -> np.ndarray:
    r"""Per-pixel, per-channel SSIM map ``(H, W, 3)`` (float64, values in ``[-1, 1]``).

    ``S = ((2 mu_x mu_y + C1)(2 s_xy + C2)) / ((mu_x^2 + mu_y^2 + C1)(s_x^2 + s_y^2 + C2))``
    with Gaussian-weighted local means/variances (sigma 1.5, truncate 3.5, reflect).
    """
    x, y = _pair(output, target)
    if min(x.shape[:2]) < 2 * _SSIM_PAD + 1:
        raise ValueError(f"SSIM needs images of at least 11x11 pixels, got {x.shape[1]}x{x.shape[0]}")
    kw = {"sigma": (_SSIM_SIGMA, _SSIM_SIGMA, 0.0), "truncate": _SSIM_TRUNCATE, "mode": "reflect"}
    ux = gaussian_filter(x, **kw)
    uy = gaussian_filter(y, **kw)
    uxx = gaussian_filter(x * x, **kw)
    uyy = gaussian_filter(y * y, **kw)
    uxy = gaussian_filter(x * y, **kw)
    vx = uxx - ux * ux
    vy = uyy - uy * uy
    vxy = uxy - ux * uy
    c1 = (0.01 * data_range) ** 2
    c2 = (0.03 * data_range) ** 2
    return ((2 * ux * uy + c1) * (2 * vxy + c2)) / ((ux**2 + uy**2 + c1) * (vx + vy + c2))


def ssim(output: np.ndarray, target: np.ndarray, data_range: float = DATA_RANGE,
         smap: np.ndarray | None = None) -> float:
    """Mean SSIM (5-pixel border cropped, channels averaged); ``smap`` reuses a map.

    >>> img = np.random.default_rng(0).integers(0, 256, (16, 16, 3)).astype(np.uint8)
    >>> ssim(img, img)
    1.0
    """
    s = ssim_map(output, target, data_range) if smap is None else smap
    p = _SSIM_PAD
    return float(s[p:-p, p:-p].mean())


def fssim(output: np.ndarray, target: np.ndarray, mask: np.ndarray, data_range: float = DATA_RANGE,
          smap: np.ndarray | None = None) -> float:
    """SSIM map (channel mean) averaged over foreground pixels; NaN for an empty mask."""
    s = ssim_map(output, target, data_range) if smap is None else smap
    m = binarize_mask(mask, s.shape)
    if not m.any():
        return math.nan
    return float(s.mean(axis=2)[m].mean())


# -------------------------------------------------------------- operator-mask IoU
def om_change_mask(
    operator_masks: OperatorMasks,
    size: tuple[int, int] | None = None,
    rel: float = OM_THRESHOLD_REL,
) -> np.ndarray | None:
    """Binarised ``add`` operator masks: ``(B, H, W)`` bool, or ``None`` without add channels.

    A pixel is changed when ``|c_add| > rel * unit(c)`` for any ``add`` channel ``c``
    (units in :data:`OM_CHANNEL_UNITS`). Values are first resized bilinearly to ``size``
    (``(H, W)``, default: their own size).

    >>> import torch
    >>> from harmonykit.operators import OperatorMasks
    >>> v = torch.zeros(1, 3, 2, 2); v[0, 0, 0, 0] = 2.0; v[0, 1, 1, 1] = -2.0
    >>> om_change_mask(OperatorMasks(v, ("l_add", "a_add", "b_add"), "lab"))[0].tolist()
    [[True, False], [False, False]]
    """
    space = operator_masks.space
    units = OM_CHANNEL_UNITS[space]
    idx = [(i, units[name.split("_")[0]]) for i, name in enumerate(operator_masks.channels)
           if name.endswith("_add")]
    if not idx:
        return None
    h, w = size if size is not None else operator_masks.size
    values = operator_masks.resized(h, w).detach().float().cpu().numpy()
    changed = np.zeros((values.shape[0], h, w), dtype=bool)
    for i, unit in idx:
        changed |= np.abs(values[:, i]) > rel * unit
    return changed


def iou(pred: np.ndarray, mask: np.ndarray) -> float:
    """Intersection over union of a boolean map and a mask (``>= 0.5``); NaN if both empty.

    >>> iou(np.array([[True, True], [False, False]]), np.array([[1.0, 0.0], [1.0, 0.0]]))
    0.3333333333333333
    """
    p = np.asarray(pred, dtype=bool)
    g = binarize_mask(mask, p.shape)
    union = int(np.logical_or(p, g).sum())
    if union == 0:
        return math.nan
    return float(np.logical_and(p, g).sum() / union)


def om_iou(operator_masks: OperatorMasks, mask: np.ndarray, rel: float = OM_THRESHOLD_REL) -> float | None:
    """OM localisation IoU for a single image (``operator_masks`` batch of 1); ``None``
    when the masks have no ``add`` channel."""
    g = np.asarray(mask)
    changed = om_change_mask(operator_masks, size=(g.shape[0], g.shape[1]), rel=rel)
    if changed is None:
        return None
    return iou(changed[0], g)


#: ``p > LOCALISATION_THRESHOLD`` is "pasted" for :func:`localisation_iou`
LOCALISATION_THRESHOLD = 0.5


def localisation_iou(p: np.ndarray, mask: np.ndarray, threshold: float = LOCALISATION_THRESHOLD) -> float:
    """IoU of a gated model's localisation ``p > threshold`` with the union mask (``>= 0.5``).

    Args:
        p: ``(h, w)`` float in ``[0, 1]`` (``ModelOutput.localisation`` of one image), resized
            bilinearly to the mask's size when they differ.
        mask: ``(H, W)`` ground-truth mask in ``[0, 1]``.

    Returns:
        The IoU, NaN when both maps are empty.

    >>> localisation_iou(np.array([[0.9, 0.6], [0.2, 0.1]]), np.array([[1.0, 0.0], [0.0, 0.0]]))
    0.5
    """
    g = np.asarray(mask)
    q = np.asarray(p, dtype=np.float32)
    if q.shape != g.shape[:2]:
        import torch
        import torch.nn.functional as F

        t = torch.from_numpy(np.ascontiguousarray(q))[None, None]
        q = F.interpolate(t, size=g.shape[:2], mode="bilinear", align_corners=False)[0, 0].numpy()
    return iou(q > threshold, g)


# ------------------------------------------------------------------ all at once
def image_metrics(output: np.ndarray, target: np.ndarray, mask: np.ndarray) -> dict[str, float]:
    """All pixel metrics of one image: ``mse fmse psnr fpsnr ssim fssim fg_ratio``.

    Args:
        output: ``(H, W, 3)`` uint8 (or float in ``[0, 255]``).
        target: same shape as ``output``.
        mask: ``(H, W)`` float in ``[0, 1]``.

    Returns:
        dict of floats; ``fmse``/``fpsnr``/``fssim`` are NaN when the mask is empty.
    """
    x, y = _pair(output, target)
    m = binarize_mask(mask, x.shape)
    err2 = (x - y) ** 2
    n = int(m.sum())
    v_mse = float(err2.mean())
    v_fmse = float(err2[m].sum() / (3.0 * n)) if n else math.nan
    smap = ssim_map(x, y)
    return {
        "mse": v_mse,
        "fmse": v_fmse,
        "psnr": psnr_from_mse(v_mse),
        "fpsnr": psnr_from_mse(v_fmse),
        "ssim": ssim(x, y, smap=smap),
        "fssim": float(smap.mean(axis=2)[m].mean()) if n else math.nan,
        "fg_ratio": n / m.size,
    }
