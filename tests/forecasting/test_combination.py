"""Multi-step forecasts never worse than the last price without saying so: the per-horizon strategy choice and the
pull toward the last price, fitted on validation data; the per-horizon loss weights."""

import numpy as np
import pandas as pd
import pytest
from conftest import CONF_DIR
from hydra import compose, initialize_config_dir

from pricernn.data import PriceDataModule
from pricernn.forecasting.combination import Combination, fit_combination, fit_drift
from pricernn.tasks.predict import forecast_history
from pricernn.tasks.train import train


def test_the_weight_is_the_least_squares_slope_where_the_signal_is_significant():
    rng = np.random.default_rng(0)
    last = np.full(500, 100.0)
    moves = rng.normal(0, 0.01, (500, 2))  # the model's predicted moves at horizons 1 and 2
    noise = rng.normal(0, 0.001, (500, 2))
    # half of each predicted move happens at h = 1; twice of it at h = 2 (the weight stops at 1)
    actual = last[:, None] * (1 + np.column_stack([0.5 * moves[:, 0], 2.0 * moves[:, 1]]) + noise)
    combination = fit_combination({"recursive": last[:, None] * (1 + moves)}, actual, last)
    calls, realised = moves[:, 0] - moves[:, 0].mean(), actual[:, 0] / 100 - 1  # the slope with an intercept
    slope = (calls @ (realised - realised.mean())) / (calls @ calls)
    assert combination.shrink == (pytest.approx(slope), 1.0) and slope == pytest.approx(0.5, abs=0.01)
    unrelated = last[:, None] * (1 + rng.normal(0, 0.01, (500, 2)))
    assert fit_combination({"recursive": last[:, None] * (1 + moves)}, unrelated, last).shrink == (0.0, 0.0)
    assert fit_combination({"recursive": last[:, None] * (1 + moves)}, unrelated, last, shrink=False).shrink == (1, 1)


def test_on_random_walks_the_weights_fall_to_zero():
    """200 validation periods of a random walk with forecasts as persistent as a trend-follower's: a least-squares
    weight cut to [0, 1] would keep about half of them; the significance gate keeps almost none."""
    rng = np.random.default_rng(1)
    kept = []
    for _ in range(200):
        log_price = np.cumsum(rng.normal(0, 0.01, 320))
        shocks, signal = rng.normal(size=320), np.zeros(320)
        for t in range(1, 320):
            signal[t] = 0.95 * signal[t - 1] + shocks[t]
        origins, steps = np.arange(300), 10
        last = 100 * np.exp(log_price[origins])
        actual = 100 * np.exp(log_price[origins[:, None] + np.arange(1, steps + 1)])
        model = last[:, None] * np.exp(0.0005 * np.arange(1, steps + 1) * signal[origins][:, None])
        kept.append(any(w > 0 for w in fit_combination({"recursive": model}, actual, last).shrink))
    assert np.mean(kept) <= 0.07, np.mean(kept)


def test_the_better_strategy_is_chosen_per_horizon_and_applied():
    last = np.array([100.0, 200.0])
    actual = np.array([[101.0, 103.0], [202.0, 206.0]])
    paths = {
        "recursive": np.array([[101.0, 110.0], [202.0, 215.0]]),
        "direct": np.array([[99.0, 103.0], [195.0, 206.0]]),
    }
    combination = fit_combination(paths, actual, last, shrink=False)
    assert combination.choice == ("recursive", "direct")
    np.testing.assert_allclose(combination.apply(paths, last), actual)
    # beyond the validated horizons the last one's choice and weight apply
    half = Combination(("recursive", "direct"), (1.0, 0.5))
    three = {k: np.column_stack([v, v[:, 1] + 1]) for k, v in paths.items()}
    np.testing.assert_allclose(half.apply(three, last)[:, 2], last + 0.5 * (three["direct"][:, 2] - last))


