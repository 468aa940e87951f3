"""SAM wrapper with a randomly initialised tiny SAM (no real checkpoints exist here)."""

from __future__ import annotations

import sys
from functools import partial

import numpy as np
import pytest
import torch

from harmonykit.regionmaps.sam import import_segment_anything

import_segment_anything()  # installs torchvision stand-ins when torchvision is not importable

from segment_anything import SamAutomaticMaskGenerator  # noqa: E402  (sam extra is in dev)
from segment_anything.modeling import (  # noqa: E402
    ImageEncoderViT,
    MaskDecoder,
    PromptEncoder,
    Sam,
    TwoWayTransformer,
)

from harmonykit.errors import ConfigError, HarmonykitError, MissingDependencyError  # noqa: E402
from harmonykit.regionmaps import RegionMapProvider, labels_from_masks, make_labeler  # noqa: E402
from harmonykit.regionmaps.sam import SamConfig, SamMaskGenerator, build_sam_model  # noqa: E402

# permissive thresholds: a random SAM's scores are low; NMS off so that several masks survive
GEN = {"points_per_side": 3, "pred_iou_thresh": 0.0, "stability_score_thresh": 0.0, "box_nms_thresh": 1.0}

TINY = SamConfig(
    encoder_embed_dim=32,
    encoder_depth=1,
    encoder_num_heads=2,
    encoder_global_attn_indexes=(0,),
    image_size=64,
    patch_size=16,
    window_size=0,
    prompt_embed_dim=32,
    mask_in_chans=4,
    decoder_depth=1,
    decoder_mlp_dim=64,
    decoder_num_heads=2,
    iou_head_hidden_dim=32,
)


def _tiny_from_parts() -> Sam:
    """A tiny SAM assembled from segment_anything.modeling parts (random weights)."""
    torch.manual_seed(0)
    return Sam(
        image_encoder=ImageEncoderViT(
            img_size=64, patch_size=16, embed_dim=32, depth=1, num_heads=2, mlp_ratio=4,
            out_chans=32, qkv_bias=True, norm_layer=partial(torch.nn.LayerNorm, eps=1e-6),
            use_rel_pos=True, window_size=0, global_attn_indexes=(0,),
        ),
        prompt_encoder=PromptEncoder(
            embed_dim=32, image_embedding_size=(4, 4), input_image_size=(64, 64), mask_in_chans=4
        ),
        mask_decoder=MaskDecoder(
            num_multimask_outputs=3,
            transformer=TwoWayTransformer(depth=1, embedding_dim=32, mlp_dim=64, num_heads=2),
            transformer_dim=32, iou_head_depth=3, iou_head_hidden_dim=32,
        ),
    ).eval()


@pytest.fixture(scope="module")
def tiny() -> Sam:
    return _tiny_from_parts()


@pytest.fixture(scope="module")
def image(astronaut) -> np.ndarray:
    return np.ascontiguousarray(astronaut[::10, ::10])  # 52 x 52


def test_masks_sorted_by_area_and_match_segment_anything(tiny, image):
    gen = SamMaskGenerator(model=tiny, **GEN)
    masks = gen.masks(image)
    assert len(masks) >= 5
    assert all(m.dtype == bool and m.shape == image.shape[:2] for m in masks)
    areas = [int(m.sum()) for m in masks]
    assert areas == sorted(areas, reverse=True)
    # the same masks as segment_anything's generator itself, only reordered
    ref = SamAutomaticMaskGenerator(tiny, **GEN).generate(image)
    assert sorted(areas) == sorted(int(r["segmentation"].sum()) for r in ref)
    again = gen.masks(image.copy())
    assert all(np.array_equal(a, b) for a, b in zip(masks, again))


def test_equal_areas_are_ordered_deterministically(tiny, image):
    gen = SamMaskGenerator(model=tiny, **GEN)
    a = np.zeros(image.shape[:2], bool)
    a[10:12, 0:3] = True  # area 6, first pixel row 10
    b = np.zeros(image.shape[:2], bool)
    b[2:4, 5:8] = True  # area 6, first pixel row 2
    c = np.zeros(image.shape[:2], bool)
    c[0:5, 0:5] = True  # area 25
    recs = [{"segmentation": m, "area": int(m.sum())} for m in (a, b, c)]
    for order in ([0, 1, 2], [2, 1, 0], [1, 0, 2]):
        gen._generator.generate = lambda img, o=order: [recs[i] for i in o]
        out = gen.masks(image)
        assert [np.array_equal(x, y) for x, y in zip(out, (c, b, a))] == [True] * 3


