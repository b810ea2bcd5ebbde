"""PriceDataModule: one price history → leakage-free train/val/test windows, and the way back to prices."""

from __future__ import annotations

import copy
import logging
from collections.abc import Sequence
from dataclasses import replace

import numpy as np
import pandas as pd
import pytorch_lightning as pl
import torch
from torch.utils.data import DataLoader

from pricernn.config.validate import DataConfig, check_section, default_scaler
from pricernn.data.calendar import add_missing_sessions, describe_bars
from pricernn.data.covariates import extra_inputs, load_covariates
from pricernn.data.derived import VERSION as DERIVED_VERSION
from pricernn.data.frequency import BarFrequency, infer_frequency, stamp_format
from pricernn.data.panel import (
    SplitTargets,
    common_split,
    concat,
    load_series,
    scored_origins,
    split_targets,
    window_ranges,
)
from pricernn.data.preprocess import PreparedSeries, encode, fill_missing
from pricernn.data.sources import source_name
from pricernn.data.transforms import Normalizer
from pricernn.data.windows import WindowDataset, batch_loader, sliding_windows
from pricernn.errors import check

log = logging.getLogger("pricernn")
SPLITS = ("train", "val", "test")
OHLCV = ("Open", "High", "Low", "Close", "Volume")  # read where the file has them, for derived inputs