def test_the_networks_drift_is_removed_and_the_weight_reads_only_its_calls():
    """Validation rose 10 bp a bar, and the network predicts +8 bp a bar above its calls (a drift it learned); the
    calls themselves carry half of each move. A slope through the origin would count the shared trend as signal
    (λ cut to 1); the centred fit finds λ = 0.5, takes the drift out, and when the test falls the forecasts do
    not ride the trend."""
    rng = np.random.default_rng(4)
    horizon = np.arange(1, 6)
    last = np.full(600, 100.0)
    signal = rng.normal(0, 0.002, (600, 1)) * np.sqrt(horizon)
    predicted = last[:, None] * (1 + signal + 0.0008 * horizon)  # calls + the network's drift
    actual = last[:, None] * (1 + 0.5 * signal + 0.001 * horizon + rng.normal(0, 0.0015, (600, 5)) * np.sqrt(horizon))
    combination = fit_combination({"recursive": predicted}, actual, last)
    assert combination.shrink == pytest.approx([0.5] * 5, abs=0.1)
    assert combination.center == pytest.approx(list(0.0008 * horizon + signal.mean(axis=0)))
    # a test period that falls: the forecasts' mean move is their calls' (≈ 0), not the network's +8 bp a bar
    calls = rng.normal(0, 0.002, (600, 1)) * np.sqrt(horizon)
    forecast = combination.apply({"recursive": last[:, None] * (1 + calls + 0.0008 * horizon)}, last)
    assert np.abs(forecast / last[:, None] - 1).mean(axis=0) == pytest.approx(
        0.5 * np.abs(calls).mean(axis=0), rel=0.25
    )
    assert np.abs((forecast / last[:, None] - 1).mean(axis=0)).max() < 0.0002


def test_a_drift_is_kept_only_where_training_shows_it_and_validation_confirms_it():
    rng = np.random.default_rng(5)

    def moves(n: int, mean: float) -> tuple[np.ndarray, np.ndarray]:
        return rng.normal(mean, 0.01, n), np.arange(n)

    strong = moves(5000, 0.0006)  # t ≈ 4 on training
    assert fit_drift(*strong, *moves(3000, 0.0006)) == pytest.approx(strong[0].mean())  # confirmed: kept
    assert fit_drift(*strong, *moves(3000, -0.0006)) == 0.0  # validation turned: not kept
    assert fit_drift(*strong, *moves(300, 0.0006)) == 0.0  # 300 days cannot confirm 6 bp a day (t ≈ 1)
    assert fit_drift(*moves(5000, 0.0), *moves(3000, 0.0006)) == 0.0  # none in training: validation alone is not enough
    assert fit_drift(np.zeros(0), np.zeros(0), *moves(300, 0.0)) == 0.0  # no moves (a spread): none
    # a panel: assets that move together on a day count once, so 20 copies of one asset do not make it significant
    one, dates = moves(2000, 0.0)
    one += 0.0003 - one.mean()  # t ≈ 1.3 on its own: not kept
    assert fit_drift(np.tile(one, 20), np.tile(dates, 20), *moves(3000, 0.0006)) == 0.0
    assert fit_drift(np.tile(one, 20), np.arange(40000), *moves(3000, 0.0006)) > 0  # as 20 unrelated days: kept


def test_forecasts_beyond_the_validated_horizons_and_from_old_checkpoints():
    paths = {"recursive": np.array([[102.0, 104.0, 106.0]])}
    last = np.array([100.0])
    # beyond H the network's drift removed grows with the horizon, and the kept drift is h d
    combination = Combination(("recursive",), (1.0,), (0.02,), 0.001)
    np.testing.assert_allclose(combination.apply(paths, last), [[100.1, 100.2, 100.3]])
    assert Combination.from_dict(combination.to_dict()) == combination
    # a checkpoint written before centres and drifts: last + λ (model - last), as it was trained to forecast
    old = Combination.from_dict({"choice": ["recursive"], "shrink": [0.5]})
    assert old.center == () and old.drift == 0.0
    np.testing.assert_allclose(old.apply(paths, last), [[101.0, 102.0, 103.0]])


@pytest.fixture
def growth_csv(tmp_path):
    path = tmp_path / "growth.csv"
    pd.DataFrame({"Date": pd.bdate_range("2001-01-01", periods=400), "Close": 100 * 1.01 ** np.arange(400)}).to_csv(
        path, index=False
    )
    return path


def test_the_loss_weights_by_hand(growth_csv):
    # prices growing 1 % a bar: the naive forecast misses horizon h by 1.01^h - 1 of the last price, always, so the
    # naive mean squared error at h is (1.01^h - 1)² / y_scale² and the weights 1/that, scaled to a mean of 1
    dm = PriceDataModule(path=str(growth_csv), window=10, horizon=4)
    dm.setup()
    inverse = 1 / (1.01 ** np.arange(1, 5) - 1) ** 2
    assert dm.loss_weights() == pytest.approx(list(inverse / inverse.mean()), rel=1e-6)


