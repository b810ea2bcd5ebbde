"""Prediction intervals against known answers: hand-computed scores, and coverage on generated random walks."""

import numpy as np
import pytest

from pricernn.evaluation.intervals import (
    Conformal,
    bands_from_checkpoint,
    conformal_quantile,
    pinball,
    random_walk_bands,
    score_intervals,
)


def test_conformal_quantile_is_the_finite_sample_rank():
    scores = np.arange(1.0, 20.0)  # 19 scores: (19 + 1) * 0.8 = 16th smallest, (19 + 1) * 0.95 = 19th
    assert conformal_quantile(scores, 0.2) == 16.0
    assert conformal_quantile(scores, 0.05) == 19.0
    assert conformal_quantile(scores[:9], 0.05) == 9.0  # too few scores for the rank: the largest


def test_pinball_and_winkler_by_hand():
    assert pinball(np.array([10.0]), np.array([8.0]), 0.9)[0] == pytest.approx(0.9 * 2)  # y above q: τ(y − q)
    assert pinball(np.array([10.0]), np.array([12.0]), 0.9)[0] == pytest.approx(0.1 * 2)  # y below q: (1 − τ)(q − y)
    actual = np.array([[10.0], [13.0], [7.0]])
    bands = {0.8: (np.full((3, 1), 9.0), np.full((3, 1), 11.0))}
    scores = score_intervals(actual, bands, "test", per_horizon=False)
    assert scores["test/coverage_80"] == pytest.approx(1 / 3)
    assert scores["test/width_80"] == 2.0
    # Winkler: width + (2/α) × distance outside = 2, 2 + 10 × 2, 2 + 10 × 2
    assert scores["test/winkler_80"] == pytest.approx((2 + 22 + 22) / 3)
    taus = [(0.1, 9.0), (0.9, 11.0)]
    want = np.mean([pinball(actual[:, 0], np.full(3, q), t).mean() for t, q in taus])
    assert scores["test/pinball"] == pytest.approx(want)


def _random_walk(n: int, seed: int, sigma: float = 0.01) -> np.ndarray:
    return 100 * np.exp(np.cumsum(np.random.default_rng(seed).normal(0, sigma, n)))


def _naive_targets(prices: np.ndarray, origins: np.ndarray, steps: int) -> tuple[np.ndarray, np.ndarray]:
    actual = prices[origins[:, None] + np.arange(1, steps + 1)]
    return actual, np.repeat(prices[origins][:, None], steps, axis=1)


@pytest.mark.parametrize("method", ["conformal", "aci"])
def test_intervals_cover_as_promised_on_a_gaussian_random_walk(method):
    # naive is the best forecast of a random walk: calibrated on 4,000 validation origins, scored on 8,000 later
    # (10-step residuals overlap, so these are ~400 and ~800 independent ones at h = 10)
    prices, steps = _random_walk(12_100, seed=11), 10
    val_actual, val_forecast = _naive_targets(prices, np.arange(0, 4_000), steps)
    actual, forecast = _naive_targets(prices, np.arange(4_000 + steps, 12_000 + steps), steps)
    calibration = Conformal.fit(val_actual, val_forecast, (0.8, 0.95))
    bands = (
        calibration.bands(forecast) if method == "conformal" else calibration.adaptive_bands(actual, forecast, 0.005)[0]
    )
    scores = score_intervals(actual, bands, "test", per_horizon=True)
    for h in (1, 5, 10):
        assert scores[f"test/h{h}/coverage_80"] == pytest.approx(0.80, abs=0.03), h
        assert scores[f"test/h{h}/coverage_95"] == pytest.approx(0.95, abs=0.03), h
    # the random walk baseline with the true volatility covers as well (it is the right model here)
    walk = random_walk_bands(prices[:4_000], forecast[:, 0], steps, (0.8,))
    assert score_intervals(actual, walk, "naive", True)["naive/h5/coverage_80"] == pytest.approx(0.80, abs=0.03)


def test_adaptive_intervals_recover_coverage_after_volatility_doubles():
    # calibrated on a calm period, tested on one twice as volatile: fixed bands under-cover, ACI adapts
    calm, wild = _random_walk(1_500, seed=3, sigma=0.01), _random_walk(3_000, seed=4, sigma=0.02)
    val_actual, val_forecast = _naive_targets(calm, np.arange(0, 1_400), 1)
    actual, forecast = _naive_targets(wild, np.arange(0, 2_900), 1)
    calibration = Conformal.fit(val_actual, val_forecast, (0.8,))
    fixed = score_intervals(actual, calibration.bands(forecast), "test", False)["test/coverage_80"]
    adaptive = score_intervals(actual, calibration.adaptive_bands(actual, forecast, 0.02)[0], "test", False)
    assert fixed < 0.55 and adaptive["test/coverage_80"] == pytest.approx(0.80, abs=0.04)


def test_stored_bands_are_ordered_nested_and_widen_with_the_horizon():
    prices = _random_walk(2_000, seed=5)
    val_actual, val_forecast = _naive_targets(prices, np.arange(0, 300), 10)
    calibration = Conformal.fit(val_actual, val_forecast, (0.8, 0.95))
    actual, forecast = _naive_targets(prices, np.arange(400, 1_900), 10)
    _, adapted = calibration.adaptive_bands(actual, forecast, 0.05)  # per-horizon states: not monotone by themselves
    for state in (calibration.to_dict(), calibration.to_dict(adapted)):
        bands = bands_from_checkpoint(state, np.full((1, 10), 50.0))
        (lo80, hi80), (lo95, hi95) = bands[0.8], bands[0.95]
        assert (lo95 <= lo80).all() and (lo80 < 50).all() and (hi80 > 50).all() and (hi80 <= hi95).all()
        assert (np.diff(hi80 - lo80) >= 0).all() and (np.diff(hi95 - lo95) >= 0).all()
