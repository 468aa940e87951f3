"""What is evaluated, and with which mask: the runner (:func:`harmonykit.runners.resolve`),
its row label, the mask setting and what the OM IoU scores.

Mask settings (the papers' protocols are the defaults):

========================  ======================  ======================================
benchmark                 runner ``mask_use``     what the method gets
========================  ======================  ======================================
harmonykit / triptych     ``never``               nothing (Sg-MMH setting)
(multi-mask)              ``optional``            zeros; the union mask with ``with_mask``
                          ``required`` / baseline the ground-truth union mask ("oracle mask")
iHarmony4 (single mask)   ``optional``/``required`` the foreground mask (SRIN setting);
                                                  ``optional`` with ``mask_free``: zeros
                          ``never``               nothing
========================  ======================  ======================================
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harmonykit.baselines import is_baseline
from harmonykit.errors import ConfigError
from harmonykit.evaluation.options import EvalOptions
from harmonykit.runners import Runner, RunnerKind, resolve
from harmonykit.runners.resolver import RunnerSpec

__all__ = [
    "MULTI_MASK_LAYOUTS",
    "EvalMethod",
    "resolve_method",
    "default_label",
    "MaskDecision",
    "decide_mask",
    "om_iou_source",
]

#: layouts whose pairs carry several perturbed regions and no input mask (Sg-MMH)
MULTI_MASK_LAYOUTS = ("harmonykit", "triptych")


@dataclass(frozen=True)
class EvalMethod:
    """A runner and its row label in the report's tables."""

    runner: Runner
    label: str

    def settings(self) -> dict[str, Any]:
        """``settings.model`` of ``metrics.json``."""
        r = self.runner
        return {"spec": r.spec, "label": self.label, "kind": r.kind, "name": r.name,
                "description": r.description, "mask_use": r.mask_use, "uses_regions": r.uses_regions}


def resolve_method(spec: RunnerSpec, device: str = "cpu", label: str | None = None,
                   weights: str = "ema") -> EvalMethod:
    """The runner of ``spec`` (:func:`harmonykit.runners.resolve`) with its label:
    ``label``, else :func:`default_label` of a path or name (`` (raw)`` appended for
    ``weights="raw"``), else the runner's name for an object."""
    runner = resolve(spec, device, weights=weights)  # type: ignore[arg-type]  (validated there)
    if label is None:
        if isinstance(spec, (str, Path)):
            label = default_label(spec) + (" (raw)" if weights == "raw" and runner.kind == "model" else "")
        else:
            label = runner.name
    return EvalMethod(runner, label)


def default_label(spec: Any) -> str:
    """Row label of a method: a baseline's name, a run folder's name (for ``run/weights``
    the run's), or the packaged name.

    >>> default_label("reinhard"), default_label("runs/om/weights")
    ('reinhard', 'om')
    """
    name = getattr(spec, "name", None)
    if isinstance(name, str) and not isinstance(spec, (str, Path)):
        return name
    p = Path(str(spec)).expanduser()
    if is_baseline(str(spec)) and not p.exists():
        return str(spec)
    p = p.resolve() if p.exists() else p
    return (p.parent.name if p.name == "weights" else p.name) or str(spec)


@dataclass(frozen=True)
class MaskDecision:
    """Whether the method gets the benchmark's mask, and how the report says it."""

    give: bool
    oracle: bool
    short: str
    text: str


def decide_mask(multi_mask: bool, mask_use: str, with_mask: bool = False, kind: RunnerKind = "model",
                mask_free: bool = False) -> MaskDecision:
    """The mask setting (see the module docstring's table).

    >>> decide_mask(True, "never").short, decide_mask(True, "required").short
    ('mask-free', 'oracle mask')
    >>> decide_mask(False, "required").give
    True
    >>> decide_mask(False, "optional", mask_free=True).short
    'mask-free'
    """
    what = "baseline" if kind == "baseline" else "model"
    if mask_use == "never":
        where = "(Sg-MMH setting)" if multi_mask else "(the model never uses a mask)"
        return MaskDecision(False, False, "mask-free", f"mask-free: the {what} sees the composite only {where}")
    if not multi_mask and mask_use == "optional" and mask_free:
        return MaskDecision(False, False, "mask-free",
                            "mask-free: the model's mask channel is zeros (--mask-free on a single-mask benchmark)")
    if not multi_mask:
        return MaskDecision(True, False, "mask", "the foreground mask is given (iHarmony4 / SRIN setting)")
    if mask_use == "optional" and not with_mask:
        return MaskDecision(False, False, "mask-free",
                            "mask-free: the model's mask channel is zeros (Sg-MMH setting; --with-mask gives the union mask)")
    if mask_use == "optional":
        return MaskDecision(True, True, "oracle mask",
                            "oracle mask: the ground-truth union of the perturbed regions is given (--with-mask)")
    return MaskDecision(True, True, "oracle mask",
                        f"oracle mask: the {what} requires a mask, so it gets the ground-truth union of the "
                        "perturbed regions (information a mask-free Sg-MMH model does not have)")


def om_iou_source(runner: Runner, opts: EvalOptions) -> str | None:
    """What the OM IoU of ``runner`` binarises: ``"localisation"``, ``"add"`` or ``None``
    (a baseline).

    Raises:
        ConfigError: ``om_iou_from="localisation"`` for a model without a localisation
            gate; the paper's protocol for a model that is not add-only.
    """
    if runner.kind == "baseline":
        return None
    if opts.om_iou_protocol == "paper":
        channels = runner.channels
        if not channels or not all(c.endswith("_add") for c in channels):
            raise ConfigError(
                f"the paper's OM IoU protocol scores an add-only operator-mask model (head lab_add or hls_add); "
                f"model {runner.name!r} has channels {', '.join(channels) or 'none'}"
            )
        return "add"
    gated = runner.has_localisation
    if opts.om_iou_from == "localisation" and not gated:
        raise ConfigError(f"om_iou_from=localisation: model {runner.name!r} has no localisation gate")
    return "localisation" if gated and opts.om_iou_from != "add" else "add"