def _series(path, returns: np.ndarray) -> str:
    days = pd.bdate_range("2005-01-03", periods=len(returns))
    pd.DataFrame({"Date": days, "Close": 100 * np.exp(np.cumsum(returns))}).to_csv(path, index=False)
    return str(path)


SMALL = ["data.window=20", "model.hidden_size=16", "model.num_layers=1", "trainer.max_epochs=8"]


def test_with_a_signal_that_fades_no_horizon_is_worse_than_the_last_price(compose_cfg, tmp_path):
    # log returns r_t = 0.3 r_t-1 + e_t: real one-step signal, gone within a few steps
    rng = np.random.default_rng(3)
    e, r = rng.normal(0, 0.01, 2500), np.zeros(2500)
    for t in range(1, 2500):
        r[t] = 0.3 * r[t - 1] + e[t]
    path = _series(tmp_path / "ar1.csv", r)
    raw = train(compose_cfg(f"data.path={path}", *SMALL, "evaluation.shrink=false"), tmp_path / "raw")
    guarded = train(compose_cfg(f"data.path={path}", *SMALL), tmp_path / "guarded")
    for h in (1, 5, 10):
        assert guarded[f"test/h{h}/rmse"] / guarded[f"naive/h{h}/rmse"] <= 1.005, h
    assert guarded["test/h1/rmse"] == pytest.approx(raw["test/h1/rmse"], rel=0.01)  # the one-step skill is kept
    assert guarded["test/h1/shrink"] == 1.0 and guarded["test/h10/shrink"] < 1.0


def test_on_a_random_walk_the_forecasts_are_the_last_price(compose_cfg, tmp_path):
    rng = np.random.default_rng(1)
    path = _series(tmp_path / "walk.csv", rng.normal(0, 0.01, 1500))
    metrics = train(compose_cfg(f"data.path={path}", *SMALL, "model=gru"), tmp_path / "run")
    for h in range(1, 11):
        assert metrics[f"test/h{h}/shrink"] == 0.0
        assert metrics[f"test/h{h}/rmse"] == metrics[f"naive/h{h}/rmse"]
    # the checkpoint carries the combination: forecasts from it are the last price too, however far ahead
    with initialize_config_dir(config_dir=CONF_DIR, version_base="1.3"):
        cfg = compose("predict", [f"ckpt={tmp_path / 'run' / 'checkpoints' / 'best.ckpt'}", "steps=15"])
    forecast = forecast_history(cfg, tmp_path / "forecast")
    assert (forecast.frame["predicted"] == forecast.last_price).all()


def _ar1(rng: np.random.Generator, n: int, phi: float = 0.3) -> np.ndarray:
    e, r = rng.normal(0, 0.01, n), np.zeros(n)
    for t in range(1, n):
        r[t] = phi * r[t - 1] + e[t]
    return r


def _trend(n: int, before: float, after: float) -> np.ndarray:
    """A mean log return per day: ``before`` through training and validation (the first 85 %), ``after`` on test."""
    return np.where(np.arange(n) < int(0.85 * n), before, after)


def _ratios(metrics: dict) -> dict[int, tuple[float, float]]:
    """Per horizon: RMSE as a ratio to naive's, and Diebold-Mariano's p-value."""
    return {h: (metrics[f"test/h{h}/rmse"] / metrics[f"naive/h{h}/rmse"], metrics[f"test/h{h}/dm_pvalue"])
            for h in range(1, 11)}  # fmt: skip


# Series on which the network learns a drift and the validation period shares it, so that a guard that counts a
# shared trend as signal keeps the drift (each one checked to fail that way before the network's drift was
# removed): (what, log returns, what the test period must show)
DRIFTING = {
    # no drift at all; the validation period happened to rise (+12 bp a day) and the network leans up (+2 bp)
    "driftless random walk": lambda: np.random.default_rng(4).normal(0, 0.01, 2000),
    # +8 bp a day through validation, -8 after
    "random walk whose drift reverses": lambda: (
        np.random.default_rng(3).normal(0, 0.01, 2000) + _trend(2000, 8e-4, -8e-4)
    ),
    # AR(1) log returns (0.3) around a mean of +8 bp a day that turns to -8 after validation
    "AR(1) with a level shift": lambda: _ar1(np.random.default_rng(3), 2000) + _trend(2000, 8e-4, -8e-4),
}


