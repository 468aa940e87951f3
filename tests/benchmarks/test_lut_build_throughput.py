"""benchmarks/speed/lut_build_throughput.py: a --quick smoke run prints one row per family and worker count."""

from __future__ import annotations

from harmonykit.lut import CubeLut, identity_lut, write_cube


def test_quick_run_prints_rows(benchmark_script, lalonde_db, tmp_path, capsys):
    luts = tmp_path / "luts"
    luts.mkdir()
    write_cube(luts / "invert.cube", CubeLut(1.0 - identity_lut(3).table))
    write_cube(luts / "swap.cube", CubeLut(identity_lut(2).table[..., ::-1]))
    script = benchmark_script("lut_build_throughput")
    assert script.main([str(lalonde_db), "--luts", str(luts), "--split", "train", "--quick", "--workers", "1", "2"]) == 0
    lines = capsys.readouterr().out.splitlines()
    rows = [ln.split() for ln in lines if ln.split() and ln.split()[0] in ("lut", "colour-transfer")]
    assert [(r[0], r[1]) for r in rows] == [("lut", "1"), ("lut", "2"), ("colour-transfer", "1"), ("colour-transfer", "2")]
    assert all(int(r[2]) > 0 for r in rows)  # samples built
    assert script.main([str(tmp_path / "missing"), "--luts", str(luts), "--quick"]) == 2
