"""Significance tests: hand-computed answers, known closed forms, and their size on simulated random walks."""

import numpy as np
import pytest
from scipy import stats

from pricernn.evaluation import AutoRegression, score_forecasts
from pricernn.evaluation.significance import (
    benjamini_hochberg,
    diebold_mariano,
    direction_test,
    information_coefficient,
    mean_return_test,
    newey_west_variance,
    panel_diebold_mariano,
    pesaran_timmermann,
    reverse_regression_test,
)


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
    errors = np.array([1.0, -2.0, 0.5])
    assert np.isnan(diebold_mariano(errors, errors)[0]) and diebold_mariano(errors, errors)[1] == 1.0


def test_pesaran_timmermann_on_a_two_by_two_table_by_hand():
    # predicted up 5 of 10, actual up 5 of 10, 8 hits: P = 0.8, P* = 0.5·0.5 + 0.5·0.5 = 0.5,
    # var(P) = 0.5·0.5/10 = 0.025, var(P*) = 0 + 0 + 4·0.5⁴/100 = 0.0025, S = 0.3 / sqrt(0.0225) = 2
    predicted = np.array([1, 1, 1, 1, 1, -1, -1, -1, -1, -1.0])
    actual = np.array([1, 1, 1, 1, -1, 1, -1, -1, -1, -1.0])
    statistic, pvalue = pesaran_timmermann(predicted, actual)
    assert statistic == pytest.approx(2.0) and pvalue == pytest.approx(stats.norm.sf(2.0))  # 0.0228
    assert pesaran_timmermann(np.ones(10), actual) == (pytest.approx(np.nan, nan_ok=True), 1.0)  # always up
    # unbalanced: up called 7 times, 6 ups, 7 hits: P = 0.7, P* = 0.6·0.7 + 0.4·0.3 = 0.54, var(P) = 0.54·0.46/10,
    # var(P*) = 0.2²·0.21/10 + 0.4²·0.24/10 + 4·0.6·0.7·0.4·0.3/100 = 0.006696, S = 0.16 / sqrt(0.02484 - 0.006696)
    predicted = np.array([1, 1, 1, 1, 1, 1, 1, -1, -1, -1.0])
    actual = np.array([1, 1, 1, 1, 1, -1, -1, 1, -1, -1.0])
    assert pesaran_timmermann(predicted, actual)[0] == pytest.approx(0.16 / np.sqrt(0.02484 - 0.006696))


def test_newey_west_variance_by_hand():
    # x = [1, 2, 3, 4]: c = [-1.5, -0.5, 0.5, 1.5], γ0 = 5/4 = 1.25, γ1 = (0.75 - 0.25 + 0.75)/4 = 0.3125,
    # one lag: 1.25 + 2 · (1 - 1/2) · 0.3125 = 1.5625
    assert newey_west_variance(np.array([1.0, 2, 3, 4]), lags=1) == pytest.approx(1.5625)
    assert newey_west_variance(np.array([1.0, 2, 3, 4]), lags=0) == pytest.approx(1.25)


def test_the_mean_return_test_by_hand():
    # r = [1, 2, 3, 4]: mean 2.5, one Newey-West lag for n = 4 (floor(4 · 0.04^(2/9)) = 1), long-run variance
    # 1.5625 (above), variance of the mean 1.5625 / 4, t = 2.5 / 0.625 = 4
    statistic, pvalue = mean_return_test(np.array([1.0, 2, 3, 4]))
    assert statistic == pytest.approx(4.0) and pvalue == pytest.approx(2 * stats.norm.sf(4.0))


def test_the_ar_order_comes_from_aic():
    rng = np.random.default_rng(5)
    e, r = rng.normal(0, 0.01, 20_000), np.zeros(20_000)
    for t in range(2, 20_000):
        r[t] = 0.3 * r[t - 1] + 0.2 * r[t - 2] + e[t]
    ar = AutoRegression.fit(100 * np.exp(np.cumsum(r)))
    assert ar.order >= 2 and ar.coefficients[:2] == pytest.approx((0.3, 0.2), abs=0.02)


def test_the_reverse_regression_by_hand_and_its_identity():
    # h = 1, x = [0, 1, 2], y = [0, 1, 3]: slope 1.5, residuals [1/6, -1/3, 1/6], White variance
    # Σ xc² u² / sxx² = (1/36 + 1/36) / 4 = 1/72, t = 1.5 √72 = 12.728
    statistic, pvalue = reverse_regression_test(np.array([0.0, 1, 3]), np.array([0.0, 1, 2]), horizon=1)
    assert statistic == pytest.approx(1.5 * np.sqrt(72)) and pvalue == pytest.approx(stats.norm.sf(1.5 * np.sqrt(72)))
    # Hodrick's identity behind it: Σ_t x_t (r_t+1 + ... + r_t+h) = Σ_t r_t+1 (x_t + ... + x_t-h+1)
    rng = np.random.default_rng(0)
    r, x, h = rng.normal(size=200), rng.normal(size=200), 5
    forward = sum(x[t] * r[t + 1 : t + 1 + h].sum() for t in range(200 - h))
    backward = sum(r[t + 1] * x[max(t - h + 1, 0) : t + 1].sum() for t in range(199))
    tail = sum(x[t] * r[t + 1 : 200].sum() for t in range(200 - h, 199))  # the last origins' shorter horizons
    assert forward + tail == pytest.approx(backward)


