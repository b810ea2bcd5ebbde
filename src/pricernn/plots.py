"""Figures saved in run directories and logged to TensorBoard (matplotlib, no display needed)."""

from __future__ import annotations

import io
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # headless: runs on servers and in CI

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from pricernn.files import write_atomic  # noqa: E402


def price_figure(
    dates: np.ndarray, actual: np.ndarray, predicted: np.ndarray, naive: np.ndarray, title: str, unit: str
) -> Figure:
    """Actual vs predicted vs naive next-step prices over a period, with the errors beneath."""
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(11, 6), sharex=True, height_ratios=[3, 1])
    top.plot(dates, actual, color="black", lw=1.2, label="actual")
    top.plot(dates, naive, color="tab:gray", lw=0.9, ls="--", label="naive (previous price)")
    top.plot(dates, predicted, color="tab:red", lw=1.0, label="model")
    top.set_ylabel(unit)
    top.set_title(title)
    top.legend(loc="upper left")
    bottom.plot(dates, predicted - actual, color="tab:red", lw=0.8, label="model error")
    bottom.plot(dates, naive - actual, color="tab:gray", lw=0.6, alpha=0.7, label="naive error")
    bottom.axhline(0, color="black", lw=0.5)
    bottom.set_ylabel(f"error ({unit})")
    bottom.legend(loc="upper left", fontsize=8)
    fig.autofmt_xdate()
    fig.tight_layout()
    return fig


def forecast_figure(
    history_dates: np.ndarray, history: np.ndarray, dates: np.ndarray, forecast: np.ndarray, title: str, unit: str
) -> Figure:
    """The recent history and the forecast that continues it."""
    fig, ax = plt.subplots(figsize=(11, 4.5))
    ax.plot(history_dates, history, color="black", lw=1.2, label="history")
    ax.plot(
        np.concatenate([history_dates[-1:], dates]),
        np.concatenate([history[-1:], forecast]),
        color="tab:red",
        lw=1.4,
        marker="o",
        ms=3,
        label="forecast",
    )
    return _finish_dated(fig, ax, title, unit)


def _finish_dated(fig: Figure, ax, title: str, unit: str) -> Figure:
    """Labels, legend and date ticks shared by the price-over-time figures."""
    ax.set_ylabel(unit)
    ax.set_title(title)
    ax.legend(loc="upper left")
    fig.autofmt_xdate()
    fig.tight_layout()
    return fig


def horizon_figure(horizons: pd.DataFrame, names: dict[str, str], title: str, unit: str) -> Figure:
    """RMSE per horizon of the model and each baseline, with the model's skill against naive beneath."""
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(9, 6), sharex=True, height_ratios=[3, 1])
    styles = {"test": ("tab:red", "-"), "naive": ("black", "--"), "drift": ("tab:blue", ":"), "ma": ("tab:green", "-.")}
    for key, label in names.items():
        column = "model_rmse" if key == "test" else f"{key}_rmse"
        color, style = styles.get(key, ("tab:gray", "-"))
        top.plot(horizons["horizon"], horizons[column], color=color, ls=style, marker="o", ms=3, label=label)
    top.set_ylabel(f"RMSE ({unit})")
    top.set_title(f"Error per horizon, recursive forecasts: {title}")
    top.legend(loc="upper left")
    bottom.bar(horizons["horizon"], horizons["skill"], color="tab:red", alpha=0.7)
    bottom.axhline(0, color="black", lw=0.5)
    bottom.set_ylabel("skill vs naive")
    bottom.set_xlabel("horizon (steps ahead)")
    fig.tight_layout()
    return fig


def fan_figure(
    dates: np.ndarray,
    actual: np.ndarray,
    target_dates: np.ndarray,
    paths: np.ndarray,
    shown: np.ndarray,
    title: str,
    unit: str,
) -> Figure:
    """Actual prices with the multi-step forecast paths that start at a few origins (``shown`` rows)."""
    fig, ax = plt.subplots(figsize=(11, 4.5))
    ax.plot(dates, actual, color="black", lw=1.0, label="actual")
    for i, row in enumerate(shown):
        ax.plot(target_dates[row], paths[row], color="tab:red", lw=1.2, alpha=0.8, label="forecast" if i == 0 else None)
    return _finish_dated(fig, ax, title, unit)


def equity_figure(dates: np.ndarray, strategy: np.ndarray, hold: np.ndarray, metrics: dict, title: str) -> Figure:
    """The sign strategy's equity after costs beside buy-and-hold over the test period, drawdowns beneath; the
    title states the annual returns and Sharpe ratios."""
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(11, 6), sharex=True, height_ratios=[3, 1])
    top.plot(dates, hold, color="black", lw=1.1, label="buy and hold")
    top.plot(dates, strategy, color="tab:red", lw=1.1, label="trade the forecast's sign, after costs")
    top.axhline(1.0, color="gray", lw=0.5)
    top.set_ylabel("growth of 1")
    top.set_title(
        f"{title}: strategy {100 * metrics['trade/annual_return']:+.1f} %/yr, Sharpe {metrics['trade/sharpe']:.2f}; "
        f"buy and hold {100 * metrics['buyhold/annual_return']:+.1f} %/yr, Sharpe {metrics['buyhold/sharpe']:.2f}"
    )
    top.legend(loc="upper left")
    for curve, color in ((hold, "black"), (strategy, "tab:red")):
        bottom.plot(dates, curve / np.maximum.accumulate(curve) - 1, color=color, lw=0.9)
    bottom.set_ylabel("drawdown")
    fig.autofmt_xdate()
    fig.tight_layout()
    return fig


def backtest_figure(folds: pd.DataFrame, title: str, unit: str) -> Figure:
    """Per-fold next-step RMSE of the model beside naive, with the skill of each fold beneath."""
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(9, 6), sharex=True, height_ratios=[2, 1])
    x = np.arange(len(folds))
    top.bar(x - 0.2, folds["rmse"], width=0.4, color="tab:red", label="model")
    top.bar(x + 0.2, folds["naive_rmse"], width=0.4, color="tab:gray", label="naive")
    top.set_ylabel(f"RMSE ({unit})")
    top.set_title(title)
    top.legend(loc="upper left")
    bottom.bar(x, folds["skill"], color=np.where(folds["skill"] > 0, "tab:green", "tab:red"))
    bottom.axhline(0, color="black", lw=0.5)
    bottom.set_ylabel("skill vs naive")
    bottom.set_xticks(x, [f"{s}\n{e}" for s, e in zip(folds["test_start"], folds["test_end"], strict=True)], fontsize=7)
    fig.tight_layout()
    return fig


def render(figure: Figure, path: Path, dpi: int = 110) -> np.ndarray:
    """Draw ``figure`` once, save it as a PNG at ``path`` and return its pixels (H, W, 3) for TensorBoard
    (``savefig`` and ``add_figure`` would each draw it again), then close it."""
    figure.set_dpi(dpi)
    figure.canvas.draw()
    pixels = np.asarray(figure.canvas.buffer_rgba())[..., :3].copy()
    plt.close(figure)
    png = io.BytesIO()
    plt.imsave(png, pixels, format="png")
    write_atomic(path, png.getvalue())
    return pixels
