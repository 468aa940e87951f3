"""Region-aware normalization layers: in / rain / bain / srin (harmonykit.models.norms, norm_ops)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from harmonykit.models.layers import NORMS
from harmonykit.models.norm_ops import (
    masked_attention,
    masked_mean_std,
    pool_tokens,
    rain_normalize,
    resize_mask,
)
from harmonykit.models.norms import (
    BAIN,
    RAIN,
    REGION_NORMS,
    SRIN,
    InstanceNorm,
    create_region_norm,
    norm_uses_regions,
)

NAMES = ("in", "rain", "bain", "srin")


def _inputs(b=2, c=3, h=6, w=7, dtype=torch.float64, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(b, c, h, w, generator=g, dtype=dtype) * 2 + 1
    mask = torch.zeros(b, 1, h, w, dtype=dtype)
    mask[0, :, 1:4, 2:5] = 1
    mask[1:, :, 2:, :3] = 1
    regions = torch.rand(b, 3, h, w, generator=g, dtype=dtype)
    return x, mask, regions


def _np_stats(x: np.ndarray, m: np.ndarray, eps: float):
    """RainNet's estimator, written independently on NumPy: per sample and channel."""
    b, c = x.shape[:2]
    mu = np.zeros((b, c, 1, 1))
    sd = np.zeros((b, c, 1, 1))
    for i in range(b):
        sel = m[i, 0] > 0.5
        n = sel.sum()
        for j in range(c):
            vals = x[i, j][sel]
            mu[i, j] = vals.sum() / (n + eps)
            sd[i, j] = np.sqrt(((vals - mu[i, j, 0, 0]) ** 2).sum() / (n + eps) + eps)
    return mu, sd


def _randomize(module: torch.nn.Module, seed: int = 1, scale: float = 0.3) -> None:
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in module.parameters():
            p.copy_(torch.randn(p.shape, generator=g, dtype=p.dtype) * scale)


# ------------------------------------------------------------------------- registry
def test_registry_names():
    assert set(NAMES) <= set(REGION_NORMS.names())
    assert [norm_uses_regions(n) for n in NAMES] == [False, False, False, True]
    assert isinstance(create_region_norm("RAIN", 4), RAIN)
    with pytest.raises(ValueError, match="unknown region norm"):
        create_region_norm("batch", 4)
    with pytest.raises(ValueError, match="unknown region norm"):
        norm_uses_regions("nope")
    with pytest.raises(ValueError, match=r"unknown region norm 3; expected one of: bain, in, rain, srin"):
        norm_uses_regions(3)


def test_region_norms_are_not_plain_norms():
    """``in`` is in both registries, with different layers; nothing else is shared."""
    assert REGION_NORMS is not NORMS
    assert set(REGION_NORMS) & set(NORMS) == {"in"}
    assert REGION_NORMS.get("in") is InstanceNorm and NORMS.get("in") is not InstanceNorm
    assert {"rain", "bain", "srin"}.isdisjoint(NORMS)


@pytest.mark.parametrize("name", NAMES)
def test_every_norm_same_call(name, dtype):
    x, mask, regions = _inputs(dtype=dtype)
    norm = create_region_norm(name, 3).to(dtype)
    big_mask = F.interpolate(mask, scale_factor=2, mode="nearest")
    big_regions = F.interpolate(regions, scale_factor=4, mode="nearest")
    out = norm(x, big_mask, big_regions)
    assert out.shape == x.shape and out.dtype == dtype
    assert torch.isfinite(out).all()
    # keyword form of the same signature
    out2 = norm(x, mask=big_mask, regions=big_regions)
    torch.testing.assert_close(out, out2)


@pytest.mark.parametrize("name", NAMES)
def test_every_norm_backward(name):
    x, mask, regions = _inputs(dtype=torch.float32)
    norm = create_region_norm(name, 3)
    _randomize(norm)
    x.requires_grad_(True)
    norm(x, mask, regions).square().sum().backward()
    assert torch.isfinite(x.grad).all() and x.grad.abs().sum() > 0
    for pname, p in norm.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, pname


