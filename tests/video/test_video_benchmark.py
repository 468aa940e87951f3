"""The clip benchmark builder, the video metrics and benchmarks/video_*.py --quick."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from harmonykit.cli.main import main


@pytest.fixture(scope="module")
def photos(tmp_path_factory, astronaut, chelsea):
    d = tmp_path_factory.mktemp("photos")
    for name, img in (("astro", astronaut), ("cat", chelsea)):
        small = np.asarray(Image.fromarray(img).resize((120, 90)))
        Image.fromarray(small).save(d / f"{name}.jpg", quality=92)
        m = np.zeros((90, 120), np.uint8)
        m[25:65, 40:85] = 255
        Image.fromarray(m).save(d / f"{name}_mask.png")
    return d


def test_build_is_deterministic_and_grades_only_the_object(photos, tmp_path, capsys):
    args = ["build-benchmark", str(photos), "--video", "--frames", "6", "--size", "64", "--seed", "3", "--quiet"]
    assert main([*args, "--out", str(tmp_path / "a")]) == 0
    assert main([*args, "--out", str(tmp_path / "b")]) == 0
    ma = json.loads((tmp_path / "a" / "manifest.json").read_text())
    assert [c["id"] for c in ma["clips"]] == ["astro", "cat"] and ma["clips"][0]["grade"]["op"] == "reinhard_transfer"
    for f in sorted((tmp_path / "a").rglob("*.png")):
        assert f.read_bytes() == (tmp_path / "b" / f.relative_to(tmp_path / "a")).read_bytes()
    d = tmp_path / "a" / "astro"
    comp, real, mask = (np.asarray(Image.open(d / k / "0003.png")) for k in ("composite", "real", "mask"))
    assert comp.shape == (48, 64, 3) and mask.shape == (48, 64)
    assert np.array_equal(comp[mask == 0], real[mask == 0]) and np.abs(comp[mask == 255].astype(int)
                                                                       - real[mask == 255]).mean() > 2
    r0 = np.asarray(Image.open(d / "real" / "0000.png"))
    assert not np.array_equal(r0, real)  # the camera moves
    assert (d / "composite.mp4").is_file() and (d / "mask.mp4").is_file()


def test_metrics_and_evaluation(photos, gated_dir, tmp_path):
    from harmonykit.video import VideoHarmonizer
    from harmonykit.video.benchmark import VideoBenchSettings, build_video_benchmark
    from harmonykit.video.metrics import evaluate_video_benchmark, temporal_consistency_error

    build_video_benchmark(photos, tmp_path / "bench", VideoBenchSettings(frames=5, size=(48, 64)), clips=False,
                          show_progress=False)
    comp = evaluate_video_benchmark(tmp_path / "bench", None)
    assert set(comp["clips"]) == {"astro", "cat"} and comp["frames"] == 10
    assert comp["mean"]["mse"] > 0 and comp["mean"]["tce"] >= 0
    vh = VideoHarmonizer.from_pretrained(str(gated_dir), work_size=32)
    res = evaluate_video_benchmark(tmp_path / "bench", vh, limit=1)
    assert list(res["clips"]) == ["astro"] and np.isfinite(res["mean"]["psnr"])
    f = [np.full((4, 4, 3), 100, np.uint8)] * 3
    m = [np.full((4, 4), 255, np.uint8)] * 3
    assert temporal_consistency_error(f, f, m) == 0.0


def test_benchmark_scripts_quick(benchmark_script, gated_dir, capsys):
    bench = benchmark_script("video_benchmark")
    assert bench.main(["--quick", "--model", str(gated_dir)]) == 0
    out = capsys.readouterr().out
    assert "independent" in out and "smoothed" in out and "TCE" in out
    speed = benchmark_script("video_speed")
    assert speed.main(["--quick", "--model", str(gated_dir)]) == 0
    assert "frames/s" in capsys.readouterr().out
