"""Figures saved in run directories and logged to TensorBoard (matplotlib, no display needed)."""

from __future__ import annotations

import io
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # headless: runs on servers and in CI

import matplotlib.dates as mdates  # noqa: E402
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from pricernn.files import write_atomic  # noqa: E402


def price_figure(
    dates: np.ndarray,
    actual: np.ndarray,
    predicted: np.ndarray,
    naive: np.ndarray,
    title: str,
    unit: str,
    dm_pvalue: float | None = None,
    zoom: int = 60,
) -> Figure:
    """Actual vs model vs naive next-step prices over the whole period (left) and its last ``zoom`` bars (right),
    with where the model beats naive beneath; the title states both RMSEs and the Diebold-Mariano p-value."""
    fig, axes = plt.subplots(
        2, 2, figsize=(13, 7), sharex="col", height_ratios=[3, 1.3], width_ratios=[2.4, 1], squeeze=False
    )
    (full, near), (gain_full, gain_near) = axes
    recent = slice(max(len(dates) - zoom, 0), None)
    model_rmse, naive_rmse = _rmse(predicted - actual), _rmse(naive - actual)
    shown_model, shown_naive = _distinct(model_rmse, naive_rmse)
    fig.suptitle(
        f"{title}: model RMSE {shown_model} vs naive {shown_naive} "
        f"(ratio {model_rmse / naive_rmse:.3f}, DM {format_pvalue(dm_pvalue)})"
        if naive_rmse > 0
        else title
    )
    for ax, part, marker in ((full, slice(None), None), (near, recent, "o")):
        # naive goes on top, dashed, in its own colour: drawn first it vanished under the model's line, and a
        # model that hugs it is exactly what a user must be able to see
        ax.plot(dates[part], actual[part], color="black", lw=1.3, marker=marker, ms=2.5, label="actual", zorder=2)
        ax.plot(dates[part], predicted[part], color="tab:red", lw=1.1, label="model", zorder=3)
        ax.plot(
            dates[part], naive[part], color="tab:blue", lw=1.2, ls=(0, (5, 3)), label="naive (previous price)", zorder=4
        )
    full.axvspan(dates[recent][0], dates[-1], color="gold", alpha=0.25, lw=0, label=f"last {len(dates[recent])} bars")
    full.set_ylabel(unit)
    full.legend(loc="upper left", fontsize=8)
    near.set_title(f"last {len(dates[recent])} bars", fontsize=10)

    # > 0 where the model's error is the smaller: a rolling mean over the whole period, bar by bar in the zoom
    gain = np.abs(naive - actual) - np.abs(predicted - actual)
    rolling = pd.Series(gain).rolling(20, min_periods=1).mean().to_numpy()
    for sign, color in ((rolling >= 0, "tab:green"), (rolling < 0, "tab:red")):
        gain_full.fill_between(dates, rolling, 0, where=sign, color=color, alpha=0.6, lw=0, interpolate=True)
    gain_full.set_ylabel(f"naive |err| − model |err|\n({unit}, 20-bar mean)", fontsize=8)
    days = np.diff(mdates.date2num(dates[recent]))  # bar width in days, so weekly or monthly bars fill too
    width = 0.8 * float(np.median(days)) if len(days) else 0.8
    gain_near.bar(dates[recent], gain[recent], color=_signed_colors(gain[recent]), width=width)
    gain_near.set_ylabel(f"per bar ({unit})", fontsize=8)
    if not np.any(gain):  # an empty panel would look like a bug: say why it is empty
        note = "the model forecasts naive's price at every bar"
        gain_full.text(0.5, 0.3, note, transform=gain_full.transAxes, ha="center", color="tab:gray")
    for ax in (gain_full, gain_near):
        ax.axhline(0, color="black", lw=0.5)
        ax.text(0.01, 0.95, "↑ model better", transform=ax.transAxes, fontsize=7, va="top", color="tab:green")
        ax.xaxis.set_major_formatter(mdates.ConciseDateFormatter(ax.xaxis.get_major_locator()))
    fig.tight_layout()
    return fig


def format_pvalue(p: float | None) -> str:
    """``p = 0.92``, ``p < 0.001`` or ``p n/a`` (a test that could not run: None or NaN)."""
    if p is None or not np.isfinite(p):
        return "p n/a"
    return "p < 0.001" if p < 0.001 else f"p = {p:.2g}"


def _distinct(a: float, b: float) -> tuple[str, str]:
    """``a`` and ``b`` with 4 significant digits, or as many more (up to 7) as it takes to tell them apart: a model
    a hair off naive would otherwise read "20.08 vs 20.08" and leave the reader to guess which is lower."""
    for digits in range(4, 8):
        pair = f"{a:.{digits}g}", f"{b:.{digits}g}"
        if pair[0] != pair[1]:
            return pair
    return f"{a:.4g}", f"{b:.4g}"  # equal: extra digits would say nothing


