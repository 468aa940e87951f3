"""OM IoU of localisation-gated models: p > 0.5 by default, the add masks on request."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from harmonykit.errors import ConfigError
from harmonykit.evaluation import metrics as M
from harmonykit.evaluation.evaluator import EvalOptions, evaluate
from harmonykit.io import write_image, write_mask
from harmonykit.models import create_model

SIZE = 32


@pytest.fixture(scope="module")
def bench(tmp_path_factory, astronaut):
    """Harmonykit layout: 3 pairs with a box mask of known area, one with an empty mask."""
    root = tmp_path_factory.mktemp("gbench") / "bench"
    areas = []
    for k in range(4):
        real = astronaut[8 * k: 8 * k + 256: 8, 0:256:8].copy()
        mask = np.zeros((SIZE, SIZE), np.uint8)
        if k < 3:
            mask[4: 12 + 4 * k, 6:20] = 255
        comp = real.copy()
        comp[mask > 0] = np.clip(comp[mask > 0] * 0.8 + 20, 0, 255).astype(np.uint8)
        write_image(root / "composite" / f"p{k}.png", comp)
        write_image(root / "real" / f"p{k}.png", real)
        write_mask(root / "mask" / f"p{k}.png", mask)
        areas.append(int((mask > 0).sum()))
    return root, areas


def _gated(bias: float):
    """Gated tiny model whose localisation is the constant sigmoid(bias); operator conv zero."""
    model = create_model("om_unet_tiny", gate="learned")
    with torch.no_grad():
        model.head.gate_out.conv.weight.zero_()
        model.head.gate_out.conv.bias.fill_(bias)
    return model


def _opts(**kw) -> EvalOptions:
    return EvalOptions(size=SIZE, batch_size=2, show_progress=False, lpips=False, figure_rows=0, **kw)


def test_localisation_iou_metric():
    p = np.zeros((4, 4), np.float32)
    p[:2, :2] = 1.0
    m = np.zeros((8, 8), np.float32)
    m[:4, :2] = 1.0  # p upsampled to 8x8 covers rows/cols 0..3 (half of it is the mask)
    assert M.localisation_iou(p, m) == pytest.approx(0.5)
    assert math.isnan(M.localisation_iou(np.zeros((2, 2)), np.zeros((2, 2))))


def test_gated_model_om_iou_uses_localisation(bench):
    root, areas = bench
    res = evaluate(root, _gated(8.0), None, _opts())  # p ~ 1 everywhere
    ious = [r.model["om_iou"] for r in sorted(res.results, key=lambda r: r.id)]
    assert ious[:3] == pytest.approx([a / SIZE**2 for a in areas[:3]])
    assert ious[3] == 0.0  # empty mask, everything predicted as pasted
    assert res.summary["settings"]["om_iou_from"] == "localisation"
    assert any("localisation map p > 0.5" in n for n in res.summary["notes"])
    low = evaluate(root, _gated(-8.0), None, _opts())  # p ~ 0: nothing pasted
    ious = [r.model["om_iou"] for r in sorted(low.results, key=lambda r: r.id)]
    assert ious[:3] == [0.0, 0.0, 0.0] and math.isnan(ious[3])


def test_add_masks_on_request_and_for_ungated_models(bench):
    root, _ = bench
    res = evaluate(root, _gated(8.0), None, _opts(om_iou_from="add"))
    assert res.summary["settings"]["om_iou_from"] == "add"
    # zero operator conv: the add masks change nothing -> IoU 0 wherever there is a foreground
    assert [r.model["om_iou"] for r in sorted(res.results, key=lambda r: r.id)][:3] == [0.0, 0.0, 0.0]
    plain = evaluate(root, create_model("om_unet_tiny"), None, _opts())
    assert plain.summary["settings"]["om_iou_from"] == "add"
    assert evaluate(root, "identity", None, _opts()).summary["settings"]["om_iou_from"] is None
    with pytest.raises(ConfigError, match="no localisation gate"):
        evaluate(root, create_model("om_unet_tiny"), None, _opts(om_iou_from="localisation"))
    with pytest.raises(ConfigError, match="om_iou_from"):
        _opts(om_iou_from="mask").validate()
