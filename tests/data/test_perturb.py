"""Perturbation ops and recipe engine: masks, replay, determinism, op semantics."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from PIL import Image

from harmonykit.data.perturb import (
    ADJUST_OPS,
    ALL_PILGRAM_FILTERS,
    DEGRADE_OPS,
    PILGRAM_FILTERS,
    TRANSFER_OPS,
    Contrast,
    GaussianBlur,
    GaussianNoise,
    Grayscale,
    HistogramTransfer,
    HueRotate,
    Jpeg,
    LabScale,
    LaplaceNoise,
    MotionBlur,
    NoUsableRegionError,
    PerturbConfig,
    PilgramFilter,
    PoissonNoise,
    ReinhardTransfer,
    Saturate,
    Sepia,
    candidate_labels,
    make_composite,
    op_from_dict,
    registered_ops,
    replay,
    sample_recipe,
)
from harmonykit.data.perturb.engine import _apply_region_ops
from harmonykit.errors import ConfigError


@pytest.fixture(scope="module")
def img(astronaut) -> np.ndarray:
    return np.asarray(Image.fromarray(astronaut).resize((48, 48), Image.Resampling.BILINEAR))


@pytest.fixture(scope="module")
def labels() -> np.ndarray:
    """6x6 blocks of 8x8 pixels; labels 0..35 (block 0 is label 0: never perturbed)."""
    lab = np.arange(36, dtype=np.int32).reshape(6, 6)
    return np.kron(lab, np.ones((8, 8), np.int32))


def _all_ops() -> list:
    return [
        PilgramFilter("clarendon"), Contrast(1.3), Grayscale(0.7), HueRotate(90.0), Saturate(1.4),
        Sepia(0.8), LabScale(1.1, 0.85, 1.2), GaussianNoise(5.0, 3), LaplaceNoise(4.0, 5),
        PoissonNoise(40.0, 7), MotionBlur(5, 30.0), GaussianBlur(1.2), Jpeg(40),
        ReinhardTransfer([50.0, 5.0, 10.0], [20.0, 8.0, 9.0], [40.0, -5.0, 20.0], [15.0, 6.0, 12.0], 0.8),
        HistogramTransfer([[min(255, v + 30) for v in range(256)], list(range(256)), [v // 2 for v in range(256)]], 1.0),
    ]


# ----------------------------------------------------------------------------- ops


def test_registry_covers_all_names():
    names = set(registered_ops())
    assert {"pilgram", *ADJUST_OPS, *DEGRADE_OPS, *TRANSFER_OPS, "lut"} == names
    assert len(PILGRAM_FILTERS) == 23 and len(set(PILGRAM_FILTERS)) == 23
    assert not {"aden", "perpetua", "toaster"} & set(PILGRAM_FILTERS)
    assert {op.NAME for op in _all_ops()} | {"lut"} == names  # lut: tests/data/test_lut_family.py


@pytest.mark.parametrize("op", _all_ops(), ids=lambda o: o.NAME)
def test_op_json_roundtrip_and_changes_image(op, img):
    d = json.loads(json.dumps(op.to_dict()))
    assert d["op"] == op.NAME
    again = op_from_dict(d)
    assert again == op and type(again) is type(op)
    out = op.apply(img)
    assert out.dtype == np.uint8 and out.shape == img.shape
    assert not np.array_equal(out, img), f"{op} left the image unchanged"
    assert np.array_equal(again.apply(img), out), "op is not deterministic"


@pytest.mark.parametrize("name", PILGRAM_FILTERS)
def test_every_paper_filter_changes_image(name, img):
    out = PilgramFilter(name).apply(img)
    assert out.shape == img.shape and np.abs(out.astype(int) - img).mean() > 1.0


def test_pilgram_filter_matches_pilgram(img):
    import pilgram

    ref = np.asarray(pilgram.moon(Image.fromarray(img)).convert("RGB"))
    assert np.array_equal(PilgramFilter("moon").apply(img), ref)


def test_contrast_formula(img):
    a = 1.37
    lut = np.array([min(255, max(0, round(x * a - 127.5 * a + 127.5))) for x in range(256)], np.uint8)
    assert np.array_equal(Contrast(a).apply(img), lut[img])
    assert np.array_equal(Contrast(1.0).apply(img), img)


def test_css_identity_parameters_and_real_parameters_differ(img):
    # the reference code used defaults, which are identities; our sampled values are not
    assert np.array_equal(HueRotate(0.0).apply(img), img)
    assert np.array_equal(Saturate(1.0).apply(img), img)
    assert np.array_equal(Grayscale(0.0).apply(img), img)
    assert np.array_equal(Sepia(0.0).apply(img), img)
    for op in (HueRotate(60.0), Saturate(0.6), Grayscale(0.5), Sepia(0.5)):
        assert np.abs(op.apply(img).astype(int) - img).max() > 10


def test_full_grayscale_and_zero_saturation_are_gray(img):
    for op in (Grayscale(1.0), Saturate(0.0)):
        out = op.apply(img).astype(int)
        assert np.abs(out[..., 0] - out[..., 1]).max() <= 1 and np.abs(out[..., 1] - out[..., 2]).max() <= 1


def test_sepia_matches_css_matrix(img):
    s = 1.0  # full sepia; W3C matrix
    m = np.array([[0.393, 0.769, 0.189], [0.349, 0.686, 0.168], [0.272, 0.534, 0.131]]) * s
    expected = np.clip(img.astype(np.float64) @ m.T, 0, 255)
    assert np.abs(Sepia(1.0).apply(img) - expected).max() <= 1.0


def test_lab_scale_matches_skimage_and_torch(img):
    from skimage.color import lab2rgb, rgb2lab

    from harmonykit.color import lab_to_rgb, rgb_to_lab

    f = np.array([1.1, 0.85, 1.2])
    out = LabScale(*f).apply(img)
    # scikit-image reference
    with np.errstate(all="ignore"):
        ref = np.clip(np.rint(lab2rgb(rgb2lab(img) * f) * 255), 0, 255).astype(np.uint8)
    assert np.array_equal(out, ref)
    # an independent implementation (harmonykit.color, torch float64): off by at most one level
    x = torch.from_numpy(img.astype(np.float64) / 255).permute(2, 0, 1)[None]
    lab = rgb_to_lab(x) * torch.tensor(f).view(1, 3, 1, 1)
    ref2 = (lab_to_rgb(lab)[0].permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)
    diff = np.abs(out.astype(int) - ref2)
    assert diff.max() <= 1 and (diff == 0).mean() > 0.95
    # a/b are centred on 0: chroma scales, hue angle is kept (for clearly chromatic pixels)
    lab_in, lab_out = rgb2lab(img), rgb2lab(out)
    chroma = np.hypot(lab_in[..., 1], lab_in[..., 2])
    sel = chroma > 20
    hue_in = np.arctan2(lab_in[..., 2], lab_in[..., 1])[sel]
    hue_out = np.arctan2(lab_out[..., 2], lab_out[..., 1])[sel]
    ratio = np.tan(hue_out) / np.tan(hue_in)  # b/a ratio scales by 1.2 / 0.85
    assert np.median(ratio) == pytest.approx(1.2 / 0.85, rel=0.05)
    assert np.array_equal(LabScale(1.0, 1.0, 1.0).apply(img), img)


def test_gaussian_noise_statistics():
    flat = np.full((64, 64, 3), 128, np.uint8)
    out = GaussianNoise(6.0, 11).apply(flat).astype(float) - 128
    assert abs(out.std() - 6.0) < 0.5 and abs(out.mean()) < 0.3
    assert not np.array_equal(GaussianNoise(6.0, 12).apply(flat), GaussianNoise(6.0, 11).apply(flat))


def test_motion_blur_spreads_impulse_along_line():
    imp = np.zeros((15, 15, 3), np.uint8)
    imp[7, 7] = 250
    out = MotionBlur(5, 0.0).apply(imp)[..., 0]
    assert out[7, 5:10].tolist() == [50] * 5 and out.sum() == 250
    out = MotionBlur(5, 90.0).apply(imp)[..., 0]
    assert out[5:10, 7].tolist() == [50] * 5


def test_op_from_dict_errors():
    with pytest.raises(ConfigError, match="unknown operation"):
        op_from_dict({"op": "sharpen"})
    with pytest.raises(ConfigError, match="missing parameter"):
        op_from_dict({"op": "contrast"})
    with pytest.raises(ConfigError, match="unknown parameter"):
        op_from_dict({"op": "contrast", "amount": 1.2, "gamma": 2})
    with pytest.raises(ConfigError, match="unknown filter"):
        PilgramFilter("nope")
    with pytest.raises(ConfigError):
        Grayscale(1.5)
    assert "aden" in ALL_PILGRAM_FILTERS  # accepted when replaying, never sampled by default


@pytest.mark.parametrize("op", [Contrast(0.7), Grayscale(0.4), HueRotate(-120.0), Saturate(1.3),
                                Sepia(0.9), LabScale(0.9, 1.15, 0.8)], ids=lambda o: o.NAME)
def test_pointwise_region_path_equals_whole_image(op, img, labels):
    region = labels == 7
    whole = op.apply(PilgramFilter("lark").apply(img))[region]
    fast = _apply_region_ops(img, region, [PilgramFilter("lark"), op])
    assert np.array_equal(fast, whole)


# ----------------------------------------------------------------------------- engine


def test_candidate_labels_and_no_usable_region():
    lm = np.zeros((4, 4), np.int32)
    with pytest.raises(NoUsableRegionError, match="no usable region"):
        sample_recipe(lm, np.random.default_rng(0))
    lm[0, 0] = 3
    lm[2:, 2:] = 9
    labs, areas = candidate_labels(lm)
    assert labs.tolist() == [3, 9] and areas.tolist() == [1, 4]
    assert candidate_labels(lm, min_region_area=2 / 16)[0].tolist() == [9]
    with pytest.raises(NoUsableRegionError):
        sample_recipe(lm, np.random.default_rng(0), PerturbConfig(min_region_area=0.5))


def test_region_count_distinct_and_never_zero(labels):
    n = 35  # labels 1..35
    for seed in range(30):
        rec = sample_recipe(labels, np.random.default_rng(seed))
        got = [r["label"] for r in rec["regions"]]
        assert len(got) == int(0.2 * n) + 1 == 8
        assert len(set(got)) == len(got) and 0 not in got
        assert rec["n_labels"] == n
        for r in rec["regions"]:
            assert r["ops"][0]["op"] == "pilgram" and r["ops"][0]["filter"] in PILGRAM_FILTERS
            assert len(r["ops"]) in (1, 2)
            assert r["area"] == 64


def test_sampling_probabilities_and_parameter_ranges(labels):
    cfg = PerturbConfig(degrade_prob=0.5)
    seconds, regions, degraded = [], 0, 0
    for seed in range(120):
        rec = sample_recipe(labels, np.random.default_rng(seed), cfg)
        degraded += rec["degradation"] is not None
        for r in rec["regions"]:
            regions += 1
            seconds += r["ops"][1:]
    assert 0.4 < len(seconds) / regions < 0.6
    assert 0.35 < degraded / 120 < 0.65
    kinds = {d["op"] for d in seconds}
    assert kinds == set(ADJUST_OPS)
    for d in seconds:
        op = op_from_dict(d)
        if d["op"] in ("contrast", "saturate"):
            assert 0.5 <= d["amount"] <= 1.5
        elif d["op"] in ("grayscale", "sepia"):
            assert 0.3 <= d["amount"] <= 1.0
        elif d["op"] == "hue_rotate":
            assert -180 <= d["deg"] <= 180
        else:
            assert all(0.8 <= d[k] <= 1.2 for k in "lab")
        assert op.to_dict() == d


def test_composite_differs_only_inside_mask(img, labels):
    for seed in range(6):
        res = make_composite(img, labels, np.random.default_rng(seed), PerturbConfig(degrade_prob=0.0))
        inside = res.mask == 255
        assert set(np.unique(res.mask).tolist()) <= {0, 255}
        assert np.array_equal(res.real, img)
        assert np.array_equal(res.composite[~inside], img[~inside])
        assert (res.composite[inside] != img[inside]).any()
        expected = np.isin(labels, [r["label"] for r in res.recipe["regions"]])
        assert np.array_equal(inside, expected)


@pytest.mark.parametrize("name", DEGRADE_OPS)
def test_degradation_applies_to_real_and_background_only(name, img, labels):
    cfg = PerturbConfig(degrade_prob=1.0, degradations=(name,), second_op_prob=0.0)
    res = make_composite(img, labels, np.random.default_rng(3), cfg)
    deg = op_from_dict(res.recipe["degradation"])
    assert res.recipe["degradation"]["op"] == name
    assert np.array_equal(res.real, deg.apply(img))
    assert not np.array_equal(res.real, img)
    inside = res.mask == 255
    # background of the composite is the degraded real image ...
    assert np.array_equal(res.composite[~inside], res.real[~inside])
    # ... and the pasted foreground is the clean filtered image
    clean = make_composite(img, labels, np.random.default_rng(3), PerturbConfig(
        degrade_prob=0.0, second_op_prob=0.0))
    assert clean.recipe["regions"] == res.recipe["regions"]
    assert np.array_equal(res.composite[inside], clean.composite[inside])


def test_replay_is_byte_identical_after_json(img, labels):
    cfg = PerturbConfig(degrade_prob=0.5)
    for seed in range(8):
        res = make_composite(img, labels, np.random.default_rng(seed), cfg)
        rec = json.loads(json.dumps(res.recipe))
        again = replay(img, labels, rec)
        for a, b in zip(res[:3], again[:3]):
            assert a.tobytes() == b.tobytes()


def test_determinism_and_seed_dependence(img, labels):
    a = make_composite(img, labels, np.random.default_rng(42))
    b = make_composite(img, labels, np.random.default_rng(42))
    c = make_composite(img, labels, np.random.default_rng(43))
    assert a.recipe == b.recipe and np.array_equal(a.composite, b.composite)
    assert a.recipe != c.recipe


def test_replay_rejects_bad_recipes(img, labels):
    rec = sample_recipe(labels, np.random.default_rng(0))
    with pytest.raises(ConfigError, match="made for a"):
        replay(img[:40], labels[:40], rec)
    bad = json.loads(json.dumps(rec))
    bad["regions"][0]["label"] = 999
    with pytest.raises(ConfigError, match="does not occur"):
        replay(img, labels, bad)
    bad["regions"][0] = {"label": 1, "ops": [{"op": "nope"}]}
    with pytest.raises(ConfigError, match="unknown operation"):
        replay(img, labels, bad)
    with pytest.raises(ValueError):
        make_composite(img.astype(np.float32), labels, np.random.default_rng(0))


def test_config_validation_and_roundtrip():
    cfg = PerturbConfig(degrade_prob=0.2, filters=("moon", "lark"))
    d = json.loads(json.dumps(cfg.to_dict()))
    assert PerturbConfig.from_dict(d) == cfg
    with pytest.raises(ConfigError, match="unknown key"):
        PerturbConfig.from_dict({"degrade_probability": 0.1})
    with pytest.raises(ConfigError):
        PerturbConfig(degrade_prob=1.5)
    with pytest.raises(ConfigError):
        PerturbConfig(contrast=(1.5, 0.5))
    with pytest.raises(ConfigError):
        PerturbConfig(filters=("instagram",))
    with pytest.raises(ConfigError):
        PerturbConfig(second_ops=("blur",))
