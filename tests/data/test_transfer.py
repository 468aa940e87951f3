"""Colour-transfer ops, the family mix and :func:`make_pair`, reference pools."""

from __future__ import annotations

import json

import numpy as np
import pytest

from harmonykit.data.perturb import (
    NoUsableRegionError,
    make_composite,
    op_from_dict,
    replay,
)
from harmonykit.data.perturb.families import FamilyMix, PairContext, make_pair, make_transfer_pair
from harmonykit.data.perturb.transfer import (
    HistogramTransfer,
    ReinhardTransfer,
    TransferConfig,
    _match_lut,
    reference_stats,
    sample_transfer_op,
)
from harmonykit.data.references import ReferencePool
from harmonykit.data.sources import SourceItem, open_source
from harmonykit.errors import ConfigError

IDENT = list(range(256))


def _textured(colour, shape=(24, 24), seed=0, sigma=10.0) -> np.ndarray:
    noise = np.random.default_rng(seed).normal(0, sigma, (*shape, 3))
    return np.clip(np.round(np.array(colour, float) + noise), 0, 255).astype(np.uint8)


@pytest.fixture
def scene():
    """A 24x24 photo: a green object (label 1) on a grey background (label 2 on the right)."""
    img = _textured((110, 110, 110), seed=1)
    lm = np.zeros((24, 24), np.int32)
    lm[:, 12:] = 2
    lm[6:18, 4:14] = 1
    img[lm == 1] = _textured((40, 140, 50), seed=2)[lm == 1]
    return img, lm


class FixedRefs:
    """A reference source that always gives the same reference (and counts the draws)."""

    def __init__(self, colour=(200, 60, 150), id="ref"):
        self.stats = reference_stats(_textured(colour, seed=5), id)
        self.calls: list[tuple[str | None, str | None]] = []

    def draw(self, rng, category, exclude_group):
        rng.integers(7)  # like ReferencePool: one integer per draw
        self.calls.append((category, exclude_group))
        return self.stats


# ----------------------------------------------------------------------------- ops


def test_reinhard_with_identical_stats_and_zero_strength_is_identity(scene):
    img = np.random.default_rng(0).integers(0, 256, (16, 16, 3), dtype=np.uint8)
    s = reference_stats(img)
    same = ReinhardTransfer(list(s.lab_mean), list(s.lab_std), list(s.lab_mean), list(s.lab_std), 1.0)
    assert np.array_equal(same.apply(img), img)
    other = reference_stats(scene[0])
    zero = ReinhardTransfer(list(s.lab_mean), list(s.lab_std), list(other.lab_mean), list(other.lab_std), 0.0)
    assert np.array_equal(zero.apply(img), img)
    lut = np.clip(np.arange(256)[None].repeat(3, 0) * 2 - 40, 0, 255).tolist()
    assert np.array_equal(HistogramTransfer(lut, 0.0).apply(img), img)
    assert np.array_equal(HistogramTransfer([IDENT] * 3, 1.0).apply(img), img)


def test_histogram_lut_of_identical_histograms_is_identity_on_present_values():
    px = _textured((120, 80, 200), (32, 32), seed=3, sigma=25)
    h = reference_stats(px).hist
    lut = np.array(_match_lut(h, h))
    for c in range(3):
        present = np.flatnonzero(h[c])
        assert np.array_equal(lut[c][present], present)
    assert np.array_equal(HistogramTransfer(lut.tolist(), 1.0).apply(px), px)


def test_histogram_lut_matches_skimage_match_histograms():
    from skimage.exposure import match_histograms

    src = _textured((100, 90, 120), (40, 40), seed=0, sigma=30)
    ref = _textured((160, 140, 60), (30, 30), seed=1, sigma=15)
    out = HistogramTransfer(_match_lut(reference_stats(src).hist, reference_stats(ref).hist), 1.0).apply(src)
    expected = np.round(match_histograms(src.astype(float), ref.astype(float), channel_axis=-1)).astype(np.uint8)
    assert np.array_equal(out, expected)


