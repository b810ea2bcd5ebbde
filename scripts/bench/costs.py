"""What the framework costs beyond training steps: building windows (time, memory), inference (one-step and
recursive), the default run split into phases, and a sweep with the joblib launcher vs the sequential one."""

from __future__ import annotations

import copy
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

from bench import ROOT
from pricernn.data import PriceDataModule
from pricernn.data.transforms import Normalizer
from pricernn.data.windows import WindowDataset, sliding_windows
from pricernn.forecasting.multistep import recursive_forecast
from pricernn.models import RecurrentForecaster


def windowing(sizes: list[int], window: int = 60) -> dict:
    """Seconds and extra resident memory (as a multiple of the series' bytes) to build training windows."""
    out = {}
    normalizer = Normalizer("none", False, (0.0,), (1.0,), 0.0, 1.0)
    for n in sizes:
        series = torch.randn(n, 1)
        before = resident_bytes()
        start = time.perf_counter()
        dataset = WindowDataset(series, series[:, 0], series[:, 0], range(0, n - window), window, 1, normalizer)
        batch = dataset[torch.arange(64)]  # one gather, to show the views work
        seconds = time.perf_counter() - start
        extra = max(resident_bytes() - before, 0)
        shares = sliding_windows(series, window).untyped_storage().data_ptr() == series.untyped_storage().data_ptr()
        out[f"{n:.0e}".replace("+0", "")] = {
            "points": n,
            "seconds": round(seconds, 6),
            "memory_ratio": round(extra / series.nbytes, 4),
            "shares_storage": bool(shares),
            "materialised_ratio": window,  # what x.unfold(...).contiguous() would cost: W copies of the series
        }
        del dataset, batch, series
    return out


def resident_bytes() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def inference(cell: str, steps: int = 30) -> dict:
    """One-step predictions over every test window and a ``steps``-step recursive forecast from every test
    origin, against a bare forward pass of the same weights on the same pre-built test windows."""
    dm = PriceDataModule()
    dm.setup()
    model = RecurrentForecaster(1, cell=cell, transform=dm.transform_state()).eval()
    test = dm.datasets["test"]
    x, _, ctx = test[torch.arange(len(test))]
    rnn, head = copy.deepcopy(model.nets["recursive"].rnn), copy.deepcopy(model.nets["recursive"].head)

    def timed(fn, repeat: int = 5) -> float:
        fn()
        best = float("inf")
        for _ in range(repeat):
            start = time.perf_counter()
            fn()
            best = min(best, time.perf_counter() - start)
        return best

    with torch.no_grad():
        bare = timed(lambda: head(rnn(x)[0][:, -1]))
        ours = timed(lambda: torch.cat([model.predict_step(b, 0) for b in dm.test_dataloader()]))
        windows, _, targets = dm.forecast_origins("test", steps)
        anchor = torch.as_tensor(targets.anchor, dtype=torch.float32)
        recursive = timed(lambda: recursive_forecast(model, windows, anchor, steps), repeat=2)
    per_origin_step = recursive / (len(windows) * steps)
    return {
        "test_windows": len(x),
        "bare_one_step_s": round(bare, 5),
        "framework_one_step_s": round(ours, 5),
        "one_step_ratio": round(bare / ours, 3),  # framework throughput / bare, like the train ratios
        "one_step_predictions_per_s": round(len(x) / ours),
        "recursive_steps": steps,
        "recursive_s": round(recursive, 4),
        "recursive_origins": len(windows),
        "recursive_per_origin_step_vs_bare_one_step": round(per_origin_step / (bare / len(x)), 3),
    }


def end_to_end(args: list[str]) -> dict:
    """Wall time of scripts/train.py in a fresh process, split into phases with the run's own timings."""
    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        subprocess.run(
            [sys.executable, str(ROOT / "scripts" / "train.py"), *args, f"hydra.run.dir={tmp}/run",
             f"logger.save_dir={tmp}/tb"],
            check=True, capture_output=True, cwd=tmp,
        )  # fmt: skip
        wall = time.perf_counter() - start
        metrics = json.loads((Path(tmp) / "run" / "metrics.json").read_text())
    phases = {k: metrics[f"{k}_seconds"] for k in ("setup", "train", "test")}
    phases["import_and_config"] = wall - sum(phases.values())
    return {
        "wall_s": round(wall, 3),
        **{f"{k}_s": round(v, 3) for k, v in phases.items()},
        "overhead_share": round(1 - phases["train"] / wall, 3),  # everything that is not fitting
        "epochs": metrics["epochs"],
        "config": " ".join(args) or "defaults",
    }


def sweep(grid: list[str]) -> dict:
    """Wall time of one grid with Hydra's basic (sequential) launcher and with the joblib launcher (one job per
    core, each with its share of threads), each in a fresh process."""
    walls, runs = {}, {}
    for name, launcher in (("sequential", []), ("joblib", ["hydra/launcher=joblib"])):
        with tempfile.TemporaryDirectory() as tmp:
            start = time.perf_counter()
            subprocess.run(
                [sys.executable, str(ROOT / "scripts" / "train.py"), "-m", *launcher, *grid,
                 f"hydra.sweep.dir={tmp}/sweep", f"logger.save_dir={tmp}/tb"],
                check=True, capture_output=True, cwd=tmp,
            )  # fmt: skip
            walls[name] = time.perf_counter() - start
            runs[name] = len(list(Path(tmp, "sweep").glob("*/metrics.json")))  # counted, not parsed from the grid
    if runs["sequential"] != runs["joblib"]:
        raise RuntimeError(f"the two launchers finished different numbers of runs: {runs}")
    return {
        "runs": runs["sequential"],
        "sequential_s": round(walls["sequential"], 2),
        "joblib_s": round(walls["joblib"], 2),
        "ratio": round(walls["joblib"] / walls["sequential"], 3),  # target: at most 0.6 on 2 cores
    }
