"""Named, parameterised image operations used to build composites.

Every operation is a frozen dataclass: its fields are its parameters, :meth:`Op.to_dict`
gives ``{"op": NAME, **params}`` (JSON-able) and :func:`op_from_dict` rebuilds it, so a
sample's recipe can be written to a manifest and replayed exactly. ``apply`` takes and
returns a uint8 RGB image ``(H, W, 3)`` (values ``0..255``) and is deterministic: random
operations (noise) carry their own ``seed`` parameter.

Every subclass with a ``NAME`` is registered in :data:`OPS` when it is defined
(``Op.__init_subclass__``; a second class with the same ``NAME`` is an error).

Operation families (``Op.KIND``):

* ``"filter"``: :class:`PilgramFilter` - one of pilgram's Instagram filters.
* ``"adjust"``: :class:`Contrast`, :class:`Grayscale`, :class:`HueRotate`,
  :class:`Saturate`, :class:`Sepia` (``pilgram.css``, CSS filter semantics) and
  :class:`LabScale` (paper eq. 1 in true CIELAB).
* ``"degrade"``: :class:`GaussianNoise`, :class:`LaplaceNoise`, :class:`PoissonNoise`,
  :class:`MotionBlur`, :class:`GaussianBlur`, :class:`Jpeg`.

``Op.POINTWISE`` is true when an operation maps each pixel independently of its position
and neighbours (css ops, LAB scaling). The perturbation engine uses it to apply such ops to
the pixels of a region only, which gives exactly the same bytes as applying them to the
whole image and pasting through the mask.

>>> op = op_from_dict({"op": "contrast", "amount": 1.25})
>>> op
Contrast(amount=1.25)
>>> op.to_dict()
{'op': 'contrast', 'amount': 1.25}
>>> img = np.full((2, 2, 3), 200, np.uint8)
>>> int(op.apply(img)[0, 0, 0])  # round(200 * 1.25 - 127.5 * 1.25 + 127.5)
218
"""

from __future__ import annotations

import dataclasses
import io
import math
import warnings
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
from PIL import Image

from harmonykit.errors import ConfigError
from harmonykit.imageops import round_uint8
from harmonykit.registry import Registry

__all__ = [
    "PILGRAM_FILTERS",
    "ALL_PILGRAM_FILTERS",
    "ADJUST_OPS",
    "DEGRADE_OPS",
    "Op",
    "PilgramFilter",
    "Contrast",
    "Grayscale",
    "HueRotate",
    "Saturate",
    "Sepia",
    "LabScale",
    "GaussianNoise",
    "LaplaceNoise",
    "PoissonNoise",
    "MotionBlur",
    "GaussianBlur",
    "Jpeg",
    "OPS",
    "op_from_dict",
    "registered_ops",
]

#: the 23 pilgram filters used by the paper (pilgram's aden, perpetua, toaster are not used)
PILGRAM_FILTERS: tuple[str, ...] = (
    "_1977", "brannan", "brooklyn", "clarendon", "earlybird", "gingham", "hudson",
    "inkwell", "kelvin", "lark", "lofi", "maven", "mayfair", "moon", "nashville",
    "reyes", "rise", "slumber", "stinson", "valencia", "walden", "willow", "xpro2",
)
#: every filter :class:`PilgramFilter` accepts (the 23 above plus the three unused ones)
ALL_PILGRAM_FILTERS: tuple[str, ...] = tuple(sorted(PILGRAM_FILTERS + ("aden", "perpetua", "toaster")))

#: names of the second-op candidates (paper: pilgram.css ops + LAB scaling)
ADJUST_OPS: tuple[str, ...] = ("contrast", "grayscale", "hue_rotate", "saturate", "sepia", "lab_scale")
#: names of the degradations (resolution mismatch simulation)
DEGRADE_OPS: tuple[str, ...] = (
    "gaussian_noise", "laplace_noise", "poisson_noise", "motion_blur", "gaussian_blur", "jpeg",
)

#: operations: ``NAME`` -> :class:`Op` subclass (filled as the subclasses are defined)
OPS: Registry[type[Op]] = Registry("operation")


def check_image(image: np.ndarray) -> np.ndarray:
    """``image`` as a uint8 ``(H, W, 3)`` array; ``ValueError`` otherwise."""
    arr = np.asarray(image)
    if arr.dtype != np.uint8 or arr.ndim != 3 or arr.shape[2] != 3:
        raise ValueError(f"expected a uint8 (H, W, 3) RGB image, got {arr.dtype} {arr.shape}")
    return arr