def _rmse(error: np.ndarray) -> float:
    return float(np.sqrt(np.mean(np.square(error))))


def _signed_colors(values: np.ndarray) -> list[str]:
    """Green where the model does better than naive, red where worse, gray for a tie (or no number)."""
    return ["tab:green" if v > 0 else "tab:red" if v < 0 else "tab:gray" for v in np.asarray(values, dtype=float)]


def forecast_figure(series: list[tuple], title: str, unit: str) -> Figure:
    """Each series' recent history and the forecast that continues it, with its prediction bands. ``series``:
    (symbol, history dates, history, forecast dates, forecast, {level: (lower, upper)}) per series; several
    are drawn as small multiples, four to a row, each on its own price scale."""
    if len(series) == 1:
        fig, ax = plt.subplots(figsize=(11, 4.5))
        symbol = series[0][0]
        _draw_forecast(ax, *series[0][1:])
        return _finish_dated(fig, ax, title + (f" ({symbol})" if symbol else ""), unit)
    cols = min(4, len(series))
    rows = -(-len(series) // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(3.6 * cols, 2.4 * rows + 0.6), squeeze=False)
    for ax, (symbol, *drawn) in zip(axes.flat, series, strict=False):
        _draw_forecast(ax, *drawn)
        ax.set_title(symbol, fontsize=9)
        ax.tick_params(labelsize=7)
        ax.xaxis.set_major_locator(mdates.AutoDateLocator(maxticks=3))
        ax.xaxis.set_major_formatter(mdates.ConciseDateFormatter(ax.xaxis.get_major_locator()))
    for ax in list(axes.flat)[len(series) :]:
        ax.set_visible(False)
    handles, labels = axes.flat[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="upper right", fontsize=8, ncols=len(labels))
    fig.suptitle(f"{title} ({unit})", fontsize=10, x=0.01, ha="left")
    fig.tight_layout(rect=(0, 0, 1, 0.97))
    return fig


def _draw_forecast(ax, history_dates: np.ndarray, history: np.ndarray, dates: np.ndarray, forecast: np.ndarray,
                   bands: dict[float, tuple[np.ndarray, np.ndarray]]) -> None:  # fmt: skip
    ax.plot(history_dates, history, color="black", lw=1.2, label="history")
    joined = np.concatenate([history_dates[-1:], dates])
    for k, (level, (lower, upper)) in enumerate(sorted((bands or {}).items(), reverse=True)):
        ax.fill_between(joined, np.r_[history[-1], lower], np.r_[history[-1], upper], color="tab:red",
                        alpha=0.12 + 0.12 * k, lw=0, label=f"{round(100 * level)} % interval")  # fmt: skip
    ax.plot(joined, np.concatenate([history[-1:], forecast]), color="tab:red", lw=1.4, marker="o", ms=3,
            label="forecast")  # fmt: skip


def _finish_dated(fig: Figure, ax, title: str, unit: str) -> Figure:
    """Labels, legend and date ticks shared by the price-over-time figures."""
    ax.set_ylabel(unit)
    ax.set_title(title)
    ax.legend(loc="upper left")
    fig.autofmt_xdate()
    fig.tight_layout()
    return fig


def horizon_figure(horizons: pd.DataFrame, names: dict[str, str], title: str, unit: str) -> Figure:
    """RMSE per horizon of the model and each baseline, with the model's skill against naive beneath (green
    where it beats naive); the title states the model-to-naive RMSE ratio at the first and last horizons."""
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(9, 6), sharex=True, height_ratios=[3, 1.2])
    styles = {"test": ("tab:red", "-"), "naive": ("black", "--"), "drift": ("tab:blue", ":"), "ma": ("tab:green", "-.")}
    for key, label in names.items():
        column = "model_rmse" if key == "test" else f"{key}_rmse"
        color, style = styles.get(key, ("tab:gray", "-"))
        top.plot(horizons["horizon"], horizons[column], color=color, ls=style, marker="o", ms=3, label=label)
    top.set_ylabel(f"RMSE ({unit})")
    top.set_title(f"{title}\nmodel / naive RMSE: {_horizon_ratios(horizons)}", fontsize=10)
    top.legend(loc="upper left")
    skill = 100 * horizons["skill"].to_numpy(dtype=float)
    bars = bottom.bar(horizons["horizon"], skill, color=_signed_colors(skill), alpha=0.8)
    bottom.bar_label(bars, fmt="%+.2f", fontsize=7, padding=1)
    bottom.axhline(0, color="black", lw=0.8)
    bottom.margins(y=0.25)  # room for the labels
    bottom.set_ylabel("skill vs naive (%)")
    bottom.set_xlabel("horizon (steps ahead)")
    fig.tight_layout()
    return fig


