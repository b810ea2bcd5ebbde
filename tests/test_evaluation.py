"""Scores, baselines and significance tests against values worked out by hand from their formulas."""

import numpy as np
import pytest
from scipy import stats

from pricernn.evaluation import (
    baseline_forecasts,
    copy_lag,
    diebold_mariano,
    direction_pvalue,
    score_forecasts,
    scores,
)


def test_scores_match_hand_computation():
    actual, predicted, origin = np.array([10.0, 12.0, 9.0]), np.array([11.0, 11.0, 9.0]), np.array([10.0, 10.0, 10.0])
    m = scores(actual, predicted, origin)
    # errors 1, -1, 0: MSE 2/3, MAE 2/3, MAPE (1/10 + 1/12 + 0)/3; directions: 0 vs +1 (miss), +1 vs +1, -1 vs -1
    assert m["mse"] == pytest.approx(2 / 3)
    assert m["rmse"] == pytest.approx(np.sqrt(2 / 3))
    assert m["mae"] == pytest.approx(2 / 3)
    assert m["mape"] == pytest.approx(100 * (0.1 + 1 / 12) / 3)
    assert m["directional_accuracy"] == pytest.approx(2 / 3)


def test_diebold_mariano_one_step_matches_the_formula_by_hand():
    # loss differentials d = e1² - e2² = [1, -1, 2, 0, 3]: mean 1, γ0 = (0 + 4 + 1 + 1 + 4) / 5 = 2,
    # DM = 1 / sqrt(2 / 5) = 1.58114; HLN factor sqrt((5 + 1 - 2) / 5) = 0.89443; DM* = sqrt(2) = 1.41421
    e_ref = np.zeros(5)
    e_model = np.sqrt(np.array([1.0, 0.0, 2.0, 0.0, 3.0]))
    e_ref[1] = 1.0  # d[1] = 0 - 1 = -1
    statistic, pvalue = diebold_mariano(e_model, e_ref, horizon=1)
    assert statistic == pytest.approx(1.414213562, rel=1e-8)
    assert pvalue == pytest.approx(2 * stats.t.sf(1.414213562, df=4), rel=1e-6)  # ≈ 0.2302
    assert pvalue == pytest.approx(0.2302, abs=1e-4)


def test_diebold_mariano_two_steps_adds_the_lag_one_autocovariance():
    # d = [0, 1, 2, 3, 4]: mean 2, centred c = [-2, -1, 0, 1, 2], γ0 = 10/5 = 2, γ1 = (2 + 0 + 0 + 2) / 5 = 0.8,
    # V = γ0 + 2γ1 = 3.6, DM = 2 / sqrt(3.6 / 5) = 2.357023; HLN factor sqrt((5 + 1 - 4 + 2/5) / 5) = sqrt(0.48),
    # DM* = 1.632993 (with γ0 alone it would be 2.190890: the lag term matters)
    e_model = np.sqrt(np.array([0.0, 1.0, 2.0, 3.0, 4.0]))
    statistic, pvalue = diebold_mariano(e_model, np.zeros(5), horizon=2)
    assert statistic == pytest.approx(1.632993162, rel=1e-8)
    assert pvalue == pytest.approx(2 * stats.t.sf(1.632993162, df=4), rel=1e-6)
    assert diebold_mariano(e_model, np.zeros(5), horizon=1)[0] == pytest.approx(2 / np.sqrt(2 / 5) * np.sqrt(0.8))


def test_diebold_mariano_falls_back_to_the_variance_when_the_long_run_sum_is_not_positive():
    # d = [1, -1, 2, 0, 3], h = 2: centred c = [0, -2, 1, -1, 2], γ1 = (0·-2 + -2·1 + 1·-1 + -1·2) / 5 = -1,
    # V = γ0 + 2γ1 = 0 → falls back to γ0 = 2, so DM = 1.58114; HLN sqrt((5 + 1 - 4 + 2/5) / 5) = sqrt(0.48)
    e_model = np.sqrt(np.array([1.0, 0.0, 2.0, 0.0, 3.0]))
    e_ref = np.array([0.0, 1.0, 0.0, 0.0, 0.0])
    statistic, _ = diebold_mariano(e_model, e_ref, horizon=2)
    assert statistic == pytest.approx(np.sqrt(5 / 2) * np.sqrt(0.48), rel=1e-8)


def test_diebold_mariano_identical_errors_have_nothing_to_test():
    errors = np.array([1.0, -2.0, 0.5])
    assert np.isnan(diebold_mariano(errors, errors)[0])
    assert diebold_mariano(errors, errors)[1] == 1.0


def test_direction_pvalue_is_the_binomial_test():
    origin = np.zeros(10)
    actual = np.array([1, 1, 1, 1, 1, 1, 1, 1, -1, -1.0])
    predicted = np.ones(10)  # 8 of 10 directions right
    assert direction_pvalue(actual, predicted, origin) == pytest.approx(2 * 56 / 1024)  # P(X ≥ 8) + P(X ≤ 2)


def test_baselines_use_only_prices_up_to_the_origin():
    levels = np.array([10.0, 11, 13, 12, 14, 100, 200])
    out = baseline_forecasts(levels, np.array([2, 4]), steps=2, ma_window=3)
    np.testing.assert_allclose(out["naive"], [[13, 13], [14, 14]])
    np.testing.assert_allclose(out["drift"], [[13 + 1.5, 13 + 3.0], [14 + 1.0, 14 + 2.0]])  # (13-10)/2, (14-10)/4
    np.testing.assert_allclose(out["ma"], [[34 / 3, 34 / 3], [13, 13]])


def test_copy_lag_flags_a_model_that_repeats_yesterday():
    rng = np.random.default_rng(0)
    actual = 100 + np.cumsum(rng.normal(size=300))
    copier = np.concatenate([[actual[0]], actual[:-1]])  # tomorrow = today
    assert copy_lag(actual, copier)[0] == 1
    oracle = actual + rng.normal(scale=0.1, size=300)
    assert copy_lag(actual, oracle)[0] == 0


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
        assert {f"test/h{h}/dm_pvalue", f"test/h{h}/direction_pvalue"} <= set(m)
    assert "naive/h1/dm_pvalue" not in m
