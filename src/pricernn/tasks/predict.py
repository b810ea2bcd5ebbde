"""What ``scripts/predict.py`` does: read the history a checkpoint names (or the one the command line points at),
check that it looks like the training data, forecast the next bars, write them."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from omegaconf import DictConfig, OmegaConf

from pricernn.checkpoints import load_model
from pricernn.config.validate import PredictConfig, validate
from pricernn.data import PriceDataModule
from pricernn.data.calendar import future_dates
from pricernn.data.derived import PathInputs, wall_clock
from pricernn.data.frequency import BarFrequency, bar_days, stamp_format
from pricernn.data.sources import MissingColumn
from pricernn.errors import UserError, check
from pricernn.evaluation.intervals import bands_from_checkpoint, panel_state
from pricernn.files import write_atomic
from pricernn.forecasting.multistep import base_bands, strategy_paths
from pricernn.reporting.plots import forecast_figure, render

log = logging.getLogger("pricernn")

# Data settings that define what the model reads: fixed by the checkpoint, not to be changed for a forecast
MODEL_KEYS = ("features", "derived", "covariates", "target", "target_transform", "scaler", "window", "horizon")
# A last price outside this multiple of the training period's range is a different market (or series)
RANGE_FACTOR = 5.0


@dataclass(frozen=True)
class Forecast:
    frame: pd.DataFrame  # date, step, predicted, bands, target, source (, symbol): rows series by series
    source: str  # the file (absolute) or embedded data set that was read
    target: str
    symbols: tuple[str, ...]  # the series forecast ("" for a single unnamed one)
    last_bar: str  # the latest last bar of the histories, as the bars are written (a date, or a date and time)
    last_price: float  # the last price of a single series (NaN for several)

    def describe(self, ckpt: str) -> str:
        steps = int(self.frame["step"].max())
        if len(self.symbols) > 1:
            return (
                f"{steps}-step forecasts of {self.target} of {len(self.symbols)} series in {self.source}, after "
                f"each one's last bar (the latest {self.last_bar}), by ckpt={ckpt}"
            )
        series = self.target + (f" of {self.symbols[0]}" if self.symbols[0] else "")
        return (
            f"{steps}-step forecast of {series} in {self.source}, after its last bar "
            f"{self.last_bar} (last price {self.last_price:g}), by ckpt={ckpt}"
        )


def history_settings(contract: dict, data: DictConfig, given: set[str], ckpt: str) -> dict:
    """The data settings to read the history with: the checkpoint's (the data the model was trained on, up to
    the file's last row), with only the ``data.*`` keys ``given`` on the command line replacing theirs."""
    saved = contract.get("data")
    if saved is None:  # a checkpoint written before checkpoints carried their data settings
        check("path" in given, f"ckpt={ckpt}: this checkpoint does not record its data; give data.path=FILE")
        saved = {**OmegaConf.to_container(data, resolve=True), **{k: contract[k] for k in MODEL_KEYS if k in contract}}
    settings = {**saved, "end": None, "val_start": None, "test_start": None}
    for key in sorted(given):
        value = data[key]
        value = list(value) if OmegaConf.is_list(value) else value
        if key in MODEL_KEYS and value != saved.get(key):
            raise UserError(
                f"data.{key}={value}: the model in ckpt={ckpt} was trained with data.{key}={saved.get(key)}, "
                "which it keeps; leave it out"
            )
        settings[key] = value
    return settings


def check_frequency(contract: dict, history: BarFrequency, source: str) -> None:
    """The history's bars must be those the model learnt from: bars of another length (hourly bars for a daily
    model, weekly for a monthly one) give a forecast without meaning, an error; bars of the same length with
    another weekly pattern (7-day crypto days for a business-daily model) only a warning."""
    if "frequency" not in contract:
        return
    trained = BarFrequency.from_dict(contract["frequency"])
    if trained.alias == history.alias:
        return
    what = (
        f"{source}: its bars are {history.label} ({history.alias}), the model's were {trained.label} ({trained.alias})"
    )
    longer, shorter = sorted((bar_days(history), bar_days(trained)), reverse=True)
    if longer > 1.5 * shorter:
        raise UserError(
            f"{what}; forecast a history of the model's bars (data.freq={trained.alias} if detection erred)"
        )
    log.warning("%s: bars of the same length, but check that this is the market the model knows", what)