def _horizon_ratios(horizons: pd.DataFrame) -> str:
    """``0.998 at h=1 (DM p = 0.41), 1.012 at h=10 (DM p = 0.03)``: the first and last horizons."""
    rows = horizons.iloc[[0, -1]] if len(horizons) > 1 else horizons.iloc[[0]]
    parts = []
    for _, row in rows.iterrows():
        ratio = row["model_rmse"] / row["naive_rmse"] if row["naive_rmse"] > 0 else float("nan")
        parts.append(f"{ratio:.3f} at h={int(row['horizon'])} (DM {format_pvalue(row.get('dm_pvalue'))})")
    return ", ".join(parts)


def fan_figure(
    dates: np.ndarray,
    actual: np.ndarray,
    target_dates: np.ndarray,
    paths: np.ndarray,
    shown: np.ndarray,
    title: str,
    unit: str,
    bars: int = 120,
    bands: dict[float, tuple[np.ndarray, np.ndarray]] | None = None,
) -> Figure:
    """The last ``bars`` actual prices with the multi-step forecast paths (rows of ``target_dates`` and ``paths``,
    each beginning at its origin) that start at the ``shown`` origins, and their prediction bands (``bands``:
    level → lower, upper, shaped like ``paths``). It zooms in because a 10-step path is a few pixels wide on an
    axis of years; ``spaced_origins`` picks origins inside the window."""
    fig, ax = plt.subplots(figsize=(11, 4.5))
    recent = slice(max(len(dates) - bars, 0), None)
    ax.plot(dates[recent], actual[recent], color="black", lw=1.1, marker="o", ms=2, label="actual", zorder=2)
    colors = ("tab:red", "tab:orange")  # alternate: paths that meet end to end stay told apart
    for i, row in enumerate(shown):
        color = colors[i % 2]
        ax.plot(target_dates[row], paths[row], color=color, lw=1.8, label="forecast" if i == 0 else None, zorder=3)
        ax.plot(target_dates[row][:1], paths[row][:1], "o", color=color, ms=5, zorder=4)  # its origin
        for k, (level, (lower, upper)) in enumerate(sorted((bands or {}).items(), reverse=True)):
            label = f"{round(100 * level)} % interval" if i == 0 else None
            ax.fill_between(target_dates[row], lower[row], upper[row], color=color, alpha=0.12 + 0.12 * k, lw=0,
                            label=label, zorder=1)  # fmt: skip
    # the window, widened to any shown path that starts before it so that no path is cut
    starts = [pd.Timestamp(dates[recent][0]), *(pd.Timestamp(target_dates[row][0]) for row in shown)]
    ends = [pd.Timestamp(dates[-1]), *(pd.Timestamp(target_dates[row][-1]) for row in shown)]
    pad = (max(ends) - min(starts)) * 0.01
    ax.set_xlim(min(starts) - pad, max(ends) + pad)
    return _finish_dated(fig, ax, title, unit)


def symbol_figure(table: pd.DataFrame, title: str) -> Figure:
    """Per asset, the model's skill against naive (1 - RMSE ratio), best first, green where it beats naive; a
    star where Diebold-Mariano says so after Benjamini-Hochberg's adjustment across the assets (5 %)."""
    table = table.sort_values("skill", ascending=False)
    skill = 100 * table["skill"].to_numpy(dtype=float)
    fig, ax = plt.subplots(figsize=(max(7.0, 0.42 * len(table) + 2), 4.2))
    ax.bar(np.arange(len(table)), skill, color=_signed_colors(skill))
    ax.axhline(0, color="black", lw=0.8)
    for x, (value, p) in enumerate(zip(skill, table["dm_pvalue_bh"], strict=True)):
        if p < 0.05:
            ax.annotate("*", (x, value), ha="center", va="bottom" if value >= 0 else "top", fontsize=12)
    ax.set_xticks(np.arange(len(table)), table["symbol"], rotation=60, ha="right", fontsize=8)
    ax.set_ylabel("skill vs naive, % (1 - RMSE ratio)")
    beat = int((table["rmse_ratio"] < 1).sum())
    if not np.any(skill):
        title += " (every forecast is the last price: λ = 0 on validation)"
    ax.set_title(f"{title}\nbelow naive's RMSE on {beat} of {len(table)}; median ratio "
                 f"{table['rmse_ratio'].median():.4f}; * significant after Benjamini-Hochberg", fontsize=9)  # fmt: skip
    fig.tight_layout()
    return fig


def spaced_origins(count: int, steps: int, bars: int = 120, most: int = 12) -> np.ndarray:
    """Indices (ascending) of at most ``most`` of ``count`` consecutive origins, ``steps`` apart so that each path
    starts where the one before ends, whose paths lie in the last ``bars`` bars (the last origin's path ending on
    the last bar, as ``fan_figure`` is given them)."""
    first = max(count - bars + steps, 0)
    return np.arange(count - 1, first - 1, -max(steps, 1))[: max(most, 0)][::-1].astype(int)


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
