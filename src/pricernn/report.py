"""The test report of a trained model: one-step and multi-step scores beside the baselines, the tests that say
whether a difference is real, a trading check, tables and figures.

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
from pricernn.data.calendar import stamp_format
from pricernn.evaluation import (
    SIGNIFICANCE,
    AutoRegression,
    baseline_forecasts,
    score_forecasts,
    trading_check,
    verdict,
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
    trade, strategy, hold = trading_check(
        targets.anchor,
        predicted[:, 0],
        targets.actual[:, 0],
        datamodule.frequency.periods_per_year,
        **(trading or {}),
    )
    metrics.update(trade)

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
        "trading": equity_figure(dates, strategy, hold, metrics, title),
    }
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
    model_keys += ("dm_ar_pvalue", "ic", "ic_pvalue", "pt_pvalue")
    for h in range(1, steps + 1):
        row = {"horizon": h}
        for name in names:
            row[f"{name}_rmse"] = metrics[f"{name}/h{h}/rmse"]
        for key in model_keys:
            row[key] = metrics.get(f"test/h{h}/{key}", float("nan"))
        rows.append(row)
    return pd.DataFrame(rows).rename(columns={"test_rmse": "model_rmse"})


def _cell(value: float | None, fmt: str, width: int) -> str:
    """A table cell; "–" where a figure does not apply (naive's direction, a baseline the data do not allow)."""
    return f"{'–':>{width}}" if value is None or not np.isfinite(value) else f"{value:{fmt}}".rjust(width)


def summary(metrics: dict, period: tuple[str, str], unit: str, bar: str = "day") -> str:
    """The lines a user reads after a run: model beside the baselines in price units, and what the tests say;
    ``bar`` names one bar ("day", "hour", "month": pricernn.data.calendar.bar_word)."""
    names = {k: v for k, v in NAMES.items() if f"{k}/rmse" in metrics}
    rows = [
        f"Test period {period[0]} .. {period[1]}, errors in {unit} price units (next step, every test {bar}):",
        f"{'':12}{'RMSE':>10}{'MAE':>10}{'MAPE %':>9}{'MASE':>8}{'skill':>8}{'dir.acc':>9}",
    ]
    if "ar/order" in metrics:  # the order AIC chose on the training period
        names["ar"] = f"AR({int(metrics['ar/order'])})"
    for name, label in names.items():
        m = {k: metrics[f"{name}/{k}"] for k in ("rmse", "mae", "mape", "mase", "skill", "directional_accuracy")}
        rows.append(
            f"{label:12}{m['rmse']:10.3f}{m['mae']:10.3f}{m['mape']:9.3f}{m['mase']:8.3f}{m['skill']:8.4f}"
            + _cell(m["directional_accuracy"], ".3f", 9)
        )
    rows.append(f"next {bar}: {verdict(metrics)}")
    p = metrics["test/direction_pvalue"]
    rows.append(
        f"direction right on {100 * metrics['test/directional_accuracy']:.1f}% of {bar}s (binomial p {p:.3g} against "
        f"a coin); drift, which always bets on the past trend, gets {100 * metrics['drift/directional_accuracy']:.1f}%"
    )
    rows.append(_trading_line(metrics))
    steps = int(metrics.get("eval/steps", 1))
    if steps > 1:
        shown = sorted({h for h in (1, 2, 3, 5, 10, 20, steps) if h <= steps})
        rows.append(f"Recursive forecasts from {int(metrics['eval/origins'])} test origins, RMSE per horizon:")
        rows.append(
            f"{'h':>4}" + "".join(f"{label:>11}" for label in names.values()) + f"{'skill':>9}{'DM p':>9}{'IC':>8}"
        )
        for h in shown:
            cells = "".join(f"{metrics[f'{n}/h{h}/rmse']:11.3f}" for n in names)
            rows.append(
                f"{h:4d}{cells}{metrics[f'test/h{h}/skill']:9.4f}{metrics[f'test/h{h}/dm_pvalue']:9.3g}"
                + _cell(metrics.get(f"test/h{h}/ic"), "+.3f", 8)
            )
        rows.append(f"h={steps}: {verdict(metrics, prefix=f'h{steps}/')}")
    return "\n".join(rows)


def _trading_line(metrics: dict) -> str:
    """The sign strategy after costs beside buy-and-hold, in one line."""
    t = {k.removeprefix("trade/"): v for k, v in metrics.items() if k.startswith("trade/")}
    b = {k.removeprefix("buyhold/"): v for k, v in metrics.items() if k.startswith("buyhold/")}
    significant = "" if t["sharpe_pvalue"] < SIGNIFICANCE else ", not significantly different from 0"
    return (
        f"trading the sign after costs: {100 * t['annual_return']:+.1f} % a year, Sharpe {t['sharpe']:.2f} "
        f"(p {t['sharpe_pvalue']:.3g}{significant}), max drawdown {100 * t['max_drawdown']:.0f} %; buy-and-hold: "
        f"{100 * b['annual_return']:+.1f} % a year, Sharpe {b['sharpe']:.2f}, "
        f"max drawdown {100 * b['max_drawdown']:.0f} %"
    )
