"""The benchmark writes every figure in the documented layout (the numbers are not judged: this machine is noisy),
and the fast batching path feeds the model exactly what a per-sample DataLoader would."""

import json

import pytest
import torch
from torch.utils.data import DataLoader

from pricernn.data import PriceDataModule
from pricernn.data.windows import WindowBatches, batch_loader


@pytest.mark.slow  # 45 s, over a tenth of the default suite's 8-minute budget; `-m slow` runs the script
def test_tiny_benchmark_writes_every_figure_in_the_documented_layout(run_script, tmp_path):
    result = run_script("benchmark.py", "--tiny", "--cells", "gru", "--out", str(tmp_path / "b.json"), timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads((tmp_path / "b.json").read_text())
    assert {"machine", "train", "windowing", "inference", "end_to_end", "sweep"} <= set(report)
    gru = report["train"]["gru"]
    for key in ("framework_windows_per_s", "bare_windows_per_s", "dataloader_windows_per_s", "ratio"):
        assert gru[key] > 0
    assert gru["ratio"] == pytest.approx(gru["framework_windows_per_s"] / gru["bare_windows_per_s"], abs=1e-3)
    assert all(w["shares_storage"] and w["memory_ratio"] < 1.5 for w in report["windowing"].values())
    assert report["sweep"]["runs"] == 2 and report["sweep"]["ratio"] > 0 and report["end_to_end"]["train_s"] > 0
    assert report["inference"]["one_step_ratio"] > 0 and report["machine"]["cores"] >= 1
    assert "ratio = ours / bare fp32 loop" in result.stdout
    cpu = report["devices"]["cpu"]["gru"]  # the by-batch-size table: the same code measures a GPU when one is seen
    assert {"64", "128"} <= set(cpu) and all(cpu[b]["ratio"] > 0 for b in ("64", "128"))
    assert set(cpu["bare_windows_per_s_by_batch"]) == {"16", "64"}
    panel = report["panel"]  # 4 synthetic series through the real panel path
    assert panel["series"] == 4 and panel["windowing"]["memory_ratio"] < 1.5 and panel["train_ratio"] > 0
    assert panel["inference"]["assets"] == 4 and "panel of 4 series x 300 days" in result.stdout


def test_fast_batches_equal_a_per_sample_dataloader_in_the_same_order():
    dm = PriceDataModule(window=20)
    dm.setup()
    train = dm.datasets["train"]
    fast = list(batch_loader(train, 64, shuffle=True, seed=5))
    order = torch.cat(list(WindowBatches(len(train), 64, shuffle=True, seed=5)))  # the order the loader used
    assert sorted(order.tolist()) == list(range(len(train)))
    per_sample = DataLoader(train, batch_size=64, sampler=order.tolist())  # one window per item, default collate
    assert len(fast) == len(per_sample)
    for ours, theirs in zip(fast, per_sample, strict=True):
        for a, b in zip(ours, theirs, strict=True):
            torch.testing.assert_close(a, b, rtol=0, atol=0)
