"""Multi-step forecasts never worse than the last price without saying so: the per-horizon strategy choice and the
pull toward the last price, fitted on validation data; the per-horizon loss weights."""

import numpy as np
import pandas as pd
import pytest
from conftest import CONF_DIR
from hydra import compose, initialize_config_dir

from pricernn.combination import Combination, fit_combination
from pricernn.data import PriceDataModule
from pricernn.predict import forecast_history
from pricernn.training import train


def test_the_weight_is_the_least_squares_slope_where_the_signal_is_significant():
    rng = np.random.default_rng(0)
    last = np.full(500, 100.0)
    moves = rng.normal(0, 0.01, (500, 2))  # the model's predicted moves at horizons 1 and 2
    noise = rng.normal(0, 0.001, (500, 2))
    # half of each predicted move happens at h = 1; twice of it at h = 2 (the weight stops at 1)
    actual = last[:, None] * (1 + np.column_stack([0.5 * moves[:, 0], 2.0 * moves[:, 1]]) + noise)
    combination = fit_combination({"recursive": last[:, None] * (1 + moves)}, actual, last)
    slope = (moves[:, 0] @ (actual[:, 0] / 100 - 1)) / (moves[:, 0] @ moves[:, 0])
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
