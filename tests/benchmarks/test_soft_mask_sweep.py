"""benchmarks/results/soft_mask_sweep.py: maps, the model's own map reproduces its mask-free output."""

from __future__ import annotations

import argparse
import json

import numpy as np
import pytest
import torch

from harmonykit.models import create_model


@pytest.fixture(scope="module")
def sweep(benchmark_script):
    return benchmark_script("soft_mask_sweep")


@pytest.mark.parametrize("text", ["p0", "px", "ramp:0.5:0.5", "ramp:0.2", "thr:", "gamma"])
def test_bad_maps_are_rejected(sweep, text):
    with pytest.raises(argparse.ArgumentTypeError, match="bad map"):
        sweep.parse_map(text)


def test_maps_values(sweep):
    p = np.array([0.0, 0.3, 0.45, 0.6, 1.0])
    assert sweep.parse_map("p3")(p) == pytest.approx(p**3)
    assert sweep.parse_map("ramp:0.3:0.6")(p) == pytest.approx([0.0, 0.0, 0.5, 1.0, 1.0])
    assert sweep.parse_map("thr:0.45")(p).tolist() == [0.0, 0.0, 0.0, 1.0, 1.0]


def _model(path, power: float):
    torch.manual_seed(0)
    model = create_model("om_unet_tiny", mask_use="optional", gate="learned", mask_free="two_stage",
                         two_stage_power=power, localiser="separate")
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "head" in name:
                p.copy_(0.3 * torch.randn(p.shape))
    model.save_pretrained(path)
    return path


def test_own_power_reproduces_mask_free_and_real_composites(tmp_path, sweep, astronaut, write_pair_benchmark):
    # pairs at the work size (256), so the localisation needs no resampling
    reals = [np.ascontiguousarray(np.roll(astronaut[::2, ::2], 40 * k, axis=1)) for k in range(2)]
    mask = np.zeros((256, 256), np.uint8)
    mask[60:180, 50:200] = 255
    bench = write_pair_benchmark(tmp_path / "bench", reals, [mask] * 2, 0.7, 30)
    from harmonykit.io import read_image, write_image, write_mask

    comps = tmp_path / "composites"  # a folder of real composites: X.png beside X_mask.png
    for k in range(2):
        write_image(comps / f"c{k}.png", read_image(bench / "composite" / f"p{k}.png"))
        write_mask(comps / f"c{k}_mask.png", mask)
    model = _model(tmp_path / "m", 2.0)
    out = tmp_path / "sweep.json"
    argv = ["--model", str(model), "--bench", f"toy={bench}", "--map", "p2", "--map", "thr:0.5",
            "--map", "ramp:0.0:1.0", "--oracle", "--composites", str(comps), "--out", str(out)]
    assert sweep.main(argv) == 0
    res = json.loads(out.read_text())["results"]
    # the model's own soft mask, p ** 2, is what its mask-free call does: the same MSE
    from harmonykit.inference import Harmonizer

    h = Harmonizer.from_pretrained(str(model))
    own = direct = 0.0
    for k, real in enumerate(reals):
        c = read_image(bench / "composite" / f"p{k}.png")
        own += np.mean((h(c).rgb.astype(np.float64) - real) ** 2)
        direct += np.mean((c.astype(np.float64) - real) ** 2)
    assert res["toy"]["p2"]["x_composite"] == pytest.approx(own / direct, rel=1e-3)
    # ramp:0:1 is p itself, a different map from p ** 2
    assert res["toy"]["ramp:0.0:1.0"]["x_composite"] != pytest.approx(res["toy"]["p2"]["x_composite"], rel=1e-6)
    assert set(res["toy"]) == {"p2", "thr:0.5", "ramp:0.0:1.0", "oracle"}
    rc = res["real composites"]
    assert set(rc) == {"p2", "thr:0.5", "ramp:0.0:1.0"}
    assert all(r["de_in"] > 0 and r["de_out"] >= 0 for r in rc.values())


def test_a_model_without_gate_is_a_clear_error(tmp_path, sweep, astronaut, write_pair_benchmark):
    mask = np.zeros((32, 32), np.uint8)
    mask[4:20, 6:22] = 255
    bench = write_pair_benchmark(tmp_path / "bench", [astronaut[::16, ::16].copy()], [mask], 0.7, 30)
    create_model("om_unet_tiny").save_pretrained(tmp_path / "plain")
    with pytest.raises(SystemExit, match="no localisation gate"):
        sweep.main(["--model", str(tmp_path / "plain"), "--bench", f"toy={bench}"])
