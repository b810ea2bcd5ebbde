"""Walk-forward backtests: folds tile the test period, and no fold trains or fits on its own test period."""

import json

import pandas as pd
import pytest
import torch
from conftest import CONF_DIR
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from pricernn import UserError
from pricernn.data import PriceDataModule
from pricernn.data.transforms import Normalizer


def test_backtest_cli_refits_per_fold_without_seeing_the_fold_test_period(run_script, tmp_path):
    result = run_script("backtest.py", "folds=3", "debug=tiny", "model=gru")
    assert result.returncode == 0, result.stderr[-3000:]
    assert "Walk-forward backtest" in result.stdout and "of folds" in result.stdout
    (run_dir,) = (tmp_path / "outputs" / "backtests").iterdir()

    folds = pd.read_csv(run_dir / "folds.csv")
    assert list(folds["fold"]) == [0, 1, 2]
    # consecutive, non-overlapping test blocks that tile the configured test period (the last 15% of rows)
    full = PriceDataModule(window=20)
    full.setup()
    assert folds["test_start"].iloc[0] == full.split_dates["test"][0]
    assert folds["test_end"].iloc[-1] == full.split_dates["test"][1]
    assert (
        pd.to_datetime(folds["test_start"]).iloc[1:].values > pd.to_datetime(folds["test_end"]).iloc[:-1].values
    ).all()

    summary = json.loads((run_dir / "metrics.json").read_text())
    assert summary["backtest/folds"] == 3
    assert summary["backtest/win_share"] == pytest.approx((folds["skill"] > 0).mean())
    assert summary["backtest/skill_mean"] == pytest.approx(folds["skill"].mean())

    normalizer_scales = []
    for k, fold in folds.iterrows():
        fold_dir = run_dir / f"fold{k}"
        metrics = json.loads((fold_dir / "metrics.json").read_text())
        split = metrics["split_dates"]
        assert split["train"][1] < split["val"][0] <= split["val"][1] < split["test"][0] == fold["test_start"]
        assert split["test"][1] == fold["test_end"]
        assert metrics["test/skill"] == pytest.approx(fold["skill"], rel=1e-5)
        predictions = pd.read_csv(fold_dir / "predictions.csv")
        assert predictions["date"].min() >= fold["test_start"] and predictions["date"].max() == fold["test_end"]
        # the fold's scaler was fitted on its own training period: refit it from a history that ends the day
        # before the fold's validation start (nothing later exists) and compare with what its checkpoint carries
        ckpt = torch.load(fold_dir / "checkpoints" / "best.ckpt", weights_only=True)
        stored = ckpt["hyper_parameters"]["transform"]["normalizer"]
        last_train_day = str(pd.Timestamp(split["val"][0]) - pd.Timedelta(days=1))[:10]
        past = PriceDataModule(end=last_train_day).prepare_series()[0]
        refit = Normalizer.fit(past, len(past.dates), window=20, horizon=1, scaler="window").to_dict()
        assert stored["y_scale"] == pytest.approx(refit["y_scale"], rel=1e-12)
        assert stored["x_scale"] == pytest.approx(refit["x_scale"], rel=1e-12)
        normalizer_scales.append(stored["y_scale"])
    assert len(set(normalizer_scales)) == 3  # an expanding training window: refitted, not reused

    # one TensorBoard folder per backtest, named by its directory, a run per fold and the summary in it
    (backtest_runs,) = (tmp_path / "outputs" / "tensorboard" / "sp500" / "gru_w20_hs8_l1" / "backtest").iterdir()
    assert backtest_runs.name == run_dir.name
    tb_runs = sorted(backtest_runs.iterdir())
    assert [p.name for p in tb_runs] == ["fold0", "fold1", "fold2", "summary"]
    events = EventAccumulator(str(tb_runs[-1]))
    events.Reload()
    assert [e.value for e in events.Scalars("backtest/fold_skill")] == pytest.approx(list(folds["skill"]), rel=1e-5)
    assert events.Scalars("backtest/win_share")[-1].value == pytest.approx(summary["backtest/win_share"])


def test_backtest_with_too_many_folds_says_so(tmp_path):
    from hydra import compose, initialize_config_dir

    from pricernn.tasks.backtest import backtest

    with initialize_config_dir(config_dir=CONF_DIR, version_base="1.3"):
        cfg = compose("backtest", overrides=["folds=200", "debug=fast", f"logger.save_dir={tmp_path / 'tb'}"])
    with pytest.raises(UserError, match="^folds=200 leaves 3 test rows per fold"):
        backtest(cfg, tmp_path / "bt")


def test_backtest_of_a_multi_feature_model_within_data_end(tmp_path):
    from hydra import compose, initialize_config_dir

    from pricernn.tasks.backtest import backtest

    overrides = ["folds=2", "debug=fast", "data.window=10", "data.features=[Open,High,Low,Close]",
                 "data.end=2010-12-31", f"logger.save_dir={tmp_path / 'tb'}"]  # fmt: skip
    with initialize_config_dir(config_dir=CONF_DIR, version_base="1.3"):
        cfg = compose("backtest", overrides=overrides)
    summary = backtest(cfg, tmp_path / "run")
    folds = pd.read_csv(tmp_path / "run" / "folds.csv")
    # the folds tile the test period of the data up to data.end, not of the whole file
    assert folds["test_end"].iloc[-1] == "2010-12-31"
    until_end = PriceDataModule(window=10, end="2010-12-31")
    until_end.setup()
    assert folds["test_start"].iloc[0] == until_end.split_dates["test"][0]
    # a model reading four columns cannot be fed its own forecasts: its longest scored horizon is its own (1)
    assert summary["backtest/folds"] == 2 and "backtest/h1/win_share" in summary


def test_backtest_of_a_checkpoint_reruns_that_run_s_setup(tmp_path, compose_cfg):
    from hydra import compose, initialize_config_dir
    from omegaconf import OmegaConf

    from pricernn import UserError
    from pricernn.tasks.backtest import backtest
    from pricernn.tasks.train import train

    train(compose_cfg("debug=fast", "data.window=12", "model=gru", "model.hidden_size=8"), tmp_path / "run")
    ckpt = tmp_path / "run" / "checkpoints" / "best.ckpt"
    given = [f"ckpt={ckpt}", "folds=2", "trainer.max_epochs=1"]
    with initialize_config_dir(config_dir=CONF_DIR, version_base="1.3"):
        cfg = compose("backtest", overrides=[*given, f"logger.save_dir={tmp_path / 'tb'}"])
    backtest(cfg, tmp_path / "backtest", task_overrides=given)
    fold = OmegaConf.load(tmp_path / "backtest" / "fold1" / "config.yaml")
    assert (fold.data.window, fold.model.cell, fold.model.hidden_size) == (12, "gru", 8)  # the run's, not defaults
    with pytest.raises(UserError, match="model=rnn: with ckpt= the run's own settings are used, not a group's"):
        backtest(cfg, tmp_path / "other", task_overrides=[*given, "model=rnn"])