class PriceDataModule(pl.LightningDataModule):
    """Loads, cleans, splits and windows one price series.

    ``path`` is an embedded data set's name (``sp500``) or a CSV/Parquet file. After :meth:`setup`:
    ``n_features``, ``split_dates``, ``normalizer`` (fitted on the training period only) and
    :meth:`targets` (actual prices and naive forecasts per split) are available.
    """

    def __init__(
        self,
        path: str = "sp500",
        date_column: str = "Date",
        target: str = "Close",
        features: Sequence[str] | str | None = None,
        derived: Sequence[str] | str | None = None,
        covariates: Sequence[dict] | None = None,
        symbol_column: str | None = None,
        symbol: str | None = None,
        symbols: Sequence[str] | str | None = None,
        layout: str | None = None,
        sep: str | None = None,
        decimal: str | None = None,
        thousands: str | None = None,
        date_format: str | None = None,
        dayfirst: bool | None = None,
        sheet: str | int | None = None,
        timezone: str | None = None,
        freq: str | None = None,
        calendar: str | None = None,
        fill: str = "ffill",
        target_transform: str = "price",
        scaler: str | None = None,
        window: int = 60,
        horizon: int = 1,
        split: Sequence[float] = (0.7, 0.15, 0.15),
        val_start: str | None = None,
        test_start: str | None = None,
        end: str | None = None,
        batch_size: int = 64,
        eval_batch_size: int = 1024,
        pin_memory: bool | None = None,
    ) -> None:
        scaler = scaler or default_scaler(target_transform)  # null follows the transform, as in a config
        settings = {k: v for k, v in locals().items() if k not in ("self", "__class__")}
        super().__init__()
        check(path is not None and str(path) != "", "data.path is not set: give data.path=FILE (CSV, Parquet, Excel)")
        check_section(DataConfig, "data", settings)  # types and allowed values: pricernn.config.validate
        features = [features] if isinstance(features, str) else list(features or [target])
        # every data setting as used, the file as an absolute path: the data contract checkpoints carry
        self.settings = {**settings, "path": source_name(path), "features": features, "split": list(split)}
        self.path, self.date_column, self.target, self.features = str(path), date_column, target, features
        # inputs computed from the history by name (pricernn.data.derived); "all" is resolved on the file's columns
        self.derived = derived if derived is None or isinstance(derived, str) else [str(d) for d in derived]
        self.settings["derived"] = self.derived
        self.covariates = [dict(c) for c in covariates] if covariates else []  # other files' columns, as of each row
        self.settings["covariates"] = self.covariates
        self.extra_inputs: list[str] = []  # the derived inputs' and covariates' names, after the file's features
        self.symbol_column, self.symbol, self.fill = symbol_column, symbol, fill
        # several series (a panel) when data.symbols is set: all of them, or a list
        self.symbols = None if symbols is None else symbols if isinstance(symbols, str) else [str(s) for s in symbols]
        self.layout = layout
        self.settings["symbols"] = self.symbols
        # how to read the file; None = detected from it (pricernn.data.sources)
        self.read_options = {
            "sep": sep,
            "decimal": decimal,
            "thousands": thousands,
            "date_format": date_format,
            "dayfirst": dayfirst,
            "sheet": sheet,
            "timezone": timezone,
        }
        self.freq, self.calendar = freq, calendar
        self.frequency: BarFrequency | None = None  # inferred (or data.freq) when the history is read
        self.target_transform, self.scaler = target_transform, scaler
        self.window, self.horizon = int(window), int(horizon)
        self.split, self.val_start, self.test_start = [float(f) for f in split], val_start, test_start
        self.end = end
        self.batch_size, self.eval_batch_size, self.pin_memory = int(batch_size), int(eval_batch_size), pin_memory
        self.series: PreparedSeries | None = None
        self.normalizer: Normalizer | None = None
        self.datasets: dict[str, WindowDataset] = {}
        self.bounds = np.zeros((0, 2), dtype=np.int64)  # per series: first validation row, first test row
        self.first_series = 0  # the panel number of series 0 here (a part view's own series, pricernn.reporting.pooled)
        self.inputs: torch.Tensor | None = None  # (N, F) model inputs, as float32

    def prepare_series(self) -> list[PreparedSeries]:
        """Load, fill and encode every series (everything before the split; no fitting): one, or those of
        ``data.symbols`` in a panel (pricernn.data.panel)."""
        frames = load_series(self.path, symbols=self.symbols, layout=self.layout, symbol_column=self.symbol_column,
                             symbol=self.symbol, date_column=self.date_column, target=self.target,
                             features=self.features, optional=OHLCV if self.derived else (),
                             **self.read_options)  # fmt: skip
        if self.settings["dayfirst"] is None:  # the day order the file proved: a later file of it may not prove it
            self.settings["dayfirst"] = next(iter(frames.values())).attrs.get("dayfirst")
        if self.end is not None:  # pretend the history stops here (walk-forward folds, what-if runs)
            frames = {s: f.loc[: pd.Timestamp(self.end)] for s, f in frames.items()}
            check(any(len(f) for f in frames.values()), f"data.end={self.end} is before the first date of {self.path}")
            frames = {s: f for s, f in frames.items() if len(f)}
        dates = [f.index for f in frames.values()]  # the bars of all series together tell the frequency
        self.frequency = infer_frequency(dates[0].append(dates[1:]).unique().sort_values(), self.freq)
        describe_bars(self.frequency, self.calendar, self.read_options["timezone"])
        covariates = load_covariates(self.covariates, self.date_column, self.read_options)
        parts, empty = [], []
        for symbol, prices in frames.items():
            filled = fill_missing(add_missing_sessions(prices, self.frequency, self.calendar, self.fill), self.fill)
            if len(filled) == 0:
                empty.append(symbol)
                continue
            extra = extra_inputs(filled, self.target, self.features, self.derived, covariates, symbol)
            self.extra_inputs = extra.names
            part = encode(extra.frame, [*self.features, *extra.names], self.target, self.target_transform,
                          extra.kinds, extra.bounds, extra.carry)  # fmt: skip
            parts.append(replace(part, symbols=(symbol,)))
        check(parts, f"{self.path}: no values in column {self.target}")
        if empty:
            log.warning("%s: skipped %s: no values", self.path, ", ".join(empty))
        return parts

    def setup(self, stage: str | None = None) -> None:
        if self.series is not None:  # idempotent: Lightning calls it once per stage
            return
        parts = self.prepare_series()
        kept, bounds = common_split(parts, self.window, self.horizon, self.split, self.val_start, self.test_start)
        series = concat([parts[k] for k in kept])
        self.normalizer = Normalizer.fit(series, bounds[:, 0], self.window, self.horizon, self.scaler)
        ranges = window_ranges(series.offsets, bounds, self.window, self.horizon)
        inputs, target, levels = (
            torch.tensor(a, dtype=torch.float32) for a in (series.inputs, series.target, series.levels)
        )
        self.datasets = {
            name: WindowDataset(inputs, target, levels, ranges[name], self.window, self.horizon, self.normalizer)
            for name in SPLITS
        }
        self.series, self.bounds, self.inputs = series, bounds, inputs

    @property
    def rows(self) -> tuple[int, int]:
        """First validation and first test row of a single series (:meth:`part` gives one of a panel)."""
        check(len(self.bounds) == 1, "internal: rows of a panel; take one series with part(k)")
        return int(self.bounds[0, 0]), int(self.bounds[0, 1])

    def part(self, k: int) -> PriceDataModule:
        """Series ``k`` of the panel as a data module of one series (arrays are views; no loaders): what the
        per-asset report reads."""
        view = copy.copy(self)
        first, end = int(self.series.offsets[k]), int(self.series.offsets[k + 1])
        view.series, view.bounds, view.inputs = self.series.part(k), self.bounds[k : k + 1], self.inputs[first:end]
        view.datasets, view.first_series = {}, self.first_series + k
        return view

    # --- what the rest of the framework reads ---------------------------------------------------------------

    @property
    def n_features(self) -> int:
        return len(self.features) + len(self.extra_inputs)

    @property
    def split_dates(self) -> dict[str, tuple[str, str]]:
        """First and last target date of each split over all series (ISO strings)."""
        stamp = stamp_format(self.frequency)
        return {
            name: (
                pd.Timestamp(t.target_dates[:, 0].min()).strftime(stamp),
                pd.Timestamp(t.target_dates[:, -1].max()).strftime(stamp),
            )
            for name, t in ((n, self.targets(n)) for n in SPLITS)
        }

    def targets(self, split: str) -> SplitTargets:
        """Actual prices, naive forecasts (the anchor) and dates for every window of ``split``, in order."""
        ranges = window_ranges(self.series.offsets, self.bounds, self.window, self.horizon)[split]
        origin = np.concatenate([np.arange(r.start, r.stop) for r in ranges]) + self.window - 1
        return split_targets(self.series, origin, self.horizon, self.first_series)

    def forecast_origins(self, split: str, steps: int) -> tuple[torch.Tensor, np.ndarray, SplitTargets]:
        """Every origin of ``split`` from which all of ``steps`` targets lie inside the split, series by series:
        the raw input windows (M, W, F), their origin rows (M,) and the targets (actual is (M, steps)). A series
        of a panel whose part is shorter is left out of this evaluation; one series is an error."""
        origin = scored_origins(self.series.offsets, self.bounds, split, steps)
        windows = sliding_windows(self.inputs, self.window)[torch.as_tensor(origin - self.window + 1)]
        return windows, origin, split_targets(self.series, origin, steps, self.first_series)

    def loss_weights(self) -> list[float]:
        """Per horizon, 1 / the naive forecast's mean squared error on the training windows, in the model's
        normalised units, scaled to a mean of 1: the weights that make every horizon count equally in a
        multi-output loss (a 10-step move's error is ~10x a 1-step one's and would drown it otherwise)."""
        train = self.datasets["train"]
        _, y, ctx = train[torch.arange(len(train))]
        anchor, y_loc, y_scale = ctx[:, 0:1], ctx[:, 1:2], ctx[:, 2:3]
        naive = torch.zeros_like(anchor) if self.normalizer.log_return else anchor  # no move: the last price
        mse = ((y - (naive - y_loc) / y_scale) ** 2).mean(dim=0).double()
        weights = 1.0 / mse.clamp_min(1e-12)
        return (weights / weights.mean()).tolist()

    @property
    def naive_mae_train(self) -> float:
        """Mean absolute one-step change of the price over the training period: the MASE denominator."""
        return float(np.mean(np.concatenate([np.abs(np.diff(levels)) for levels in self._train_levels()])))

    def _train_levels(self) -> list[np.ndarray]:
        """Each series' target prices over its training period."""
        starts = self.series.offsets[:-1]
        return [self.series.levels[o : o + v] for o, v in zip(starts, self.bounds[:, 0], strict=True)]

    def transform_state(self) -> dict:
        """Plain-data description of everything fitted or chosen at training time, for checkpoints: the fitted
        normaliser, the model's inputs, and the data contract (every data setting, the training period's price
        range and the split dates), so a checkpoint alone says which data it forecasts and how to read them."""
        per_series = self._train_levels()
        train_levels = np.concatenate(per_series)
        return {
            "normalizer": self.normalizer.to_dict(),
            "features": [*self.features, *self.extra_inputs],
            "derived_version": DERIVED_VERSION,
            "target": self.target,
            "window": self.window,
            "horizon": self.horizon,
            "target_transform": self.target_transform,
            "data": dict(self.settings),
            "frequency": self.frequency.to_dict(),
            "train_range": [float(train_levels.min()), float(train_levels.max())],
            "split_dates": self.split_dates,
            "symbols": list(self.series.symbols),
            "train_ranges": {
                s: [float(v.min()), float(v.max())] for s, v in zip(self.series.symbols, per_series, strict=True)
            },
        }

    # --- loaders: whole-tensor batches, chronological order except shuffling inside the training split --------

    def train_dataloader(self) -> DataLoader:
        return batch_loader(self.datasets["train"], self.batch_size, True, self._pin(), progress=self._step)

    def _step(self) -> int:
        return self.trainer.global_step if self.trainer is not None else 0

    def _pin(self) -> bool:
        """``pin_memory=None`` pins batches when training on a CUDA device. A copy from pageable memory makes the
        host wait for the device's queue to drain (CUDA's documented behaviour); from pinned memory the
        non-blocking copy in :meth:`transfer_batch_to_device` does not, so the host can queue steps ahead."""
        if self.pin_memory is not None:
            return bool(self.pin_memory)
        return self.trainer is not None and self.trainer.strategy.root_device.type == "cuda"

    def val_dataloader(self) -> DataLoader:
        return batch_loader(self.datasets["val"], self.eval_batch_size, shuffle=False, pin_memory=self._pin())

    def test_dataloader(self) -> DataLoader:
        return batch_loader(self.datasets["test"], self.eval_batch_size, shuffle=False, pin_memory=self._pin())

    def transfer_batch_to_device(self, batch: tuple[torch.Tensor, ...], device: torch.device, dataloader_idx: int):
        # Batches are tuples of tensors: move them directly (non-blocking from pinned memory) instead of
        # Lightning's generic walk over arbitrary collections; on the CPU there is nothing to move.
        if device.type == "cpu":
            return batch
        return tuple(t.to(device, non_blocking=True) for t in batch)

    def predict_dataloader(self) -> DataLoader:
        return self.test_dataloader()