def test_the_information_coefficient_of_an_ar1_is_its_coefficient():
    # r_t = 0.3 r_t-1 + e_t: the best forecast of the next move is 0.3 r_t, whose correlation with it is 0.3,
    # and whose moves are 0.3 times as large as the realised ones
    rng = np.random.default_rng(1)
    phi, n = 0.3, 20_000
    e, r = rng.normal(size=n), np.zeros(n)
    for t in range(1, n):
        r[t] = phi * r[t - 1] + e[t]
    ic = information_coefficient(phi * r[:-1], r[1:], r[1:], horizon=1)
    assert ic["ic"] == pytest.approx(phi, abs=0.02) and ic["move_ratio"] == pytest.approx(phi, abs=0.01)
    assert ic["ic_pvalue"] < 1e-9 and ic["ic_spearman"] == pytest.approx(phi, abs=0.03)


def _random_walk(rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray]:
    """A log price path with volatility clustering, and a forecast signal as persistent as a slow
    trend-follower's (an AR(1) with φ = 0.95), independent of the prices: nothing is predictable."""
    volatility = np.exp(np.convolve(rng.normal(0, 0.3, n + 30), np.ones(10) / 10, mode="same"))
    log_price = np.concatenate([[0.0], np.cumsum(rng.normal(0, 0.01, n + 30) * volatility)])
    shocks, signal = rng.normal(size=n + 30), np.zeros(n + 30)
    for t in range(1, n + 30):
        signal[t] = 0.95 * signal[t - 1] + shocks[t]
    return log_price, signal


def test_every_reported_p_value_holds_its_size_on_random_walks():
    """Each test may reject at 5 % in about 5 % of 400 random walks, at h = 1, 5 and 10; the regression of the
    overlapping h-bar moves themselves, which these tests replace, rejects far more often."""
    rng = np.random.default_rng(2)
    n, sims = 750, 400
    rejected: dict[tuple[str, int], list[bool]] = {}
    for _ in range(sims):
        log_price, signal = _random_walk(rng, n)
        origins = np.arange(n)
        next_bar = log_price[origins + 1] - log_price[origins]
        for h in (1, 5, 10):
            actual = log_price[origins + h] - log_price[origins]
            predicted = 0.001 * h * signal[origins]
            rejected.setdefault(("ic", h), []).append(
                information_coefficient(predicted, actual, next_bar, h)["ic_pvalue"] < 0.05
            )
            rejected.setdefault(("direction", h), []).append(direction_test(predicted, actual, next_bar, h)[1] < 0.05)
            # DM's null is equal accuracy: two forecasts as wrong as each other, naive ± the same persistent noise
            noise = 0.003 * np.sqrt(h) * signal[origins]
            rejected.setdefault(("dm", h), []).append(diebold_mariano(noise - actual, -noise - actual, h)[1] < 0.05)
            naive = reverse_regression_test(actual, predicted, 1)[1] < 0.05  # overlapping moves, no correction
            rejected.setdefault(("overlapping regression", h), []).append(naive)
        strategy = np.sign(signal[origins]) * np.expm1(next_bar)
        rejected.setdefault(("sharpe", 1), []).append(mean_return_test(strategy)[1] < 0.05)
    sizes = {key: float(np.mean(v)) for key, v in rejected.items()}
    overlapping = {sizes.pop(("overlapping regression", h)) for h in (1, 5, 10)}
    assert max(sizes.values()) <= 0.075, sizes  # 5 % ± 1.1 % of Monte Carlo noise, plus a little
    assert min(sizes.values()) >= 0.02, sizes  # and not so timid that they could never find anything
    assert max(overlapping) > 0.15, overlapping  # what the overlap does to a test that ignores it


def test_the_report_claims_skill_on_random_walks_no_more_often_than_a_test_s_size():
    """The same walks through the report's own scoring (score_forecasts: origins, one-bar moves, horizons) and
    the printed verdict: "beats the last price" or "carry information" is a false claim here. The model's moves
    are small, so that Diebold-Mariano rarely calls it worse and the information branch is reached: without
    Holm's correction for asking two questions there, about 10 % of the walks get a false claim."""
    from pricernn.reporting.summary import verdict

    rng = np.random.default_rng(3)
    n, sims, steps = 600, 300, 10
    claims: dict[str, list[bool]] = {}
    for _ in range(sims):
        log_price, signal = _random_walk(rng, n + steps)
        price = 100 * np.exp(log_price)
        origins = np.arange(n)
        actual = price[origins[:, None] + np.arange(1, steps + 1)]
        last = price[origins]
        model = last[:, None] * np.exp(0.00003 * np.arange(1, steps + 1) * signal[origins][:, None])
        metrics = score_forecasts(actual, {"test": model, "naive": np.repeat(last[:, None], steps, axis=1)}, last, 1.0)
        for h in (1, 5, 10):
            line = verdict(metrics, prefix=f"h{h}/")
            claims.setdefault(f"h{h}", []).append(line.startswith(("beats", "its moves carry")))
    rates = {k: float(np.mean(v)) for k, v in claims.items()}
    assert max(rates.values()) <= 0.08, rates  # DM's "beats" (2.5 %) plus the information branch


