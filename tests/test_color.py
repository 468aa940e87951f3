"""Tests for harmonykit.color: reference values (scikit-image, colorsys), round trips, gradcheck."""

from __future__ import annotations

import colorsys

import numpy as np
import pytest
import torch
from skimage import color as skcolor

from harmonykit.color import (
    HlsToRgb,
    LabToRgb,
    RgbToHls,
    RgbToLab,
    hls_to_rgb,
    lab_to_rgb,
    rgb_to_hls,
    rgb_to_lab,
)


def _to_tensor(img: np.ndarray, dtype=torch.float64) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(img)).permute(2, 0, 1)[None].to(dtype)


class TestRgbToLab:
    def test_smoke_and_shapes(self, device, dtype):
        x = torch.rand(2, 5, 3, 4, 6, device=device, dtype=dtype)
        out = rgb_to_lab(x)
        assert out.shape == x.shape and out.dtype == dtype and out.device.type == device.type

    def test_reference_skimage(self, astronaut):
        img = astronaut[::8, ::8] / 255.0
        ours = rgb_to_lab(_to_tensor(img))[0].permute(1, 2, 0).numpy()
        np.testing.assert_allclose(ours, skcolor.rgb2lab(img), atol=1e-6)

    def test_ranges(self):
        lab = rgb_to_lab(torch.tensor([[0.0, 0.0, 0.0], [1.0, 1.0, 1.0]]).T.reshape(1, 3, 1, 2))
        assert abs(lab[0, 0, 0, 0].item()) < 1e-6
        assert abs(lab[0, 0, 0, 1].item() - 100.0) < 1e-3

    def test_inverse_reference_skimage(self, chelsea):
        lab = skcolor.rgb2lab(chelsea[::8, ::8] / 255.0)
        ours = lab_to_rgb(_to_tensor(lab))[0].permute(1, 2, 0).numpy()
        np.testing.assert_allclose(ours, skcolor.lab2rgb(lab), atol=1e-6)

    def test_round_trip(self, dtype):
        x = torch.rand(3, 3, 8, 8, dtype=dtype)
        tol = 1e-4 if dtype == torch.float32 else 1e-9
        torch.testing.assert_close(lab_to_rgb(rgb_to_lab(x)), x, atol=tol, rtol=0)

    @pytest.mark.parametrize("bad", [torch.rand(3, 4), torch.rand(1, 4, 2, 2)])
    def test_exceptions(self, bad):
        with pytest.raises(ValueError, match=r"\(\*, 3, H, W\)"):
            rgb_to_lab(bad)

    def test_integer_input_rejected(self):
        with pytest.raises(TypeError):
            rgb_to_lab(torch.zeros(1, 3, 2, 2, dtype=torch.uint8))

    def test_gradcheck(self):
        x = (torch.rand(1, 3, 3, 3, dtype=torch.float64) * 0.9 + 0.05).requires_grad_()
        assert torch.autograd.gradcheck(rgb_to_lab, (x,))
        lab = rgb_to_lab(x.detach()).requires_grad_()
        assert torch.autograd.gradcheck(lambda t: lab_to_rgb(t, clip=False), (lab,))

    def test_modules(self):
        x = torch.rand(1, 3, 4, 4)
        torch.testing.assert_close(RgbToLab()(x), rgb_to_lab(x))
        torch.testing.assert_close(LabToRgb()(RgbToLab()(x)), x, atol=1e-4, rtol=0)


class TestRgbToHls:
    def test_reference_colorsys(self, coffee):
        img = coffee[::16, ::16] / 255.0
        ours = rgb_to_hls(_to_tensor(img))[0].permute(1, 2, 0).numpy()
        ref = np.array([colorsys.rgb_to_hls(*p) for p in img.reshape(-1, 3)]).reshape(img.shape)
        ref[..., 0] *= 360.0
        # hue is circular: compare on the circle
        dh = np.abs((ours[..., 0] - ref[..., 0] + 180.0) % 360.0 - 180.0)
        assert dh.max() < 1e-6
        np.testing.assert_allclose(ours[..., 1:], ref[..., 1:], atol=1e-9)

    def test_inverse_reference_colorsys(self):
        rng = np.random.default_rng(1)
        hls = rng.random((5, 7, 3))
        ours = hls_to_rgb(_to_tensor(hls * [360.0, 1.0, 1.0]))[0].permute(1, 2, 0).numpy()
        ref = np.array([colorsys.hls_to_rgb(*p) for p in hls.reshape(-1, 3)]).reshape(hls.shape)
        np.testing.assert_allclose(ours, ref, atol=1e-9)

    def test_grey_has_zero_hue_and_saturation(self):
        g = torch.full((1, 3, 2, 2), 0.4)
        hls = rgb_to_hls(g)
        assert torch.all(hls[:, 0] == 0) and torch.all(hls[:, 2] == 0)

    def test_hue_wraps(self):
        x = torch.rand(1, 3, 4, 4, dtype=torch.float64)
        hls = rgb_to_hls(x)
        shifted = hls.clone()
        shifted[:, 0] += 720.0
        torch.testing.assert_close(hls_to_rgb(shifted), hls_to_rgb(hls))

    def test_round_trip(self, device, dtype):
        x = torch.rand(2, 3, 5, 5, device=device, dtype=dtype)
        tol = 1e-5 if dtype == torch.float32 else 1e-9
        torch.testing.assert_close(hls_to_rgb(rgb_to_hls(x)), x, atol=tol, rtol=0)

    def test_exceptions(self):
        with pytest.raises(ValueError):
            rgb_to_hls(torch.rand(2, 2, 2))
        with pytest.raises(ValueError):
            hls_to_rgb(torch.rand(1, 2, 2, 2))

    def test_gradcheck(self):
        x = torch.rand(1, 3, 3, 3, dtype=torch.float64).requires_grad_()
        assert torch.autograd.gradcheck(rgb_to_hls, (x,))
        hls = (torch.rand(1, 3, 3, 3, dtype=torch.float64) * torch.tensor([300.0, 0.8, 0.8]).view(1, 3, 1, 1) + 0.1)
        assert torch.autograd.gradcheck(hls_to_rgb, (hls.requires_grad_(),))

    def test_modules(self):
        x = torch.rand(1, 3, 4, 4)
        torch.testing.assert_close(HlsToRgb()(RgbToHls()(x)), x, atol=1e-5, rtol=0)
