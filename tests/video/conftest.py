"""Tiny synthetic clips made with PyAV (skipped, with the reason, when PyAV is missing)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

try:
    import av
except ImportError:  # the tests that need it skip themselves (needs_av)
    av = None

#: the reason every PyAV test gives when it is skipped
NO_AV = "PyAV is not installed: pip install 'harmonykit[video]' (CI installs it)"

W, H, N, FPS = 64, 48, 12, 12


def scene(seed: int = 0, w: int = W, h: int = H, n: int = N) -> np.ndarray:
    """A smooth random background twice as wide as a frame (frames pan over it)."""
    rng = np.random.default_rng(seed)
    small = rng.integers(30, 225, (h // 8 + 1, (w + n) // 8 + 2, 3)).astype(np.uint8)
    from PIL import Image

    return np.asarray(Image.fromarray(small).resize(((w + n) + 16, h + 8), Image.BILINEAR))[:h]


def pan_frames(seed: int = 0, w: int = W, h: int = H, n: int = N) -> list[np.ndarray]:
    bg = scene(seed, w, h, n)
    return [np.ascontiguousarray(bg[:, i:i + w]) for i in range(n)]


def box_masks(w: int = W, h: int = H, n: int = N) -> list[np.ndarray]:
    out = []
    for i in range(n):
        m = np.zeros((h, w), np.uint8)
        m[10:30, 16 + i:36 + i] = 255
        out.append(m)
    return out


def write_clip(path: Path, frames: list[np.ndarray], fps: int = FPS, audio: bool = False, lossless: bool = True) -> Path:
    """Encode ``frames`` (H.264, yuv444p crf 0 when lossless) with an optional AAC tone."""
    h, w = frames[0].shape[:2]
    out = av.open(str(path), "w")
    v = out.add_stream("libx264", rate=fps)
    v.width, v.height = w, h
    v.pix_fmt = "yuv444p" if lossless else "yuv420p"
    v.options = {"crf": "0" if lossless else "20"}
    a = None
    if audio:
        a = out.add_stream("aac", rate=8000)
        a.layout = "mono"
    for f in frames:
        img = f if f.ndim == 3 else np.dstack([f] * 3)
        for p in v.encode(av.VideoFrame.from_ndarray(np.ascontiguousarray(img), format="rgb24")):
            out.mux(p)
    if a is not None:
        t = (0.3 * np.sin(np.arange(8000 * len(frames) // fps) / 5)).astype(np.float32)[None]
        af = av.AudioFrame.from_ndarray(t, format="fltp", layout="mono")
        af.sample_rate, af.pts = 8000, 0
        for p in a.encode(af):
            out.mux(p)
        for p in a.encode(None):
            out.mux(p)
    for p in v.encode(None):
        out.mux(p)
    out.close()
    return path


def audio_packets(path: Path) -> int:
    with av.open(str(path)) as c:
        if not c.streams.audio:
            return 0
        return sum(1 for p in c.demux(c.streams.audio[0]) if p.size)


def decode(path: Path) -> list[np.ndarray]:
    with av.open(str(path)) as c:
        return [f.to_ndarray(format="rgb24") for f in c.decode(video=0)]


@pytest.fixture(scope="session")
def clip_dir(tmp_path_factory) -> Path:
    """clip.mp4 (12 frames 64x48 at 12 fps, AAC audio) + clip_mask.mp4 + a static mask."""
    from PIL import Image

    if av is None:
        pytest.skip(NO_AV)

    d = tmp_path_factory.mktemp("clips")
    write_clip(d / "clip.mp4", pan_frames(), audio=True)
    write_clip(d / "clip_mask.mp4", box_masks())
    m = np.zeros((H, W), np.uint8)
    m[10:30, 16:40] = 255
    Image.fromarray(m).save(d / "static_mask.png")
    return d


@pytest.fixture(scope="session")
def vid():
    """The clip helpers of this file (test modules cannot import a conftest)."""
    import types

    if av is None:
        pytest.skip(NO_AV)
    return types.SimpleNamespace(write_clip=write_clip, pan_frames=pan_frames, box_masks=box_masks, decode=decode,
                                 audio_packets=audio_packets, scene=scene, W=W, H=H, N=N, FPS=FPS)
