"""harmonykit.imageops: the one image/tensor helper module. Each helper that replaced a
copy elsewhere is pinned here against that copy (kept verbatim below as ``_old_*``): exact
equality on random uint8 and float inputs, odd sizes included."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from harmonykit import imageops as io

SIZES = [(1, 1), (7, 5), (20, 31), (33, 17)]


def _rng(seed=0):
    return np.random.default_rng(seed)


def _floats(shape, seed=0):
    """Float32 in [0, 1] with exact .5-step values (k / 510) and a few out-of-range ones."""
    r = _rng(seed)
    x = r.random(shape, dtype=np.float32)
    x.flat[::7] = r.integers(0, 511, x.flat[::7].shape) / 510.0
    x.flat[::11] = r.uniform(-0.2, 1.2, x.flat[::11].shape)
    return torch.from_numpy(x)


# -- the old copies, verbatim ----------------------------------------------------------------

def _old_pairs_resize_image(image, size):  # evaluation/pairs.py
    if image.shape[0] == size and image.shape[1] == size:
        return image
    r = io.resize_image_tensor(io.to_tensor_image(image), (size, size))
    return (r * 255.0).round().clamp(0, 255).to(torch.uint8).permute(1, 2, 0).numpy()


def _old_pairs_resize_mask(mask, size):  # evaluation/pairs.py
    if mask.shape[0] == size and mask.shape[1] == size:
        return mask
    return io.resize_mask_tensor(io.to_tensor_mask(mask), (size, size))[0].numpy()


def _old_samples_to_uint8(x):  # training/samples.py::_to_uint8
    x = x.detach().float().clamp(0, 1).cpu()
    if x.shape[1] == 1:
        x = x.expand(-1, 3, -1, -1)
    return np.round(x.permute(0, 2, 3, 1).numpy() * 255.0).astype(np.uint8)


def _old_baseline_uint8_image(x):  # runners/baseline.py::_uint8_image
    t = (x.detach().float() * 255.0).round_().clamp_(0, 255).to(torch.uint8)
    return np.ascontiguousarray(t.permute(1, 2, 0).cpu().numpy())


def _old_run_output_to_uint8(image):  # runners/base.py::RunOutput.to_uint8
    t = torch.nan_to_num(image.detach()).clamp(0, 1)
    arr = (t * 255.0).round().to(torch.uint8).permute(0, 2, 3, 1).cpu().numpy()
    return [np.ascontiguousarray(a) for a in arr]


def _old_perturb_to_uint8(x):  # data/perturb/ops.py::to_uint8
    return np.clip(np.rint(x), 0, 255).astype(np.uint8)


def _old_core_small_np(small):  # pipeline/core.py::_run_model (region maps input)
    return small.mul(255.0).add_(0.5).clamp_(0, 255).to(torch.uint8).permute(0, 2, 3, 1).cpu().numpy()


def _old_core_render_same_size(image):  # pipeline/core.py::_render
    img = image[0].detach().float().clamp(0, 1).mul(255.0).add_(0.5).to(torch.uint8).cpu()
    return np.ascontiguousarray(img.permute(1, 2, 0).numpy())


def _old_core_full_size(images):  # pipeline/core.py::_run_full_size
    from harmonykit.operators.tiling import tensor_view

    return torch.cat([tensor_view(im).permute(2, 0, 1).unsqueeze(0).float().div_(255.0) for im in images])


def _old_region_map_to_tensor(rgb, size):  # regionmaps/providers.py::RegionMap.to_tensor
    t = torch.from_numpy(np.array(rgb, dtype=np.uint8)).permute(2, 0, 1).float().div_(255.0)
    if size is not None and tuple(size) != tuple(t.shape[-2:]):
        t = F.interpolate(t[None], size=tuple(size), mode="nearest-exact")[0]
    return t


# -- pins ------------------------------------------------------------------------------------

@pytest.mark.parametrize("hw", SIZES)
@pytest.mark.parametrize("size", [1, 4, 16, 31])
def test_resize_image_and_mask_pinned(hw, size):
    r = _rng(hw[0] * 100 + size)
    img = r.integers(0, 256, (*hw, 3), dtype=np.uint8)
    mask = (r.random(hw) > 0.5).astype(np.float32)
    soft = r.random(hw, dtype=np.float32)
    np.testing.assert_array_equal(io.resize_image(img, size), _old_pairs_resize_image(img, size))
    np.testing.assert_array_equal(io.resize_mask(mask, size), _old_pairs_resize_mask(mask, size))
    np.testing.assert_array_equal(io.resize_mask(soft, size), _old_pairs_resize_mask(soft, size))
    if hw == (size, size):
        assert io.resize_image(img, size) is img


@pytest.mark.parametrize("hw", SIZES)
@pytest.mark.parametrize("channels", [1, 3])
def test_training_sample_uint8_pinned(hw, channels):
    x = _floats((2, channels, *hw), seed=hw[1])
    old = _old_samples_to_uint8(x)
    new = io.from_tensor_image(x.clamp(0, 1).expand(-1, 3, -1, -1))
    assert new.dtype == np.uint8
    np.testing.assert_array_equal(new, old)


@pytest.mark.parametrize("hw", SIZES)
def test_baseline_and_run_output_uint8_pinned(hw):
    x = _floats((3, 3, *hw), seed=hw[0])
    for k in range(3):
        np.testing.assert_array_equal(io.from_tensor_image(x[k]), _old_baseline_uint8_image(x[k]))
    for a, b in zip(list(io.from_tensor_image(torch.nan_to_num(x))), _old_run_output_to_uint8(x)):
        np.testing.assert_array_equal(a, b)


def test_half_up_differs_from_half_even_only_at_halves():
    x = torch.tensor([2.5, 3.5, 2.4, 254.5, 255.0]) / 255.0
    assert io.to_uint8_tensor(x).tolist() == [2, 4, 2, 254, 255]
    assert io.to_uint8_half_up(x).tolist() == [3, 4, 2, 255, 255]


@pytest.mark.parametrize("hw", SIZES)
def test_pipeline_conversions_pinned(hw):
    small = _floats((2, 3, *hw), seed=hw[0] + 1)
    old = _old_core_small_np(small.clone())
    new = io.to_uint8_half_up(small).permute(0, 2, 3, 1).cpu().numpy()
    np.testing.assert_array_equal(new, old)
    same = np.ascontiguousarray(io.to_uint8_half_up(small[0].detach().float().clamp(0, 1)).permute(1, 2, 0).numpy())
    np.testing.assert_array_equal(same, _old_core_render_same_size(small[:1]))
    r = _rng(hw[1])
    images = [r.integers(0, 256, (*hw, 3), dtype=np.uint8) for _ in range(2)]
    images[1].flags.writeable = False
    torch.testing.assert_close(torch.cat([io.to_tensor_image(im)[None] for im in images]),
                               _old_core_full_size(images), rtol=0, atol=0)


@pytest.mark.parametrize("hw", SIZES)
@pytest.mark.parametrize("size", [None, (5, 9), (1, 1)])
def test_region_map_tensor_pinned(hw, size):
    rgb = _rng(hw[0]).integers(0, 256, (*hw, 3), dtype=np.uint8)
    new = io.to_tensor_image(rgb) if size is None else io.resize_mask_tensor(io.to_tensor_image(rgb), size)
    torch.testing.assert_close(new, _old_region_map_to_tensor(rgb, size), rtol=0, atol=0)


def test_round_uint8_pinned():
    x = _rng(3).uniform(-40, 300, (17, 9, 3))
    x.flat[::5] = np.arange(x.flat[::5].size) + 0.5
    np.testing.assert_array_equal(io.round_uint8(x), _old_perturb_to_uint8(x))


def test_downsize_matches_the_whole_image_rule():
    img = _rng(4).integers(0, 256, (37, 23, 3), dtype=np.uint8)
    ref = io.resize_image_tensor(io.to_tensor_image(img), (9, 11))[None]
    torch.testing.assert_close(io.downsize(img, (9, 11), 5), ref, atol=1e-6, rtol=0)


def test_to_tensor_images_and_size_tuple():
    ims = [np.full((3, 4, 3), v, np.uint8) for v in (0, 255)]
    t = io.to_tensor_images(ims)
    assert t.shape == (2, 3, 3, 4) and t[1].min().item() == 1.0
    assert io.size_tuple(5) == (5, 5) and io.size_tuple(None) is None
