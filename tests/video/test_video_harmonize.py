"""Clips: the API (VideoHarmonizer / harmonize_video / edit_video), errors, the masks file."""

from __future__ import annotations

import sys

import numpy as np
import pytest

from harmonykit.errors import HarmonykitError, MissingDependencyError


@pytest.fixture(scope="module")
def vh(gated_dir):
    from harmonykit.video import VideoHarmonizer

    return VideoHarmonizer.from_pretrained(str(gated_dir), work_size=32)


def test_clip_keeps_rate_size_audio_and_saves_masks(vh, clip_dir, vid, tmp_path):
    from harmonykit.operators import OperatorMasks
    from harmonykit.video import probe

    out = tmp_path / "out" / "clip.mp4"
    s = vh.harmonize_video(clip_dir / "clip.mp4", out, mask=clip_dir / "clip_mask.mp4",
                           save_masks=tmp_path / "out" / "clip.masks.npz", show_progress=False)
    info = probe(out)
    assert (info.width, info.height, info.fps, info.frames) == (vid.W, vid.H, vid.FPS, vid.N)
    assert info.audio_codec == "aac" and s.audio
    assert vid.audio_packets(out) == vid.audio_packets(clip_dir / "clip.mp4") > 0  # remuxed, not re-encoded
    masks = OperatorMasks.load(s.masks_file)
    assert masks.batch_size == vid.N and masks.size == (32, 32)
    assert OperatorMasks.load_metadata(s.masks_file)["frames"] == vid.N
    frames = vid.decode(out)
    src = vid.decode(clip_dir / "clip.mp4")
    assert len(frames) == vid.N and np.abs(frames[5].astype(int) - src[5]).mean() > 0.1  # it did something
    assert sorted(p.name for p in out.parent.iterdir()) == ["clip.masks.npz", "clip.mp4"]  # no temporaries


def test_unsmoothed_frames_equal_the_still_harmonizer(vh, vid):
    from harmonykit.video import VideoHarmonizer

    frames, masks = vid.pan_frames(n=4), vid.box_masks(n=4)
    raw = VideoHarmonizer(vh.harmonizer, smoothing=0.0)
    for res, f, m in zip(raw.frames(frames, masks), frames, masks):
        assert np.array_equal(res.rgb, vh.harmonizer(f, m).rgb)


def test_smoothing_reduces_frame_to_frame_change_of_the_masks(vh, vid):
    from harmonykit.video import VideoHarmonizer

    rng = np.random.default_rng(1)
    base = vid.pan_frames(n=1)[0]
    frames = [np.clip(base.astype(int) + rng.integers(-25, 26, base.shape), 0, 255).astype(np.uint8)
              for _ in range(8)]  # a static shot with heavy noise: per-frame masks jitter
    mask = vid.box_masks(n=1)[0]

    def jitter(smoothing: float) -> float:
        res = list(VideoHarmonizer(vh.harmonizer, smoothing=smoothing).frames(frames, mask=mask))
        v = [r.operator_masks.values for r in res]
        return float(sum((a - b).abs().mean() for a, b in zip(v[3:], v[4:])))

    assert jitter(0.8) < 0.5 * jitter(0.0)


def test_mask_free_smooths_the_localisation_and_empty_masks_pass_frames_through(vh, vid):
    from harmonykit.video import VideoHarmonizer

    frames = vid.pan_frames(n=3)
    res = list(VideoHarmonizer(vh.harmonizer, network_every=1).frames(frames))
    assert all(r.localisation is not None and r.operator_masks is not None for r in res)
    empty = [np.zeros((vid.H, vid.W), np.uint8)] * 3
    out = list(vh.frames(frames, empty))
    assert all(np.array_equal(r.rgb, f) and r.operator_masks is None for r, f in zip(out, frames))