def test_checkpoint_round_trip_through_build(tmp_path, tiny, image):
    built = build_sam_model(TINY)
    assert {k: v.shape for k, v in built.state_dict().items()} == {
        k: v.shape for k, v in tiny.state_dict().items()
    }  # SamConfig builds the same architecture as the hand-assembled parts
    ckpt = tmp_path / "tiny_sam.pth"
    torch.save(tiny.state_dict(), ckpt)
    gen = SamMaskGenerator(ckpt, model_type=TINY, **GEN)
    for k, v in tiny.state_dict().items():
        assert torch.equal(gen.model.state_dict()[k], v), k
    ref = SamMaskGenerator(model=tiny, **GEN).masks(image)
    got = gen.masks(image)
    assert len(got) == len(ref) and all(np.array_equal(a, b) for a, b in zip(got, ref))
    assert gen.settings["checkpoint"] == "tiny_sam.pth" and gen.settings["points_per_side"] == 3
    wrapped = tmp_path / "wrapped.pth"
    torch.save({"model": tiny.state_dict(), "epoch": 3}, wrapped)
    assert SamMaskGenerator(wrapped, model_type=TINY, **GEN).masks(image)[0].shape == image.shape[:2]


def test_checkpoint_errors_name_the_file(tmp_path, tiny):
    missing = tmp_path / "sam_vit_b_01ec64.pth"
    with pytest.raises(MissingDependencyError, match=r"sam_vit_b_01ec64\.pth: SAM checkpoint not found"):
        SamMaskGenerator(missing, "vit_b")
    garbage = tmp_path / "garbage.pth"
    garbage.write_bytes(b"\x00not a checkpoint")
    with pytest.raises(HarmonykitError, match=r"garbage\.pth: not a readable PyTorch SAM checkpoint"):
        SamMaskGenerator(garbage, TINY)
    ckpt = tmp_path / "tiny.pth"
    torch.save(tiny.state_dict(), ckpt)
    deeper = SamConfig(**{**TINY.to_dict(), "encoder_depth": 2, "encoder_global_attn_indexes": (1,)})
    with pytest.raises(HarmonykitError, match=r"tiny\.pth: checkpoint does not match SAM model_type 'custom'"):
        SamMaskGenerator(ckpt, deeper)
    with pytest.raises(HarmonykitError, match="is not a file"):
        SamMaskGenerator(tmp_path, TINY)
    with pytest.raises(ConfigError, match="unknown SAM model type 'vit_x'"):
        SamMaskGenerator(ckpt, "vit_x")
    with pytest.raises(ConfigError, match="SAM needs a checkpoint"):
        SamMaskGenerator(None)
    with pytest.raises(ConfigError, match="unknown SAM generator option.*points_per_sid"):
        SamMaskGenerator(model=tiny, points_per_sid=3)


def test_missing_package_message(monkeypatch):
    monkeypatch.setitem(sys.modules, "segment_anything", None)
    with pytest.raises(MissingDependencyError, match=r'pip install "harmonykit\[sam\]"'):
        SamMaskGenerator("whatever.pth")


def test_sam_labeler_and_region_maps(tiny, image):
    lab = make_labeler("sam", model=tiny, **GEN)(image)
    masks = SamMaskGenerator(model=tiny, **GEN).masks(image)
    np.testing.assert_array_equal(lab, labels_from_masks(masks))
    assert lab.dtype == np.int32 and lab.max() >= 2
    provider = RegionMapProvider("sam", model=tiny, **GEN)
    m = provider(image)
    assert m.rgb.shape == image.shape
    assert provider.settings["provider"] == "sam" and provider.settings["model_type"] == "injected"
    assert len(provider.settings["parameters_sha256"]) == 16