def test_reinhard_full_strength_moves_the_lab_mean_to_the_reference():
    src = reference_stats(_textured((60, 130, 70), seed=1))
    ref = reference_stats(_textured((150, 110, 160), seed=2, sigma=6), "r")
    op = sample_transfer_op(src, ref, np.random.default_rng(0), TransferConfig(methods=("reinhard",), strength=(1.0, 1.0)))
    assert isinstance(op, ReinhardTransfer) and op.strength == 1.0
    out = op.apply(_textured((60, 130, 70), seed=1))
    moved = reference_stats(out)
    assert np.abs(moved.lab_mean - ref.lab_mean).max() < 1.0
    assert np.abs(moved.lab_std - ref.lab_std).max() < 1.0
    # half strength: half way (CIELAB is linear in the blend)
    half = ReinhardTransfer(op.src_mean, op.src_std, op.ref_mean, op.ref_std, 0.5)
    mid = reference_stats(half.apply(_textured((60, 130, 70), seed=1))).lab_mean
    assert np.abs(mid - (src.lab_mean + ref.lab_mean) / 2).max() < 1.0


def test_histogram_transfer_matches_channel_means():
    src_px = _textured((60, 130, 70), (32, 32), seed=1)
    ref_px = _textured((180, 90, 140), (32, 32), seed=2, sigma=20)
    op = sample_transfer_op(reference_stats(src_px), reference_stats(ref_px), np.random.default_rng(0),
                            TransferConfig(methods=("histogram",), strength=(1.0, 1.0)))
    assert isinstance(op, HistogramTransfer)
    out = op.apply(src_px)
    assert np.abs(out.reshape(-1, 3).mean(0) - ref_px.reshape(-1, 3).mean(0)).max() < 2.0


@pytest.mark.parametrize("method", ["reinhard", "histogram"])
def test_op_json_round_trip(method):
    src, ref = reference_stats(_textured((60, 130, 70))), reference_stats(_textured((200, 60, 150), seed=4))
    op = sample_transfer_op(src, ref, np.random.default_rng(1), TransferConfig(methods=(method,)))
    d = json.loads(json.dumps(op.to_dict()))
    assert d["op"] == f"{method}_transfer"
    back = op_from_dict(d)
    assert back == op and type(back) is type(op)
    img = _textured((90, 90, 90), seed=7, sigma=40)
    assert np.array_equal(back.apply(img), op.apply(img))


def test_op_and_config_validation():
    with pytest.raises(ConfigError, match="src_std"):
        ReinhardTransfer([50, 0, 0], [0.0, 1, 1], [50, 0, 0], [1, 1, 1], 1.0)
    with pytest.raises(ConfigError, match="ref_mean"):
        ReinhardTransfer([50, 0, 0], [1, 1, 1], [50, 0], [1, 1, 1], 1.0)
    with pytest.raises(ConfigError, match="strength"):
        ReinhardTransfer([50, 0, 0], [1, 1, 1], [50, 0, 0], [1, 1, 1], 1.5)
    with pytest.raises(ConfigError, match="lut"):
        HistogramTransfer([IDENT[:255]] * 3, 1.0)
    with pytest.raises(ConfigError, match="lut"):
        HistogramTransfer([[v + 1 for v in IDENT]] * 3, 1.0)
    with pytest.raises(ConfigError, match="methods"):
        TransferConfig(methods=("lab",))
    with pytest.raises(ConfigError, match="strength"):
        TransferConfig(strength=(0.8, 0.2))
    with pytest.raises(ConfigError, match="max_draws"):
        TransferConfig(max_draws=0)
    with pytest.raises(ConfigError, match="unknown key"):
        TransferConfig.from_dict({"strenght": [0, 1]})
    cfg = TransferConfig.from_dict({"methods": ["histogram"], "strength": [0.2, 0.4], "min_fmse": 1.0})
    assert cfg.methods == ("histogram",) and cfg.strength == (0.2, 0.4)
    assert TransferConfig.from_dict(json.loads(json.dumps(cfg.to_dict()))) == cfg


# ----------------------------------------------------------------------------- families


