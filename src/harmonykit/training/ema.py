"""Exponential moving average of a model's weights (paper: decay 0.999).

After every optimizer step: ``ema = decay * ema + (1 - decay) * param`` for parameters;
buffers are copied. The EMA copy is always in eval mode and never needs gradients; it is
what ``RUN/weights`` holds.
"""

from __future__ import annotations

import copy

import torch
from torch import nn

__all__ = ["EMA"]


class EMA:
    """EMA of ``model``'s parameters.

    >>> m = nn.Linear(1, 1, bias=False); _ = m.weight.data.fill_(0.0)
    >>> ema = EMA(m, decay=0.9); _ = m.weight.data.fill_(1.0); ema.update(m)
    >>> round(ema.module.weight.item(), 6)  # 0.9 * 0 + 0.1 * 1
    0.1
    """

    def __init__(self, model: nn.Module, decay: float = 0.999) -> None:
        if not 0.0 <= decay < 1.0:
            raise ValueError(f"EMA decay must be in [0, 1), got {decay}")
        self.decay = float(decay)
        self.module = copy.deepcopy(model).eval()
        for p in self.module.parameters():
            p.requires_grad_(False)

    @torch.no_grad()
    def update(self, model: nn.Module) -> None:
        """One EMA step towards ``model`` (same architecture, not DDP-wrapped)."""
        ema_params = list(self.module.parameters())
        params = [p.detach() for p in model.parameters()]
        if ema_params:
            torch._foreach_lerp_(ema_params, params, 1.0 - self.decay)
        for eb, b in zip(self.module.buffers(), model.buffers()):
            eb.copy_(b)

    def state_dict(self) -> dict[str, torch.Tensor]:
        return self.module.state_dict()

    def load_state_dict(self, state: dict[str, torch.Tensor]) -> None:
        self.module.load_state_dict(state)
