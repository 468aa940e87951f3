"""Tests for harmonykit.io: conversion rules, EXIF, guards, atomic writes."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from harmonykit.errors import ImageReadError
from harmonykit.io import (
    atomic_write,
    atomic_write_text,
    encode_png,
    list_images,
    read_image,
    read_image_with_alpha,
    read_label_map,
    read_mask,
    write_image,
    write_mask,
)


def test_rgb_roundtrip_png(tmp_path, astronaut):
    p = tmp_path / "a.png"
    write_image(p, astronaut[:32, :48])
    np.testing.assert_array_equal(read_image(p), astronaut[:32, :48])


def test_grayscale_becomes_rgb(tmp_path):
    arr = np.arange(12, dtype=np.uint8).reshape(3, 4)
    Image.fromarray(arr, "L").save(tmp_path / "g.png")
    out = read_image(tmp_path / "g.png")
    assert out.shape == (3, 4, 3)
    np.testing.assert_array_equal(out[..., 1], arr)


def test_16bit_scaled_to_8bit(tmp_path):
    arr = np.array([[0, 257, 65535]], dtype=np.uint16)
    Image.fromarray(arr).save(tmp_path / "d.png")
    out = read_image(tmp_path / "d.png")
    np.testing.assert_array_equal(out[0, :, 0], [0, 1, 255])


def test_palette_expanded(tmp_path):
    im = Image.new("P", (2, 1))
    im.putpalette([255, 0, 0, 0, 0, 255] + [0] * 762)
    im.putdata([0, 1])
    im.save(tmp_path / "p.png")
    out = read_image(tmp_path / "p.png")
    np.testing.assert_array_equal(out[0], [[255, 0, 0], [0, 0, 255]])


def test_rgba_alpha_returned(tmp_path):
    arr = np.zeros((2, 2, 4), np.uint8)
    arr[..., 0] = 200
    arr[..., 3] = [[0, 255], [128, 10]]
    Image.fromarray(arr, "RGBA").save(tmp_path / "x.png")
    rgb, alpha = read_image_with_alpha(tmp_path / "x.png")
    assert rgb.shape == (2, 2, 3) and alpha is not None
    np.testing.assert_array_equal(alpha, arr[..., 3])
    assert read_image_with_alpha(tmp_path / "x.png")[0][0, 0, 0] == 200


def test_exif_orientation_applied(tmp_path):
    arr = np.zeros((2, 4, 3), np.uint8)  # 4 wide, 2 high
    arr[0, 0] = 255
    im = Image.fromarray(arr)
    exif = im.getexif()
    exif[0x0112] = 6  # rotate 90 CW when displayed
    im.save(tmp_path / "r.jpg", exif=exif, quality=100)
    out = read_image(tmp_path / "r.jpg")
    assert out.shape[:2] == (4, 2)


def test_missing_and_corrupt_files_named(tmp_path):
    with pytest.raises(ImageReadError, match="does not exist"):
        read_image(tmp_path / "nope.png")
    bad = tmp_path / "bad.jpg"
    bad.write_bytes(b"not a jpeg at all")
    with pytest.raises(ImageReadError, match="bad.jpg"):
        read_image(bad)
    trunc = tmp_path / "trunc.png"
    data = encode_png(np.full((64, 64, 3), 7, np.uint8), compress_level=0)
    trunc.write_bytes(data[: len(data) // 2])
    with pytest.raises(ImageReadError, match="trunc.png"):
        read_image(trunc)
    with pytest.raises(ImageReadError, match="directory"):
        read_image(tmp_path)


def test_decompression_bomb_guard(tmp_path, monkeypatch):
    Image.new("RGB", (100, 100)).save(tmp_path / "big.png")
    with pytest.raises(ImageReadError, match="exceeds the limit"):
        read_image(tmp_path / "big.png", max_pixels=5000)
    monkeypatch.setenv("HARMONYKIT_MAX_PIXELS", "5000")
    with pytest.raises(ImageReadError, match="HARMONYKIT_MAX_PIXELS"):
        read_image(tmp_path / "big.png")


def test_mask_rules(tmp_path):
    m = np.zeros((4, 4, 3), np.uint8)
    m[1:3, 1:3, 1] = 255  # only green channel set (3-channel mask)
    Image.fromarray(m).save(tmp_path / "m.png")
    out = read_mask(tmp_path / "m.png")
    assert out.dtype == np.float32 and out.shape == (4, 4)
    assert out[1, 1] == 1.0 and out[0, 0] == 0.0
    with pytest.raises(ImageReadError, match="expected"):
        read_mask(tmp_path / "m.png", size=(5, 5))
    write_mask(tmp_path / "w.png", out > 0.5)
    np.testing.assert_array_equal(read_mask(tmp_path / "w.png"), out)


def test_label_map_raw_values(tmp_path):
    arr = np.array([[0, 3], [150, 7]], np.uint8)
    Image.fromarray(arr, "L").save(tmp_path / "l.png")
    np.testing.assert_array_equal(read_label_map(tmp_path / "l.png"), arr)
    im = Image.fromarray(arr, "L").convert("P")
    im.putpalette(list(range(256)) * 3)
    im.save(tmp_path / "p.png")
    assert read_label_map(tmp_path / "p.png").dtype == np.int32
    with pytest.raises(ImageReadError, match="image is 3x2"):
        read_label_map(tmp_path / "l.png", size=(2, 3))
    rgb = np.zeros((2, 2, 3), np.uint8)
    rgb[0, 0] = [1, 2, 3]
    Image.fromarray(rgb).save(tmp_path / "c.png")
    with pytest.raises(ImageReadError, match="single-channel"):
        read_label_map(tmp_path / "c.png")


def test_atomic_write_leaves_no_partial_file(tmp_path):
    target = tmp_path / "out.txt"
    atomic_write_text(target, "old")
    with pytest.raises(RuntimeError), atomic_write(target) as tmp:
        tmp.write_text("partial")
        raise RuntimeError("boom")
    assert target.read_text() == "old"
    assert sorted(os.listdir(tmp_path)) == ["out.txt"]


def test_encode_png_deterministic(astronaut):
    assert encode_png(astronaut[:16, :16]) == encode_png(astronaut[:16, :16].copy())
    with pytest.raises(ValueError):
        encode_png(np.zeros((2, 2), np.float32))


def test_write_jpeg_and_alpha(tmp_path, chelsea):
    write_image(tmp_path / "c.jpg", chelsea[:16, :16])
    assert read_image(tmp_path / "c.jpg").shape == (16, 16, 3)
    alpha = np.full((16, 16), 77, np.uint8)
    write_image(tmp_path / "c.png", chelsea[:16, :16], alpha=alpha)
    np.testing.assert_array_equal(read_image_with_alpha(tmp_path / "c.png")[1], alpha)
    with pytest.raises(ValueError, match="unsupported output extension"):
        write_image(tmp_path / "c.xyz", chelsea[:4, :4])


def test_list_images(tmp_path):
    for n in ["b.JPG", "a.png", ".hidden.png", "notes.txt"]:
        (tmp_path / n).write_bytes(b"x")
    assert [p.name for p in list_images(tmp_path)] == ["a.png", "b.JPG"]
    assert isinstance(list_images(tmp_path)[0], Path)


def test_atomic_write_uses_normal_file_mode(tmp_path):
    umask = os.umask(0)
    os.umask(umask)
    atomic_write_text(tmp_path / "m.txt", "x")
    assert (tmp_path / "m.txt").stat().st_mode & 0o777 == 0o666 & ~umask


def test_stale_temporaries_of_dead_processes_are_removed_live_ones_kept(tmp_path):
    import os
    import subprocess
    import sys

    from harmonykit.io import atomic_write, is_temp_name, remove_stale_temp_files

    # a temporary of a process that is gone (SIGKILLed in the middle of atomic_write)
    code = ("import os, signal, sys; from harmonykit.io import atomic_write\n"
            "with atomic_write(sys.argv[1]) as t:\n    t.write_bytes(b'par'); os.kill(os.getpid(), signal.SIGKILL)\n")
    proc = subprocess.run([sys.executable, "-c", code, str(tmp_path / "a.png")], timeout=60)
    assert proc.returncode == -9
    dead = [p for p in tmp_path.iterdir()]
    assert len(dead) == 1 and is_temp_name(dead[0].name) and not (tmp_path / "a.png").exists()
    (tmp_path / ".hidden_user_file").write_text("keep")
    (tmp_path / "b.png").write_bytes(b"keep")
    with atomic_write(tmp_path / "c.png") as live:  # this process's own write in flight is kept
        live.write_bytes(b"x")
        assert remove_stale_temp_files(tmp_path) == dead
        assert live.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == [".hidden_user_file", "b.png", "c.png"]
    # an untagged temporary from an older version is removed only once it is old
    legacy = tmp_path / ".d.png.abcd1234.png"
    legacy.write_bytes(b"")
    assert remove_stale_temp_files(tmp_path) == [] and legacy.exists()
    os.utime(legacy, (0, 0))
    assert remove_stale_temp_files(tmp_path) == [legacy]


def _noisy_jpeg_mask(path: Path, quality: int = 70) -> np.ndarray:
    """A 3-channel JPEG mask like the public composites': a blurred rectangle with noise and
    a colour cast, saved lossy. Returns the intended bool mask."""
    from scipy.ndimage import gaussian_filter

    truth = np.zeros((48, 64), bool)
    truth[12:36, 16:48] = True
    rng = np.random.default_rng(3)
    soft = gaussian_filter(truth.astype(np.float64) * 255.0, 1.5) + rng.normal(0, 12, truth.shape)
    rgb = np.stack([soft, soft * 0.9, soft * 0.95], axis=2)
    Image.fromarray(np.clip(rgb, 0, 255).astype(np.uint8)).save(path, format="JPEG", quality=quality)
    return truth


def test_jpeg_mask_is_binarised_at_128_after_max_over_channels(tmp_path):
    truth = _noisy_jpeg_mask(tmp_path / "m.jpg")
    decoded = np.asarray(Image.open(tmp_path / "m.jpg").convert("RGB")).max(axis=2)
    assert len(np.unique(decoded)) > 20  # soft, noisy edges in the file
    m = read_mask(tmp_path / "m.jpg")
    assert m.dtype == np.float32 and set(np.unique(m).tolist()) <= {0.0, 1.0}
    np.testing.assert_array_equal(m == 1.0, decoded >= 128)
    assert (m.astype(bool) != truth).mean() < 0.02  # only edge pixels can differ
    # the rule follows the decoded format, not the file name
    (tmp_path / "disguised.png").write_bytes((tmp_path / "m.jpg").read_bytes())
    np.testing.assert_array_equal(read_mask(tmp_path / "disguised.png"), m)
    # lossless masks keep their soft values
    Image.fromarray(decoded).save(tmp_path / "soft.png")
    np.testing.assert_array_equal(read_mask(tmp_path / "soft.png"), decoded.astype(np.float32) / 255.0)


def test_jpeg_mask_rule_in_the_harmonizer_mask_inputs(tmp_path):
    from harmonykit.inference import load_mask_input

    _noisy_jpeg_mask(tmp_path / "m.jpg")
    ref = read_mask(tmp_path / "m.jpg")
    np.testing.assert_array_equal(load_mask_input(tmp_path / "m.jpg", ref.shape), ref)
    with Image.open(tmp_path / "m.jpg") as im:  # a PIL image decoded from JPEG: same rule
        np.testing.assert_array_equal(load_mask_input(im, ref.shape), ref)
    soft = np.asarray(Image.open(tmp_path / "m.jpg").convert("L"))
    assert len(np.unique(load_mask_input(soft, ref.shape))) > 2  # arrays are taken as they are


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16, np.float32])
@pytest.mark.parametrize("channels", [1, 3, 4])
def test_max_over_channels_equals_numpy_max(dtype, channels):
    from harmonykit.io import max_over_channels

    arr = (np.random.default_rng(channels).random((7, 9, channels)) * 200).astype(dtype)
    got = max_over_channels(arr)
    assert got.dtype == arr.dtype and np.array_equal(got, arr.max(axis=2))
    assert not np.shares_memory(got, arr)