def test_family_mix_validation_and_choose():
    for bad in ({"sgmmh": -1.0}, {"none": float("nan")}, {"colour_transfer": True}, {"sgmmh": "1"},
                {"sgmmh": 0.0}):
        with pytest.raises(ConfigError, match="perturbation mix"):
            FamilyMix(**bad)
    with pytest.raises(ConfigError, match="unknown perturbation family"):
        FamilyMix.only("colour-transfer")
    assert FamilyMix.only("none").families() == ("none",)
    assert FamilyMix(0.4, 0.4, 0.2).to_dict() == {"sgmmh": 0.4, "colour_transfer": 0.4, "none": 0.2}
    for fam in ("sgmmh", "colour_transfer", "none"):  # one family: nothing drawn
        rng = np.random.default_rng(3)
        before = rng.bit_generator.state
        assert FamilyMix.only(fam).choose(rng) == fam and rng.bit_generator.state == before
    rng = np.random.default_rng(0)
    draws = [FamilyMix(0.6, 0.0, 0.4).choose(rng) for _ in range(2000)]
    assert set(draws) == {"sgmmh", "none"} and 0.55 < draws.count("sgmmh") / 2000 < 0.65


def test_sgmmh_only_make_pair_equals_make_composite(scene):
    img, lm = scene
    for seed in range(3):
        a = make_pair(img, lm, np.random.default_rng(seed))
        b = make_composite(img, lm, np.random.default_rng(seed))
        assert a.recipe == b.recipe
        for k in ("composite", "real", "mask"):
            assert getattr(a, k).tobytes() == getattr(b, k).tobytes()


def test_none_family_is_an_untouched_pair(scene):
    img, lm = scene
    res = make_pair(img, lm, np.random.default_rng(0), mix=FamilyMix.only("none"))
    assert np.array_equal(res.composite, img) and np.array_equal(res.real, img)
    assert not res.mask.any() and res.recipe["family"] == "none" and res.recipe["regions"] == []


def test_colour_transfer_changes_only_the_object(scene):
    img, lm = scene
    refs = FixedRefs()
    ctx = PairContext(object_label=1, category="tree", group="photo-a", references=refs)
    res = make_pair(img, lm, np.random.default_rng(0), mix=FamilyMix.only("colour_transfer"), context=ctx)
    obj = lm == 1
    assert np.array_equal(res.composite[~obj], img[~obj]) and np.array_equal(res.real, img)
    assert np.array_equal(res.mask, obj.astype(np.uint8) * 255)
    d = res.composite[obj].astype(float) - img[obj]
    assert float(np.mean(d * d)) >= TransferConfig().min_fmse
    rec = res.recipe
    assert rec["family"] == "colour_transfer" and rec["reference"] == {"id": "ref", "category": "tree"}
    assert rec["draws"] == 1 and [r["label"] for r in rec["regions"]] == [1]
    assert refs.calls == [("tree", "photo-a")]  # the photo's own group is excluded
    # without an annotated object one candidate region is drawn
    res2 = make_transfer_pair(img, lm, np.random.default_rng(0), PairContext(references=FixedRefs()))
    assert res2.recipe["regions"][0]["label"] in (1, 2)


def _pair_with(family, scene, seed):
    img, lm = scene
    ctx = PairContext(object_label=1, category="tree", group="g", references=FixedRefs())
    return make_pair(img, lm, np.random.default_rng(seed), mix=FamilyMix.only(family), context=ctx)


@pytest.mark.parametrize("family", ["sgmmh", "colour_transfer", "none"])
def test_replay_is_byte_identical(scene, family):
    img, lm = scene
    for seed in range(2):
        res = _pair_with(family, scene, seed)
        rec = json.loads(json.dumps(res.recipe))  # as stored in a manifest
        again = replay(img, lm, rec)
        for k in ("composite", "real", "mask"):
            assert getattr(again, k).tobytes() == getattr(res, k).tobytes(), (family, k)
        assert _pair_with(family, scene, seed).composite.tobytes() == res.composite.tobytes()


