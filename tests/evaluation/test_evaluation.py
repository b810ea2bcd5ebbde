"""Scores and baselines against values worked out by hand from their formulas (the tests: test_significance.py)."""

import numpy as np
import pytest

from pricernn.evaluation import AutoRegression, baseline_forecasts, score_forecasts, scores
from pricernn.evaluation.trading import trading_check


def test_scores_match_hand_computation():
    actual, predicted, origin = np.array([10.0, 12.0, 9.0]), np.array([11.0, 11.0, 9.0]), np.array([10.0, 10.0, 10.0])
    m = scores(actual, predicted, origin)
    # errors 1, -1, 0: MSE 2/3, MAE 2/3, MAPE (1/10 + 1/12 + 0)/3; directions: 0 vs +1 (miss), +1 vs +1, -1 vs -1
    assert m["mse"] == pytest.approx(2 / 3)
    assert m["rmse"] == pytest.approx(np.sqrt(2 / 3))
    assert m["mae"] == pytest.approx(2 / 3)
    assert m["mape"] == pytest.approx(100 * (0.1 + 1 / 12) / 3)
    assert m["directional_accuracy"] == pytest.approx(2 / 3)


def test_directional_accuracy_counts_calls_and_naive_makes_none():
    origin = np.full(5, 10.0)
    actual = np.array([11.0, 9.0, 11.0, 10.0, 12.0])
    predicted = np.array([10.5, 10.5, 9.5, 11.0, 10.0])  # up (hit), up (miss), down (miss), up (miss), no call
    assert scores(actual, predicted, origin)["directional_accuracy"] == pytest.approx(1 / 4)
    assert scores(actual, origin, origin)["directional_accuracy"] is None  # naive predicts no move


def test_baselines_use_only_prices_up_to_the_origin():
    levels = np.array([10.0, 11, 13, 12, 14, 100, 200])
    out = baseline_forecasts(levels, np.array([2, 4]), steps=2, ma_window=3)
    np.testing.assert_allclose(out["naive"], [[13, 13], [14, 14]])
    np.testing.assert_allclose(out["drift"], [[13 + 1.5, 13 + 3.0], [14 + 1.0, 14 + 2.0]])  # (13-10)/2, (14-10)/4
    np.testing.assert_allclose(out["ma"], [[34 / 3, 34 / 3], [13, 13]])


def test_the_ar_baseline_forecasts_its_recursion_by_hand():
    levels = np.array([100.0, 101.0, 103.0])
    ar = AutoRegression(intercept=0.001, coefficients=(0.5,))
    r = np.log(103 / 101)  # the last return at origin row 2
    first, second = 0.001 + 0.5 * r, 0.001 + 0.5 * (0.001 + 0.5 * r)
    np.testing.assert_allclose(
        ar.forecast(levels, np.array([2]), 2), [[103 * np.exp(first), 103 * np.exp(first + second)]]
    )
    constant = AutoRegression(0.002, ()).forecast(levels, np.array([1]), 2)  # p = 0: drift in log prices
    np.testing.assert_allclose(constant, [[101 * np.exp(0.002), 101 * np.exp(0.004)]])


def test_the_ar_baseline_finds_an_ar1_by_aic_and_its_known_error():
    rng = np.random.default_rng(0)
    phi, n = 0.3, 20_000
    e, r = rng.normal(0, 0.01, n), np.zeros(n)
    for t in range(1, n):
        r[t] = phi * r[t - 1] + e[t]
    levels = 100 * np.exp(np.cumsum(r))
    ar = AutoRegression.fit(levels[:15_000])  # fitted on the first three quarters only
    # AIC may add a few near-zero lags (it is not a consistent order selector); the first one is φ
    assert ar.order >= 1 and ar.coefficients[0] == pytest.approx(phi, abs=0.02)
    assert all(abs(c) < 0.03 for c in ar.coefficients[1:])
    origins = np.arange(15_000, n - 1)
    error = ar.forecast(levels, origins, 1)[:, 0] - levels[origins + 1]
    naive = levels[origins] - levels[origins + 1]
    # one step ahead its error is the innovation, naive's the whole return: RMSE ratio sqrt(1 - φ²) = 0.954
    assert np.sqrt(np.mean(error**2) / np.mean(naive**2)) == pytest.approx(np.sqrt(1 - phi**2), abs=0.01)


