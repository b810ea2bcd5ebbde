"""The test report of a trained model: one-step and multi-step scores beside the baselines, the tests that say
whether a difference is real, a trading check, tables and figures (the text a user reads: pricernn.summary).

Everything is batched over all test origins at once: one forward pass per recursion step, numpy for the rest.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import torch
from matplotlib.figure import Figure

from pricernn.data import PriceDataModule
from pricernn.data.frequency import stamp_format
from pricernn.evaluation import (
    AutoRegression,
    baseline_forecasts,
    score_forecasts,
    trading_check,
)
from pricernn.forecasting import can_recurse, recursive_forecast
from pricernn.models import RecurrentForecaster
from pricernn.plots import equity_figure, fan_figure, horizon_figure, price_figure

log = logging.getLogger("pricernn")
NAMES = {"test": "model", "naive": "naive", "drift": "drift", "ma": "moving avg", "ar": "AR(p)"}


@dataclass
class Report:
    metrics: dict[str, float | None]
    predictions: pd.DataFrame  # one row per test target: date, (horizon), actual, predicted, naive
    horizons: pd.DataFrame  # one row per horizon of the recursive evaluation
    figures: dict[str, Figure] = field(default_factory=dict)


def build_report(
    model: RecurrentForecaster,
    datamodule: PriceDataModule,
    predicted: np.ndarray,
    steps: int = 10,
    ma_window: int = 20,
    fan_origins: int = 12,
    trading: dict | None = None,
    title: str = "",
) -> Report:
    """Score ``predicted`` (the model's (M, H) forecasts of every test window) and the model's recursive
    ``steps``-step forecasts from every test origin against naive, drift, moving-average and AR(p) forecasts,
    and trade the one-step forecasts (``trading``: ``short``, ``cost_bps``) beside buy-and-hold."""
    targets = datamodule.targets("test")
    origin_rows = np.asarray(datamodule.datasets["test"].starts) + datamodule.window - 1
    levels, scale = datamodule.series.levels, datamodule.naive_mae_train
    ar = _fit_ar(levels[: datamodule.rows[0]])  # the training period alone
    baselines = _baselines(levels, origin_rows, predicted.shape[1], ma_window, ar)

    # headline: the next step, over every test window
    metrics = score_forecasts(
        targets.actual[:, :1],
        {"test": predicted[:, :1], **{k: v[:, :1] for k, v in baselines.items()}},
        targets.anchor,
        scale,
        per_horizon=False,
    )
    metrics["test/rmse_ratio_naive"] = metrics["test/rmse"] / metrics["naive/rmse"]
    if ar is not None:
        metrics["ar/order"] = ar.order
    equity = None
    if (targets.anchor > 0).all() and (targets.actual[:, 0] > 0).all():  # returns of a spread mean nothing
        trade, *equity = trading_check(
            targets.anchor,
            predicted[:, 0],
            targets.actual[:, 0],
            datamodule.frequency.periods_per_year,
            **(trading or {}),
        )
        metrics.update(trade)
    else:
        log.info("no trading check: the test prices are not all positive, so they have no returns")

    # multi-step: recursive beyond the model's own horizon, which needs the target to be the only input
    steps = max(int(steps), model.hparams.horizon) if can_recurse(model.hparams.transform) else model.hparams.horizon
    windows, origins, multi = datamodule.forecast_origins("test", steps)
    device = next(model.parameters()).device
    model.eval()
    paths = recursive_forecast(
        model, windows.to(device), torch.as_tensor(multi.anchor, dtype=torch.float32, device=device), steps
    )
    forecasts = {"test": paths.cpu().double().numpy(), **_baselines(levels, origins, steps, ma_window, ar)}
    metrics.update(score_forecasts(multi.actual, forecasts, multi.anchor, scale, per_horizon=True))
    metrics["eval/steps"], metrics["eval/origins"] = steps, len(origins)
    if steps > 1:  # the longest horizon's headline, for sweeps that care about it
        metrics["test/rmse_ratio_naive_last_h"] = metrics[f"test/h{steps}/rmse"] / metrics[f"naive/h{steps}/rmse"]

    horizons = _horizon_table(metrics, steps, [n for n in NAMES if n in forecasts])
    dates = targets.target_dates[:, 0]
    figures = {
        "test_prices": price_figure(
            dates, targets.actual[:, 0], predicted[:, 0], targets.anchor, title, datamodule.target
        ),
        "horizon_errors": horizon_figure(
            horizons, {k: v for k, v in NAMES.items() if k in forecasts}, title, datamodule.target
        ),
        "forecast_fan": fan_figure(
            datamodule.series.dates[origins[0] - datamodule.window : origins[-1] + steps + 1],
            levels[origins[0] - datamodule.window : origins[-1] + steps + 1],
            np.concatenate([multi.origin_dates.values[:, None], multi.target_dates], axis=1),
            np.concatenate([multi.anchor[:, None], forecasts["test"]], axis=1),  # paths start at the origin
            np.linspace(0, len(origins) - 1, min(fan_origins, len(origins))).astype(int),
            f"{steps}-step recursive forecasts from test origins, {title}",
            datamodule.target,
        ),
    }
    if equity is not None:
        figures["trading"] = equity_figure(dates, *equity, metrics, title)
    stamp = stamp_format(datamodule.frequency)
    return Report(metrics, _predictions_frame(targets, predicted, stamp), horizons, figures)


def _fit_ar(train_levels: np.ndarray) -> AutoRegression | None:
    """The AR(p) baseline of log returns, or None (said once) where a price is not positive."""
    if (train_levels > 0).all():
        return AutoRegression.fit(train_levels)
    log.info("no AR baseline: the training prices are not all positive, so they have no log returns")
    return None


def _baselines(
    levels: np.ndarray, origins: np.ndarray, steps: int, ma_window: int, ar: AutoRegression | None
) -> dict[str, np.ndarray]:
    forecasts = baseline_forecasts(levels, origins, steps, ma_window)
    if ar is not None:
        forecasts["ar"] = ar.forecast(levels, origins, steps)
    return forecasts


def _predictions_frame(targets, predicted: np.ndarray, stamp: str) -> pd.DataFrame:
    horizon = predicted.shape[1]
    frame = pd.DataFrame(
        {
            "date": pd.to_datetime(targets.target_dates.ravel()).strftime(stamp),
            "horizon": np.tile(np.arange(1, horizon + 1), len(predicted)),
            "actual": targets.actual.ravel(),
            "predicted": predicted.ravel(),
            "naive": np.repeat(targets.anchor, horizon),
        }
    )
    return frame if horizon > 1 else frame.drop(columns="horizon")


def _horizon_table(metrics: dict, steps: int, names: list[str]) -> pd.DataFrame:
    rows = []
    model_keys = ("mae", "mape", "skill", "mase", "directional_accuracy", "dm_stat", "dm_pvalue")
    model_keys += ("dm_ar_pvalue", "ic", "ic_pvalue", "dir_pvalue")
    for h in range(1, steps + 1):
        row = {"horizon": h}
        for name in names:
            row[f"{name}_rmse"] = metrics[f"{name}/h{h}/rmse"]
        for key in model_keys:
            row[key] = metrics.get(f"test/h{h}/{key}", float("nan"))
        rows.append(row)
    return pd.DataFrame(rows).rename(columns={"test_rmse": "model_rmse"})
