"""Prediction intervals against known answers: hand-computed scores, and coverage on generated random walks."""

import json

import numpy as np
import pandas as pd
import pytest
import torch

from pricernn.evaluation.intervals import (
    Conformal,
    bands_from_checkpoint,
    conformal_quantile,
    pinball,
    point_bases,
    random_walk_bands,
    score_intervals,
)


def test_conformal_quantile_is_the_finite_sample_rank():
    scores = np.arange(1.0, 20.0)  # 19 scores: (19 + 1) * 0.8 = 16th smallest, (19 + 1) * 0.95 = 19th
    assert conformal_quantile(scores, 0.2) == 16.0
    assert conformal_quantile(scores, 0.05) == 19.0
    assert conformal_quantile(scores[:9], 0.05) == 9.0  # too few scores for the rank: the largest
    assert conformal_quantile(np.arange(1.0, 21.0), 0.2) == 17.0  # n = 20: ⌈21 × 0.8⌉ = 17, not ⌈20 × 0.8⌉ = 16


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
    calibration = Conformal.fit(val_actual, point_bases(val_forecast, (0.8, 0.95)))
    bases = point_bases(forecast, (0.8, 0.95))
    bands = calibration.bands(bases) if method == "conformal" else calibration.adaptive_bands(actual, bases, 0.005)[0]
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
    calibration = Conformal.fit(val_actual, point_bases(val_forecast, (0.8,)))
    bases = point_bases(forecast, (0.8,))
    fixed = score_intervals(actual, calibration.bands(bases), "test", False)["test/coverage_80"]
    adaptive = score_intervals(actual, calibration.adaptive_bands(actual, bases, 0.02)[0], "test", False)
    assert fixed < 0.55 and adaptive["test/coverage_80"] == pytest.approx(0.80, abs=0.04)


def test_stored_bands_are_ordered_nested_and_widen_with_the_horizon():
    prices = _random_walk(2_000, seed=5)
    val_actual, val_forecast = _naive_targets(prices, np.arange(0, 300), 10)
    calibration = Conformal.fit(val_actual, point_bases(val_forecast, (0.8, 0.95)))
    actual, forecast = _naive_targets(prices, np.arange(400, 1_900), 10)
    _, adapted = calibration.adaptive_bands(
        actual, point_bases(forecast, (0.8, 0.95)), 0.05
    )  # per-horizon states: not monotone by themselves
    for state in (calibration.to_dict(), calibration.to_dict(adapted)):
        bands = bands_from_checkpoint(state, point_bases(np.full((1, 10), 50.0), (0.8, 0.95)))
        (lo80, hi80), (lo95, hi95) = bands[0.8], bands[0.95]
        assert (lo95 <= lo80).all() and (lo80 < 50).all() and (hi80 > 50).all() and (hi80 <= hi95).all()
        assert (np.diff(hi80 - lo80) >= 0).all() and (np.diff(hi95 - lo95) >= 0).all()


def test_conformalized_quantile_bands_reach_the_level_from_a_too_narrow_band():
    # CQR (Romano et al. 2019): a base band at the true 50 % quantiles of a random walk's step, calibrated to 80 %
    prices = _random_walk(8_100, seed=8, sigma=0.01)
    val_actual, val_point = _naive_targets(prices, np.arange(0, 3_000), 1)
    actual, point = _naive_targets(prices, np.arange(3_000, 8_000), 1)
    half = 0.6745 * 0.01  # the normal's 75 % quantile: a 50 % band
    base = lambda f: {0.8: (f * np.exp(-half), f * np.exp(half))}  # noqa: E731
    calibration = Conformal.fit(val_actual, base(val_point))
    raw = score_intervals(actual, base(point), "test", False)["test/coverage_80"]
    calibrated = score_intervals(actual, calibration.bands(base(point)), "test", False)["test/coverage_80"]
    assert raw == pytest.approx(0.50, abs=0.03) and calibrated == pytest.approx(0.80, abs=0.03)


