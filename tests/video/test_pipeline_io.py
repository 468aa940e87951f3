"""The clip pipeline's parts: small copies made by the decoder, the background stage
(:func:`harmonykit.video.io.in_background`), the file path against the in-memory path."""

from __future__ import annotations

import threading

import numpy as np
import pytest


def test_in_background_keeps_order_and_runs_on_another_thread():
    from harmonykit.video.io import in_background

    seen, threads = [], set()

    def consume(x):
        seen.append(x)
        threads.add(threading.get_ident())

    with in_background(consume, depth=2) as sink:
        for i in range(50):
            sink.put(i)
    assert seen == list(range(50)) and threads and threading.get_ident() not in threads


def test_in_background_raises_the_consumers_error_in_the_producer():
    from harmonykit.video.io import in_background

    def consume(x):
        if x == 3:
            raise ValueError("bad item 3")

    with pytest.raises(ValueError, match="bad item 3"), in_background(consume, depth=1) as sink:
        for i in range(1000):  # put raises once the consumer has failed
            sink.put(i)


def test_in_background_stops_the_consumer_when_the_producer_fails():
    from harmonykit.video.io import in_background

    seen = []
    with pytest.raises(RuntimeError, match="producer"), in_background(seen.append, depth=1) as sink:
        sink.put(1)
        raise RuntimeError("producer failed")
    assert len(seen) <= 1
    assert not [t for t in threading.enumerate() if t.name == "harmonykit-background"]


def test_decoder_small_copies_match_a_resize_of_the_frame(clip_dir, vid):
    from harmonykit.imageops import downsize
    from harmonykit.video.io import SizedFrame, SmallMask, iter_frames, iter_mask_frames

    items = list(iter_frames(clip_dir / "clip.mp4", small=(16, 24)))
    assert len(items) == vid.N and all(isinstance(x, SizedFrame) for x in items)
    first = items[0]
    assert first.rgb.shape == (vid.H, vid.W, 3) and first.small.shape == (16, 24, 3) and first.size == (vid.H, vid.W)
    ref = downsize(first.rgb, (16, 24))[0].permute(1, 2, 0).numpy() * 255
    assert np.abs(first.small.astype(float) - ref).mean() < 3  # FFmpeg's area scaling ~ our antialiased resize
    lean = next(iter_frames(clip_dir / "clip.mp4", small=(16, 24), full=False))
    assert lean.rgb is None and np.array_equal(lean.small, first.small)
    masks = list(iter_mask_frames(clip_dir / "clip_mask.mp4", small=(16, 24)))
    full = list(iter_mask_frames(clip_dir / "clip_mask.mp4"))
    assert all(isinstance(m, SmallMask) and m.size == (vid.H, vid.W) and m.small.shape == (16, 24) for m in masks)
    ref_m = downsize(full[3], (16, 24))[0, 0].numpy() * 255
    assert np.abs(masks[3].small.astype(float) - ref_m).mean() < 3


def test_clip_file_path_agrees_with_the_in_memory_frames(gated_dir, clip_dir, vid, tmp_path, monkeypatch):
    """harmonize_video (decoder's small copies, four threads) vs frames() (downsize, one
    thread): the same clip and masks give the frames to the encoder in order, within a
    fraction of what the model changes (the two resizes of the network's input differ)."""
    from harmonykit.video import VideoHarmonizer
    from harmonykit.video.io import VideoWriter, iter_frames, iter_mask_frames

    encoded = []
    write = VideoWriter.write
    monkeypatch.setattr(VideoWriter, "write", lambda self, rgb: (encoded.append(rgb.copy()), write(self, rgb))[1])
    vh = VideoHarmonizer.from_pretrained(str(gated_dir), work_size=32, network_every=1)
    vh.harmonize_video(clip_dir / "clip.mp4", tmp_path / "o.mp4", mask=clip_dir / "clip_mask.mp4",
                       show_progress=False)
    frames = list(iter_frames(clip_dir / "clip.mp4"))
    ref = [r.rgb for r in vh.frames(frames, iter_mask_frames(clip_dir / "clip_mask.mp4"))]
    assert len(encoded) == len(ref) == vid.N
    diffs = [np.abs(g.astype(int) - r).mean() for g, r in zip(encoded, ref)]
    changed = [np.abs(r.astype(int) - f).mean() for r, f in zip(ref, frames)]
    assert max(diffs) < 0.25 * min(changed), (diffs, changed)
