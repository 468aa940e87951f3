"""The mask rule: what a model or baseline does with the foreground mask it is given.

Decided once, here, as a typed value (:class:`MaskUseDecision`), by
:func:`decide_mask_use`; every layer uses the decision: the full-resolution path
(:func:`harmonykit.pipeline.harmonize_images`, under the API, the command line, the web
editor, video and the evaluator), the command line's batch (:mod:`harmonykit.inference.batch`,
which decides before it reads a mask file) and the model itself (:func:`require_mask`, the
presence part of the rule, so that ``forward`` never runs a mask-required model without one).

A runner's ``mask_use`` is ``"never"`` (a given mask is ignored), ``"optional"`` (no mask:
"no foreground known") or ``"required"`` (no mask is an error). A mask that covers nothing
(every value <= 1 %) or everything (every value >= 99 %) is dropped for ``optional`` runners
(harmonized mask-free, with a note) and refused for ``required`` ones (docs/inference.md,
"Masks that cover nothing or everything").

>>> decide_mask_use("never", "m.png", "model 'x'").status
'ignored'
>>> decide_mask_use("required", None, "baseline 'reinhard'").note
"baseline 'reinhard' needs a foreground mask"
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from harmonykit.errors import HarmonykitError

__all__ = ["MaskUse", "MASK_USES", "MaskStatus", "MaskUseDecision", "decide_mask_use", "require_mask",
           "MASK_COVERAGE_TOLERANCE", "mask_coverage"]

#: how a runner uses a foreground mask (``HarmonizationModel.mask_use``)
MaskUse = Literal["never", "optional", "required"]
MASK_USES: tuple[MaskUse, ...] = ("never", "optional", "required")
#: what became of a mask: ``given`` (used), ``absent`` (none given, none needed),
#: ``ignored`` (a mask-free runner), ``empty`` / ``full`` (dropped: harmonized mask-free),
#: ``missing`` (required, none given) and ``unusable`` (required, empty or full): refused
MaskStatus = Literal["given", "absent", "ignored", "empty", "full", "missing", "unusable"]

#: a mask covers nothing when every value is at most this (of full scale), everything when
#: every value is at least ``1 -`` this (a JPEG-saved black or white mask has a little noise)
MASK_COVERAGE_TOLERANCE = 0.01


@dataclass(frozen=True)
class MaskUseDecision:
    """What to do with a mask (:func:`decide_mask_use`).

    Attributes:
        mask: the mask to pass on (the input's, unchanged), or ``None`` (mask-free).
        status: see :data:`MaskStatus`.
        note: the line to show the user: the warning for ``empty`` / ``full``, the note for
            ``ignored``, the error for ``missing`` / ``unusable``; else ``None``.
    """

    mask: Any
    status: MaskStatus
    note: str | None = None

    @property
    def refused(self) -> bool:
        """A required mask is missing or unusable: the input cannot be harmonized."""
        return self.status in ("missing", "unusable")

    @property
    def used(self) -> bool:
        return self.mask is not None

    def checked(self) -> MaskUseDecision:
        """``self``, or :class:`~harmonykit.errors.HarmonykitError` (:attr:`note`) when refused."""
        if self.refused:
            raise HarmonykitError(self.note or "a foreground mask is needed")
        return self


def mask_coverage(mask: Any) -> str | None:
    """``"empty"`` (every value <= 1 %), ``"full"`` (every value >= 99 %) or ``None`` for a
    mask array (uint8 0..255, bool, or float 0..1).

    >>> import numpy as np
    >>> mask_coverage(np.zeros((2, 2), np.uint8)), mask_coverage(np.full((2, 2), 255, np.uint8))
    ('empty', 'full')
    >>> mask_coverage(np.array([[0.0, 1.0]])) is None
    True
    """
    import numpy as np

    m = np.asarray(mask)
    scale = 255.0 if m.dtype == np.uint8 else 1.0
    if m.size == 0 or float(m.max()) <= MASK_COVERAGE_TOLERANCE * scale:
        return "empty"
    if float(m.min()) >= (1.0 - MASK_COVERAGE_TOLERANCE) * scale:
        return "full"
    return None


def require_mask(mask_use: str, given: bool, who: str, hint: str = "") -> None:
    """The presence part of the rule: :class:`~harmonykit.errors.HarmonykitError`
    (``"{who} needs a foreground mask{hint}"``) when ``mask_use`` is ``required`` and no mask
    is ``given``; ``ValueError`` for an unknown ``mask_use``."""
    if mask_use not in MASK_USES:
        raise ValueError(f"mask_use must be one of {', '.join(MASK_USES)}, got {mask_use!r}")
    if mask_use == "required" and not given:
        raise HarmonykitError(f"{who} needs a foreground mask{hint}")


def decide_mask_use(mask_use: str, mask: Any, who: str, *, source: str = "mask", hint: str = "",
                    coverage: bool = True, name: str | None = None) -> MaskUseDecision:
    """The one mask rule.

    Args:
        mask_use: the runner's ``never`` / ``optional`` / ``required``.
        mask: the mask, or ``None``; an array (or anything ``numpy.asarray`` reads) for the
            coverage rule; a path or other handle with ``coverage=False`` (the command line
            decides before it reads a mask file).
        who: names the runner in messages (``"model 'srin_unet'"``).
        source: names the mask in messages (its file, or ``"mask"``).
        hint: appended to the ``missing`` error (how to pass a mask).
        coverage: apply the empty / full rule (needs the values).
        name: names the runner in the ``ignored`` note (default ``who``).

    >>> import numpy as np
    >>> d = decide_mask_use("optional", np.zeros((2, 2), np.uint8), "model 'x'", source="m.png")
    >>> d.status, d.mask, d.note
    ('empty', None, 'm.png: the mask is empty (it covers nothing: every value <= 1%); harmonized mask-free instead')
    >>> decide_mask_use("required", np.ones((2, 2)), "model 'x'").refused
    True
    """
    require_mask(mask_use, True, who)  # validates mask_use
    if mask_use == "never":
        if mask is None:
            return MaskUseDecision(None, "absent")
        return MaskUseDecision(None, "ignored", f"{name or who} does not use a mask; the mask was ignored")
    if mask is None:
        if mask_use == "required":
            return MaskUseDecision(None, "missing", f"{who} needs a foreground mask{hint}")
        return MaskUseDecision(None, "absent")
    cover = mask_coverage(mask) if coverage else None
    if cover is None:
        return MaskUseDecision(mask, "given")
    what = ("is empty (it covers nothing: every value <= 1%)" if cover == "empty" else
            "covers the whole image (every value >= 99%), so there is no background to match")
    if mask_use == "required":
        return MaskUseDecision(None, "unusable", f"{source}: the mask {what}; {who} needs the mask of the pasted region")
    return MaskUseDecision(None, cover, f"{source}: the mask {what}; harmonized mask-free instead")  # type: ignore[arg-type]
