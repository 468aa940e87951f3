"""Temporal smoothing of operator masks and localisation over a clip's frames.

Method (stated in ``docs/inference.md``, "Video"):

* **Gate-normalised EMA of the operator masks.** A gated operator-mask model outputs
  ``v = identity + g * r`` at every mask cell, with ``g`` the gate (the given mask, or the
  soft mask a two-stage model derives from its localisation) and ``r`` the change the
  model wants where the object is. With ``d_t = v_t - identity``, the smoother keeps two
  running sums with decay ``a`` (``smoothing``)::

      N_t = a * N_{t-1} + d_t          W_t = a * W_{t-1} + g_t
      v^_t = identity + g_t * N_t / max(W_t, eps)

  i.e. an exponential moving average of ``r`` weighted by how much each frame saw the
  object at that cell, re-gated by *this* frame's gate. Where the gate is 0 (outside the
  object) nothing changes, so a moving object leaves no trail of old corrections behind
  it; cells the object just entered start from their own value. Models without a gate
  use ``g = 1``: a plain EMA of the values. ``a = 0`` turns smoothing off.
* **EMA of the localisation** (mask-free two-stage models): ``p^_t = a p^_{t-1} + (1 - a) p_t``
  before it becomes the soft mask of the mask-given pass.
* **Scene cuts reset both.** A cut is declared when the total-variation distance between
  the 16-bin per-channel colour histograms of consecutive work-size frames, averaged over
  R, G and B, exceeds ``cut_threshold`` (default 0.3): a pan or a zoom keeps the
  histograms close, a cut to another shot does not.
"""

from __future__ import annotations

import torch
from torch import Tensor

from harmonykit.video.settings import DEFAULT_CUT_THRESHOLD, DEFAULT_SMOOTHING

__all__ = ["DEFAULT_CUT_THRESHOLD", "DEFAULT_SMOOTHING", "MaskSmoother", "ProbabilityEMA", "SceneCutDetector",
           "histogram_distance"]

_BINS = 16
_EPS = 1e-3


def _check_decay(a: float) -> float:
    a = float(a)
    if not 0.0 <= a < 1.0:
        raise ValueError(f"smoothing must be in [0, 1), got {a}")
    return a


def _histograms(frame: Tensor) -> Tensor:
    """``(3, BINS)`` normalised per-channel histograms of a ``(1, 3, h, w)`` frame in [0, 1]."""
    x = frame[0].detach().float().clamp(0.0, 1.0).flatten(1)
    idx = (x * _BINS).long().clamp_(max=_BINS - 1)
    h = torch.zeros(3, _BINS, dtype=torch.float32, device=x.device)
    h.scatter_add_(1, idx, torch.ones_like(x))
    return h / x.shape[1]


def histogram_distance(a: Tensor, b: Tensor) -> float:
    """Total-variation distance of the per-channel colour histograms of two frames
    ``(1, 3, h, w)`` in ``[0, 1]``, averaged over channels: 0 (same colours) .. 1.

    >>> x = torch.zeros(1, 3, 4, 4); y = torch.ones(1, 3, 4, 4)
    >>> histogram_distance(x, x), histogram_distance(x, y)
    (0.0, 1.0)
    """
    return float((_histograms(a) - _histograms(b)).abs().sum(dim=1).mean() / 2.0)


class SceneCutDetector:
    """Calls with consecutive frames; returns whether this frame starts a new shot (the
    first frame does)."""

    def __init__(self, threshold: float = DEFAULT_CUT_THRESHOLD) -> None:
        if not 0.0 < float(threshold) <= 1.0:
            raise ValueError(f"cut_threshold must be in (0, 1], got {threshold}")
        self.threshold = float(threshold)
        self._prev: Tensor | None = None
        self.last_distance = 0.0

    def __call__(self, frame: Tensor) -> bool:
        h = _histograms(frame)
        prev, self._prev = self._prev, h
        if prev is None:
            return True
        self.last_distance = float((h - prev).abs().sum(dim=1).mean() / 2.0)
        return self.last_distance > self.threshold


class ProbabilityEMA:
    """``p^_t = a p^_{t-1} + (1 - a) p_t``; :meth:`reset` forgets (the next frame starts it)."""

    def __init__(self, smoothing: float = DEFAULT_SMOOTHING) -> None:
        self.a = _check_decay(smoothing)
        self._state: Tensor | None = None

    def reset(self) -> None:
        self._state = None

    def __call__(self, p: Tensor) -> Tensor:
        if self._state is None or self._state.shape != p.shape or self.a == 0.0:
            self._state = p.detach().clone()
        else:
            self._state.mul_(self.a).add_(p.detach(), alpha=1.0 - self.a)
        return self._state.clone()


class MaskSmoother:
    """The gate-normalised EMA of operator-mask values (module docstring).

    Args:
        identity: ``(C,)`` the identity value of each channel (1 for ``mul``, 0 for ``add``).
        smoothing: the decay ``a`` in ``[0, 1)``.
    """

    def __init__(self, identity: Tensor, smoothing: float = DEFAULT_SMOOTHING) -> None:
        self.a = _check_decay(smoothing)
        self.identity = identity.detach().float().view(1, -1, 1, 1)
        self._num: Tensor | None = None
        self._den: Tensor | None = None

    def reset(self) -> None:
        self._num = self._den = None

    @property
    def primed(self) -> bool:
        """A frame has been seen since the last :meth:`reset`."""
        return self._num is not None

    def current(self, gate: Tensor | None = None) -> Tensor:
        """The smoothed values with this frame's ``gate`` and no new observation (a frame
        the network skipped): ``identity + gate * N / W`` with the state as it is.

        Raises:
            RuntimeError: nothing observed yet (:attr:`primed` is false).
        """
        if self._num is None or self._den is None:
            raise RuntimeError("MaskSmoother.current before any frame was observed")
        ident = self.identity.to(self._num.device)
        g = torch.ones_like(self._num[:, :1]) if gate is None else gate.detach().float().to(self._num.device)
        return ident + g * (self._num / self._den.clamp(min=_EPS))

    def __call__(self, values: Tensor, gate: Tensor | None = None) -> Tensor:
        """Smoothed ``(1, C, h, w)`` values for this frame's ``values`` and ``gate``
        ``(1, 1, h, w)`` in ``[0, 1]`` (``None``: 1 everywhere)."""
        v = values.detach().float()
        ident = self.identity.to(v.device)
        d = v - ident
        g = torch.ones_like(v[:, :1]) if gate is None else gate.detach().float().to(v.device)
        if self._num is None or self._num.shape != d.shape or self.a == 0.0:
            self._num, self._den = d.clone(), g.clone()
        else:
            assert self._den is not None
            self._num.mul_(self.a).add_(d)
            self._den.mul_(self.a).add_(g)
        r = self._num / self._den.clamp(min=_EPS)
        return ident + g * r
