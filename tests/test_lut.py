""".cube 3D LUTs: reader, content hash, trilinear apply (NumPy and PyTorch) against a float64
reference, malformed files."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from harmonykit.errors import HarmonykitError
from harmonykit.lut import (
    CubeFormatError,
    CubeLut,
    apply_lut,
    format_cube,
    identity_lut,
    read_cube,
    write_cube,
)
from harmonykit.operators import ApplyLut, apply_lut_tensor


def _reference(lut: CubeLut, rgb) -> np.ndarray:
    """Straightforward float64 trilinear look-up of one RGB triple (clamped to the domain):
    interpolate along r on the 4 (g, b) edges, then along g, then along b."""
    n = lut.size
    u = [(min(max(float(x), lo), hi) - lo) / (hi - lo) * (n - 1) for x, lo, hi in zip(rgb, lut.domain_min, lut.domain_max)]
    i = [min(int(np.floor(v)), n - 2) for v in u]
    f = [v - k for v, k in zip(u, i)]
    t = lut.table

    def along_r(b, g):
        return (1 - f[0]) * t[b, g, i[0]] + f[0] * t[b, g, i[0] + 1]

    def along_g(b):
        return (1 - f[1]) * along_r(b, i[1]) + f[1] * along_r(b, i[1] + 1)

    return (1 - f[2]) * along_g(i[2]) + f[2] * along_g(i[2] + 1)


def _random_lut(n: int, seed: int = 0, **kw) -> CubeLut:
    return CubeLut(np.random.default_rng(seed).uniform(-0.1, 1.1, (n, n, n, 3)), **kw)


def _linear_lut(n: int, matrix: np.ndarray, offset: np.ndarray) -> CubeLut:
    """A LUT sampling an affine map of RGB (trilinear interpolation reproduces it exactly)."""
    grid = identity_lut(n).table
    return CubeLut(grid @ matrix.T + offset)


def _gradient(h: int = 16, w: int = 16) -> np.ndarray:
    y, x = np.mgrid[0:h, 0:w]
    return np.stack([x * 255 // (w - 1), y * 255 // (h - 1), (x + y) * 255 // (h + w - 2)], -1).astype(np.uint8)


# ----------------------------------------------------------------------------- reading


def test_reader_accepts_title_comments_domain_and_crlf(tmp_path):
    rows = identity_lut(2).table.reshape(-1, 3)
    text = ('# made by hand\r\nTITLE "My grade # 1"\r\n\r\nLUT_3D_SIZE 2\r\nDOMAIN_MIN 0 0 0\r\nDOMAIN_MAX 2 2 2\r\n'
            + "".join(f"{r:.6f} {g:.6f} {b:.6f}  # row\r\n" for r, g, b in rows))
    p = tmp_path / "a.cube"
    p.write_bytes(text.encode())
    lut = read_cube(p)
    assert lut.title == "My grade # 1" and lut.size == 2 and lut.domain_max == (2.0, 2.0, 2.0)
    assert lut.table.shape == (2, 2, 2, 3) and lut.table[0, 0, 1].tolist() == [1.0, 0.0, 0.0]  # red fastest
    assert lut.table[1, 0, 0].tolist() == [0.0, 0.0, 1.0]
    # the hash ignores title, comments and number formatting; the domain counts
    assert read_cube(write_cube(tmp_path / "b.cube", CubeLut(lut.table, (0, 0, 0), (2, 2, 2)))).sha256 == lut.sha256
    assert identity_lut(2).sha256 != lut.sha256 and len(lut.sha256) == 64
    # Resolve's input range keyword
    p.write_text("LUT_3D_INPUT_RANGE -0.5 1.5\nLUT_3D_SIZE 2\n" + "0 0 0\n" * 8)
    assert read_cube(p).domain_min == (-0.5,) * 3


@pytest.mark.parametrize("size", [2, 3, 5, 17])
def test_any_size_round_trips(tmp_path, size):
    lut = _random_lut(size, seed=size)
    back = read_cube(write_cube(tmp_path / "r.cube", lut))
    assert back.size == size and np.array_equal(back.table, lut.table) and back.sha256 == lut.sha256


BAD_FILES = [
    ("LUT_3D_SIZE 2\n" + "0 0 0\n" * 7, 8, "needs 8 table rows, the file has 7"),  # its last line
    ("LUT_3D_SIZE 2\n" + "0 0 0\n" * 9, 10, "needs 8 table rows, the file has 9"),
    ("# no size\n" + "0 0 0\n" * 8, 2, "before LUT_3D_SIZE"),
    ("TITLE \"x\"\n", 1, "no LUT_3D_SIZE"),
    ("LUT_3D_SIZE 2\n" + "0 0 0\n" * 3 + "0 zero 0\n" + "0 0 0\n" * 4, 5, "not a number"),
    ("LUT_3D_SIZE 2\n" + "0 0 0\n" * 3 + "0 0\n" + "0 0 0\n" * 4, 5, "expected 3 number"),
    ("LUT_3D_SIZE 2\n" + "0 0 nan\n" + "0 0 0\n" * 7, 2, "non-finite"),
    ("LUT_1D_SIZE 4\n0 0 0\n0 0 0\n0 0 0\n0 0 0\n", 1, "1D LUTs are not supported"),
    ("LUT_3D_SIZE 1\n0 0 0\n", 1, "LUT_3D_SIZE must be one integer"),
    ("LUT_3D_SIZE two\n", 1, "LUT_3D_SIZE must be one integer"),
    ("LUT_3D_SIZE 2\nDOMAIN_MIN 0 0 0\nDOMAIN_MAX 1 0 1\n" + "0 0 0\n" * 8, 3, "min < max"),
    ("LUT_3D_SIZE 2\nDOMAIN_MIN 0 0\n" + "0 0 0\n" * 8, 2, "DOMAIN_MIN: expected 3"),
    ("LUT_3D_SIZE 2\nLUT_3D_SIZE 2\n" + "0 0 0\n" * 8, 2, "given twice"),
    ("LUT_3D_SIZE 2\n" + "0 0 0\n" * 8 + "DOMAIN_MIN 0 0 0\n", 10, "after the table rows"),
    ("LUT_3D_SIZE 2\nLUT_MAGIC 3\n" + "0 0 0\n" * 8, 2, "unknown keyword"),
]


@pytest.mark.parametrize("text,line,message", BAD_FILES)
def test_malformed_files_raise_one_error_naming_file_and_line(tmp_path, text, line, message):
    p = tmp_path / "bad.cube"
    p.write_text(text)
    with pytest.raises(CubeFormatError, match=message) as info:
        read_cube(p)
    assert isinstance(info.value, HarmonykitError)  # printed without a traceback by the CLI
    assert info.value.line == line and str(info.value).startswith(f"{p}, line {line}: ")


def test_unreadable_file(tmp_path):
    with pytest.raises(CubeFormatError, match="cannot read"):
        read_cube(tmp_path / "missing.cube")


def test_real_luts_read_and_grade(shared_dir):
    files = sorted((shared_dir / "data" / "luts").glob("*.cube"))
    if not files:
        pytest.skip("no .cube files in ../shared/data/luts")
    img = _gradient(8, 8)
    hashes = set()
    for p in files:
        lut = read_cube(p)
        assert lut.size in (16, 17, 32, 33)
        out = apply_lut(img, lut)
        assert out.shape == img.shape and out.dtype == np.uint8
        hashes.add(lut.sha256)
    assert len(hashes) == len(files)


# ----------------------------------------------------------------------------- NumPy apply


@pytest.mark.parametrize("size", [2, 7, 33])
def test_identity_lut_is_identity(size):
    img = np.random.default_rng(0).integers(0, 256, (9, 11, 3), dtype=np.uint8)
    assert np.abs(apply_lut(img, identity_lut(size)).astype(int) - img).max() <= 1
    x = np.random.default_rng(1).random((50, 3))
    assert np.abs(apply_lut(x, identity_lut(size)) - x).max() < 1e-12


def test_linear_lut_on_a_gradient_is_exact():
    m = np.array([[0.0, 0.0, 1.0], [0.0, 1.0, 0.0], [1.0, 0.0, 0.0]])  # channel swap r <-> b
    inv = _linear_lut(5, -np.eye(3), np.ones(3))  # inversion
    img = _gradient()
    x = img.astype(np.float64) / 255.0
    assert np.array_equal(apply_lut(img, _linear_lut(5, m, np.zeros(3))), img[..., ::-1])
    assert np.array_equal(apply_lut(img, inv), 255 - img)
    mix = np.array([[0.5, 0.3, 0.1], [0.2, 0.6, 0.1], [0.1, 0.1, 0.7]])
    ref = x @ mix.T + 0.05
    assert np.abs(apply_lut(x, _linear_lut(4, mix, np.full(3, 0.05))) - ref).max() < 1e-12


def test_random_lut_matches_the_float64_reference():
    lut = _random_lut(6, seed=3, domain_min=(0.0, -0.2, 0.1), domain_max=(1.0, 1.3, 0.8))
    x = np.random.default_rng(4).uniform(-0.5, 1.5, (300, 3))  # includes out-of-domain values
    ref = np.array([_reference(lut, p) for p in x])
    assert np.abs(apply_lut(x, lut) - ref).max() < 1e-12
    img = np.random.default_rng(5).integers(0, 256, (10, 10, 3), dtype=np.uint8)
    ref8 = np.array([_reference(lut, p / 255.0) for p in img.reshape(-1, 3)]).reshape(img.shape)
    assert np.array_equal(apply_lut(img, lut), np.clip(np.rint(ref8 * 255), 0, 255).astype(np.uint8))


def test_out_of_domain_inputs_are_clamped_and_domain_scales():
    lut = _random_lut(4, seed=6)
    x = np.array([[-0.3, 0.5, 1.7], [0.0, 0.5, 1.0]])
    out = apply_lut(x, lut)
    assert np.array_equal(out[0], out[1])
    assert np.abs(out[1] - _reference(lut, [0.0, 0.5, 1.0])).max() < 1e-12
    # a domain of [0, 2]: input 2 * v looks up what v looks up in [0, 1]
    wide = CubeLut(lut.table, (0, 0, 0), (2, 2, 2))
    v = np.random.default_rng(7).random((40, 3))
    assert np.abs(apply_lut(2 * v, wide) - apply_lut(v, lut)).max() < 1e-12
    assert np.array_equal(apply_lut(np.array([[2.0, 2.0, 2.0]]), wide)[0], lut.table[3, 3, 3])


def test_apply_rejects_bad_images():
    for bad in (np.zeros((4, 4), np.uint8), np.zeros((4, 4, 3), np.int32)):
        with pytest.raises(ValueError):
            apply_lut(bad, identity_lut())
    with pytest.raises(ValueError, match="N, N, N, 3"):
        CubeLut(np.zeros((2, 3, 2, 3)))


# ----------------------------------------------------------------------------- PyTorch apply


def _table(lut: CubeLut, dtype=torch.float64) -> torch.Tensor:
    return torch.tensor(lut.table, dtype=dtype)


def test_tensor_path_matches_the_reference_and_identity():
    lut = _random_lut(5, seed=8, domain_min=(-0.1, 0.0, 0.0), domain_max=(1.0, 1.2, 0.9))
    x = torch.rand(2, 3, 5, 7, dtype=torch.float64, generator=torch.Generator().manual_seed(0)) * 1.4 - 0.2
    out = apply_lut_tensor(x, _table(lut), lut.domain_min, lut.domain_max)
    ref = np.array([_reference(lut, p) for p in x.permute(0, 2, 3, 1).reshape(-1, 3).numpy()])
    assert out.shape == x.shape
    assert np.abs(out.permute(0, 2, 3, 1).reshape(-1, 3).numpy() - ref).max() < 1e-12
    y = torch.rand(1, 3, 8, 8)
    assert (ApplyLut(identity_lut(9))(y) - y).abs().max() < 1e-6


def test_uint8_and_float_paths_agree():
    lut = _random_lut(9, seed=9)
    img = np.random.default_rng(10).integers(0, 256, (12, 12, 3), dtype=np.uint8)
    x = torch.from_numpy(img).permute(2, 0, 1)[None].double() / 255.0
    out = ApplyLut(lut).double()(x)[0].permute(1, 2, 0).numpy()
    out8 = np.clip(np.rint(out * 255.0), 0, 255).astype(np.uint8)
    assert np.abs(out8.astype(int) - apply_lut(img, lut)).max() <= 1
    f32 = ApplyLut(lut)(x.float())[0].permute(1, 2, 0).numpy()
    assert np.abs(f32 - apply_lut(img.astype(np.float64) / 255.0, lut)).max() < 1e-5


def test_gradcheck_image_and_table():
    lut = _random_lut(3, seed=11)
    table = _table(lut).requires_grad_(True)
    # interior points away from grid knots (trilinear is piecewise linear across knots)
    x = (torch.rand(1, 3, 2, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(1)) * 0.4 + 0.05)
    x.requires_grad_(True)
    assert torch.autograd.gradcheck(lambda a, t: apply_lut_tensor(a, t), (x, table))
    # clamped inputs get no gradient
    y = torch.tensor([-0.5, 0.3, 1.5], dtype=torch.float64).reshape(1, 3, 1, 1).requires_grad_(True)
    apply_lut_tensor(y, table).sum().backward()
    assert y.grad[0, 0].item() == 0.0 and y.grad[0, 2].item() == 0.0 and y.grad[0, 1].item() != 0.0


def test_learnable_module_trains_its_table():
    m = ApplyLut(identity_lut(2), learnable=True)
    assert isinstance(m.table, torch.nn.Parameter)
    loss = m(torch.rand(1, 3, 4, 4)).sum()
    loss.backward()
    assert m.table.grad is not None and m.table.grad.abs().sum() > 0
    with pytest.raises(ValueError, match="B, 3, H, W"):
        m(torch.rand(3, 4, 4))


def test_format_cube_keeps_non_default_domain():
    lut = _random_lut(2, domain_min=(-1.0, 0.0, 0.0), domain_max=(1.0, 1.0, 2.0))
    text = format_cube(lut)
    assert "DOMAIN_MIN -1.0 0.0 0.0" in text and "DOMAIN_MAX 1.0 1.0 2.0" in text


def test_plain_tables_take_the_fast_path_and_equal_the_line_by_line_parse():
    from harmonykit.lut import format_cube, parse_cube

    rng = np.random.default_rng(3)
    lut = parse_cube("LUT_3D_SIZE 5\n" + "".join(f"{a!r} {b!r} {c!r}\n" for a, b, c in rng.random((125, 3)).tolist()))
    plain = format_cube(lut)
    commented = plain.replace("\n", "  # a comment\n", 40)  # comments in rows: the line-by-line parse
    assert parse_cube(commented).sha256 == parse_cube(plain).sha256 == lut.sha256
    assert np.array_equal(parse_cube(commented).table, lut.table)


def test_a_row_of_two_numbers_next_to_one_of_four_is_named():
    from harmonykit.lut import CubeFormatError, parse_cube

    rows = ["0 0 0"] * 8
    rows[3], rows[4] = "0 0", "0 0 0 0"
    with pytest.raises(CubeFormatError, match="line 5"):
        parse_cube("LUT_3D_SIZE 2\n" + "\n".join(rows) + "\n")
