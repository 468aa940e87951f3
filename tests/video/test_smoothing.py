"""The temporal smoothers and the scene-cut rule (no PyAV needed)."""

from __future__ import annotations

import pytest
import torch

from harmonykit.video.smoothing import (
    MaskSmoother,
    ProbabilityEMA,
    SceneCutDetector,
    histogram_distance,
)


def _ident() -> torch.Tensor:
    return torch.tensor([1.0, 0.0])  # l_mul, l_add


def test_constant_input_is_a_fixed_point_and_outside_the_gate_is_identity():
    s = MaskSmoother(_ident(), 0.8)
    gate = torch.zeros(1, 1, 4, 4)
    gate[..., :2, :] = 1.0
    v = torch.stack([1 + 0.5 * gate[0, 0], 3.0 * gate[0, 0]])[None]
    for _ in range(5):
        out = s(v, gate)
        assert torch.allclose(out, v, atol=1e-6)
    moved = torch.zeros_like(gate)
    moved[..., 2:, :] = 1.0  # the object moved: old cells are identity, new cells their own value
    v2 = torch.stack([1 + 0.2 * moved[0, 0], 1.0 * moved[0, 0]])[None]
    out = s(v2, moved)
    assert torch.equal(out[..., :2, :], torch.tensor([1.0, 0.0]).view(1, 2, 1, 1).expand(1, 2, 2, 4))
    assert torch.allclose(out[..., 2:, :], v2[..., 2:, :], atol=1e-6)


def test_flicker_is_damped_and_reset_forgets():
    s = MaskSmoother(_ident(), 0.8)
    outs = []
    for t in range(40):
        v = torch.full((1, 2, 2, 2), 0.0)
        v[:, 0] = 1.0
        v[:, 1] = 5.0 + (2.0 if t % 2 else -2.0)  # +-2 flicker around 5
        outs.append(float(s(v)[0, 1, 0, 0]))
    late = outs[20:]
    assert max(late) - min(late) < 1.0 and abs(sum(late) / len(late) - 5.0) < 0.3
    s.reset()
    v = torch.zeros(1, 2, 2, 2)
    v[:, 1] = 9.0
    assert float(s(v)[0, 1, 0, 0]) == pytest.approx(9.0)
    assert torch.equal(MaskSmoother(_ident(), 0.0)(v), v)


def test_probability_ema_and_cuts():
    ema = ProbabilityEMA(0.5)
    assert float(ema(torch.ones(1, 1, 2, 2))[0, 0, 0, 0]) == 1.0
    assert float(ema(torch.zeros(1, 1, 2, 2))[0, 0, 0, 0]) == 0.5
    ema.reset()
    assert float(ema(torch.zeros(1, 1, 2, 2))[0, 0, 0, 0]) == 0.0
    g = torch.Generator().manual_seed(0)
    scene = torch.rand(1, 3, 16, 40, generator=g)
    other = torch.rand(1, 3, 16, 32, generator=g) * 0.3 + 0.7
    cuts = SceneCutDetector(0.3)
    flags = [cuts(scene[..., i:i + 32]) for i in range(6)] + [cuts(other)]
    assert flags == [True, False, False, False, False, False, True]
    assert histogram_distance(scene[..., :32], scene[..., :32]) == 0.0
    with pytest.raises(ValueError):
        MaskSmoother(_ident(), 1.0)
    with pytest.raises(ValueError):
        SceneCutDetector(0.0)
