"""benchmarks/results/report_diff.py: two evaluation reports compared per image."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="module")
def report_diff(benchmark_script):
    return benchmark_script("report_diff")


def _report(folder, rows):
    folder.mkdir()
    lines = ["id,fg_ratio,mse,composite_mse"] + [f"{i},{fg},{m},{c}" for i, fg, m, c in rows]
    (folder / "per_image.csv").write_text("\n".join(lines) + "\n")
    return folder


def test_groups_gap_and_worst(report_diff, tmp_path, capsys):
    # A over-corrects the two nearly right composites; B halves every error
    comps = [10.0, 20.0, 400.0, 800.0]
    a = _report(tmp_path / "a", [(f"i{k}", 0.1 * (k + 1), m, c) for k, (m, c) in enumerate(zip([50, 60, 100, 200], comps))])
    b = _report(tmp_path / "b", [(f"i{k}", 0.1 * (k + 1), c / 2, c) for k, c in enumerate(comps)])
    assert report_diff.main([str(a), str(b), "--worst", "2"]) == 0
    out = capsys.readouterr().out
    rows = {ln[:32].strip(): ln[32:].split() for ln in out.splitlines() if ln[:32].strip() and ln[32:].split()}
    assert float(rows["all"][1]) == pytest.approx(410 / 1230, abs=1e-3)
    assert float(rows["composite error, quartile 1"][1]) == pytest.approx(5.0)  # 50 / 10: worse than the input
    assert float(rows["composite error, quartile 1"][2]) == pytest.approx(0.5)
    assert "A worse than B on 50.0 %" in out and "i1: object 20%" in out


def test_different_images_are_refused(report_diff, tmp_path):
    a = _report(tmp_path / "a", [("x", 0.1, 1, 2)])
    b = _report(tmp_path / "b", [("y", 0.1, 1, 2)])
    with pytest.raises(SystemExit, match="different images"):
        report_diff.main([str(a), str(b)])
    with pytest.raises(SystemExit, match="no per_image.csv"):
        report_diff.main([str(tmp_path), str(b)])
