"""On-the-fly pairs from a Lalonde-Efros source with a family mix, and the training config."""

from __future__ import annotations

import pytest

import harmonykit.data.onthefly as onthefly
from harmonykit.data.onthefly import OnTheFlyPairs
from harmonykit.data.perturb.families import FamilyMix
from harmonykit.data.perturb.transfer import TransferConfig
from harmonykit.data.sources import open_source
from harmonykit.errors import ConfigError
from harmonykit.utils.seeding import rng_for

MIX = FamilyMix(0.4, 0.4, 0.2)
KEYS = [(0, i) for i in range(10)] + [(1, 2), (3, 7)]


def _ds(db, **kw) -> OnTheFlyPairs:
    items = open_source(db, split="train", val_fraction=0.0)
    return OnTheFlyPairs(items, size=32, mix=MIX, flip=False, seed=4, **kw)


def _bytes(sample) -> tuple:
    return tuple(sample[k].numpy().tobytes() for k in ("composite", "real", "mask")) + (sample["id"],)


def test_mixed_pairs_are_deterministic_per_epoch_and_index(lalonde_db):
    a, b = _ds(lalonde_db), _ds(lalonde_db)
    first = {k: _bytes(a[k]) for k in KEYS}
    assert {k: _bytes(b[k]) for k in reversed(KEYS)} == first  # fresh dataset, other order
    assert {k: _bytes(a[k]) for k in KEYS} == first  # cached sources give the same bytes
    assert first[(0, 2)] != first[(1, 2)]  # another epoch, another pair
    nocache = _ds(lalonde_db, cache=False)
    assert _bytes(nocache[(3, 7)]) == first[(3, 7)]


def test_families_appear_as_drawn(lalonde_db, monkeypatch):
    seen: list[str] = []
    real_make_pair = onthefly.make_pair

    def recording(*args, **kw):
        res = real_make_pair(*args, **kw)
        seen.append(res.recipe.get("family", "sgmmh"))
        return res

    monkeypatch.setattr(onthefly, "make_pair", recording)
    ds = _ds(lalonde_db)
    for epoch, i in KEYS:
        out = ds[(epoch, i)]
        assert out["skipped"] == 0 and out["index"] == i
        # the family is the generator's draw after the crop offsets (flip is off)
        h, w = ds._load(i % len(ds.items))[1].shape
        rng = rng_for(ds.seed, epoch, i)
        rng.integers(0, h - 32 + 1), rng.integers(0, w - 32 + 1)
        expected = MIX.choose(rng)
        assert seen[-1] == expected
        comp, real, mask = out["composite"], out["real"], out["mask"]
        assert comp.shape == real.shape == (3, 32, 32) and mask.shape == (1, 32, 32)
        if expected == "none":
            assert not mask.any() and bool((comp == real).all())
        else:  # regions="labels": only the annotated object (region 1) is perturbed
            m = mask[0] > 0
            assert m.any() and bool((comp[:, ~m] == real[:, ~m]).all())
    assert set(seen) == {"sgmmh", "colour_transfer", "none"}


def test_unreadable_mask_falls_back_to_another_photo(make_lalonde_db):
    db = make_lalonde_db(wrong_size_mask=True)
    items = open_source(db, split="train", val_fraction=0.0)
    assert "image_100013" in {it.id for it in items}  # its size is known only when read
    ds = OnTheFlyPairs(items, size=32, mix=FamilyMix.only("colour_transfer"), seed=0)
    j = [it.id for it in ds.items].index("image_100013")
    out = ds[(0, j)]
    assert out["skipped"] >= 1 and out["id"] != "image_100013"
    assert "image_100013" in ds.failed_items and "objMask is 40x32" in ds.failed_items["image_100013"]


def _write_cfg(path, data_yaml: str):
    path.write_text("data:\n" + data_yaml + "model:\n  name: om_unet_tiny\noptim:\n  iterations: 2\n  milestones: [1]\n  batch_size: 2\n")
    return path


def test_train_config_with_lalonde_source_and_mix(tmp_path, lalonde_db, lalonde_spec):
    from harmonykit.training.config import load_train_config
    from harmonykit.training.data import build_dataset

    cfg_path = _write_cfg(tmp_path / "train.yaml", (
        "  kind: onthefly\n"
        f"  images: {lalonde_db}\n"
        "  format: lalonde\n"
        "  val_fraction: 0.0\n"
        "  size: 32\n"
        "  mix: {sgmmh: 0.5, colour_transfer: 0.5}\n"
        "  transfer: {methods: [reinhard], strength: [0.7, 0.9]}\n"
    ))
    cfg = load_train_config(cfg_path)
    assert cfg.data.mix == FamilyMix(0.5, 0.5, 0.0)
    assert cfg.data.transfer == TransferConfig(methods=("reinhard",), strength=(0.7, 0.9))
    ds = build_dataset(cfg.data, seed=0, uses_regions=False)
    assert isinstance(ds, OnTheFlyPairs) and ds.mix == cfg.data.mix and ds.transfer == cfg.data.transfer
    assert sorted(it.id for it in ds.items) == sorted(lalonde_spec.photos)  # train split, val_fraction 0
    assert ds.regions == "slic" and ds.references is not None
    for key in ((0, 0), (0, 5)):
        s = ds[key]
        assert s["composite"].shape == (3, 32, 32) and s["mask"].any() and s["subset"] == "onthefly"
    # auto format and the default val_fraction: the val photos stay out of training
    auto = load_train_config(cfg_path, ["data.format=auto", "data.val_fraction=0.1"])
    ds_auto = build_dataset(auto.data, seed=0, uses_regions=False)
    assert {it.id for it in ds_auto.items} < set(lalonde_spec.photos)


def test_mix_outside_onthefly_and_bad_values_are_config_errors(tmp_path, lalonde_db):
    from harmonykit.training.config import load_train_config

    bench = tmp_path / "bench"
    bench.mkdir()
    with pytest.raises(ConfigError, match="data.mix applies to on-the-fly pairs only"):
        load_train_config(_write_cfg(tmp_path / "b.yaml", (
            f"  kind: benchmark\n  root: {bench}\n  size: 32\n  mix: {{sgmmh: 0.5, none: 0.5}}\n")))
    base = f"  kind: onthefly\n  images: {lalonde_db}\n  format: lalonde\n  size: 32\n"
    for extra, msg in (("  mix: {sgmmh: 1, colour: 1}\n", "colour"),
                       ("  mix: {sgmmh: -1}\n", "perturbation mix"),
                       ("  mix: {sgmmh: 0}\n", "every family weight is 0"),
                       ("  val_fraction: 2\n", "val_fraction"),
                       ("  transfer: {methods: [lab]}\n", "methods")):
        with pytest.raises(ConfigError, match=msg):
            load_train_config(_write_cfg(tmp_path / "x.yaml", base + extra))
