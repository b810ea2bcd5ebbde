"""Training throughput: the framework's real ``train()`` path against a bare PyTorch loop and a per-sample
DataLoader, each the best of interleaved rounds; and by batch size, per device."""

from __future__ import annotations

import os
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

from bench import ROOT
from bench.machine import cpu_model
from pricernn.data import PriceDataModule
from pricernn.models import CELLS
from pricernn.tasks.train import train

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
        "+callbacks.step_timer._target_=bench.throughput.StepTimer",
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
    table: dict = {"name": torch.cuda.get_device_name() if device == "cuda" else cpu_model()}

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