def check_price_range(
    contract: dict, last_price: float, last_date: pd.Timestamp, source: str, symbol: str = "", other_file: bool = True
) -> None:
    """A model of price levels (``standard``, ``minmax``, ``none`` on prices) learnt outputs inside the training
    period's price range and cannot reach prices outside it: an error. A model that reads relative moves (the
    window scaler, log returns) forecasts at any level, but a last price far outside that range (0.2x-5x) in
    another file than the model's (``other_file``) suggests another series: a warning."""
    if "train_range" not in contract:
        return
    low, high = (contract.get("train_ranges") or {}).get(symbol, contract["train_range"])  # a panel: the asset's
    normalizer = contract["normalizer"]
    relative = normalizer["scaler"] == "window" or normalizer["log_return"]
    bounds = (low / RANGE_FACTOR, high * RANGE_FACTOR) if relative else (low, high)
    if bounds[0] <= last_price <= bounds[1]:
        return
    where = f"{1 / RANGE_FACTOR:g}x-{RANGE_FACTOR:g}x of the training range" if relative else "the training range"
    what = (
        f"{source}: the last {contract['target']} price, {last_price:g} on {last_date.date()}, is outside {where} "
        f"({low:g} .. {high:g})"
    )
    if relative:  # a warning for another file only: the model's own file has simply moved on since training
        if other_file:
            log.warning("%s: is this the series the model was trained on? (it reads relative moves, so it forecasts)",
                        what)  # fmt: skip
        return
    raise UserError(
        f"{what}; a model of price levels (data.scaler={normalizer['scaler']}) cannot forecast there: "
        "retrain with data.scaler=window, which reads relative moves"
    )


SIDES = ("lower", "upper")


def forecast_history(cfg: DictConfig, out_dir: str | Path, given: set[str] = frozenset()) -> Forecast:
    """Load ``cfg.ckpt``, read the history it was trained on (or the one the ``given`` ``data.*`` keys point
    at), forecast ``cfg.steps`` bars after its last date (the model's bar frequency; the trading sessions of
    ``data.calendar`` when one is set); write forecast.csv and forecast.png to ``out_dir`` and return it."""
    cfg = validate(cfg, PredictConfig)
    check(cfg.get("ckpt"), "ckpt is not set: give ckpt=PATH (a run's checkpoints/best.ckpt)")
    model, combination, calibration = load_model(cfg.ckpt)
    contract = model.hparams.transform
    settings = history_settings(contract, cfg.data, set(given), cfg.ckpt)
    history = PriceDataModule(**settings)
    try:
        parts = history.prepare_series()
    except MissingColumn as err:
        raise UserError(f"{err} (ckpt={cfg.ckpt} reads columns {', '.join(contract['features'])})") from err
    window, source = contract["window"], history.settings["path"]
    parts = _long_enough(parts, window, source, cfg.ckpt)
    parts, series = _series_numbers(model, contract, parts, cfg.ckpt, explicit="symbols" in given)
    trained_until = (contract.get("data") or {}).get("end")
    latest = max(part.dates[-1] for part in parts)
    if trained_until and "end" not in given:
        log.info("the model was trained on data up to data.end=%s; this forecast starts after the history's last bar "
                 "(%s): give data.end=DATE to forecast from an earlier one", trained_until, latest)  # fmt: skip
    check_frequency(contract, history.frequency, source)
    for part in parts:
        name = f"{source}[{part.symbols[0]}]" if part.symbols[0] else source
        check_price_range(contract, float(part.levels[-1]), part.dates[-1], name, part.symbols[0], "path" in given)
    # every series' last window in one batch: one forward pass per step for all of them
    inputs = torch.stack([torch.tensor(part.inputs[-window:], dtype=torch.float32) for part in parts])
    last = np.array([float(part.levels[-1]) for part in parts])
    anchor = torch.tensor(last, dtype=torch.float32)
    # the model's bars (and the calendar it was given, or data.calendar here): the next sessions, hours, months
    frequency = BarFrequency.from_dict(contract["frequency"]) if "frequency" in contract else history.frequency
    future = [future_dates(part.dates[-1], int(cfg.steps), frequency, settings.get("calendar")) for part in parts]
    # what extends the derived inputs along the paths: each series' last carry, and the bars' dates
    path = PathInputs(np.stack([p.carry[-1] for p in parts]), np.stack([wall_clock(d) for d in future]))
    # every network's path, combined per horizon as validated at training time (strategy, pull to the last price)
    paths = strategy_paths(model, inputs, anchor, int(cfg.steps), series, path)
    prices = combination.apply(paths, last)
    flat = [k + 1 for k in range(int(cfg.steps)) if combination.weight(k) == 0]
    if flat:  # said here too: a flat forecast is a finding of the validation period, not a failure
        where = "every step" if len(flat) == int(cfg.steps) else "h=" + ",".join(map(str, flat))
        drift = 1e4 * combination.drift
        moved = f" moved by the drift kept from training ({drift:+.2f} bp a bar)" if drift else ""
        log.info("the forecast is the last price%s at %s, where the validation period found no signal (λ = 0)",
                 moved, where)  # fmt: skip
    # the bands as calibrated at training time (validation residuals; with ACI, its widths adapted over the test)
    calibration = panel_state(calibration, tuple(part.symbols[0] for part in parts)) if calibration else calibration
    levels = tuple(float(level) for level in (calibration or {}).get("half_widths", {}))
    bases = base_bands(model, inputs, anchor, prices, levels, series)
    bands = bands_from_checkpoint(calibration, bases) if levels else {}
    # the weights are checked when loaded; a forecast still not finite (a damaged normaliser) is not written
    values = np.stack([prices, *(np.asarray(side) for pair in bands.values() for side in pair)])  # (·, series, h)
    bad = (np.flatnonzero(~np.isfinite(values).all(axis=(0, 1))) + 1).tolist()
    check(
        not bad,
        f"ckpt={cfg.ckpt}: its forecast is not finite at h={','.join(map(str, bad[:5]))}{'...' * (len(bad) > 5)} "
        "(damaged normaliser or calibration in the checkpoint?); nothing was written",
    )
    stamp = stamp_format(frequency)
    frames, plotted = [], []
    for k, (part, dates) in enumerate(zip(parts, future, strict=True)):
        mine = {level: (lower[k], upper[k]) for level, (lower, upper) in bands.items()}
        symbol = part.symbols[0]
        frames.append(
            pd.DataFrame(
                {
                    "date": dates.strftime(stamp),
                    "step": range(1, len(dates) + 1),
                    "predicted": prices[k],
                    **{f"{side}_{round(100 * lv)}": b[j] for lv, b in mine.items() for j, side in enumerate(SIDES)},
                    "target": contract["target"],
                    "source": source,
                    **({"symbol": symbol} if symbol else {}),
                }
            )
        )
        shown = slice(-int(cfg.history), None)
        plotted.append((symbol, part.dates[shown], part.levels[shown], dates, prices[k], mine))
    frame = pd.concat(frames, ignore_index=True)
    symbols = tuple(part.symbols[0] for part in parts)
    forecast = Forecast(frame, source, contract["target"], symbols, latest.strftime(stamp), float(last[-1]))

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    write_atomic(out_dir / "forecast.csv", frame.to_csv(index=False))
    what = f"{cfg.steps}-step forecast of {contract['target']}"
    title = f"{what}, {Path(source).name}, model {Path(str(cfg.ckpt)).name}"
    render(forecast_figure(plotted, title, contract["target"]), out_dir / "forecast.png")
    return forecast


