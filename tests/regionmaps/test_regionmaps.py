"""Label makers, region-map providers, the fixed palette and the on-disk cache."""

from __future__ import annotations

import json
import sys
import threading

import numpy as np
import pytest

from harmonykit.errors import ConfigError, MissingDependencyError
from harmonykit.regionmaps import (
    PALETTE,
    CachedRegionMaps,
    RegionMap,
    RegionMapProvider,
    labels_from_masks,
    make_labeler,
    relabel_by_area,
    render_labels,
    resize_labels_nearest,
)


@pytest.fixture(scope="module")
def small(astronaut) -> np.ndarray:
    return np.ascontiguousarray(astronaut[::8, ::8])  # 64 x 64


def test_make_labeler_superpixels(small):
    for kind, kw in (("slic", {"n_segments": 6}), ("felzenszwalb", {"scale": 200.0})):
        lab = make_labeler(kind, **kw)(small)
        assert lab.dtype == np.int32 and lab.shape == (64, 64)
        values = np.unique(lab)
        assert values[0] == 1 and np.array_equal(values, np.arange(1, values[-1] + 1))
        assert len(values) >= 2
        np.testing.assert_array_equal(lab, make_labeler(kind, **kw)(small.copy()))


def test_make_labeler_errors(monkeypatch):
    with pytest.raises(ConfigError, match="unknown region kind 'watershed'"):
        make_labeler("watershed")
    with pytest.raises(ConfigError, match="unknown slic option.*scale.*allowed: n_segments, compactness"):
        make_labeler("slic", scale=3)
    with pytest.raises(ConfigError, match="SAM checkpoint was given"):
        make_labeler("slic", sam_checkpoint="x.pth")
    monkeypatch.setitem(sys.modules, "segment_anything", None)
    with pytest.raises(MissingDependencyError, match=r'pip install "harmonykit\[sam\]"'):
        make_labeler("sam", sam_checkpoint="sam_vit_b.pth")


def test_labels_from_masks_paints_largest_first():
    a = np.zeros((3, 4), bool)
    a[:, :3] = True  # area 9
    b = np.zeros((3, 4), bool)
    b[0, :] = True  # area 4, overlaps a
    c = np.zeros((3, 4), bool)
    c[2, 1] = True  # area 1, inside a
    lab = labels_from_masks([c, a, b])
    assert lab.tolist() == [[2, 2, 2, 2], [1, 1, 1, 0], [1, 3, 1, 0]]
    assert lab.dtype == np.int32


def test_relabel_by_area_and_palette():
    lab = np.array([[7, 7, 7, 3], [0, 3, 9, 9], [0, 0, 9, 4]])
    # areas: 7 -> 3, 9 -> 3, 3 -> 2, 4 -> 1; ties by old value (7 before 9)
    assert relabel_by_area(lab).tolist() == [[1, 1, 1, 3], [0, 3, 2, 2], [0, 0, 2, 4]]
    assert PALETTE.shape == (256, 3) and PALETTE.dtype == np.uint8
    assert PALETTE[:5].tolist() == [[0, 0, 0], [128, 0, 0], [0, 128, 0], [128, 128, 0], [0, 0, 128]]
    assert len({tuple(c) for c in PALETTE.tolist()}) == 256
    rgb = render_labels(np.array([[0, 1, 256]]))
    assert rgb.tolist() == [[[0, 0, 0], [128, 0, 0], [128, 0, 0]]]  # 256 wraps to colour 1


def test_provider_is_deterministic_ranked_and_painted(small):
    p = RegionMapProvider("slic", n_segments=8, max_side=None)
    m = p(small)
    assert isinstance(m, RegionMap)
    assert m.labels.shape == (64, 64) and m.rgb.shape == (64, 64, 3) and m.rgb.dtype == np.uint8
    counts = np.bincount(m.labels.ravel())[1:]
    assert np.all(np.diff(counts) <= 0) and counts.min() > 0  # rank 1 = largest region
    np.testing.assert_array_equal(m.rgb, PALETTE[m.labels])
    m2 = RegionMapProvider("slic", n_segments=8, max_side=None)(small.copy())
    np.testing.assert_array_equal(m.rgb, m2.rgb)
    t = m.to_tensor((32, 32))
    assert t.shape == (3, 32, 32) and float(t.max()) <= 1.0
    np.testing.assert_allclose(t.permute(1, 2, 0).numpy() * 255, m.rgb[1::2, 1::2], atol=1e-4)


def test_provider_max_side_works_on_a_smaller_copy(small):
    big = np.repeat(np.repeat(small, 2, axis=0), 2, axis=1)  # 128 x 128
    m = RegionMapProvider("felzenszwalb", max_side=64)(big)
    assert m.labels.shape == (128, 128)
    blocks = m.labels.reshape(64, 2, 64, 2)
    assert np.all(blocks == blocks[:, :1, :, :1])  # labels computed at 64 and scaled x2
    assert resize_labels_nearest(np.arange(4).reshape(2, 2), (4, 4)).tolist()[1] == [0, 0, 1, 1]
    with pytest.raises(ConfigError, match="max_side"):
        RegionMapProvider("slic", max_side=2)


class _Counting(RegionMapProvider):
    def __init__(self, **kw):
        super().__init__(**kw)
        self.calls = 0

    def __call__(self, image):
        self.calls += 1
        return super().__call__(image)


def test_cache_hits_settings_and_content_keys(tmp_path, small):
    p = _Counting(kind="slic", n_segments=8)
    cache = CachedRegionMaps(p, tmp_path)
    first = cache(small)
    path = cache.path_for(small)
    assert path.is_file() and small in cache
    again = CachedRegionMaps(p, tmp_path)(small.copy())
    assert p.calls == 1  # the second object read the file
    np.testing.assert_array_equal(first.labels, again.labels)
    np.testing.assert_array_equal(first.rgb, again.rgb)
    settings = json.loads((path.parents[1] / "settings.json").read_text())
    assert settings["provider"] == "slic" and settings["n_segments"] == 8
    # other settings -> other folder; other pixels -> other entry
    other = CachedRegionMaps(RegionMapProvider("slic", n_segments=9), tmp_path)
    assert other.folder != cache.folder
    changed = small.copy()
    changed[0, 0, 0] ^= 1
    assert cache.path_for(changed) != path and changed not in cache
    # a corrupt entry is recomputed and replaced
    path.write_bytes(b"garbage")
    fixed = cache(small)
    assert p.calls == 2
    np.testing.assert_array_equal(fixed.labels, first.labels)
    assert cache.load(small) is not None


def test_cache_concurrent_writers(tmp_path, small):
    cache = CachedRegionMaps(RegionMapProvider("slic", n_segments=8), tmp_path)
    images = [small, np.ascontiguousarray(small[:, ::-1])]
    results: list[np.ndarray] = []
    errors: list[BaseException] = []

    def work(k: int) -> None:
        try:
            results.append(cache(images[k % 2]).labels)
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(k,)) for k in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    files = sorted(p.name for p in cache.folder.rglob("*") if p.is_file())
    assert len(files) == 3 and "settings.json" in files  # two entries, no temp files left
    for lab in results:
        assert any(np.array_equal(lab, cache(img).labels) for img in images)
