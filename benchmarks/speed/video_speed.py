"""Video harmonization speed: 1080p frames/s end to end (decode, harmonize, encode) and peak memory.

Usage::

    python -m benchmarks.speed.video_speed                       # 1920x1080, 120 and 240 frames, with the mask,
                                                                 # network every 2nd frame (the default) and every frame
    python -m benchmarks.speed.video_speed --frames 120 480 --no-mask --model default
    python -m benchmarks.speed.video_speed --quick               # 64x48, 12 frames (tests: plumbing only)

For each ``--frames`` length a synthetic clip (a pan over a smooth random scene, H.264
``veryfast`` crf 18, AAC audio) and a mask clip are written first (not timed); then, in a
fresh subprocess, ``VideoHarmonizer.harmonize_video`` runs on it end to end, a thread per
stage: decode (with FFmpeg's work-size copies of frame and mask), the network at
``--work-size`` and the smoothing, the full-resolution apply, the x264 encode with the
audio remuxed. Reported: frames/s (wall), CPU seconds per
frame, and the subprocess's peak resident memory (``ru_maxrss``) after the run and right
after loading the model (``base``). Memory that does not depend on the clip's length
shows as the same peak for every ``--frames``; the issue's goal is >= 15 frames/s at
1080p with the mask on a 2-core CPU. The 1-minute load average is printed with each row:
on a shared machine it says how much to trust the figure.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

_CHILD = r"""
import json, resource, sys, time
from harmonykit.video import VideoHarmonizer
clip, out, mask, model, ws, every = sys.argv[1:7]
vh = VideoHarmonizer.from_pretrained(model, work_size=int(ws), network_every=int(every))
base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
c0 = time.process_time()
s = vh.harmonize_video(clip, out, mask=None if mask == "-" else mask, show_progress=False)
cpu = time.process_time() - c0
print(json.dumps({"frames": s.frames, "seconds": s.seconds, "fps": s.frames_per_second, "cpu_per_frame": cpu / s.frames,
                  "peak_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, "base_mib": base / 1024}))
"""


def make_clip(path: Path, mask_path: Path, frames: int, width: int, height: int, fps: int = 30) -> None:
    """A pan over a smooth random scene (+ an AAC tone) and a moving box mask clip."""
    import av
    from PIL import Image

    rng = np.random.default_rng(0)
    scene = np.asarray(Image.fromarray(rng.integers(0, 255, (height // 32 + 2, (width + frames * 2) // 32 + 2, 3),
                                                    dtype=np.uint8)).resize((width + frames * 2 + 64, height),
                                                                            Image.BILINEAR))
    outs = [av.open(str(path), "w"), av.open(str(mask_path), "w")]
    vs = []
    for o in outs:
        v = o.add_stream("libx264", rate=fps)
        v.width, v.height, v.pix_fmt = width, height, "yuv420p"
        v.options = {"crf": "18", "preset": "veryfast"}
        vs.append(v)
    a = outs[0].add_stream("aac", rate=48000)
    a.layout = "mono"
    for i in range(frames):
        img = np.ascontiguousarray(scene[:, 2 * i:2 * i + width])
        m = np.zeros((height, width, 3), np.uint8)
        m[height // 4:3 * height // 4, width // 4 + i:width // 2 + i] = 255
        for o, v, f in zip(outs, vs, (img, m)):
            for p in v.encode(av.VideoFrame.from_ndarray(f, format="rgb24")):
                o.mux(p)
    t = (0.2 * np.sin(np.arange(48000 * frames // fps) / 20)).astype(np.float32)[None]
    af = av.AudioFrame.from_ndarray(t, format="fltp", layout="mono")
    af.sample_rate, af.pts = 48000, 0
    for p in [*a.encode(af), *a.encode(None)]:
        outs[0].mux(p)
    for o, v in zip(outs, vs):
        for p in v.encode(None):
            o.mux(p)
        o.close()


def measure(clip: Path, mask: Path | None, model: str, work_size: int, out: Path, network_every: int = 1) -> dict:
    env = {**os.environ, "HARMONYKIT_NO_PROGRESS": "1"}
    proc = subprocess.run([sys.executable, "-c", _CHILD, str(clip), str(out), str(mask) if mask else "-", model,
                           str(work_size), str(network_every)], capture_output=True, text=True, env=env, check=False)
    if proc.returncode != 0:
        raise RuntimeError(proc.stderr[-2000:])
    row = json.loads(proc.stdout.strip().splitlines()[-1])
    row["load_1min"] = os.getloadavg()[0]
    return row


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--width", type=int, default=1920)
    p.add_argument("--height", type=int, default=1080)
    p.add_argument("--frames", type=int, nargs="+", default=[120, 240])
    p.add_argument("--model", default="default")
    p.add_argument("--work-size", type=int, default=256)
    p.add_argument("--no-mask", action="store_true", help="mask-free (the model localises)")
    p.add_argument("--network-every", type=int, nargs="+", default=[2, 1],
                   help="run the network on every Nth frame (one row per value)")
    p.add_argument("--json", type=Path, default=None)
    p.add_argument("--quick", action="store_true", help="64x48, 12 frames: a plumbing check, not a measurement")
    a = p.parse_args(argv)
    if a.quick:
        a.width, a.height, a.frames = 64, 48, [12]
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for n in a.frames:
            clip, mask = Path(tmp) / f"clip{n}.mp4", Path(tmp) / f"mask{n}.mp4"
            make_clip(clip, mask, n, a.width, a.height)
            for every in a.network_every:
                row = measure(clip, None if a.no_mask else mask, a.model, a.work_size if not a.quick else 32,
                              Path(tmp) / f"out{n}.mp4", every)
                row.update(width=a.width, height=a.height, mask=not a.no_mask, network_every=every)
                rows.append(row)
                print(f"{a.width}x{a.height} {n:>5} frames {'with' if row['mask'] else 'without'} mask, network "
                      f"every {every}: "
                      f"{row['fps']:6.1f} frames/s, {row['cpu_per_frame'] * 1000:6.0f} ms CPU/frame, peak "
                      f"{row['peak_mib']:7.0f} MiB (base {row['base_mib']:.0f}), load {row['load_1min']:.2f}")
    if a.json:
        a.json.write_text(json.dumps(rows, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