def in_lab(image: np.ndarray, fn: Any) -> np.ndarray:
    """Apply ``fn`` to the float64 CIELAB (D65) values of a uint8 RGB image ``(H, W, 3)``
    and return the result as uint8 RGB (clipped to the sRGB gamut, rounded)."""
    from skimage.color import lab2rgb, rgb2lab

    lab = fn(rgb2lab(check_image(image)))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "negative Z values" when clipping out-of-gamut
        rgb = lab2rgb(lab)
    return round_uint8(rgb * 255.0)


def _pil(image: np.ndarray) -> Image.Image:
    return Image.fromarray(np.ascontiguousarray(image), mode="RGB")


def _from_pil(im: Image.Image) -> np.ndarray:
    if im.mode != "RGB":
        im = im.convert("RGB")
    return np.asarray(im).copy()


def check_number(cls_name: str, name: str, value: Any, lo: float | None = None, hi: float | None = None) -> None:
    """Raise :class:`ConfigError` unless ``value`` is a finite number within ``[lo, hi]``."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ConfigError(f"{cls_name}: parameter {name!r} must be a finite number, got {value!r}")
    if lo is not None and value < lo:
        raise ConfigError(f"{cls_name}: parameter {name!r} must be >= {lo}, got {value!r}")
    if hi is not None and value > hi:
        raise ConfigError(f"{cls_name}: parameter {name!r} must be <= {hi}, got {value!r}")


def _integer(cls_name: str, name: str, value: Any, lo: int, hi: int) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise ConfigError(f"{cls_name}: parameter {name!r} must be an integer, got {value!r}")
    if not lo <= int(value) <= hi:
        raise ConfigError(f"{cls_name}: parameter {name!r} must be in [{lo}, {hi}], got {value!r}")


@dataclass(frozen=True)
class Op:
    """Base class of all operations (see module docstring)."""

    NAME: ClassVar[str] = ""
    KIND: ClassVar[str] = ""
    POINTWISE: ClassVar[bool] = False

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if cls.NAME:
            OPS.register(cls.NAME, cls)

    def apply(self, image: np.ndarray) -> np.ndarray:
        """Apply the op to a uint8 ``(H, W, 3)`` RGB image; returns a new uint8 image."""
        raise NotImplementedError

    def to_dict(self) -> dict[str, Any]:
        """``{"op": NAME, **params}``, JSON-able; inverse of :func:`op_from_dict`."""
        return {"op": self.NAME, **{f.name: getattr(self, f.name) for f in dataclasses.fields(self)}}


def registered_ops() -> dict[str, type[Op]]:
    """Name -> class of every known operation (a copy of :data:`OPS`, registration order)."""
    return dict(OPS.items())


def op_from_dict(d: dict[str, Any]) -> Op:
    """Rebuild an operation from :meth:`Op.to_dict` output.

    Raises:
        ConfigError: unknown op name (:class:`~harmonykit.registry.UnknownNameError`),
            missing/unknown parameter or invalid value.

    >>> op_from_dict({"op": "pilgram", "filter": "moon"})
    PilgramFilter(filter='moon')
    """
    if not isinstance(d, dict) or "op" not in d:
        raise ConfigError(f"an operation must be a dict with an 'op' key, got {d!r}")
    name = d["op"]
    cls = OPS.get(name)
    params = {k: v for k, v in d.items() if k != "op"}
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(params) - names)
    missing = sorted(names - set(params))
    if unknown or missing:
        raise ConfigError(
            f"operation {name!r}: "
            + "; ".join(
                s for s in (
                    f"unknown parameter(s) {unknown}" if unknown else "",
                    f"missing parameter(s) {missing}" if missing else "",
                ) if s
            )
        )
    return cls(**params)


# --------------------------------------------------------------------------- filters


@dataclass(frozen=True)
class PilgramFilter(Op):
    """One pilgram Instagram filter, e.g. ``PilgramFilter("clarendon")``.

    Some filters use position-dependent gradients (vignettes), so this op is not pointwise:
    it must see the whole image.
    """

    NAME: ClassVar[str] = "pilgram"
    KIND: ClassVar[str] = "filter"
    filter: str

    def __post_init__(self) -> None:
        if self.filter not in ALL_PILGRAM_FILTERS:
            raise ConfigError(
                f"PilgramFilter: unknown filter {self.filter!r}; known: {', '.join(ALL_PILGRAM_FILTERS)}"
            )

    def apply(self, image: np.ndarray) -> np.ndarray:
        import pilgram

        return _from_pil(getattr(pilgram, self.filter)(_pil(check_image(image))))


# --------------------------------------------------------------------------- css adjustments


@dataclass(frozen=True)
class Contrast(Op):
    """CSS ``contrast(amount)``: ``round(x * amount - 127.5 * amount + 127.5)``; 1 = identity."""

    NAME: ClassVar[str] = "contrast"
    KIND: ClassVar[str] = "adjust"
    POINTWISE: ClassVar[bool] = True
    amount: float

    def __post_init__(self) -> None:
        check_number("Contrast", "amount", self.amount, lo=0.0)

    def apply(self, image: np.ndarray) -> np.ndarray:
        import pilgram.css

        return _from_pil(pilgram.css.contrast(_pil(check_image(image)), self.amount))


@dataclass(frozen=True)
class Grayscale(Op):
    """CSS ``grayscale(amount)``, ``amount`` in ``[0, 1]`` (0 = identity, 1 = fully gray)."""

    NAME: ClassVar[str] = "grayscale"
    KIND: ClassVar[str] = "adjust"
    POINTWISE: ClassVar[bool] = True
    amount: float

    def __post_init__(self) -> None:
        check_number("Grayscale", "amount", self.amount, lo=0.0, hi=1.0)

    def apply(self, image: np.ndarray) -> np.ndarray:
        import pilgram.css

        return _from_pil(pilgram.css.grayscale(_pil(check_image(image)), self.amount))


@dataclass(frozen=True)
class HueRotate(Op):
    """CSS ``hue-rotate(deg)`` (luminance-preserving colour matrix); 0 = identity."""

    NAME: ClassVar[str] = "hue_rotate"
    KIND: ClassVar[str] = "adjust"
    POINTWISE: ClassVar[bool] = True
    deg: float

    def __post_init__(self) -> None:
        check_number("HueRotate", "deg", self.deg, lo=-360.0, hi=360.0)

    def apply(self, image: np.ndarray) -> np.ndarray:
        import pilgram.css

        return _from_pil(pilgram.css.hue_rotate(_pil(check_image(image)), self.deg))


@dataclass(frozen=True)
class Saturate(Op):
    """CSS ``saturate(amount)``; 1 = identity, 0 = gray, > 1 oversaturates."""

    NAME: ClassVar[str] = "saturate"
    KIND: ClassVar[str] = "adjust"
    POINTWISE: ClassVar[bool] = True
    amount: float

    def __post_init__(self) -> None:
        check_number("Saturate", "amount", self.amount, lo=0.0)

    def apply(self, image: np.ndarray) -> np.ndarray:
        import pilgram.css

        return _from_pil(pilgram.css.saturate(_pil(check_image(image)), self.amount))


@dataclass(frozen=True)
class Sepia(Op):
    """CSS ``sepia(amount)``, ``amount`` in ``[0, 1]`` (0 = identity)."""

    NAME: ClassVar[str] = "sepia"
    KIND: ClassVar[str] = "adjust"
    POINTWISE: ClassVar[bool] = True
    amount: float

    def __post_init__(self) -> None:
        check_number("Sepia", "amount", self.amount, lo=0.0, hi=1.0)

    def apply(self, image: np.ndarray) -> np.ndarray:
        import pilgram.css

        return _from_pil(pilgram.css.sepia(_pil(check_image(image)), self.amount))


@dataclass(frozen=True)
class LabScale(Op):
    """Paper eq. 1: multiply CIELAB ``L``, ``a``, ``b`` by ``l``, ``a``, ``b``.

    CIELAB is D65 (scikit-image's ``rgb2lab``/``lab2rgb``, float64), so ``a``/``b`` are
    centred on 0 and scaling them scales chroma without shifting hue. The result is
    clipped to the sRGB gamut and rounded to uint8. Deterministic (pure float64 NumPy).

    >>> img = np.array([[[120, 60, 30]]], np.uint8)
    >>> LabScale(1.0, 1.0, 1.0).apply(img).tolist()
    [[[120, 60, 30]]]
    """

    NAME: ClassVar[str] = "lab_scale"
    KIND: ClassVar[str] = "adjust"
    POINTWISE: ClassVar[bool] = True
    l: float  # noqa: E741 - the paper's name for the L factor
    a: float
    b: float

    def __post_init__(self) -> None:
        for name in ("l", "a", "b"):
            check_number("LabScale", name, getattr(self, name), lo=0.0, hi=10.0)

    def apply(self, image: np.ndarray) -> np.ndarray:
        factors = np.array([self.l, self.a, self.b], dtype=np.float64)
        return in_lab(image, lambda lab: lab * factors)


# --------------------------------------------------------------------------- degradations


@dataclass(frozen=True)
class GaussianNoise(Op):
    """Additive Gaussian noise with standard deviation ``sigma`` (0..255 units), own ``seed``."""

    NAME: ClassVar[str] = "gaussian_noise"
    KIND: ClassVar[str] = "degrade"
    sigma: float
    seed: int

    def __post_init__(self) -> None:
        check_number("GaussianNoise", "sigma", self.sigma, lo=0.0)
        _integer("GaussianNoise", "seed", self.seed, 0, 2**63 - 1)

    def apply(self, image: np.ndarray) -> np.ndarray:
        img = check_image(image)
        noise = np.random.default_rng(self.seed).normal(0.0, self.sigma, size=img.shape)
        return round_uint8(img + noise)


@dataclass(frozen=True)
class LaplaceNoise(Op):
    """Additive Laplace noise with scale ``scale`` (0..255 units), own ``seed``."""

    NAME: ClassVar[str] = "laplace_noise"
    KIND: ClassVar[str] = "degrade"
    scale: float
    seed: int

    def __post_init__(self) -> None:
        check_number("LaplaceNoise", "scale", self.scale, lo=0.0)
        _integer("LaplaceNoise", "seed", self.seed, 0, 2**63 - 1)

    def apply(self, image: np.ndarray) -> np.ndarray:
        img = check_image(image)
        noise = np.random.default_rng(self.seed).laplace(0.0, self.scale, size=img.shape)
        return round_uint8(img + noise)


@dataclass(frozen=True)
class PoissonNoise(Op):
    """Shot noise: ``poisson(x / 255 * peak) / peak * 255``; a lower ``peak`` is noisier."""

    NAME: ClassVar[str] = "poisson_noise"
    KIND: ClassVar[str] = "degrade"
    peak: float
    seed: int

    def __post_init__(self) -> None:
        check_number("PoissonNoise", "peak", self.peak, lo=1e-3)
        _integer("PoissonNoise", "seed", self.seed, 0, 2**63 - 1)

    def apply(self, image: np.ndarray) -> np.ndarray:
        img = check_image(image)
        lam = img.astype(np.float64) * (self.peak / 255.0)
        counts = np.random.default_rng(self.seed).poisson(lam)
        return round_uint8(counts * (255.0 / self.peak))


def motion_kernel(length: int, angle: float) -> np.ndarray:
    """Normalised ``(length, length)`` line kernel through the centre at ``angle`` degrees.

    >>> k = motion_kernel(3, 0.0)
    >>> k.tolist()
    [[0.0, 0.0, 0.0], [0.3333333333333333, 0.3333333333333333, 0.3333333333333333], [0.0, 0.0, 0.0]]
    """
    k = np.zeros((length, length), dtype=np.float64)
    c = (length - 1) / 2.0
    dx, dy = math.cos(math.radians(angle)), -math.sin(math.radians(angle))
    for t in np.linspace(-c, c, 4 * length + 1):
        k[int(round(c + t * dy)), int(round(c + t * dx))] = 1.0
    return k / k.sum()


@dataclass(frozen=True)
class MotionBlur(Op):
    """Linear motion blur: ``length`` pixels (odd, >= 3) at ``angle`` degrees, reflect edges."""

    NAME: ClassVar[str] = "motion_blur"
    KIND: ClassVar[str] = "degrade"
    length: int
    angle: float

    def __post_init__(self) -> None:
        _integer("MotionBlur", "length", self.length, 1, 99)
        check_number("MotionBlur", "angle", self.angle, lo=-360.0, hi=360.0)

    def apply(self, image: np.ndarray) -> np.ndarray:
        from scipy.ndimage import convolve

        img = check_image(image).astype(np.float64)
        k = motion_kernel(int(self.length), float(self.angle))
        out = np.stack([convolve(img[..., c], k, mode="reflect") for c in range(3)], axis=2)
        return round_uint8(out)


@dataclass(frozen=True)
class GaussianBlur(Op):
    """Gaussian blur with standard deviation ``sigma`` pixels (scipy, reflect edges)."""

    NAME: ClassVar[str] = "gaussian_blur"
    KIND: ClassVar[str] = "degrade"
    sigma: float

    def __post_init__(self) -> None:
        check_number("GaussianBlur", "sigma", self.sigma, lo=0.0, hi=50.0)

    def apply(self, image: np.ndarray) -> np.ndarray:
        from scipy.ndimage import gaussian_filter

        img = check_image(image).astype(np.float64)
        return round_uint8(gaussian_filter(img, sigma=(self.sigma, self.sigma, 0.0), mode="reflect"))


@dataclass(frozen=True)
class Jpeg(Op):
    """JPEG round trip at ``quality`` (1..95, Pillow/libjpeg, 4:2:0 subsampling)."""

    NAME: ClassVar[str] = "jpeg"
    KIND: ClassVar[str] = "degrade"
    quality: int

    def __post_init__(self) -> None:
        _integer("Jpeg", "quality", self.quality, 1, 95)

    def apply(self, image: np.ndarray) -> np.ndarray:
        buf = io.BytesIO()
        _pil(check_image(image)).save(buf, format="JPEG", quality=int(self.quality), subsampling=2)
        buf.seek(0)
        with Image.open(buf) as im:
            return _from_pil(im)
