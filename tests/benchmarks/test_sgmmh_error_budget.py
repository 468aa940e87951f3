"""benchmarks/results/sgmmh_error_budget.py: regions recovered by replay, and the decomposition adds up."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from harmonykit.data.perturb.engine import PerturbConfig, make_composite
from harmonykit.io import write_image, write_mask


@pytest.fixture(scope="module")
def budget(benchmark_script):
    return benchmark_script("sgmmh_error_budget")


def _label_map(h: int, w: int) -> np.ndarray:
    lm = np.zeros((h, w), np.int32)
    lm[: h // 2, : w // 2] = 1
    lm[: h // 2, w // 2:] = 2
    lm[h // 2:, : w // 2] = 3
    lm[h // 2:, w // 2:] = 4
    return lm


# three of the four labels perturbed, a second op always, no degradation
CONFIG = PerturbConfig(region_fraction=0.5, second_op_prob=1.0, degrade_prob=0.0)


def test_region_pixels_recovers_each_region(budget, astronaut):
    img = np.ascontiguousarray(astronaut[::8, ::8])  # 64 x 64
    lm = _label_map(*img.shape[:2])
    res = make_composite(img, lm, np.random.default_rng(3), CONFIG)
    regions = res.recipe["regions"]
    assert len(regions) == 3
    maps = budget.region_pixels(res.real, res.composite, res.mask > 0, regions)
    changed = np.any(res.composite != res.real, axis=-1)
    for reg, m in zip(regions, maps, strict=True):
        truth = (lm == reg["label"]) & changed
        # a pixel whose colour two regions' op chains give alike goes to the first of them
        assert (m & ~truth).sum() <= 0.02 * truth.sum()
        assert (truth & ~m).sum() <= 0.02 * truth.sum()
    # disjoint, and together they are every changed pixel
    assert int(np.sum(maps, axis=0).max()) == 1
    assert np.array_equal(np.any(maps, axis=0), changed)


def _bench(root: Path, astronaut, n: int = 3) -> Path:
    lines = []
    for k in range(n):
        # 256 x 256, the network's work size: with the mask nothing outside it may change
        img = np.ascontiguousarray(np.roll(astronaut[::2, ::2], 16 * k, axis=1))
        res = make_composite(img, _label_map(*img.shape[:2]), np.random.default_rng(k), CONFIG)
        files = {"composite": f"composite/p{k}.png", "mask": f"mask/p{k}.png", "real": f"real/p{k}.png"}
        write_image(root / files["composite"], res.composite)
        write_image(root / files["real"], res.real)
        write_mask(root / files["mask"], res.mask)
        lines.append(json.dumps({"id": f"p{k}", "files": files, "recipe": res.recipe, "size": list(img.shape[:2])}))
    (root / "manifest.jsonl").write_text("\n".join(lines) + "\n")
    return root


def test_identity_keeps_every_error_and_rows_add_up(tmp_path, budget, astronaut):
    bench = _bench(tmp_path / "bench", astronaut)
    out = tmp_path / "budget.md"
    assert budget.main([str(bench), "--model", "identity", "--out", str(out)]) == 0
    data = json.loads(out.with_suffix(".json").read_text())
    allp = data["pairs"]["all"]
    assert allp["n"] == 3 and allp["composite_sse"] > 0
    # the identity changes nothing: both settings keep the composite's error
    assert allp["mask_free_sse"] == pytest.approx(allp["composite_sse"])
    assert allp["with_mask_sse"] == pytest.approx(allp["composite_sse"])
    groups = data["groups"]
    second = {k: v for k, v in groups.items() if k.startswith("second op")}
    # every region is attributed: the second-op rows hold all of the composite's error
    assert sum(v["share"] for v in second.values()) == pytest.approx(1.0)
    assert sum(v["share"] for k, v in groups.items() if k.startswith("filter")) == pytest.approx(1.0)
    assert groups["outside the mask (unperturbed)"]["share"] == 0.0
    assert data["pairs"]["paper-like"]["n"] + data["pairs"]["other"]["n"] == 3
    assert "| all | 3 |" in out.read_text()


def test_a_model_that_changes_pixels_is_decomposed(tmp_path, budget, astronaut):
    """A real (tiny, random) gated model: the rows' model-error shares add up to its ratios."""
    import torch

    from harmonykit.models import create_model

    torch.manual_seed(0)
    model = create_model("om_unet_tiny", mask_use="optional", gate="learned")
    with torch.no_grad():
        for p in model.head.parameters():
            p.copy_(0.3 * torch.randn(p.shape))
    model.save_pretrained(tmp_path / "m")
    bench = _bench(tmp_path / "bench", astronaut, n=2)
    out = tmp_path / "budget.md"
    assert budget.main([str(bench), "--model", str(tmp_path / "m"), "--out", str(out)]) == 0
    data = json.loads(out.with_suffix(".json").read_text())
    allp, groups = data["pairs"]["all"], data["groups"]
    rows = [v for k, v in groups.items() if k.startswith(("second op", "degraded", "unchanged", "outside"))]
    for setting, key in (("mask_free_share", "mask_free_sse"), ("with_mask_share", "with_mask_sse")):
        assert sum(v[setting] for v in rows) == pytest.approx(allp[key] / allp["composite_sse"], rel=1e-9)
    # a gated model has a localisation: mean p is a probability
    assert all(0.0 <= v["mean_p"] <= 1.0 for v in groups.values())
    # the mask-free model changes pixels outside the mask; with the mask it must not
    outside = groups["outside the mask (unperturbed)"]
    assert outside["mask_free_share"] > 0
    assert outside["with_mask_share"] == pytest.approx(0.0, abs=1e-12)


def test_missing_manifest_is_a_clear_error(tmp_path, budget):
    with pytest.raises(SystemExit, match="no manifest"):
        budget.main([str(tmp_path)])
