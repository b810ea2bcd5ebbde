"""Multi-step forecasts from a trained model: direct for its horizon, recursive beyond it, batched over origins."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import torch
from omegaconf import DictConfig, OmegaConf

from pricernn.config import PredictConfig, validate
from pricernn.data import PriceDataModule
from pricernn.data.calendar import BarFrequency, future_dates, stamp_format
from pricernn.errors import UserError, check, first_line
from pricernn.files import write_atomic
from pricernn.models import RecurrentForecaster
from pricernn.plots import forecast_figure, render

log = logging.getLogger("pricernn")


def load_model(ckpt: str | Path) -> RecurrentForecaster:
    """Load a pricernn checkpoint safely (``weights_only``: a checkpoint cannot run code) on the CPU."""
    path = Path(str(ckpt)).expanduser()
    check(path.is_file(), f"ckpt={ckpt}: no such checkpoint file")
    try:
        model = RecurrentForecaster.load_from_checkpoint(path, map_location="cpu", weights_only=True)
    except Exception as err:  # truncated, foreign or hand-edited files fail in many ways
        reason = first_line(err)
        raise UserError(f"ckpt={ckpt}: not a readable pricernn checkpoint ({reason})") from err
    check(model.normalizer is not None, f"ckpt={ckpt}: has no data transform, so it cannot forecast prices")
    return model.eval()


def can_recurse(transform: dict) -> bool:
    """A forecast can be fed back as the next input only when the model's sole input is the price it forecasts
    (a model that reads Volume must not be fed its price forecasts as volume)."""
    return list(transform["features"]) == [transform["target"]]


@torch.no_grad()
def recursive_forecast(
    model: RecurrentForecaster, inputs: torch.Tensor, last_price: torch.Tensor, steps: int
) -> torch.Tensor:
    """Forecast ``steps`` prices after each window of ``inputs`` (B, W, F), in model units (prices or log
    returns, as at training); ``last_price`` (B,) is each window's last target price.

    The model predicts its ``horizon`` steps at once; for more steps each forecast is appended to the window
    (the oldest rows drop out) and the model runs again, as many times as needed. All origins advance together.
    Returns prices (B, steps).
    """
    check(steps >= 1, f"steps={steps} must be at least 1")
    horizon, transform = model.hparams.horizon, model.hparams.transform
    if steps > horizon and not can_recurse(transform):
        raise UserError(
            f"steps={steps} needs recursion beyond the model's horizon ({horizon}), which works only for a model "
            f"whose sole input is its target ({transform['target']}); this one reads {', '.join(transform['features'])}"
        )
    normalizer, window, anchor = model.normalizer, inputs, last_price
    chunks: list[torch.Tensor] = []
    done = 0
    while done < steps:
        x, _, ctx = normalizer.normalize(window, window.new_zeros(len(window), horizon), anchor)
        prices = model.to_price(model(x), ctx)
        take = min(horizon, steps - done)
        new_prices = prices[:, :take]
        chunks.append(new_prices)
        done += take
        if done == steps:
            break
        if normalizer.log_return:  # the window holds log returns: append the returns of the new prices
            path = torch.cat([anchor[:, None], new_prices], dim=1)
            appended = torch.log(path[:, 1:] / path[:, :-1])
        else:
            appended = new_prices
        window = torch.cat([window[:, take:], appended[..., None]], dim=1)
        anchor = new_prices[:, -1]
    return torch.cat(chunks, dim=1)


# Data settings that define what the model reads: fixed by the checkpoint, not to be changed for a forecast
MODEL_KEYS = ("features", "target", "target_transform", "scaler", "window", "horizon")
# A last price outside this multiple of the training period's range is a different market (or series)
RANGE_FACTOR = 5.0


@dataclass(frozen=True)
class Forecast:
    frame: pd.DataFrame  # date, step, predicted, target, source (, symbol)
    source: str  # the file (absolute) or embedded data set that was read
    target: str
    symbol: str | None
    last_bar: str  # the history's last bar time, as the bars are written (a date, or a date and time)
    last_price: float

    def describe(self, ckpt: str) -> str:
        series = self.target + (f" of {self.symbol}" if self.symbol else "")
        return (
            f"{len(self.frame)}-step forecast of {series} in {self.source}, after its last bar "
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
    """The history's bars must be those the model learnt from: hourly bars fed to a daily model (or weekly to a
    monthly one) give a forecast without meaning, an error; the same bar length with another weekly pattern (crypto
    daily, 7 days a week, against business daily) only a warning."""
    if "frequency" not in contract:
        return
    trained = BarFrequency.from_dict(contract["frequency"])
    if trained.alias == history.alias:
        return
    what = (
        f"{source}: its bars are {history.label} ({history.alias}), the model's were {trained.label} ({trained.alias})"
    )
    ratio = max(history.periods_per_year, trained.periods_per_year) / min(
        history.periods_per_year, trained.periods_per_year
    )
    if ratio > 2:
        raise UserError(
            f"{what}; forecast a history of the model's bars (data.freq={trained.alias} if detection erred)"
        )
    log.warning("%s: close enough to forecast, but check that this is the market the model knows", what)


def check_price_range(contract: dict, last_price: float, last_date: pd.Timestamp, source: str) -> None:
    """A history whose last price lies far outside the training period's range is probably another series. A
    model that reads relative moves (the window scaler, log returns) still forecasts: a warning. A model of price
    levels cannot reach such prices: an error."""
    if "train_range" not in contract:
        return
    low, high = contract["train_range"]
    if low / RANGE_FACTOR <= last_price <= high * RANGE_FACTOR:
        return
    normalizer = contract["normalizer"]
    what = (
        f"{source}: the last {contract['target']} price, {last_price:g} on {last_date.date()}, is outside "
        f"{1 / RANGE_FACTOR:g}x-{RANGE_FACTOR:g}x of the training range ({low:g} .. {high:g})"
    )
    if normalizer["scaler"] == "window" or normalizer["log_return"]:
        log.warning("%s: is this the series the model was trained on? (it reads relative moves, so it forecasts)", what)
        return
    raise UserError(
        f"{what}; a model of price levels (data.scaler={normalizer['scaler']}) cannot forecast there: "
        "retrain on this series, or with data.scaler=window"
    )


def forecast_history(cfg: DictConfig, out_dir: str | Path, given: set[str] = frozenset()) -> Forecast:
    """Load ``cfg.ckpt``, read the history it was trained on (or the one the ``given`` ``data.*`` keys point
    at), forecast ``cfg.steps`` bars after its last date (the model's bar frequency; the trading sessions of
    ``data.calendar`` when one is set); write forecast.csv and forecast.png to ``out_dir`` and return it."""
    cfg = validate(cfg, PredictConfig)
    check(cfg.get("ckpt"), "ckpt is not set: give ckpt=PATH (a run's checkpoints/best.ckpt)")
    model = load_model(cfg.ckpt)
    contract = model.hparams.transform
    settings = history_settings(contract, cfg.data, set(given), cfg.ckpt)
    history = PriceDataModule(**settings)
    try:
        series = history.prepare_series()
    except UserError as err:
        raise UserError(f"{err} (ckpt={cfg.ckpt} reads columns {', '.join(contract['features'])})") from err
    window, source = contract["window"], history.settings["path"]
    check(
        len(series.dates) >= window,
        f"{source}: {len(series.dates)} usable rows, but the model in ckpt={cfg.ckpt} reads windows of {window}",
    )
    last_date, last_price = series.dates[-1], float(series.levels[-1])
    check_frequency(contract, history.frequency, source)
    check_price_range(contract, last_price, last_date, source)
    inputs = torch.tensor(series.inputs[-window:], dtype=torch.float32)[None]
    prices = recursive_forecast(model, inputs, torch.tensor([last_price]), int(cfg.steps))[0].double().numpy()
    # the model's bars (and the calendar it was given, or data.calendar here): the next sessions, hours, months
    frequency = BarFrequency.from_dict(contract["frequency"]) if "frequency" in contract else history.frequency
    dates = future_dates(last_date, int(cfg.steps), frequency, settings.get("calendar"))
    symbol = settings.get("symbol")
    frame = pd.DataFrame(
        {
            "date": dates.strftime(stamp_format(frequency)),
            "step": range(1, len(dates) + 1),
            "predicted": prices,
            "target": contract["target"],
            "source": source,
            **({"symbol": symbol} if symbol else {}),
        }
    )
    last_bar = last_date.strftime(stamp_format(frequency))
    forecast = Forecast(frame, source, contract["target"], symbol, last_bar, last_price)

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    write_atomic(out_dir / "forecast.csv", frame.to_csv(index=False))
    shown = slice(-int(cfg.history), None)
    title = f"{cfg.steps}-step forecast of {contract['target']}" + (f" ({symbol})" if symbol else "")
    figure = forecast_figure(
        series.dates[shown],
        series.levels[shown],
        dates,
        prices,
        f"{title}, {Path(source).name}, model {Path(str(cfg.ckpt)).name}",
        contract["target"],
    )
    render(figure, out_dir / "forecast.png")
    return forecast
