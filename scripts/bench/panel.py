"""Panels at scale: many synthetic series through the real data path (a wide Parquet file → PriceDataModule).

Three figures, each a ratio taken in this run: the memory the windows of all splits add, as a multiple of the
raw panel (its float32 values); training throughput of the panel against one series of the same total length
(same model, same batches, the framework's fit path); one-step inference over every asset's last window in one
batched pass against one forward call per asset.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytorch_lightning as pl
import torch

from bench.costs import resident_bytes
from bench.throughput import SPANS, StepTimer
from pricernn.data import PriceDataModule, WindowDataset
from pricernn.data.panel import window_ranges
from pricernn.models import RecurrentForecaster

WINDOW = 60


def _random_walks(series: int, days: int, seed: int = 0) -> np.ndarray:
    """(days, series) prices: geometric random walks, 1 % daily volatility, starting at levels from 5 to 500."""
    rng = np.random.default_rng(seed)
    start = np.exp(rng.uniform(np.log(5), np.log(500), series))
    return start * np.exp(np.cumsum(0.01 * rng.standard_normal((days, series)), axis=0))


def _write(out: Path, series: int, days: int) -> tuple[dict, dict]:
    """A wide Parquet file of the panel and one of a single series as long as all of it; the data settings of
    each. The long series' bars are minutes, since pandas' dates end in 2262."""
    prices = _random_walks(series, days)
    dates = pd.bdate_range("1990-01-01", periods=days)
    panel = pd.DataFrame(prices, columns=[f"S{k:04d}" for k in range(series)]).assign(Date=dates)
    panel.to_parquet(out / "panel.parquet", index=False)
    one = _random_walks(1, series * days, seed=1)[:, 0]
    minutes = pd.date_range("2000-01-01", periods=len(one), freq="min")
    pd.DataFrame({"Date": minutes, "Close": one}).to_parquet(out / "one.parquet", index=False)
    common = {"window": WINDOW, "batch_size": 64}
    return (
        {"path": str(out / "panel.parquet"), "symbols": "all", "layout": "wide", **common},
        {"path": str(out / "one.parquet"), **common},
    )


def _fit_throughput(dm: PriceDataModule, cell: str, steps: int) -> float:
    """Windows per second of Lightning's fit on ``dm`` (the framework's training path without the report):
    a warm-up epoch, then ``steps`` timed steps (pricernn's StepTimer)."""
    SPANS.clear()
    model = RecurrentForecaster(1, cell=cell, transform=dm.transform_state())
    trainer = pl.Trainer(max_epochs=2, limit_train_batches=steps + 1, limit_val_batches=1, logger=False,
                         enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False,
                         callbacks=[StepTimer()])  # fmt: skip
    trainer.fit(model, datamodule=dm)
    windows, seconds = sum(n for n, _ in SPANS), sum(t for _, t in SPANS)
    return windows / seconds


def _window_memory(dm: PriceDataModule) -> dict:
    """Extra resident memory of building every split's windows again, as a multiple of the raw panel."""
    raw = dm.inputs.nbytes  # the panel's values as float32
    before = resident_bytes()
    start = time.perf_counter()
    ranges = window_ranges(dm.series.offsets, dm.bounds, dm.window, dm.horizon)
    datasets = [
        WindowDataset(dm.inputs, dm.inputs[:, 0], dm.inputs[:, 0], ranges[s], dm.window, 1, dm.normalizer)
        for s in ranges
    ]
    datasets[0][torch.arange(64)]  # one gather, to show the views work
    seconds = time.perf_counter() - start
    windows = sum(len(d) for d in datasets)
    return {
        "values": int(dm.inputs.numel()),
        "windows": windows,
        "seconds": round(seconds, 4),
        "memory_ratio": round((raw + max(resident_bytes() - before, 0)) / raw, 4),
        "materialised_ratio": round(windows * dm.window / dm.inputs.numel(), 1),  # copying every window instead
    }


@torch.no_grad()
def _last_windows_inference(dm: PriceDataModule, cell: str) -> dict:
    """One-step forecasts from every asset's last window: one batched forward pass vs one call per asset."""
    model = RecurrentForecaster(1, cell=cell, transform=dm.transform_state()).eval()
    last = torch.as_tensor(dm.series.offsets[1:] - dm.window)
    windows = torch.stack([dm.inputs[s : s + dm.window] for s in last.tolist()])
    anchor = torch.as_tensor(dm.series.levels[dm.series.offsets[1:] - 1], dtype=torch.float32)

    def batched() -> torch.Tensor:
        x, _, ctx = dm.normalizer.normalize(windows, windows.new_zeros(len(windows), 1), anchor)
        return model.to_price(model(x), ctx)

    def one_by_one() -> torch.Tensor:
        return torch.cat([model.to_price(model(x), c) for x, c in (
            dm.normalizer.normalize(windows[k : k + 1], windows.new_zeros(1, 1), anchor[k : k + 1])[::2]
            for k in range(len(windows)))])  # fmt: skip

    timings = {}
    for name, run in (("batched", batched), ("per_asset", one_by_one)):
        run()  # warm-up
        start = time.perf_counter()
        result = run()
        timings[name] = time.perf_counter() - start
        timings[f"{name}_forecasts"] = result
    assert torch.allclose(timings.pop("batched_forecasts"), timings.pop("per_asset_forecasts"), rtol=1e-4)
    return {
        "assets": len(windows),
        "batched_s": round(timings["batched"], 5),
        "per_asset_s": round(timings["per_asset"], 5),
        "speedup": round(timings["per_asset"] / timings["batched"], 1),
    }


def panel(series: int, days: int, steps: int, out: Path, rounds: int = 3, cell: str = "lstm") -> dict:
    """The panel section of scripts/benchmark.py: ``series`` x ``days`` (1,000 x 5,000 in full)."""
    out.mkdir(parents=True, exist_ok=True)
    panel_settings, one_settings = _write(out, series, days)
    start = time.perf_counter()
    dm = PriceDataModule(**panel_settings)
    dm.setup()
    setup_s = time.perf_counter() - start
    one = PriceDataModule(**one_settings)
    one.setup()
    rates = {"panel": [], "one": []}
    for _ in range(rounds):  # interleaved rounds, the best of each: noise only ever slows a round down
        rates["panel"].append(_fit_throughput(dm, cell, steps))
        rates["one"].append(_fit_throughput(one, cell, steps))
    panel_rate, one_rate = max(rates["panel"]), max(rates["one"])
    return {
        "series": series,
        "days": days,
        "setup_s": round(setup_s, 2),
        "windowing": _window_memory(dm),
        "train_panel_windows_per_s": round(panel_rate, 1),
        "train_one_series_windows_per_s": round(one_rate, 1),
        "train_ratio": round(panel_rate / one_rate, 3),
        "inference": _last_windows_inference(dm, cell),
    }
