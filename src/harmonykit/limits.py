"""The documented range of every numeric option and API field, and the one validator.

The command line (``harmonykit harmonize --work-size``...), the Python API
(:class:`~harmonykit.inference.Harmonizer`, :class:`~harmonykit.inference.EditSession`) and
the web editor (its JSON fields) all check their numbers with :func:`check` (and the
operator edits with :func:`check_edits`), against :data:`RANGES`. A value outside its
range raises :class:`OutOfRangeError` (a :class:`~harmonykit.errors.ConfigError`: the
command line exits with status 2, the web editor answers 422), with one line that names the
option, the value and the range::

    --work-size 100000 is out of range: must be within 16..2048 (pixels per side of the network input)

Bounds are inclusive. Non-finite numbers (NaN, inf) are always out of range. The table in
``docs/inference.md`` ("Option ranges") lists the same ranges.

>>> check("work_size", 256, "--work-size")
256
>>> check("work_size", 100000, "--work-size")
Traceback (most recent call last):
...
harmonykit.limits.OutOfRangeError: --work-size 100000 is out of range: must be within 16..2048 (pixels per side of the network input)
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from harmonykit.errors import ConfigError

__all__ = ["OutOfRangeError", "Range", "RANGES", "WorkSize", "GAIN_LIMIT", "OFFSET_LIMITS", "MUL_OFFSET_LIMIT", "check",
           "check_edits", "check_channels", "offset_limit"]


class OutOfRangeError(ConfigError):
    """A number outside its documented range (:data:`RANGES`); the CLI exits with status 2,
    the web editor answers 422."""

    status_code = 422


@dataclass(frozen=True)
class Range:
    """``lo..hi`` (inclusive); ``integer``: whole numbers only; ``zero``: ``0`` is also
    accepted (it means something special, said in ``unit``)."""

    lo: float
    hi: float
    unit: str
    integer: bool = True
    zero: bool = False

    def text(self) -> str:
        """``16..2048 (pixels ...)``, or ``0 or 11..4096 (...)``."""
        span = f"{self.lo:g}..{self.hi:g}"
        return f"{'0 or ' if self.zero else ''}{span} ({self.unit})"


#: name -> range: the options and fields of the CLI, the API and the web editor
RANGES: dict[str, Range] = {
    # the network's input: memory grows with its square (a 2048 x 2048 pass of the default
    # model needs a few GB; 100000 asked for 120 GB)
    "work_size": Range(16, 2048, "pixels per side of the network input"),
    "eval_size": Range(11, 4096, "scoring size in pixels; 0 = original resolution", zero=True),
    "batch_size": Range(1, 256, "images per model call"),
    "workers": Range(0, 64, "processes"),
    "limit": Range(1, 10**9, "items"),
    "om_threshold": Range(1e-6, 1.0, "fraction of each channel's unit", integer=False),
    "network_threads": Range(1, 1024, "CPU threads"),
    "tile_rows": Range(1, 1 << 20, "rows per tile"),
    "max_side": Range(16, 16384, "pixels; 0 = the image's own size", zero=True),
    "port": Range(1, 65535, "TCP port"),
    "max_sessions": Range(1, 1024, "images kept for editing"),
    "preview_side": Range(64, 4096, "pixels, the longer side of the preview"),
    "max_upload_mb": Range(0.001, 10240, "MB per file", integer=False),
    "gain": Range(-10, 10, "a factor on the model's change; 1 keeps it", integer=False),
    "point": Range(0, 1, "a fraction of the image's width / height: inside the image", integer=False),
    # composites from a cut-out (``harmonykit composite``, ``paste_cutout``, the editor's
    # ``POST /api/composites``): the top-left corner may lie left of / above the background
    "position": Range(-16384, 16384, "pixels: the cut-out's top-left corner on the background"),
    "cutout_scale": Range(0.01, 20, "a factor on the cut-out's size", integer=False),
    "cutout_side": Range(1, 16384, "pixels per side of the scaled cut-out"),
    "network_every": Range(1, 30, "frames: the network runs on every Nth frame of a clip"),
    "smoothing": Range(0, 0.999, "EMA decay of the temporal smoothing (0 = frames independent)", integer=False),
    "cut_threshold": Range(0.001, 1, "colour-histogram distance that counts as a scene cut", integer=False),
    "crf": Range(0, 51, "x264 quality (0 lossless, 18 visually lossless)"),
    "bench_size": Range(16, 4096, "pixels per side of a benchmark pair"),
    "seed": Range(0, 2**32 - 1, "a whole number"),
    "probability": Range(0, 1, "a probability", integer=False),
    "samples_per_image": Range(1, 1000, "composites per source photo"),
    "val_fraction": Range(0, 0.9, "the share of source photos in the val split", integer=False),
    "frames": Range(2, 100000, "frames per clip"),
    "fps": Range(1, 240, "frames per second"),
    "points_per_side": Range(1, 256, "SAM point grid per side"),
    "n_segments": Range(1, 100000, "superpixels"),
    "compactness": Range(0.001, 10000, "SLIC compactness", integer=False),
    "felzenszwalb_scale": Range(0.001, 1e6, "Felzenszwalb scale", integer=False),
    "min_size": Range(1, 10**8, "pixels"),
}

#: hard bounds of a gain (factor on the change from identity); the editor's sliders use a
#: narrower range (``harmonykit.inference.editing.GAIN_RANGE``)
GAIN_LIMIT = 10.0
#: hard bounds of an offset, by channel: the whole natural range (L 0..100, CIELAB a/b
#: about +-128, hue 360 degrees, HLS lightness / saturation 0..1, factors up to 10)
OFFSET_LIMITS: dict[str, float] = {"l_add@lab": 100.0, "a_add@lab": 128.0, "b_add@lab": 128.0,
                                   "h_add@hls": 360.0, "l_add@hls": 1.0, "s_add@hls": 1.0}
MUL_OFFSET_LIMIT = 10.0


def check(name: str, value: float | int, label: str | None = None) -> float | int:
    """``value`` when it lies in ``RANGES[name]`` (an ``int`` for whole-number ranges);
    else :class:`OutOfRangeError` naming ``label`` (default ``name``)."""
    r = RANGES[name]
    label = label or name
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise OutOfRangeError(f"{label} {value!r} is not a number: must be within {r.text()}") from None
    ok = math.isfinite(v) and ((r.lo <= v <= r.hi) or (r.zero and v == 0))
    if ok and r.integer and v != int(v):
        raise OutOfRangeError(f"{label} {value!r} must be a whole number within {r.text()}")
    if not ok:
        raise OutOfRangeError(f"{label} {value:g} is out of range: must be within {r.text()}")
    return int(v) if r.integer else v


@dataclass(frozen=True)
class WorkSize:
    """The network's input size ``(height, width)``, validated once (:data:`RANGES`
    ``work_size``: 16..2048 per side); the one type the command line, the API, the web
    editor, video and the evaluator hand to :mod:`harmonykit.pipeline`.

    >>> WorkSize.of(256)
    WorkSize(height=256, width=256)
    >>> WorkSize.of((24, 40)).size
    (24, 40)
    >>> WorkSize.of(None) is None
    True
    >>> WorkSize.of(8, "--work-size")
    Traceback (most recent call last):
    ...
    harmonykit.limits.OutOfRangeError: --work-size 8 is out of range: must be within 16..2048 (pixels per side of the network input)
    """

    height: int
    width: int

    def __post_init__(self) -> None:
        check("work_size", self.height, "work_size")
        check("work_size", self.width, "work_size")

    @classmethod
    def of(cls, value: WorkSize | int | tuple[int, int] | list[int] | None, label: str = "work_size") -> WorkSize | None:
        """``value`` (an int: square; ``(height, width)``; a :class:`WorkSize`) checked;
        ``None`` stays ``None`` (the network runs at the image's own size)."""
        if value is None or isinstance(value, WorkSize):
            return value
        if isinstance(value, (tuple, list)):
            if len(value) != 2:
                raise ConfigError(f"{label} must be an int or (height, width), got {value!r}")
            return cls(int(check("work_size", value[0], label)), int(check("work_size", value[1], label)))
        side = int(check("work_size", value, label))
        return cls(side, side)

    @property
    def size(self) -> tuple[int, int]:
        """``(height, width)``."""
        return self.height, self.width


def offset_limit(name: str, space: str) -> float:
    """The bound of an offset of channel ``name`` in colour space ``space``."""
    return MUL_OFFSET_LIMIT if name.endswith("_mul") else OFFSET_LIMITS[f"{name}@{space}"]


def check_channels(names: Iterable[str], space: str) -> None:
    """Raise :class:`~harmonykit.errors.ConfigError` for channel names the colour space lacks."""
    from harmonykit.operators import SPACES

    valid = [f"{c}_{o}" for c in SPACES[space] for o in ("mul", "add")]
    bad = [n for n in names if n not in valid]
    if bad:
        raise ConfigError(f"unknown operator channel(s) {', '.join(bad)} for {space} masks; valid: {', '.join(valid)}")


def check_edits(gains: Mapping[str, float], offsets: Mapping[str, float], space: str, prefix: str = "--") -> None:
    """Raise for unknown channels, or gains / offsets outside their bounds
    (``|gain| <= GAIN_LIMIT``; offsets within the channel's natural range,
    :data:`OFFSET_LIMITS`): an absurd value (``l_add=1e308``) would render a black or white
    image that looks like a result. ``prefix``: ``"--"`` names the CLI options (``--gain
    l_add=...``), ``""`` the API fields (``gain l_add=...``).

    >>> check_edits({"l_add": 1.5}, {"a_add": -5.0}, "lab")
    >>> check_edits({"l_add": 1e308}, {}, "lab")
    Traceback (most recent call last):
    ...
    harmonykit.limits.OutOfRangeError: --gain l_add=1e+308 is out of range: gains must be within -10..10 (a factor on the model's change; 1 keeps it)
    """
    from harmonykit.operators import CHANNEL_UNITS

    check_channels([*gains, *offsets], space)
    for name, g in gains.items():
        if not math.isfinite(g) or abs(g) > GAIN_LIMIT:
            raise OutOfRangeError(f"{prefix}gain {name}={g:g} is out of range: gains must be within "
                                  f"{-GAIN_LIMIT:g}..{GAIN_LIMIT:g} ({RANGES['gain'].unit})")
    for name, v in offsets.items():
        limit = offset_limit(name, space)
        if not math.isfinite(v) or abs(v) > limit:
            unit = CHANNEL_UNITS.get((space, name), "")
            raise OutOfRangeError(f"{prefix}offset {name}={v:g} is out of range: offsets of {name} must be within "
                                  f"{-limit:g}..{limit:g} ({unit})")
