"""Measure what the framework costs over a bare PyTorch loop, in one process, on the embedded data.

    python scripts/benchmark.py [--quick | --tiny] [--cells rnn,lstm,gru] [--out outputs/benchmark.json]

Every figure is a ratio taken in this one run (ours vs a bare loop on the same model and data), so results
from noisy machines stay comparable. Sections: train (throughput per cell, fp32 and the fastest settings),
windowing (time and memory of building windows), inference (one-step and 30-step recursive), end_to_end
(the default ``scripts/train.py`` run split into phases), sweep (a grid with the joblib launcher vs the
sequential one), devices (per device, the CPU and a CUDA GPU when one is visible: bare vs framework at batch
64 and 1024, and the bare loop's windows per second by batch size), machine. ``--quick`` finishes in about
a minute; ``--tiny`` (for the test suite) checks that every figure is produced, with sizes too small for the
figures to mean anything.
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Hashable
from functools import partial
from pathlib import Path
from unittest import mock

import pytorch_lightning as pl
import torch
from hydra import compose, initialize_config_dir
from torch import nn
from torch.utils.data import DataLoader, Dataset

from pricernn.data import PriceDataModule
from pricernn.data.transforms import Normalizer
from pricernn.data.windows import WindowDataset, sliding_windows
from pricernn.forecasting import recursive_forecast
from pricernn.models import CELLS, RecurrentForecaster
from pricernn.training import train

ROOT = Path(__file__).resolve().parent.parent
SHORT_RUNS = ["trainer.max_epochs=2", "trainer.limit_train_batches=20", "trainer.limit_val_batches=2",
              "evaluation.steps=1", "~callbacks.early_stopping"]  # fmt: skip
CUDA = ["cuda"] if torch.cuda.is_available() else []
SIZES = {  # per size: steps and rounds per throughput figure, windowing sizes, the end-to-end run, the sweep grid,
    # and the devices measured by batch size, with those batch sizes
    "full": {"steps": 100, "rounds": 3, "points": [10**5, 10**6, 10**7], "run": [],
             "grid": ["model=rnn,lstm,gru", "data.window=20,30", "model.hidden_size=16,32", *SHORT_RUNS],
             "devices": ["cpu", *CUDA], "batches": [64, 1024], "scaling": [16, 64, 256, 1024, 2048]},
    "quick": {"steps": 20, "rounds": 1, "points": [10**5, 10**6], "run": ["debug=tiny"],
              "grid": ["model=rnn,gru", *SHORT_RUNS],
              "devices": CUDA, "batches": [64, 1024], "scaling": [64, 256, 1024]},  # under a minute on 2 cores
    "tiny": {"steps": 5, "rounds": 1, "points": [10**4], "run": ["debug=fast"],
             "grid": ["model=rnn,gru", "debug=fast", "evaluation.steps=1", "~callbacks.early_stopping"],
             "devices": ["cpu"], "batches": [64, 128], "scaling": [16, 64]},
}  # fmt: skip
SPANS: list[tuple[int, float]] = []  # (windows, seconds) per timed stretch of framework steps


class StepTimer(pl.Callback):
    """Steady-state training throughput of the real path: the first epoch warms up (and builds what the first
    steps build); in every later one the clock runs from the end of its first batch (whose time includes
    starting the epoch's iterator) to the end of its last, so data fetch, forward, backward, optimiser and the
    per-step hooks count, validation does not. The device is synchronised at both ends of a stretch only, so
    a GPU keeps its queue full as in a real run."""

    def __init__(self) -> None:
        self.start, self.windows = None, 0

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        if trainer.current_epoch == 0:
            return
        if batch_idx == 0:
            _sync(pl_module.device)
            self.start, self.windows = time.perf_counter(), 0
        elif self.start is not None:
            self.windows += len(batch[0])
            if trainer.is_last_batch:
                _sync(pl_module.device)
                SPANS.append((self.windows, time.perf_counter() - self.start))
                self.start = None


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _cfg(*overrides: str):
    with initialize_config_dir(config_dir=str(ROOT / "conf"), version_base="1.3"):
        return compose("train", overrides=list(overrides))


def framework_throughput(cell: str, steps: int, out: Path, *extra: str, batch: int = 64, train_windows: int) -> float:
    """Training windows per second of ``train()`` (data module, LightningModule, Trainer, logging and
    checkpointing as scripts/train.py runs them) over at least ``steps`` timed steps, measured by
    :class:`StepTimer`. ``train_windows``: the size of the training split, to plan the epochs."""
    SPANS.clear()
    per_epoch = min(steps + 1, -(-train_windows // batch))  # batches in an epoch; the first one is not timed
    if per_epoch < 2:
        raise ValueError(f"batch {batch} leaves fewer than 2 batches per epoch of {train_windows} windows to time")
    epochs = 1 + -(-steps // max(per_epoch - 1, 1))  # a warm-up epoch, then enough timed ones
    cfg = _cfg(
        f"model={cell}",
        f"data.batch_size={batch}",
        f"logger.save_dir={out / 'tb'}",
        f"trainer.limit_train_batches={per_epoch}",
        f"trainer.max_epochs={epochs}",
        "trainer.limit_val_batches=1",  # validation is not timed; keep it short
        "~callbacks.early_stopping",
        "+callbacks.step_timer._target_=__main__.StepTimer",
        "evaluation.steps=1",
        *extra,
    )
    with open(os.devnull, "w") as quiet, mock.patch("sys.stdout", quiet):
        train(cfg, out / f"{cell}_{len(list(out.iterdir()))}")
    windows, seconds = sum(n for n, _ in SPANS), sum(t for _, t in SPANS)
    return windows / seconds


def bare_throughput(
    cell: str,
    x: torch.Tensor,
    y: torch.Tensor,
    steps: int,
    warmup: int = 5,
    bf16: bool = False,
    batch: int = 64,
    device: str = "cpu",
) -> float:
    """The same model, optimiser, clipping and batch size as the defaults, in a hand-written loop: data as one
    tensor (on ``device``), batches by index slicing, no DataLoader, no hooks."""
    torch.use_deterministic_algorithms(False)  # what a hand-written loop runs with (a Trainer before it set it)
    torch.manual_seed(0)
    x, y = x.to(device), y.to(device)
    rnn = CELLS[cell](x.shape[-1], 64, 2, batch_first=True).to(device)
    head = nn.Linear(64, y.shape[-1]).to(device)
    params = [*rnn.parameters(), *head.parameters()]
    optimizer = torch.optim.Adam(params, lr=1e-3)
    order = torch.randperm(len(x), device=device)
    for step in range(warmup + steps):
        if step == warmup:
            _sync(x.device)
            start = time.perf_counter()
        idx = order[(step * batch) % (len(x) - batch + 1) :][:batch]
        with torch.autocast(x.device.type, dtype=torch.bfloat16, enabled=bf16):
            output, _ = rnn(x[idx])
            loss = nn.functional.mse_loss(head(output[:, -1]).float(), y[idx])
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        nn.utils.clip_grad_norm_(params, 1.0)
        optimizer.step()
    _sync(x.device)
    return steps * batch / (time.perf_counter() - start)


class PerSample(Dataset):
    """What most projects write: one window per ``__getitem__``, batches assembled by the default collate."""

    def __init__(self, x: torch.Tensor, y: torch.Tensor, ctx: torch.Tensor) -> None:
        self.x, self.y, self.ctx = x, y, ctx

    def __len__(self) -> int:
        return len(self.x)

    def __getitem__(self, i: int):
        return self.x[i], self.y[i], self.ctx[i]


def per_sample_throughput(cell: str, steps: int, out: Path, train_windows) -> float:
    """The framework path with its whole-tensor loader swapped for a per-sample Dataset + DataLoader."""

    def loader(self):
        return DataLoader(PerSample(*train_windows), batch_size=self.batch_size, shuffle=True)

    with mock.patch.object(PriceDataModule, "train_dataloader", loader):
        return framework_throughput(cell, steps, out, train_windows=len(train_windows[0]))


def best_of(measures: dict[Hashable, Callable[[], float]], rounds: int) -> dict[Hashable, float]:
    """The best of ``rounds`` interleaved rounds of every measure (rounded): background noise on a shared
    machine only ever slows a round down, and interleaving spreads a slow spell over all the measures."""
    samples: dict[Hashable, list[float]] = {k: [] for k in measures}
    for _ in range(rounds):
        for key, measure in measures.items():
            samples[key].append(measure())
    return {k: round(max(v), 1) for k, v in samples.items()}


def by_batch_size(device: str, cells: list[str], spec: dict, out: Path, x: torch.Tensor, y: torch.Tensor) -> dict:
    """On ``device``: the bare loop and the framework path at the batch sizes ``spec["batches"]`` (64 and 1024;
    the framework on a GPU with ``trainer=gpu``, which pins its batches), and the bare loop's windows per second at
    ``spec["scaling"]``. Each figure covers about ``spec["steps"]`` x 64 windows: large batches take fewer steps."""
    framework_args = ["trainer=gpu"] if device == "cuda" else []  # which pins batches (data.pin_memory=null)
    table: dict = {"name": torch.cuda.get_device_name() if device == "cuda" else _cpu_model()}

    def steps(batch: int) -> dict:
        return {"steps": max(3, spec["steps"] * 64 // batch), "warmup": max(1, 320 // batch)}

    for cell in cells:
        measures: dict = {}
        for batch in spec["batches"]:
            n = steps(batch)
            measures[batch, "bare"] = partial(bare_throughput, cell, x, y, batch=batch, device=device, **n)
            measures[batch, "framework"] = partial(
                framework_throughput, cell, n["steps"], out, *framework_args, batch=batch, train_windows=len(x)
            )
        for b in (b for b in spec["scaling"] if b <= len(x) // 2):
            measures["scaling", b] = partial(bare_throughput, cell, x, y, batch=b, device=device, **steps(b))
        best = best_of(measures, spec["rounds"])
        row: dict = {}
        for batch in spec["batches"]:
            bare, ours = best[batch, "bare"], best[batch, "framework"]
            row[str(batch)] = {
                "bare_windows_per_s": bare,
                "framework_windows_per_s": ours,
                "ratio": round(ours / bare, 3),
            }
        row["bare_windows_per_s_by_batch"] = {str(b): v for (kind, b), v in best.items() if kind == "scaling"}
        table[cell] = row
        print(f"{device} {cell}: {row}", flush=True)
    return table


def windowing(sizes: list[int], window: int = 60) -> dict:
    """Seconds and extra resident memory (as a multiple of the series' bytes) to build training windows."""
    out = {}
    normalizer = Normalizer("none", False, (0.0,), (1.0,), 0.0, 1.0)
    for n in sizes:
        series = torch.randn(n, 1)
        before = _rss()
        start = time.perf_counter()
        dataset = WindowDataset(series, series[:, 0], series[:, 0], range(0, n - window), window, 1, normalizer)
        batch = dataset[torch.arange(64)]  # one gather, to show the views work
        seconds = time.perf_counter() - start
        extra = max(_rss() - before, 0)
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


def _rss() -> int:
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


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine() -> dict:
    return {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "lightning": pl.__version__,
        "cpu": _cpu_model(),
        "cpu_capability": torch.backends.cpu.get_cpu_capability(),  # the vector ISA torch's kernels use
        "cores": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "cuda": torch.cuda.get_device_name() if torch.cuda.is_available() else None,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    size = parser.add_mutually_exclusive_group()
    size.add_argument("--quick", action="store_true", help="fewer steps and sizes: about a minute")
    size.add_argument("--tiny", action="store_true", help="every figure, meaningless sizes: for the test suite")
    parser.add_argument("--cells", default="rnn,lstm,gru")
    parser.add_argument("--out", default="outputs/benchmark.json")
    args = parser.parse_args()
    size = "tiny" if args.tiny else "quick" if args.quick else "full"
    spec = SIZES[size]
    steps, rounds = spec["steps"], spec["rounds"]
    cells = args.cells.split(",")
    if unknown := [c for c in cells if c not in CELLS]:
        parser.error(f"--cells: unknown {', '.join(unknown)}; choose from {', '.join(CELLS)}")
    result: dict = {"machine": machine(), "size": size, "train": {}}

    dm = PriceDataModule()
    dm.setup()
    train_windows = dm.datasets["train"][torch.arange(len(dm.datasets["train"]))]
    x, y, _ = train_windows
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp)
        for cell in cells:
            measures = {
                "bare_windows_per_s": lambda c=cell: bare_throughput(c, x, y, steps),
                "framework_windows_per_s": lambda c=cell: framework_throughput(c, steps, out, train_windows=len(x)),
                "dataloader_windows_per_s": lambda c=cell: per_sample_throughput(c, steps, out, train_windows),
                "bare_bf16_windows_per_s": lambda c=cell: bare_throughput(c, x, y, steps, bf16=True),
                "framework_bf16_windows_per_s": lambda c=cell: framework_throughput(
                    c, steps, out, "trainer.precision=bf16-mixed", train_windows=len(x)
                ),
            }
            row = best_of(measures, rounds)
            row["ratio"] = round(row["framework_windows_per_s"] / row["bare_windows_per_s"], 3)
            row["dataloader_ratio"] = round(row["dataloader_windows_per_s"] / row["bare_windows_per_s"], 3)
            row["bf16_ratio_vs_bare_fp32"] = round(row["framework_bf16_windows_per_s"] / row["bare_windows_per_s"], 3)
            result["train"][cell] = row
            print(f"train {cell}: {row}", flush=True)
        result["devices"] = {d: by_batch_size(d, cells, spec, out, x, y) for d in spec["devices"]}
    result["windowing"] = windowing(spec["points"])
    result["inference"] = inference("lstm", 5 if size == "tiny" else 30)
    result["end_to_end"] = end_to_end(spec["run"])
    result["sweep"] = sweep(spec["grid"])

    print(report(result))
    path = Path(args.out)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(result, indent=2) + "\n")
    print(f"written: {path}")


def report(r: dict) -> str:
    lines = [f"pricernn benchmark on {r['machine']['cores']} cores, torch {r['machine']['torch']}"]
    lines.append(
        f"{'cell':6}{'bare':>9}{'ours':>9}{'ratio':>7}{'per-sample DL':>15}{'ratio':>7}{'ours bf16':>11}{'vs bare':>9}"
    )
    for cell, t in r["train"].items():
        lines.append(
            f"{cell:6}{t['bare_windows_per_s']:9.0f}{t['framework_windows_per_s']:9.0f}{t['ratio']:7.2f}"
            f"{t['dataloader_windows_per_s']:15.0f}{t['dataloader_ratio']:7.2f}{t['framework_bf16_windows_per_s']:11.0f}"
            f"{t['bf16_ratio_vs_bare_fp32']:9.2f}"
        )
    lines.append("(training windows per second, steady state; ratio = ours / bare fp32 loop)")
    for device, table in r["devices"].items():
        lines.append(f"{device} ({table['name']}): training windows/s by batch size, ours vs bare (ratio)")
        for cell, t in table.items():
            if cell == "name":
                continue
            scaling = "  ".join(f"{b}:{w:.0f}" for b, w in t["bare_windows_per_s_by_batch"].items())
            lines.append(
                f"{cell:6}"
                + "".join(
                    f"  b{b}: bare {t[b]['bare_windows_per_s']:.0f} ours {t[b]['framework_windows_per_s']:.0f} "
                    f"({t[b]['ratio']:.2f})"
                    for b in t
                    if b.isdigit()
                )
                + f"  | bare by batch {scaling}"
            )
    for size, w in r["windowing"].items():
        lines.append(
            f"windows over {size} points: {w['seconds'] * 1e3:.2f} ms, extra memory {w['memory_ratio']:.3f}x the series"
        )
    i = r["inference"]
    lines.append(
        f"inference: {i['test_windows']} one-step test predictions in {i['framework_one_step_s'] * 1e3:.1f} ms "
        f"(bare {i['bare_one_step_s'] * 1e3:.1f} ms); {i['recursive_steps']}-step recursive from "
        f"{i['recursive_origins']} origins in {i['recursive_s']:.3f} s, "
        f"{i['recursive_per_origin_step_vs_bare_one_step']:.2f}x bare per origin-step"
    )
    e = r["end_to_end"]
    lines.append(
        f"scripts/train.py ({e['config']}): {e['wall_s']:.1f} s = import+config {e['import_and_config_s']:.1f} + setup "
        f"{e['setup_s']:.1f} + fit {e['train_s']:.1f} + test {e['test_s']:.1f}; not fitting: {e['overhead_share']:.0%}"
    )
    w = r["sweep"]
    lines.append(
        f"sweep of {w['runs']} runs: sequential {w['sequential_s']:.1f} s, joblib {w['joblib_s']:.1f} s, "
        f"ratio {w['ratio']:.2f}"
    )
    return "\n".join(lines)


if __name__ == "__main__":
    main()
