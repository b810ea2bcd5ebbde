import math

import numpy as np
import pandas as pd
import pytest
import torch

from pricernn import UserError
from pricernn.models import RecurrentForecaster
from pricernn.tasks.train import train


@pytest.mark.parametrize("cell", ["rnn", "lstm", "gru"])
def test_each_cell_is_the_torch_module_with_a_multi_step_head(cell):
    model = RecurrentForecaster(n_features=3, horizon=4, cell=cell, hidden_size=8, num_layers=2)
    assert type(model.nets["recursive"].rnn) is {"rnn": torch.nn.RNN, "lstm": torch.nn.LSTM, "gru": torch.nn.GRU}[cell]
    assert model(torch.randn(5, 12, 3)).shape == (5, 4)


def test_the_strategies_build_their_networks_and_the_auto_model_trains_both():
    auto = RecurrentForecaster(n_features=1, horizon=10, hidden_size=8, num_layers=1, strategy="auto")
    x, y = torch.randn(6, 12, 1), torch.randn(6, 10)
    assert set(auto.nets) == {"recursive", "direct"} and auto.primary == "recursive"
    assert auto(x).shape == (6, 1) and auto(x, "direct").shape == (6, 10)
    direct = RecurrentForecaster(n_features=1, horizon=10, hidden_size=8, num_layers=1, strategy="direct")
    assert set(direct.nets) == {"direct"} and direct(x).shape == (6, 10)
    # the loss is the one-step MSE plus the direct network's per-horizon MSEs, weighted to a mean of 1
    weights = torch.arange(1.0, 11.0)
    auto = RecurrentForecaster(1, horizon=10, hidden_size=8, num_layers=1, strategy="auto", loss_weights=list(weights))
    one, many = auto(x, "recursive"), auto(x, "direct")
    by_hand = ((one[:, 0] - y[:, 0]) ** 2).mean() + (((many - y) ** 2).mean(dim=0) * weights / weights.mean()).mean()
    assert auto._loss(x, y).item() == pytest.approx(by_hand.item(), rel=1e-6)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"cell": "transformer"}, r"unknown model.cell=transformer; choose one of: rnn, lstm, gru"),
        ({"hidden_size": 0}, r"model.hidden_size=0 must be at least 1"),
        ({"num_layers": -1}, r"model.num_layers=-1 must be at least 1"),
        ({"optimizer": "sgd"}, r"unknown model.optimizer=sgd"),
        ({"scheduler": "step"}, r"unknown model.scheduler=step"),
        ({"dropout": 1.5}, r"model.dropout=1.5 must be in \[0, 1\)"),
    ],
)
def test_bad_model_options_name_the_option(kwargs, message):
    with pytest.raises(UserError, match=message):
        RecurrentForecaster(n_features=1, **kwargs)


@pytest.mark.parametrize("cell", ["rnn", "lstm", "gru"])
def test_each_cell_trains_through_the_compose_api(compose_cfg, tmp_path, cell):
    cfg = compose_cfg(f"model={cell}", "debug=tiny", "model.scheduler=cosine")
    metrics = train(cfg, tmp_path / "run")
    assert metrics["epochs"] == 2 and math.isfinite(metrics["test/rmse"])
    assert (tmp_path / "run" / "checkpoints" / "best.ckpt").is_file()
    assert (tmp_path / "run" / "checkpoints" / "last.ckpt").is_file()


def test_same_seed_gives_the_same_metrics(compose_cfg, tmp_path):
    runs = [train(compose_cfg("debug=tiny", "model=lstm", "seed=7"), tmp_path / f"run{i}") for i in range(2)]
    keys = [k for k in runs[0] if not k.endswith("_seconds")]
    np.testing.assert_equal({k: runs[0][k] for k in keys}, {k: runs[1][k] for k in keys})  # NaN == NaN here
    other = train(compose_cfg("debug=tiny", "model=lstm", "seed=8"), tmp_path / "run_other")
    assert other["val/loss_best"] != runs[0]["val/loss_best"]  # (the test forecasts may both be the last price)


def _noisy_sine(path, n=1200, period=25.0, noise=0.3, seed=0):
    """A price series with a known, learnable pattern: 100 + 10 sin(2πt/25) + N(0, 0.3²)."""
    rng = np.random.default_rng(seed)
    t = np.arange(n)
    close = 100 + 10 * np.sin(2 * np.pi * t / period) + rng.normal(0, noise, n)
    pd.DataFrame({"Date": pd.bdate_range("2000-01-03", periods=n), "Close": close}).to_csv(path, index=False)
    return path