def test_pinball_loss_of_a_quantile_network_by_hand_and_its_quantiles_never_cross():
    from pricernn.models.forecaster import Network, pinball_loss

    pred = torch.tensor([[[9.0, 10.0, 12.0]]])  # one target, one horizon, quantiles 0.1, 0.5, 0.9
    levels = torch.tensor([0.1, 0.5, 0.9])
    # y = 11: 0.1 × 2, 0.5 × 1, (1 − 0.9) × 1 → mean over the three quantiles
    assert pinball_loss(pred, torch.tensor([[11.0]]), levels).item() == pytest.approx((0.2 + 0.5 + 0.1) / 3)
    torch.manual_seed(0)
    network = Network("gru", 1, 8, 1, 0.0, outputs=3, quantiles=(0.05, 0.1, 0.5, 0.9, 0.95))
    with torch.no_grad():
        network.head.weight.mul_(50)  # large raw outputs in every direction: crossing would show
        x = torch.randn(64, 20, 1)
        q = network.quantiles(x)
        assert q.shape == (64, 3, 5) and (q.diff(dim=-1) >= 0).all()
        assert torch.equal(network(x), q[..., 2])  # the point forecast is the median


def test_a_quantile_model_reports_its_own_bands_and_predict_writes_them(compose_cfg, tmp_path):
    from pricernn.tasks.predict import forecast_history
    from pricernn.tasks.train import train

    run = ["debug=tiny", "model.loss=quantile", "model.strategy=direct", "model.quantiles=[0.1,0.5,0.9]"]
    metrics = train(compose_cfg(*run, "evaluation.interval_method=quantile", "evaluation.intervals=[0.8]"),
                    tmp_path / "run")  # fmt: skip
    for h in (1, 10):  # learned bands at every horizon the network outputs, beside the random walk's
        assert metrics[f"test/h{h}/width_80"] > 0 and 0 < metrics[f"test/h{h}/coverage_80"] < 1
        assert metrics[f"naive/h{h}/width_80"] > 0
    from conftest import CONF_DIR
    from hydra import compose, initialize_config_dir

    with initialize_config_dir(config_dir=CONF_DIR, version_base="1.3"):
        predict_cfg = compose("predict", overrides=[f"ckpt={tmp_path / 'run' / 'checkpoints' / 'best.ckpt'}"])
    forecast = forecast_history(predict_cfg, tmp_path / "forecast").frame
    assert list(forecast.columns[:5]) == ["date", "step", "predicted", "lower_80", "upper_80"]
    assert ((forecast["lower_80"] < forecast["predicted"]) & (forecast["predicted"] < forecast["upper_80"])).all()


def test_nothing_fitted_for_the_intervals_sees_the_test_period(compose_cfg, tmp_path, sp500):
    # the same history twice, the second with its test period's prices moved: the calibration stays the same
    from pricernn.tasks.train import train

    prices = sp500[["Close"]].iloc[:1500].reset_index().rename(columns={"date": "Date"})
    changed = prices.copy()
    changed.loc[1300:, "Close"] *= np.linspace(1.0, 1.5, len(changed) - 1300)  # rows 1275+ are the test period
    stored = []
    for name, frame in (("same", prices), ("changed", changed)):
        frame.to_csv(tmp_path / f"{name}.csv", index=False)
        run = ["data=csv", f"data.path={tmp_path / f'{name}.csv'}", "debug=tiny", "data.window=10"]
        train(compose_cfg(*run, "evaluation.interval_method=conformal"), tmp_path / name)
        stored.append(torch.load(tmp_path / name / "checkpoints" / "best.ckpt", weights_only=True))
        split = json.loads((tmp_path / name / "metrics.json").read_text())["split_dates"]
        assert split["test"][0] <= str(frame["Date"].iloc[1300])[:10]  # every changed price lies in the test period
    assert stored[0]["pricernn_intervals"] == stored[1]["pricernn_intervals"]
    assert stored[0]["pricernn_intervals"]["half_widths"]["0.8"][0] > 0


def test_adaptive_rates_move_only_on_targets_already_known_by_hand():
    # validation scores 0.01 .. 0.09 at both horizons; every test target misses by far; α = 0.2, γ = 0.1
    calibration = Conformal({0.8: np.tile(np.arange(1, 10)[:, None] / 100, (1, 2))}, positive=True)
    forecast = np.full((4, 2), 100.0)
    actual = forecast * np.exp(1.0)
    _, final = calibration.adaptive_bands(actual, point_bases(forecast, (0.8,)), gamma=0.1)
    bands, _ = calibration.adaptive_bands(actual, point_bases(forecast, (0.8,)), gamma=0.1)
    half = np.log(bands[0.8][1] / forecast)
    # h = 1: origin t knows the target of origin t − 1 (α 0.2, 0.12, 0.04, −0.04 → ranks 8, 9, 9, 9);
    # h = 2: only that of origin t − 2 (α 0.2, 0.2, 0.12, 0.04): a look-ahead would widen origin 1 already
    np.testing.assert_allclose(half[:, 0], [0.08, 0.09, 0.09, 0.09])
    np.testing.assert_allclose(half[:, 1], [0.08, 0.08, 0.09, 0.09])
    np.testing.assert_allclose(final[0.8], [0.09, 0.09])