# ------------------------------------------------------------------------- helpers
def test_resize_mask_area_and_nearest():
    m = torch.zeros(1, 1, 8, 8)
    m[..., :4, :2] = 1
    area = resize_mask(m, (2, 2))
    torch.testing.assert_close(area.flatten(), torch.tensor([0.5, 0.0, 0.0, 0.0]))
    near = resize_mask(m, (2, 2), "nearest")
    assert set(near.unique().tolist()) <= {0.0, 1.0}
    up = resize_mask(m, (16, 16))
    assert up.shape == (1, 1, 16, 16) and 0 <= up.min() and up.max() <= 1
    assert resize_mask(m, (8, 8)) is m
    with pytest.raises(ValueError, match="unknown mask resize mode"):
        resize_mask(m, (2, 2), "bicubic")
    with pytest.raises(ValueError, match=r"expected \(B, K, H, W\)"):
        resize_mask(m[0], (2, 2))


def test_masked_mean_std_vs_numpy():
    x, mask, _ = _inputs()
    mu, sd, n = masked_mean_std(x, mask, eps=1e-5)
    mu_ref, sd_ref = _np_stats(x.numpy(), mask.numpy(), 1e-5)
    np.testing.assert_allclose(mu.numpy(), mu_ref, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(sd.numpy(), sd_ref, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(n.flatten().numpy(), mask.sum(dim=(1, 2, 3)).numpy())


def test_masked_mean_std_float32_large_offset():
    """The one-pass moments are shifted: no cancellation on features far from zero."""
    x, mask, _ = _inputs()
    x = x * 0.01 + 1000.0
    mu, sd, _ = masked_mean_std(x.float(), mask.float())
    mu_ref, sd_ref = _np_stats(x.numpy(), mask.numpy(), 1e-5)
    np.testing.assert_allclose(mu.numpy(), mu_ref, rtol=1e-6)
    np.testing.assert_allclose(sd.numpy(), sd_ref, rtol=2e-3)


# ------------------------------------------------------------------------- in
def test_instance_norm_ignores_mask():
    x, mask, regions = _inputs()
    norm = InstanceNorm(3).double()
    ref = F.instance_norm(x, eps=1e-5)
    torch.testing.assert_close(norm(x, mask, regions), ref)
    torch.testing.assert_close(norm(x, None), ref)
    torch.testing.assert_close(norm(x, 1 - mask), ref)
    one = torch.randn(2, 3, 1, 1)
    assert torch.equal(InstanceNorm(3)(one, None), one)
    aff = InstanceNorm(3, affine=True)
    assert sum(p.numel() for p in aff.parameters()) == 6


# ------------------------------------------------------------------------- rain
def test_rain_zero_init_matches_numpy_reference():
    x, mask, _ = _inputs()
    norm = RAIN(3).double()
    for p in norm.parameters():
        assert torch.equal(p, torch.zeros_like(p))
    out = norm(x, mask).detach().numpy()
    xn, mn = x.numpy(), mask.numpy()
    mu_f, sd_f = _np_stats(xn, mn, 1e-5)
    mu_b, sd_b = _np_stats(xn, 1 - mn, 1e-5)
    ref = mn * ((xn - mu_f) / sd_f * sd_b + mu_b) + (1 - mn) * ((xn - mu_b) / sd_b)
    np.testing.assert_allclose(out, ref, rtol=1e-10, atol=1e-10)
    # the foreground now carries the background's statistics
    fg = mn[:, 0] > 0.5
    for i in range(x.shape[0]):
        for c in range(x.shape[1]):
            vals = out[i, c][fg[i]]
            np.testing.assert_allclose(vals.mean(), mu_b[i, c, 0, 0], rtol=1e-4)
            np.testing.assert_allclose(vals.std(), sd_b[i, c, 0, 0], rtol=1e-4)


def test_rain_affine_parameters_match_formula():
    x, mask, _ = _inputs()
    norm = RAIN(3).double()
    _randomize(norm)
    xn, mn = x.numpy(), mask.numpy()
    mu_f, sd_f = _np_stats(xn, mn, 1e-5)
    mu_b, sd_b = _np_stats(xn, 1 - mn, 1e-5)
    gf, bf, gb, bb = (p.detach().numpy().reshape(1, -1, 1, 1) for p in (norm.fg_gamma, norm.fg_beta, norm.bg_gamma, norm.bg_beta))
    fg = ((xn - mu_f) / sd_f * sd_b + mu_b) * (1 + gf) + bf
    bg = (xn - mu_b) / sd_b * (1 + gb) + bb
    np.testing.assert_allclose(norm(x, mask).detach().numpy(), mn * fg + (1 - mn) * bg, rtol=1e-10, atol=1e-10)


def test_rain_nearest_mask_mode_matches_explicit_resize():
    x, mask, _ = _inputs()
    big = F.interpolate(mask, scale_factor=2, mode="nearest")
    for mode in ("nearest", "area"):
        out = RAIN(3, mask_mode=mode).double()(x, big)
        torch.testing.assert_close(out, rain_normalize(x, resize_mask(big, x.shape[-2:], mode)))


def test_rain_soft_mask_from_area_resize():
    x, _, _ = _inputs(h=4, w=4)
    big = torch.zeros(2, 1, 16, 16, dtype=x.dtype)
    big[..., :6, :6] = 1  # does not align with the 4x4 grid: fractional cells
    out = RAIN(3).double()(x, big)
    m = resize_mask(big, (4, 4))
    assert ((m > 0) & (m < 1)).any()
    torch.testing.assert_close(out, rain_normalize(x, m))


@pytest.mark.parametrize("name", ("rain", "bain", "srin"))
def test_background_unchanged_by_foreground(name):
    """Background outputs depend on background pixels only (and not on fg parameters)."""
    x, mask, regions = _inputs()
    norm = create_region_norm(name, 3).double()
    _randomize(norm)
    out = norm(x, mask, regions)
    x2 = x + 5.0 * torch.randn_like(x) * mask  # re-style the foreground only
    with torch.no_grad():
        for pname, p in norm.named_parameters():
            if not pname.startswith("bg_"):
                p.add_(1.0)
    out2 = norm(x2, mask, regions)
    bg = (mask == 0).expand_as(x)
    torch.testing.assert_close(out2[bg], out[bg], rtol=1e-12, atol=1e-12)
    assert not torch.allclose(out2[~bg], out[~bg])
    # while the foreground does follow the background's style
    x3 = x + 3.0 * (1 - mask)
    assert not torch.allclose(norm(x3, mask, regions)[~bg], norm(x, mask, regions)[~bg])


def test_rain_empty_regions():
    x, _, _ = _inputs()
    norm = RAIN(3).double()
    full = torch.ones(2, 1, 6, 7, dtype=x.dtype)
    # no background: the foreground keeps its own statistics -> identity at init
    torch.testing.assert_close(norm(x, full), x, rtol=1e-6, atol=1e-6)
    # no foreground: plain instance norm of the background
    torch.testing.assert_close(norm(x, torch.zeros_like(full)), F.instance_norm(x, eps=1e-5), rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("name", ("bain", "srin"))
@pytest.mark.parametrize("fill", (0.0, 1.0))
def test_attention_norms_empty_regions_finite(name, fill):
    x, _, regions = _inputs()
    norm = create_region_norm(name, 3).double()
    _randomize(norm)
    x.requires_grad_(True)
    out = norm(x, torch.full((2, 1, 6, 7), fill, dtype=x.dtype), regions)
    out.sum().backward()
    assert torch.isfinite(out).all() and torch.isfinite(x.grad).all()


# ------------------------------------------------------------------------- attention
@pytest.mark.parametrize("dt", (torch.float32, torch.float64))
def test_sdpa_equals_naive_attention(dt):
    g = torch.Generator().manual_seed(3)
    q = torch.randn(2, 30, 8, generator=g).to(dt)
    k = torch.randn(2, 20, 8, generator=g).to(dt)
    v = torch.randn(2, 20, 12, generator=g).to(dt)  # value width differs from key width
    w = torch.rand(2, 20, generator=g).to(dt)
    w[0, :12] = 0
    w[1] = 0  # no valid key: attend to all keys, without bias
    naive = masked_attention(q, k, v, w, impl="naive")
    sdpa = masked_attention(q, k, v, w, impl="sdpa")
    tol = 1e-5 if dt == torch.float32 else 1e-12
    torch.testing.assert_close(sdpa, naive, rtol=tol, atol=tol)
    # explicit reference for sample 0
    s = q[0] @ k[0].T / np.sqrt(8) + torch.log(w[0]).masked_fill(w[0] == 0, float("-inf"))
    torch.testing.assert_close(naive[0], torch.softmax(s, -1) @ v[0], rtol=tol, atol=tol)
    torch.testing.assert_close(naive[1], torch.softmax(q[1] @ k[1].T / np.sqrt(8), -1) @ v[1], rtol=tol, atol=tol)


def test_masked_attention_errors():
    q, k, v, w = torch.zeros(1, 2, 4), torch.zeros(1, 3, 4), torch.zeros(1, 3, 2), torch.ones(1, 3)
    with pytest.raises(ValueError, match="unknown attention impl"):
        masked_attention(q, k, v, w, impl="flash")
    with pytest.raises(ValueError, match="inconsistent attention shapes"):
        masked_attention(q, k, v, torch.ones(1, 4))
    with pytest.raises(ValueError, match="expected query"):
        masked_attention(q[0], k, v, w)


@pytest.mark.parametrize("size", ((8, 8), (7, 9)))
def test_pooled_attention_equals_per_pixel_attention_with_cell_keys(size):
    """Pooled tokens with log-weight bias == attending every pixel with its cell's mean key."""
    h, w = size
    g = torch.Generator().manual_seed(5)
    keys = torch.randn(1, 4, h, w, generator=g, dtype=torch.float64)
    vals = torch.randn(1, 3, h, w, generator=g, dtype=torch.float64)
    wt = (torch.rand(1, 1, h, w, generator=g, dtype=torch.float64) > 0.4).double()
    q = torch.randn(1, 5, 4, generator=g, dtype=torch.float64)
    (pk, pv), pw = pool_tokens([keys, vals], wt, max_tokens=16)
    assert pk.shape[-2] * pk.shape[-1] <= 16
    pooled = masked_attention(q, pk.flatten(2).transpose(1, 2), pv.flatten(2).transpose(1, 2), pw.flatten(1))
    s = int(np.ceil(h / pk.shape[-2]))
    cell_keys = pk.repeat_interleave(s, -2).repeat_interleave(s, -1)[..., :h, :w]
    per_pixel = masked_attention(
        q, cell_keys.flatten(2).transpose(1, 2), vals.flatten(2).transpose(1, 2), wt.flatten(1), impl="naive"
    )
    torch.testing.assert_close(pooled, per_pixel, rtol=1e-10, atol=1e-10)


def test_pool_tokens_passthrough_and_errors():
    x, wt = torch.randn(1, 2, 4, 4), torch.ones(1, 1, 4, 4)
    (same,), same_w = pool_tokens([x], wt, 16)
    assert same is x and same_w is wt
    (same,), _ = pool_tokens([x], wt, None)
    assert same is x
    with pytest.raises(ValueError, match="max_tokens"):
        pool_tokens([x], wt, 0)


@pytest.mark.parametrize("name", ("bain", "srin"))
@pytest.mark.parametrize("max_kv_tokens", (None, 12))
def test_module_sdpa_equals_naive(name, max_kv_tokens):
    x, mask, regions = _inputs(h=8, w=8)
    a = create_region_norm(name, 3, max_kv_tokens=max_kv_tokens, attention="sdpa").double()
    _randomize(a)
    b = create_region_norm(name, 3, max_kv_tokens=max_kv_tokens, attention="naive").double()
    b.load_state_dict(a.state_dict())
    torch.testing.assert_close(a(x, mask, regions), b(x, mask, regions), rtol=1e-10, atol=1e-10)


# ------------------------------------------------------------------------- bain
def test_bain_with_uniform_attention_equals_rain():
    x, mask, _ = _inputs()
    bain = BAIN(3).double()
    _randomize(bain)
    with torch.no_grad():
        bain.to_q.weight.zero_()
        bain.to_q.bias.zero_()
    rain = RAIN(3).double()
    rain.load_state_dict({k: v for k, v in bain.state_dict().items() if not k.startswith("to_")})
    torch.testing.assert_close(bain(x, mask), rain(x, mask), rtol=1e-5, atol=1e-5)


def test_bain_attends_to_similar_background():
    """With a sharp query/key similarity, a foreground pixel takes the statistics of the
    background pixels that look like it, not the global background statistics."""
    x = torch.zeros(1, 1, 2, 4, dtype=torch.float64)
    x[0, 0, 0] = torch.tensor([1.0, 1.0, 5.0, 5.0])  # bg: three pixels at 1, three at 5
    x[0, 0, 1] = torch.tensor([1.2, 4.8, 1.0, 5.0])  # fg (first two): similar to 1 resp. 5
    mask = torch.zeros(1, 1, 2, 4, dtype=torch.float64)
    mask[0, 0, 1, :2] = 1
    bain = BAIN(1, attn_channels=1).double()
    with torch.no_grad():
        bain.to_q.weight.fill_(30.0), bain.to_q.bias.zero_()
        bain.to_k.weight.fill_(30.0), bain.to_k.bias.zero_()
    out = bain(x, mask)
    # fg normalised value is -1 / +1; bg near-pixel std ~0 -> output near the matched bg value
    assert abs(out[0, 0, 1, 0].item() - 1.0) < 0.2
    assert abs(out[0, 0, 1, 1].item() - 5.0) < 0.2


# ------------------------------------------------------------------------- srin
def test_srin_init_is_region_instance_norm_plus_relu_beta():
    x, mask, regions = _inputs()
    srin = SRIN(3).double()
    with torch.no_grad():
        srin.g_beta.weight.zero_()
        srin.g_beta.bias.zero_()
    out = srin(x, mask, regions)
    mu_f, sd_f, _ = masked_mean_std(x, mask)
    mu_b, sd_b, _ = masked_mean_std(x, 1 - mask)
    ref = mask * (x - mu_f) / sd_f + (1 - mask) * (x - mu_b) / sd_b
    torch.testing.assert_close(out, ref)


def test_srin_same_region_same_parameters():
    """The query depends on the region map only: foreground positions of one region share
    their attention row, hence gamma and beta."""
    x, mask, _ = _inputs(b=1, h=8, w=8)
    mask = torch.zeros_like(mask)
    mask[..., 2:6, 2:6] = 1
    regions = torch.zeros(1, 3, 8, 8, dtype=x.dtype)
    regions[:, 0, :, :4] = 0.8
    regions[:, 2, :, 4:] = 0.6
    srin = SRIN(3).double()
    _randomize(srin)
    captured = {}

    def hook(mod, inp, out):
        captured["a"] = inp[0]

    srin.g_gamma.register_forward_hook(hook)
    srin(x, mask, regions)
    a = captured["a"]
    left, right = a[..., 2:6, 2:4], a[..., 2:6, 4:6]
    torch.testing.assert_close(left, left[..., :1, :1].expand_as(left))
    torch.testing.assert_close(right, right[..., :1, :1].expand_as(right))
    assert not torch.allclose(left[..., 0, 0], right[..., 0, 0])
    assert torch.equal(a * (1 - mask), torch.zeros_like(a))


def test_srin_regions_change_output():
    x, mask, regions = _inputs()
    srin = SRIN(3).double()
    _randomize(srin)
    a = srin(x, mask, regions)
    b = srin(x, mask, regions.flip(-1))
    fg = mask.bool().expand_as(x)
    assert not torch.allclose(a[fg], b[fg])
    torch.testing.assert_close(a[~fg], b[~fg])


# ------------------------------------------------------------------------- gradcheck
@pytest.mark.parametrize(
    "name, attention",
    [("in", None), ("rain", None), ("bain", "sdpa"), ("bain", "naive"), ("srin", "sdpa"), ("srin", "naive")],
)
def test_gradcheck(name, attention):
    x, mask, regions = _inputs(b=1, c=2, h=3, w=4, seed=7)
    mask.zero_()
    mask[..., :2, :2] = 1
    kw = {"attention": attention} if attention else {}
    norm = create_region_norm(name, 2, **kw).double()
    _randomize(norm, seed=2, scale=0.5)
    x.requires_grad_(True)
    regions.requires_grad_(name == "srin")
    inputs = (x, regions) if name == "srin" else (x,)

    def fn(*args):
        return norm(args[0], mask, args[1] if len(args) > 1 else regions)

    assert torch.autograd.gradcheck(fn, inputs, eps=1e-6, atol=1e-5)


def test_gradcheck_rain_parameters_and_mask():
    x, mask, _ = _inputs(b=1, c=2, h=3, w=3, seed=4)
    mask = torch.rand_like(mask) * 0.8 + 0.1  # soft mask: smooth everywhere
    g = [torch.randn(2, dtype=torch.float64, requires_grad=True) for _ in range(4)]
    x.requires_grad_(True)
    mask.requires_grad_(True)
    assert torch.autograd.gradcheck(lambda a, m, *p: rain_normalize(a, m, *p), (x, mask, *g), eps=1e-6, atol=1e-5)


# ------------------------------------------------------------------------- errors
@pytest.mark.parametrize("name", NAMES)
def test_errors(name):
    x, mask, regions = _inputs()
    norm = create_region_norm(name, 3).double()
    with pytest.raises(ValueError, match=r"expected features \(B, C, H, W\)"):
        norm(x[0], mask, regions)
    with pytest.raises(ValueError, match="expected 3 channels"):
        norm(x[:, :2], mask, regions)
    with pytest.raises(ValueError, match="expected mask"):
        norm(x, mask[:, :, 0], regions)
    with pytest.raises(ValueError, match="expected mask"):
        norm(x, mask[:1], regions)
    if name != "in":
        with pytest.raises(ValueError, match="needs a foreground mask"):
            norm(x, None, regions)


def test_srin_needs_regions_and_constructor_errors():
    x, mask, regions = _inputs()
    srin = SRIN(3).double()
    with pytest.raises(ValueError, match="needs a semantic region map"):
        srin(x, mask)
    with pytest.raises(ValueError, match="expected regions"):
        srin(x, mask, regions[:, :2])
    with pytest.raises(ValueError, match="num_channels"):
        RAIN(0)
    with pytest.raises(ValueError, match="mask_mode"):
        RAIN(3, mask_mode="bilinear")
    with pytest.raises(ValueError, match="max_kv_tokens"):
        BAIN(3, max_kv_tokens=0)
    with pytest.raises(ValueError, match="attention impl"):
        SRIN(3, attention="flash")
    with pytest.raises(ValueError, match="does not match features"):
        rain_normalize(x, mask[..., :3])


@pytest.mark.parametrize("name", ("bain", "srin"))
def test_batch_equals_per_sample(name):
    """Foreground queries are gathered per sample: batching must not mix samples."""
    x, mask, regions = _inputs(b=3)
    mask[2] = 1  # one sample without background
    norm = create_region_norm(name, 3).double()
    _randomize(norm)
    out = norm(x, mask, regions)
    for i in range(3):
        s = slice(i, i + 1)
        torch.testing.assert_close(out[s], norm(x[s], mask[s], regions[s]), rtol=1e-12, atol=1e-12)
