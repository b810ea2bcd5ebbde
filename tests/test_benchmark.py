"""scripts/benchmark.py writes the documented layout (a smoke run: the numbers themselves are not judged here)."""

import json

import pytest


@pytest.mark.slow
def test_quick_benchmark_writes_the_documented_layout(run_script, tmp_path):
    result = run_script("benchmark.py", "--quick", "--cells", "gru", "--out", str(tmp_path / "b.json"), timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads((tmp_path / "b.json").read_text())
    assert {"machine", "train", "windowing", "inference", "end_to_end", "sweep"} <= set(report)
    gru = report["train"]["gru"]
    for key in ("framework_windows_per_s", "bare_windows_per_s", "dataloader_windows_per_s", "ratio"):
        assert gru[key] > 0
    assert gru["ratio"] == pytest.approx(gru["framework_windows_per_s"] / gru["bare_windows_per_s"], abs=1e-3)
    assert all(w["shares_storage"] and w["memory_ratio"] < 1.5 for w in report["windowing"].values())
    assert report["sweep"]["runs"] == 6 and report["end_to_end"]["train_s"] > 0
    assert "ratio = ours / bare fp32 loop" in result.stdout