def _series_numbers(model, contract: dict, parts: list, ckpt: str, explicit: bool) -> tuple[list, torch.Tensor | None]:
    """For a model with a symbol embedding, the series it has a vector for and each one's number in the panel it
    was trained on. One it was not trained on (skipped at training as too short, or new in the file) is left out
    with a warning, or is an error when ``data.symbols`` named it."""
    if model.embedding is None:
        return parts, None
    known = list(contract.get("symbols") or [""])
    unknown = [p.symbols[0] for p in parts if p.symbols[0] not in known]
    what = f"ckpt={ckpt} has a symbol embedding (model.symbol_embedding) learned for {', '.join(known)}"
    check(not explicit or not unknown, f"{what}: it knows no {', '.join(unknown)}; give data.symbols= among those")
    check(len(unknown) < len(parts), f"{what}: it knows none of the series read")
    if unknown:
        log.warning("%s: no forecast for %s, which it has no vector for", what, ", ".join(unknown))
    parts = [p for p in parts if p.symbols[0] in known]
    return parts, torch.tensor([known.index(p.symbols[0]) for p in parts])


def _long_enough(parts: list, window: int, source: str, ckpt: str) -> list:
    """The series with at least one window of rows: a single series too short is an error; in a panel the short
    ones are left out with a warning that names them."""
    short = [p for p in parts if len(p.dates) < window]
    if len(parts) == 1:
        check(not short, f"{source}: {len(parts[0].dates)} usable rows, but the model in ckpt={ckpt} reads windows "
              f"of {window}")  # fmt: skip
    elif short:
        log.warning("%s: no forecast for %s: fewer rows than the model's window of %d", source,
                    ", ".join(p.symbols[0] for p in short), window)  # fmt: skip
    check(len(short) < len(parts), f"{source}: no series has the {window} rows the model in ckpt={ckpt} reads")
    return [p for p in parts if len(p.dates) >= window]