def test_panel_diebold_mariano_tests_the_mean_loss_differential_of_each_date_by_hand():
    # two assets, five dates (given out of order, one asset missing a date); d = e_model² - e_naive²
    dates = np.array(["d1", "d1", "d2", "d2", "d3", "d4", "d4", "d5", "d5"])
    d = np.array([2.0, 0.0, -2.0, 0.0, 2.0, 0.0, 0.0, 3.0, 3.0])  # per-date means: 1, -1, 2, 0, 3 (as above)
    order = np.array([3, 0, 8, 5, 1, 2, 7, 4, 6])
    e_model, e_naive = np.sqrt(np.clip(d, 0, None)), np.sqrt(np.clip(-d, 0, None))
    statistic, pvalue = panel_diebold_mariano(e_model[order], e_naive[order], dates[order], horizon=1)
    assert statistic == pytest.approx(1.414213562, rel=1e-8)  # the one-series example's numbers
    assert pvalue == pytest.approx(0.2302, abs=1e-4)


def test_panel_diebold_mariano_holds_its_size_when_assets_move_together():
    # 10 assets on 250 days with equally good forecasts whose errors share each day's market move: a test on the
    # stacked rows takes 2,500 dependent rows for independent ones and rejects far too often; averaging each day
    # first keeps the size near 5 %
    rng = np.random.default_rng(0)
    days, assets, trials = 250, 10, 400
    dates = np.repeat(np.arange(days), assets)
    panel, stacked = 0, 0
    for _ in range(trials):
        common = rng.standard_normal((2, days, 1))
        e_model = (common[0] + 0.5 * rng.standard_normal((days, assets))).ravel()
        e_naive = (common[1] + 0.5 * rng.standard_normal((days, assets))).ravel()
        panel += panel_diebold_mariano(e_model, e_naive, dates)[1] < 0.05
        stacked += diebold_mariano(e_model, e_naive)[1] < 0.05
    assert 0.02 <= panel / trials <= 0.08
    assert stacked / trials > 0.3


def test_benjamini_hochberg_adjusts_as_r_p_adjust_does():
    # R: p.adjust(c(0.01, 0.04, 0.03, 0.005, 0.5), "BH") = 0.025 0.050 0.050 0.025 0.500
    adjusted = benjamini_hochberg(np.array([0.01, 0.04, 0.03, 0.005, 0.5, np.nan]))
    np.testing.assert_allclose(adjusted[:5], [0.025, 0.05, 0.05, 0.025, 0.5])
    assert np.isnan(adjusted[5])


def test_the_summary_table_shows_every_horizon_whose_weight_differs_from_the_one_before():
    from pricernn.reporting.summary import shown_horizons

    weights = dict(enumerate([0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.5], start=1))
    metrics = {f"test/h{h}/shrink": w for h, w in weights.items()}
    assert shown_horizons(metrics, 12) == [1, 2, 3, 4, 5, 10, 12]  # h=4 alone differs; h=12 is the last
    assert shown_horizons({}, 12) == [1, 2, 3, 5, 10, 12]


def test_the_summary_says_where_the_forecasts_leaned_against_the_test_period():
    from pricernn.reporting.summary import drift_against_test

    metrics = {"eval/drift_bp": 0.0}
    for h, (drift, move) in enumerate([(-2.0, -13.0), (1.5, -13.5), (0.0, -14.0), (3.1, -13.2)], start=1):
        metrics[f"test/h{h}/drift_bp"], metrics[f"test/h{h}/move_bp"] = drift, move
    line = drift_against_test(metrics, 4)
    assert line.startswith("drift: at h=2,4 the forecasts moved up on average (+3.1 bp a bar at h=4) while the test "
                           "period fell (-13.2 bp a bar); the drift kept from training is +0.0 bp a bar")  # fmt: skip
    assert drift_against_test({**metrics, "test/h2/drift_bp": -1.0, "test/h4/drift_bp": 0.0}, 4) == ""


def test_a_flat_horizon_with_a_kept_drift_is_not_called_the_last_price():
    from pricernn.reporting.summary import verdict

    metrics = {"test/skill": 0.0003, "test/dm_pvalue": 0.3, "test/shrink": 0.0}
    assert verdict(metrics).startswith("no signal on validation, so the forecast is the last price (λ = 0)")
    line = verdict({**metrics, "eval/drift_bp": 7.5})
    assert line.startswith("no signal on validation, so the forecast is the last price moved by the kept drift "
                           "(+7.5 bp a bar; λ = 0)")  # fmt: skip
