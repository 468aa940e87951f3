"""Data order: step-indexed batches, sharding, mask dropout."""

from __future__ import annotations

import torch

from harmonykit.training.data import StepBatchSampler, mask_dropout, mask_dropout_rate
from harmonykit.utils.seeding import rng_for


def test_step_batches_follow_epoch_permutations():
    s = StepBatchSampler(n=5, batch_size=3, seed=7, start_step=0, end_step=4)
    batches = list(s)
    flat = [k for b in batches for k in b]
    # positions 0..11: epoch p // 5, index perm_epoch[p % 5]
    perms = {e: rng_for(7, "order", e).permutation(5) for e in range(3)}
    assert flat == [(p // 5, int(perms[p // 5][p % 5])) for p in range(12)]
    # every epoch visits every item exactly once
    assert sorted(i for e, i in flat if e == 0) == [0, 1, 2, 3, 4]
    assert sorted(i for e, i in flat if e == 1) == [0, 1, 2, 3, 4]


def test_resume_and_ranks_see_the_same_samples():
    full = list(StepBatchSampler(n=7, batch_size=4, seed=1, start_step=0, end_step=5))
    resumed = list(StepBatchSampler(n=7, batch_size=4, seed=1, start_step=3, end_step=5))
    assert resumed == full[3:]
    r0 = list(StepBatchSampler(n=7, batch_size=2, seed=1, start_step=0, end_step=5, rank=0, world_size=2))
    r1 = list(StepBatchSampler(n=7, batch_size=2, seed=1, start_step=0, end_step=5, rank=1, world_size=2))
    # rank 0 takes the first half of each global batch, rank 1 the second half
    assert [a + b for a, b in zip(r0, r1)] == full
    assert len(StepBatchSampler(n=7, batch_size=2, seed=1, start_step=3, end_step=5)) == 2


def test_mask_dropout_is_per_sample_and_seeded():
    mask = torch.ones(8, 1, 3, 3)
    out = mask_dropout(mask, 0.5, seed=3, step=10, rank=0)
    dropped = rng_for(3, "mask_dropout", 10, 0).random(8) < 0.5
    assert out[:, 0, 0, 0].tolist() == [0.0 if d else 1.0 for d in dropped]
    assert torch.equal(out, mask_dropout(mask, 0.5, seed=3, step=10, rank=0))
    assert 0 < int(dropped.sum()) < 8  # both cases occur for this seed
    # whole samples are dropped, never parts of one
    assert set(out.sum(dim=(1, 2, 3)).tolist()) <= {0.0, 9.0}


def test_mask_dropout_curriculum_ramps_linearly_and_holds():
    import pytest

    assert mask_dropout_rate(0.3, None, 10**6, 100) == 0.3  # no end: constant
    rates = [mask_dropout_rate(0.0, 1.0, s, 1000) for s in (0, 250, 500, 1000, 4000)]
    assert rates == pytest.approx([0.0, 0.25, 0.5, 1.0, 1.0])
    down = [mask_dropout_rate(0.8, 0.2, s, 100) for s in range(0, 101, 10)]
    assert all(a > b for a, b in zip(down, down[1:])) and down[-1] == pytest.approx(0.2)
    with pytest.raises(ValueError, match="iterations"):
        mask_dropout_rate(0.0, 1.0, 5, 0)
    # early in a 0 -> 1 curriculum almost every mask is kept, late almost every one dropped
    mask = torch.ones(64, 1, 2, 2)
    early = mask_dropout(mask, mask_dropout_rate(0.0, 1.0, 10, 1000), seed=0, step=10)
    late = mask_dropout(mask, mask_dropout_rate(0.0, 1.0, 990, 1000), seed=0, step=990)
    assert early.amax(dim=(1, 2, 3)).sum() >= 60 and late.amax(dim=(1, 2, 3)).sum() <= 4


def test_onthefly_exclude_leaves_out_held_out_photos(tmp_path):
    import pytest
    from skimage import data as skdata

    from harmonykit.errors import ConfigError
    from harmonykit.io import write_image
    from harmonykit.training.config import DataConfig
    from harmonykit.training.data import build_dataset

    for name in ("astronaut", "chelsea", "coffee"):
        write_image(tmp_path / f"{name}.png", getattr(skdata, name)()[::8, ::8])
    cfg = DataConfig(kind="onthefly", images=tmp_path, format="generic", split=None, size=32,
                     exclude=["chelsea"])
    ds = build_dataset(cfg, seed=0, uses_regions=False)
    assert sorted(it.id for it in ds.items) == ["astronaut", "coffee"]
    bad = DataConfig(kind="onthefly", images=tmp_path, format="generic", split=None, size=32, exclude=["nope"])
    with pytest.raises(ConfigError, match="nope"):
        build_dataset(bad, seed=0, uses_regions=False)