def test_scene_cut_is_reported(vh, vid, tmp_path):
    frames = vid.pan_frames(seed=0, n=6) + [f // 3 for f in vid.pan_frames(seed=5, n=6)]  # a darker shot
    vid.write_clip(tmp_path / "cut.mp4", frames)
    s = vh.harmonize_video(tmp_path / "cut.mp4", tmp_path / "o" / "cut.mp4", show_progress=False)
    assert s.cuts == [6]


def test_mask_of_another_size_or_length_and_corrupt_clip_write_nothing(vh, clip_dir, vid, tmp_path):
    from PIL import Image

    out_dir = tmp_path / "out"
    vid.write_clip(tmp_path / "short_mask.mp4", vid.box_masks(n=8))
    vid.write_clip(tmp_path / "big_mask.mp4", vid.box_masks(w=80, n=12))
    Image.fromarray(np.zeros((10, 10), np.uint8)).save(tmp_path / "small.png")
    for mask, words in [(tmp_path / "short_mask.mp4", "8 frames"), (tmp_path / "big_mask.mp4", "80x48"),
                        (tmp_path / "small.png", "10x10")]:
        with pytest.raises(HarmonykitError, match=words):
            vh.harmonize_video(clip_dir / "clip.mp4", out_dir / "clip.mp4", mask=mask, show_progress=False)
    data = bytearray((clip_dir / "clip.mp4").read_bytes())
    a, b = data.find(b"mdat") + 8, data.find(b"moov")  # scramble the middle of the frame data
    a, b = a + (b - a) // 3, a + 2 * (b - a) // 3
    data[a:b] = bytes((x * 7 + 13) % 256 for x in data[a:b])
    (tmp_path / "bad.mp4").write_bytes(bytes(data))
    with pytest.raises(HarmonykitError, match="frame"):
        vh.harmonize_video(tmp_path / "bad.mp4", out_dir / "bad.mp4", save_masks=out_dir / "bad.masks.npz",
                           show_progress=False)
    assert not out_dir.exists() or list(out_dir.iterdir()) == []


def test_masks_file_streams_back_and_edit_applies_one_edit_to_every_frame(vh, clip_dir, vid, tmp_path):
    from harmonykit.operators import OperatorMasks
    from harmonykit.video import edit_video
    from harmonykit.video.masks_file import iter_video_masks

    s = vh.harmonize_video(clip_dir / "clip.mp4", tmp_path / "clip.mp4", mask=clip_dir / "clip_mask.mp4",
                           save_masks=tmp_path / "clip.masks.npz", show_progress=False)
    whole = OperatorMasks.load(s.masks_file).values
    streamed = [m.values for m in iter_video_masks(s.masks_file)]
    assert len(streamed) == vid.N and all(np.array_equal(whole[i:i + 1], v) for i, v in enumerate(streamed))
    same = edit_video(clip_dir / "clip.mp4", s.masks_file, tmp_path / "same.mp4", show_progress=False)
    off = edit_video(clip_dir / "clip.mp4", s.masks_file, tmp_path / "off.mp4", gains={"l_add": 0.0, "a_add": 0.0,
                     "b_add": 0.0, "l_mul": 0.0, "a_mul": 0.0, "b_mul": 0.0}, show_progress=False)
    src, a, b, c = (vid.decode(p) for p in (clip_dir / "clip.mp4", tmp_path / "clip.mp4", same, off))
    assert np.abs(a[4].astype(int) - b[4]).mean() < 1.5  # the saved masks re-render the harmonized clip
    assert np.abs(c[4].astype(int) - src[4]).mean() < np.abs(a[4].astype(int) - src[4]).mean()  # edit: no change
    assert vid.audio_packets(off) > 0
    with pytest.raises(HarmonykitError, match="12"):
        vid.write_clip(tmp_path / "other.mp4", vid.pan_frames(n=5))
        edit_video(tmp_path / "other.mp4", s.masks_file, tmp_path / "x.mp4", show_progress=False)
    assert not (tmp_path / "x.mp4").exists()


def test_missing_pyav_names_the_extra(monkeypatch):
    from harmonykit.video.io import require_av

    monkeypatch.setitem(sys.modules, "av", None)
    with pytest.raises(MissingDependencyError, match=r"harmonykit\[video\]"):
        require_av()


def test_prefetched_passes_errors_through_in_order():
    from harmonykit.video.io import prefetched

    def gen():
        yield 1
        yield 2
        raise HarmonykitError("boom")

    got = []
    with pytest.raises(HarmonykitError, match="boom"):
        for x in prefetched(gen(), depth=1):
            got.append(x)
    assert got == [1, 2]
    assert list(prefetched(iter(range(50)), depth=2))[:3] == [0, 1, 2]


def _count_network_runs(monkeypatch, model) -> list[int]:
    calls: list[int] = []
    for name in ("harmonize_with_mask", "localise"):
        original = getattr(model, name)

        def counted(*args, _original=original, _name=name, **kwargs):
            if _name == "harmonize_with_mask" or not calls or calls[-1] != -1:
                calls.append(1 if _name == "harmonize_with_mask" else -1)
            return _original(*args, **kwargs)

        monkeypatch.setattr(model, name, counted)
    return calls


def test_network_every_n_frames_reapplies_the_smoothed_masks_with_each_frames_mask(vh, vid, monkeypatch):
    from harmonykit.imageops import downsize
    from harmonykit.video import VideoHarmonizer

    frames, masks = vid.pan_frames(n=7), vid.box_masks(n=7)
    every = VideoHarmonizer(vh.harmonizer, smoothing=0.8, network_every=3)
    calls = _count_network_runs(monkeypatch, vh.harmonizer.model)
    res = list(every.frames(frames, masks))
    assert calls.count(1) == 3  # frames 0, 3 and 6
    ident = np.array([1.0 if c.endswith("_mul") else 0.0 for c in res[0].operator_masks.channels])
    for r, f, m in zip(res, frames, masks):
        assert r.rgb.shape == f.shape and r.operator_masks is not None
        v = r.operator_masks.values[0].numpy()  # (C, h, w) at the work size
        small = downsize(m, v.shape[1:]).clamp(0, 1)[0, 0].numpy()  # as the video path resizes it
        outside = small == 0
        # the moving box: where this frame's mask is 0 the masks are the identity, skipped frames too
        assert np.allclose(v[:, outside], ident[:, None], atol=1e-5)
        far = np.flatnonzero(m.any(axis=1))[0] // 2  # rows well above the box (upsampling blurs its edge)
        assert np.array_equal(r.rgb[:far], f[:far])
    # frame 0 is the same as with the network on every frame
    first = next(iter(VideoHarmonizer(vh.harmonizer, smoothing=0.8).frames(frames[:1], masks[:1])))
    assert np.array_equal(first.rgb, res[0].rgb)


def test_network_every_runs_on_a_scene_cut_and_mask_free(vh, vid, monkeypatch):
    from harmonykit.video import VideoHarmonizer

    frames = vid.pan_frames(seed=0, n=6) + [f // 3 for f in vid.pan_frames(seed=5, n=6)]  # a cut at 6
    every = VideoHarmonizer(vh.harmonizer, smoothing=0.8, network_every=4)
    calls = _count_network_runs(monkeypatch, vh.harmonizer.model)
    res = list(every.frames(frames))  # mask-free: localise + harmonize on network frames only
    assert calls.count(-1) == 4  # frames 0, 4, 6 (the cut resets the smoothing) and 8
    assert [i for i, r in enumerate(res) if r.cut][-1] == 6
    assert all(np.isfinite(r.operator_masks.values).all() for r in res)


def test_network_every_is_checked():
    from harmonykit.errors import ConfigError
    from harmonykit.video import VideoHarmonizer

    with pytest.raises(ConfigError, match="network_every"):
        VideoHarmonizer.from_pretrained("reinhard", network_every=0)
    with pytest.raises(HarmonykitError, match="needs smoothing > 0"):
        VideoHarmonizer.from_pretrained("reinhard", smoothing=0.0, network_every=2)


def test_network_every_defaults_to_2_with_smoothing_and_1_without(vh, vid):
    from harmonykit.video import VideoHarmonizer
    from harmonykit.video.settings import DEFAULT_NETWORK_EVERY

    smooth, independent = VideoHarmonizer(vh.harmonizer), VideoHarmonizer(vh.harmonizer, smoothing=0.0)
    assert (smooth.network_every, independent.network_every) == (DEFAULT_NETWORK_EVERY, 1) == (2, 1)
    res = list(smooth.frames(vid.pan_frames(n=4)))  # mask-free: skipped frames carry no new localisation
    assert [r.localisation is not None for r in res] == [True, False, True, False]
