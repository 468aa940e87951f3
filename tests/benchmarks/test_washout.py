"""benchmarks/results/washout.py: the object's chroma and contrast against the real photo."""

from __future__ import annotations

import numpy as np
import pytest


@pytest.fixture(scope="module")
def washout(benchmark_script):
    return benchmark_script("washout")


def test_object_stats_measure_saturation_and_contrast(washout):
    mask = np.zeros((8, 8))
    mask[2:6, 2:6] = 1
    grey = np.full((8, 8, 3), 120, np.uint8)
    red = grey.copy()
    red[..., 0] = 220
    stripes = grey.copy()
    stripes[::2] = 30
    assert washout.object_stats(grey, mask) == pytest.approx((0.0, 0.0), abs=0.01)
    assert washout.object_stats(red, mask)[0] > 40 and washout.object_stats(stripes, mask)[1] > 10
    assert washout.log_ratio(20.0, 40.0) == pytest.approx(-1.0)


def test_identity_repeats_the_composite_and_a_grey_pair_is_biased(washout, write_pair_benchmark, astronaut, tmp_path,
                                                                  capsys):
    reals = [np.ascontiguousarray(astronaut[:64, :64]), np.ascontiguousarray(astronaut[64:128, 64:128])]
    masks = [np.pad(np.ones((32, 32)), 16) for _ in reals]
    bench = write_pair_benchmark(tmp_path / "b", reals, masks, gain=0.5, offset=60.0)
    assert washout.main([str(bench), "--model", "identity", "--model", "identity_again=identity"]) == 0
    lines = {line.split()[0]: line.split()[1:3] for line in capsys.readouterr().out.splitlines()[2:]}
    assert lines["identity"] == lines["composite"] == lines["identity_again"]
    assert float(lines["composite"][1]) < -0.5  # gain 0.5 halves the object's contrast