@pytest.mark.parametrize("cell", ["rnn", "lstm", "gru"])
def test_each_cell_learns_a_known_pattern_well_below_naive(compose_cfg, tmp_path, cell):
    path = _noisy_sine(tmp_path / "sine.csv")
    cfg = compose_cfg(
        f"model={cell}",
        f"data.path={path}",
        "data.window=30",
        "model.hidden_size=24",
        "model.num_layers=1",
        "model.lr=0.01",
        "trainer.max_epochs=25",
        "data.batch_size=32",
        "callbacks.early_stopping.patience=8",
    )
    metrics = train(cfg, tmp_path / "run")
    # the naive error is the sine's step (≈2.5); the noise floor is 0.3: a model that learned sits far below
    assert metrics["test/rmse_ratio_naive"] < 0.4, metrics
    assert metrics["test/directional_accuracy"] > 0.8
    # ... and significantly so, next step and 5 steps ahead (recursively), with direction far from a coin
    assert metrics["test/dm_stat"] < 0 and metrics["test/dm_pvalue"] < 0.01
    assert metrics["test/h5/skill"] > 0.3 and metrics["test/h5/dm_pvalue"] < 0.01
    assert metrics["test/ic"] > 0.9 and metrics["test/pt_pvalue"] < 1e-6 and metrics["test/h5/dir_pvalue"] < 1e-6


def test_real_predictability_is_found_and_said(compose_cfg, tmp_path, capsys):
    # log returns r_t = 0.3 r_t-1 + e_t: tomorrow's move is partly known today. The best forecast's RMSE is
    # sqrt(1 - 0.3²) = 0.954 of naive's, its information coefficient 0.3
    rng = np.random.default_rng(3)
    e, r = rng.normal(0, 0.01, 2500), np.zeros(2500)
    for t in range(1, 2500):
        r[t] = 0.3 * r[t - 1] + e[t]
    path = tmp_path / "ar1.csv"
    pd.DataFrame({"Date": pd.bdate_range("2005-01-03", periods=2500), "Close": 100 * np.exp(np.cumsum(r))}).to_csv(
        path, index=False
    )
    cfg = compose_cfg(f"data.path={path}", "data.window=20", "model.hidden_size=16", "model.num_layers=1",
                      "trainer.max_epochs=8")  # fmt: skip
    metrics = train(cfg, tmp_path / "run")
    assert metrics["test/ic"] > 0.1 and metrics["test/ic_pvalue"] < 0.01, metrics
    assert metrics["test/pt_pvalue"] < 0.05 and metrics["test/rmse_ratio_naive"] < 1
    # the linear baseline a neural model must beat finds the AR(1), at about its theoretical error
    assert metrics["ar/order"] >= 1 and metrics["ar/rmse"] / metrics["naive/rmse"] == pytest.approx(0.954, abs=0.02)
    verdict = next(line for line in capsys.readouterr().out.splitlines() if line.startswith("next day: "))
    assert "no evidence" not in verdict and "IC +" in verdict and "PT p" in verdict


def test_a_random_walk_is_not_beaten_significantly(compose_cfg, tmp_path):
    rng = np.random.default_rng(1)
    close = 100 * np.exp(np.cumsum(rng.normal(0, 0.01, 1500)))
    path = tmp_path / "walk.csv"
    pd.DataFrame({"Date": pd.bdate_range("2000-01-03", periods=1500), "Close": close}).to_csv(path, index=False)
    cfg = compose_cfg(
        "model=gru", f"data.path={path}", "data.window=20", "model.hidden_size=16", "model.num_layers=1",
        "trainer.max_epochs=5",
    )  # fmt: skip
    metrics = train(cfg, tmp_path / "run")
    # tomorrow's move of a random walk is unpredictable: whatever the model learned, it is not significantly better
    for key in ("test", "test/h5"):
        assert not (metrics[f"{key}/dm_stat"] < 0 and metrics[f"{key}/dm_pvalue"] < 0.05), metrics
        assert metrics[f"{key}/ic_pvalue"] > 0.05
    # not significant, or n/a (NaN) where the model called one direction only
    assert not metrics["test/pt_pvalue"] <= 0.05 and not metrics["test/h5/dir_pvalue"] <= 0.05
    assert metrics["trade/vs_hold_pvalue"] > 0.05