def test_transfer_failures(scene):
    img, lm = scene
    refs = FixedRefs()
    cfg = TransferConfig(min_fmse=1e9, max_draws=4)
    with pytest.raises(NoUsableRegionError, match="4 colour-transfer draws stayed below"):
        make_transfer_pair(img, lm, np.random.default_rng(0), PairContext(object_label=1, references=refs), cfg)
    assert len(refs.calls) == 4
    with pytest.raises(NoUsableRegionError, match="annotated object is not in the crop"):
        make_transfer_pair(img, lm, np.random.default_rng(0), PairContext(object_label=3, references=refs))
    with pytest.raises(NoUsableRegionError, match="no non-zero label"):
        make_transfer_pair(img, np.zeros_like(lm), np.random.default_rng(0), PairContext(references=refs))
    with pytest.raises(ConfigError, match="reference source"):
        make_pair(img, lm, np.random.default_rng(0), mix=FamilyMix.only("colour_transfer"))


def test_mixed_families_are_drawn_and_replayable(scene):
    img, lm = scene
    mix = FamilyMix(0.4, 0.4, 0.2)
    ctx = PairContext(object_label=1, category="tree", group="g", references=FixedRefs())
    seen = set()
    for seed in range(12):
        expected = mix.choose(np.random.default_rng(seed))  # the first draw of the sample's generator
        res = make_pair(img, lm, np.random.default_rng(seed), mix=mix, context=ctx)
        assert res.recipe.get("family", "sgmmh") == expected
        assert replay(img, lm, res.recipe).composite.tobytes() == res.composite.tobytes()
        seen.add(expected)
    assert seen == {"sgmmh", "colour_transfer", "none"}


# ----------------------------------------------------------------------------- references


def test_reference_pool_prefers_same_category_from_another_photo(lalonde_db):
    items = open_source(lalonde_db, split="train", val_fraction=0.0)
    pool = ReferencePool(list(reversed(items)))
    assert [it.id for it in pool.items] == sorted(it.id for it in items)

    def ids(category, group, n=40):
        return {pool.draw(np.random.default_rng(s), category, group).id for s in range(n)}

    forest = "spatial_envelope_256x256_static_8outdoorcategories/forest_nat101.jpg"
    assert ids("tree", forest) == {"image_100002"}  # the other tree, never the photo itself
    assert ids("car", "static_street_boston/img_0003.jpg") == {"image_100004"}
    shared = "spatial_envelope_256x256_static_8outdoorcategories/tallbuilding_art1474.jpg"
    assert ids("sky", shared) == {"image_100007"}  # image_100006 is the same photo
    # no other member of the category: any other photo (not the same source photo)
    mountain = "spatial_envelope_256x256_static_8outdoorcategories/mountain_n44.jpg"
    fallback = ids("mountain", mountain, 60)
    assert "image_100008" not in fallback and len(fallback) > 3
    assert "image_100005" not in ids("building", shared, 60) and "image_100006" not in ids("building", shared, 60)
    assert len(ids(None, None, 60)) > 3
    # the draw depends only on the generator, and the statistics are the object's
    st = pool.draw(np.random.default_rng(1), "tree", forest)
    assert st.lab_mean.shape == (3,) and st.hist.sum() == 3 * int(pool.stats(pool.items.index(
        next(it for it in pool.items if it.id == "image_100002"))).hist[0].sum())
    fresh = ReferencePool(items)
    assert fresh.draw(np.random.default_rng(9), None, None).id == pool.draw(np.random.default_rng(9), None, None).id


def test_reference_pool_skips_unreadable_and_uses_whole_images(tmp_path, lalonde_db):
    good = open_source(lalonde_db, split="train", val_fraction=0.0)
    bad = SourceItem("image_000000", tmp_path / "missing.jpg", None, None, "tree", "elsewhere/x.jpg")
    pool = ReferencePool([bad, *[it for it in good if it.category == "tree"]])
    got = {pool.draw(np.random.default_rng(s), "tree", "someone/else.jpg").id for s in range(20)}
    assert got == {"image_100001", "image_100002"}
    plain = ReferencePool([SourceItem("a", lalonde_db / "Images" / "image_100001.jpg")])
    st = plain.draw(np.random.default_rng(0), "tree", "other")
    assert st.id == "a" and int(st.hist[0].sum()) == 64 * 64  # no mask: the whole image
    only_bad = ReferencePool([bad])
    with pytest.raises(ConfigError, match="no usable colour-transfer reference"):
        only_bad.draw(np.random.default_rng(0), None, None)