@pytest.mark.parametrize("name", DRIFTING)
def test_forecasts_do_not_ride_the_trend_the_training_and_validation_periods_shared(compose_cfg, tmp_path, name):
    metrics = train(
        compose_cfg(f"data.path={_series(tmp_path / 'prices.csv', DRIFTING[name]())}", *SMALL), tmp_path / "run"
    )
    ratios = _ratios(metrics)
    assert all(ratio <= 1.005 for ratio, _ in ratios.values()), ratios
    assert not any(ratio > 1 and p < 0.05 for ratio, p in ratios.values()), ratios  # none significantly worse
    assert metrics["eval/drift_bp"] == 0.0  # no drift kept: by default none is
    if name == "driftless random walk":  # the forecasts' mean move is 0 at every horizon, as the walk's
        assert all(abs(metrics[f"test/h{h}/drift_bp"]) < 0.5 for h in range(1, 11))
    if name == "AR(1) with a level shift":  # the one-step signal is kept
        assert ratios[1][0] <= 0.98 and ratios[1][1] < 0.05, ratios


@pytest.mark.slow
def test_the_default_run_keeps_the_one_step_skill_and_is_never_worse_than_the_last_price(compose_cfg, tmp_path):
    # the default LSTM on 5,000 days of AR(1) log returns (0.3): the best one-step RMSE is sqrt(1 - 0.09) = 0.954
    # of naive's; the signal is all but gone after a few steps
    rng = np.random.default_rng(7)
    e, r = rng.normal(0, 0.01, 5000), np.zeros(5000)
    for t in range(1, 5000):
        r[t] = 0.3 * r[t - 1] + e[t]
    metrics = train(compose_cfg(f"data.path={_series(tmp_path / 'ar1.csv', r)}"), tmp_path / "run")
    ratio = {h: metrics[f"test/h{h}/rmse"] / metrics[f"naive/h{h}/rmse"] for h in (1, 5, 10)}
    assert ratio[1] <= 0.96 and ratio[5] <= 1.005 and ratio[10] <= 1.005, ratio


def test_on_a_panel_the_strategy_is_chosen_by_relative_errors_so_a_dear_stock_does_not_choose_for_all():
    # a $500 stock where "direct" is 10 % worse and a $5 one where it is 5x better: in dollars the dear stock
    # decides (recursive); relative to each last price, direct is better on average
    rng = np.random.default_rng(0)
    last = np.r_[np.full(100, 500.0), np.full(100, 5.0)]
    actual = last[:, None] * (1 + 0.01 * rng.standard_normal((200, 1)))
    recursive = actual + last[:, None] * 0.010 * rng.standard_normal((200, 1))
    spread = np.r_[np.full(100, 0.011), np.full(100, 0.002)][:, None]
    direct = actual + last[:, None] * spread * rng.standard_normal((200, 1))
    paths = {"recursive": recursive, "direct": direct}
    same_days = np.r_[np.arange(100), np.arange(100)]  # two assets on the same 100 dates
    assert fit_combination(paths, actual, last, shrink=False, dates=same_days).choice == ("direct",)
    assert fit_combination(paths, actual, last, shrink=False).choice == ("recursive",)  # one series: dollars


def test_the_guard_counts_assets_that_move_together_on_a_day_once():
    # ten assets with the very same moves on each day carry one asset's evidence: with the dates, the guard's test
    # (Driscoll-Kraay: scores summed per date) decides as on one copy; taken as 3,000 independent rows it would
    # keep a weak, insignificant pull toward the model
    rng = np.random.default_rng(2)
    last = np.full(300, 100.0)
    moves = 0.01 * rng.standard_normal(300)
    realised = 0.05 * moves + 0.01 * rng.standard_normal(300)
    paths, actual = {"recursive": (last * (1 + moves))[:, None]}, (last * (1 + realised))[:, None]
    assert fit_combination(paths, actual, last).shrink == (0.0,)  # one asset: not significant

    def ten(x: np.ndarray) -> np.ndarray:
        return np.concatenate([x] * 10)

    copies = {"recursive": ten(paths["recursive"])}, ten(actual), ten(last)
    assert fit_combination(*copies, dates=ten(np.arange(300))).shrink == (0.0,)
    assert fit_combination(*copies).shrink[0] > 0  # what ignoring the dates would claim
