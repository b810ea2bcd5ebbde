"""The report's figures, built from small synthetic arrays (no training): they must show what they claim to."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest
from matplotlib.dates import num2date

from pricernn.reporting.plots import fan_figure, format_pvalue, horizon_figure, price_figure, spaced_origins


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


def _prices(n: int = 750, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    dates = pd.bdate_range("2016-01-04", periods=n).values
    return dates, 2000 + np.cumsum(np.random.default_rng(seed).normal(0, 10, n))


def _price_figure(dm_pvalue: float | None = 0.0004):
    dates, actual = _prices()
    naive = np.concatenate([[actual[0]], actual[:-1]])  # the previous price
    predicted = naive + 0.1 * (actual - naive)  # a model a little better than naive
    return price_figure(dates, actual, predicted, naive, "sp500/lstm", "Close", dm_pvalue=dm_pvalue), (
        actual,
        predicted,
        naive,
    )


def _lines(ax) -> dict[str, plt.Line2D]:
    return {line.get_label(): line for line in ax.get_lines()}


def test_price_figure_draws_naive_above_the_model_in_its_own_colour():
    fig, _ = _price_figure()
    lines = _lines(fig.axes[0])
    naive, model = lines["naive (previous price)"], lines["model"]
    # drawn beneath the model (the old order) naive's line could not be seen at all
    assert naive.get_zorder() > model.get_zorder()
    assert naive.get_color() != model.get_color() and naive.get_linestyle() != "-"


def test_price_figure_title_states_both_rmses_and_the_dm_pvalue():
    fig, (actual, predicted, naive) = _price_figure(dm_pvalue=0.0004)
    title = fig.get_suptitle()
    model_rmse, naive_rmse = np.sqrt(np.mean((predicted - actual) ** 2)), np.sqrt(np.mean((naive - actual) ** 2))
    assert f"model RMSE {model_rmse:.4g}" in title and f"naive {naive_rmse:.4g}" in title
    assert "p < 0.001" in title and "sp500/lstm" in title
    assert "p n/a" in _price_figure(dm_pvalue=None)[0].get_suptitle()
    assert "p n/a" in _price_figure(dm_pvalue=float("nan"))[0].get_suptitle()


def test_price_figure_shows_where_the_model_beats_naive():
    fig, _ = _price_figure()
    zoom, gains = fig.axes[1], fig.axes[3]
    # the zoom shows the last 60 bars, not years of overlapping lines
    assert len(_lines(zoom)["actual"].get_xdata()) == 60
    assert len(gains.patches) == 60 and all(p.get_facecolor()[1] > p.get_facecolor()[0] for p in gains.patches)


def test_horizon_skill_bars_are_coloured_by_sign_and_the_title_states_the_ratios():
    horizons = pd.DataFrame(
        {
            "horizon": [1, 2, 3],
            "model_rmse": [9.0, 10.0, 11.0],
            "naive_rmse": [10.0, 10.5, 10.0],
            "skill": [0.1, 0.05, -0.1],
            "dm_pvalue": [0.02, 0.5, float("nan")],
        }
    )
    fig = horizon_figure(horizons, {"test": "model", "naive": "naive"}, "sp500/lstm", "Close")
    bars = fig.axes[1].patches
    assert len(bars) == 3
    for bar, skill in zip(bars, horizons["skill"], strict=True):
        red, green = bar.get_facecolor()[:2]
        assert (green > red) == (skill > 0), f"skill {skill} drawn in {bar.get_facecolor()}"
    title = fig.axes[0].get_title()
    assert "0.900 at h=1 (DM p = 0.02)" in title and "1.100 at h=3 (DM p n/a)" in title


def _fan(bars: int = 120, steps: int = 10):
    dates, actual = _prices()
    count = len(dates) - steps  # origins 0..count-1; the last one's path ends on the last bar
    target_dates = np.stack([dates[i : i + steps + 1] for i in range(count)])
    paths = np.stack([np.full(steps + 1, actual[i]) for i in range(count)])  # naive paths, from each origin
    shown = spaced_origins(count, steps, bars=bars)
    return fan_figure(dates, actual, target_dates, paths, shown, "fan", "Close", bars=bars), target_dates, shown


def test_fan_figure_zooms_on_the_last_bars_and_holds_every_shown_path():
    fig, target_dates, shown = _fan(bars=120)
    left, right = (pd.Timestamp(num2date(x)).tz_localize(None) for x in fig.axes[0].get_xlim())
    # 120 business days are under six months; the old figure spread 12 paths over three years
    assert right - left < pd.Timedelta(days=200)
    assert len(shown) >= 8
    for row in shown:
        assert left <= pd.Timestamp(target_dates[row][0]) and pd.Timestamp(target_dates[row][-1]) <= right


def test_spaced_origins_lie_in_the_window_and_do_not_overlap():
    shown = spaced_origins(740, 10, bars=120, most=12)
    assert list(shown) == list(range(639, 740, 10))  # ascending, ending on the last origin, 10 apart
    assert len(spaced_origins(740, 10, bars=120, most=4)) == 4
    assert list(spaced_origins(5, 10)) == [4]  # fewer origins than the window: the last one still shows
    assert len(spaced_origins(0, 10)) == 0


@pytest.mark.parametrize(
    ("p", "text"), [(None, "p n/a"), (float("nan"), "p n/a"), (0.0004, "p < 0.001"), (0.923, "p = 0.92")]
)
def test_format_pvalue(p, text):
    assert format_pvalue(p) == text