def test_adaptive_rate_below_zero_counts_as_covered_so_bands_narrow_again_after_a_storm():
    # Gibbs & Candès: where α_t ≤ 0 the set is the whole line, which covers; a storm cannot push α_t far below 0
    scores = np.sort(np.random.default_rng(1).normal(0, 0.01, 2_000) ** 2)[:, None] ** 0.5
    calibration = Conformal({0.8: scores}, positive=True)
    steps = np.r_[np.random.default_rng(2).normal(0, 0.05, 1_000), np.random.default_rng(3).normal(0, 0.01, 1_000)]
    forecast = np.full((2_000, 1), 100.0)
    bands, _ = calibration.adaptive_bands(forecast * np.exp(steps[:, None]), point_bases(forecast, (0.8,)), 0.005)
    calm = slice(1_300, None)  # a few hundred steps after the storm ended
    inside = (forecast * np.exp(steps[:, None]) <= bands[0.8][1]) & (forecast * np.exp(steps[:, None]) >= bands[0.8][0])
    assert inside[calm].mean() < 0.9  # narrowed again (without the rule it stays at the widest band, ~99.9 %)


def test_bands_beyond_the_calibrated_horizons_stay_ordered_and_widen():
    # a quantile model's base band with a negative correction (its learned band was too wide), then point forecasts
    state = {"positive": True, "half_widths": {"0.8": [-0.01, -0.01]}}
    forecast = np.full((1, 4), 100.0)
    lower, upper = forecast.copy(), forecast.copy()
    lower[:, :2], upper[:, :2] = 95.0, 105.0  # learned band at the first two horizons
    ((low, high),) = bands_from_checkpoint(state, {0.8: (lower, upper)}).values()
    width = (high - low)[0]
    assert (low < forecast).all() and (forecast < high).all() and (np.diff(width) >= 0).all() and width[3] > width[1]


def test_no_bands_where_log_ratio_calibration_meets_prices_that_are_not_positive(caplog):
    state = {"positive": True, "half_widths": {"0.8": [0.01]}}
    assert bands_from_checkpoint(state, point_bases(np.array([[-3.0]]), (0.8,))) == {}
    assert "no intervals" in caplog.text


def test_a_test_period_that_turns_negative_scores_without_intervals_rather_than_failing(compose_cfg, tmp_path):
    # a spread, positive through training and validation, below zero at the end of the test period
    from pricernn.tasks.train import train

    rng = np.random.default_rng(1)
    spread = np.abs(30 + np.cumsum(rng.normal(0, 0.3, 1500))) + 1
    spread[-150:] -= spread[-150] + 2
    days = pd.bdate_range("2015-01-01", periods=1500).strftime("%Y-%m-%d")
    pd.DataFrame({"date": days, "spread": spread}).to_csv(tmp_path / "spread.csv", index=False)
    run = ["data=csv", f"data.path={tmp_path / 'spread.csv'}", "data.date_column=date", "data.target=spread"]
    metrics = train(compose_cfg(*run, "data.scaler=standard", "debug=tiny"), tmp_path / "run")
    assert metrics["test/rmse"] > 0 and not [k for k in metrics if "coverage" in k]  # said in the log, not guessed
    assert "ar/rmse" not in metrics  # nor an AR baseline of log returns (it was NaN)
    assert "coverage" not in (tmp_path / "run" / "horizons.csv").read_text()


def test_a_checkpoint_from_before_quantile_models_resumes(compose_cfg, tmp_path):
    from pricernn.tasks.train import train

    train(compose_cfg("debug=tiny"), tmp_path / "old")
    last = tmp_path / "old" / "checkpoints" / "last.ckpt"
    state = torch.load(last, weights_only=True)
    for key in ("loss", "quantiles"):  # the keys such a checkpoint lacks
        del state["pricernn_config"]["model"][key]
    torch.save(state, last)
    resumed = train(compose_cfg("debug=tiny", "trainer.max_epochs=3", f"resume={last}"), tmp_path / "resumed")
    assert resumed["epochs"] == 3