def test_the_trading_check_by_hand():
    # 7 rounds of +10 %, -10 %, +10 % (21 bars: enough to annualise), forecasts right every time
    anchor, actual = np.tile([100.0, 110.0, 99.0], 7), np.tile([110.0, 99.0, 108.9], 7)
    predicted = np.tile([105.0, 100.0, 100.0], 7)  # long, short, long
    m, equity, hold = trading_check(anchor, predicted, actual, periods_per_year=252, short=True, cost_bps=5)
    # positions 1, -1, 1, 1, -1, 1, ...: trades 1 (from flat), 2, 2, then 0, 2, 2 each round; 5 bp a unit traded
    traded = np.array([1, 2, 2] + [0, 2, 2] * 6)
    returns = 0.1 - traded * 0.0005
    np.testing.assert_allclose(equity, np.cumprod(1 + returns))
    assert m["trade/annual_return"] == pytest.approx(np.prod(1 + returns) ** (252 / 21) - 1)
    assert m["trade/sharpe"] == pytest.approx(returns.mean() / returns.std(ddof=1) * np.sqrt(252))
    assert m["trade/max_drawdown"] == 0.0 and m["trade/hit_rate"] == 1.0 and m["trade/exposure"] == 1.0
    assert m["trade/turnover"] == pytest.approx(traded.sum() / 21 * 252)
    assert m["buyhold/max_drawdown"] == pytest.approx(1 - 0.99 / 1.1)  # each round: 1.1 → 0.99
    np.testing.assert_allclose(hold[:3], [1.1, 0.99, 1.089])
    flat, _, _ = trading_check(anchor, predicted, actual, periods_per_year=252, short=False, cost_bps=5)
    # long, flat, long: the flat bar costs the exit and earns nothing, a 0.05 % fall from the peak
    assert flat["trade/exposure"] == pytest.approx(14 / 21)
    assert flat["trade/max_drawdown"] == pytest.approx(0.0005)
    # short, short, long: the first bar loses 10 % + 5 bp from the starting capital (a drawdown of 0.1005); each
    # later round's first bar loses 10 % + 10 bp (long → short) from that round's peak: 0.101, the deepest
    losing, _, _ = trading_check(anchor, np.tile([95.0, 100.0, 100.0], 7), actual, periods_per_year=252)
    assert losing["trade/max_drawdown"] == pytest.approx(0.101)
    first_only, _, _ = trading_check(anchor[:21], np.r_[95.0, predicted[1:21]], actual[:21], periods_per_year=252)
    assert first_only["trade/max_drawdown"] == pytest.approx(0.1005)  # only the first bar loses: from capital 1
    # three bars are too few to annualise: n/a rather than "-98 % a year"
    short, _, _ = trading_check(anchor[:3], predicted[:3], actual[:3], periods_per_year=252)
    assert np.isnan(short["trade/sharpe"]) and np.isnan(short["trade/annual_return"])


def test_score_forecasts_skill_mase_and_keys():
    actual = np.array([[10.0, 11.0], [12.0, 12.0], [11.0, 14.0]])
    anchor = np.array([10.5, 11.0, 12.0])
    naive = np.repeat(anchor[:, None], 2, axis=1)
    model = actual + np.array([[0.5, -0.5], [0.0, 1.0], [-0.5, 0.0]])
    m = score_forecasts(actual, {"test": model, "naive": naive}, anchor, mase_scale=2.0)
    for h in (1, 2):
        rmse_model = np.sqrt(np.mean((model[:, h - 1] - actual[:, h - 1]) ** 2))
        rmse_naive = np.sqrt(np.mean((naive[:, h - 1] - actual[:, h - 1]) ** 2))
        assert m[f"test/h{h}/skill"] == pytest.approx(1 - rmse_model / rmse_naive)
        assert m[f"test/h{h}/mase"] == pytest.approx(np.mean(np.abs(model[:, h - 1] - actual[:, h - 1])) / 2.0)
        assert m[f"naive/h{h}/skill"] == 0.0
        assert {f"test/h{h}/dm_pvalue", f"test/h{h}/ic_pvalue", f"test/h{h}/dir_pvalue"} <= set(m)
        assert m[f"naive/h{h}/directional_accuracy"] is None  # naive predicts no move: no direction to score
    assert "naive/h1/dm_pvalue" not in m and "test/h1/pt_pvalue" not in m  # Pesaran-Timmermann: next step only
    headline = score_forecasts(
        actual[:, :1], {"test": model[:, :1], "naive": naive[:, :1]}, anchor, 2.0, per_horizon=False
    )
    assert "test/pt_pvalue" in headline and "test/dir_pvalue" not in headline
