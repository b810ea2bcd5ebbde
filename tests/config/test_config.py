"""The typed config schema and the command-line check: every wrong key or value is one line naming it."""

import pytest
from conftest import CONF_DIR

from pricernn import UserError
from pricernn.config.validate import validate
from pricernn.tasks.cli import check_command_line


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["data.window=abc"], "data.window=abc: expected a whole number"),
        (["model.lr=fast"], "model.lr=fast: expected a number"),
        (["data.split=[0.7,0.2]"], "data.split=[0.7,0.2] must be three positive fractions"),
        (["data.split=[0.7,a,0.15]"], "data.split=[0.7,a,0.15]: expected a list of numbers"),
        (["model.hidden_size=-4"], "model.hidden_size=-4 must be at least 1"),
        (["model.dropout=1.5"], "model.dropout=1.5 must be in [0, 1)"),
        (["data.scaler=robust"], "unknown data.scaler=robust; choose one of: window, standard, minmax, none"),
        (["trainer.max_epochs=many"], "trainer.max_epochs=many: expected a whole number"),
        (["data.windw=30"], "unknown key data.windw; did you mean data.window?"),
        (
            ["model.loss=quantile", "model.quantiles=[0.1,0.9]"],
            "model.quantiles=[0.1,0.9] must be distinct levels between 0 and 1 with 0.5 among them",
        ),
        (
            [
                "model.loss=quantile",
                "model.strategy=direct",
                "data.target_transform=log_return",
                "data.scaler=standard",
            ],
            "model.loss=quantile with data.target_transform=log_return learns each step's return quantiles",
        ),
        (["evaluation.intervals=[0.8,1.2]"], "evaluation.intervals=[0.8,1.2] must be distinct levels between 0 and 1"),
        (
            ["evaluation.intervals=[0.8,0.801]"],
            "evaluation.intervals=[0.8,0.801] must be distinct levels between 0 and 1 in whole percent",
        ),
        (
            ["evaluation.interval_method=quantile"],
            "evaluation.interval_method=quantile reports learned bands: set model.loss=quantile, model.strategy=direct "
            "(learned bands exist only for the horizons a network outputs), "
            "model.quantiles=[0.025,0.1,0.5,0.9,0.975] (the levels' pairs); or use evaluation.interval_method=aci",
        ),
        (
            ["evaluation.interval_method=quantile", "model.loss=quantile", "model.strategy=direct"],
            "evaluation.interval_method=quantile reports learned bands: set model.quantiles=[0.025,0.1,0.5,0.9,0.975]",
        ),
        (["+data.windw=30"], "unknown key data.windw; did you mean data.window?"),
        (["+trainer.max_epoch=3"], "unknown key trainer.max_epoch; did you mean trainer.max_epochs?"),
        (["model=transformer"], "model=transformer: no such option; choose one of: gru, lstm, rnn"),
        (["data.val_start=2015-01-02"], "data.val_start and data.test_start go together"),
        (["data.end=yesterday"], "data.end=yesterday: expected a date like 2016-01-04"),
        (["data.window=[1"], "data.window=[1: not a valid override"),
        (["data.freq=bogus"], "data.freq='bogus' is not a pandas frequency alias: use one such as B, D, h"),
        (["data.calendar=XNYZ"], "data.calendar='XNYZ' is not a known exchange calendar: try"),
        (["trainer.accelerator=tpu"], "unknown trainer.accelerator=tpu; choose one of: cpu, gpu, cuda, mps, auto"),
        (["-cn", "backtest", "folds=0"], "folds=0 must be at least 1"),  # another primary config, its schema
        # every value of a sweep is checked before the first run starts
        (["-m", "model=rnn,gru", "data.window=10,abc"], "data.window=abc: expected a whole number"),
        (["-m", "model.hidden_size=range(-2,3)"], "model.hidden_size=-2 must be at least 1"),
    ],
)
def test_a_wrong_key_or_value_is_one_line_naming_it(args, message):
    with pytest.raises(UserError) as caught:
        check_command_line("train", args, CONF_DIR)
    assert str(caught.value).startswith(message) and "\n" not in str(caught.value)


@pytest.mark.parametrize(
    "args",
    [
        [],
        ["data.window=30", "model=gru", "data.features=[Open,Close]", "~callbacks.early_stopping"],
        ["-m", "hydra/launcher=joblib", "hydra.launcher.n_jobs=2", "model=rnn,lstm", "data.window=10,20"],
        ["-m", "hparams_search=optuna", "model.lr=tag(log, interval(0.0001, 0.1))"],
        ["trainer=ddp", "trainer.accelerator=cpu", "debug=tiny", "experiment=sp500_gru"],
        ["--cfg", "job", "data.window=abc"],  # Hydra prints the config; nothing runs
        ["-m", "model=glob(*)", "debug=fast"],  # only the sweeper can list a glob's values
        ["data.calendar=XNYS", "data.freq=h"],
    ],
)
def test_good_command_lines_pass(args):
    check_command_line("train", args, CONF_DIR)


def test_a_config_dir_of_the_user_s_own_is_searched_as_hydra_does(tmp_path):
    (tmp_path / "experiment").mkdir()
    (tmp_path / "experiment" / "mine.yaml").write_text("# @package _global_\ndata:\n  window: 12\n")
    check_command_line("train", ["--config-dir", str(tmp_path), "experiment=mine"], CONF_DIR)
    with pytest.raises(UserError, match="data.window=abc: expected a whole number"):
        check_command_line("train", [f"-cd={tmp_path}", "experiment=mine", "data.window=abc"], CONF_DIR)


def test_the_python_api_takes_the_values_its_signature_promises():
    import numpy as np

    from pricernn.data import PriceDataModule
    from pricernn.models import RecurrentForecaster

    dm = PriceDataModule(features="Close", window=np.int64(30), split=(0.7, 0.15, 0.15))
    assert dm.features == ["Close"] and dm.window == 30
    with pytest.raises(UserError, match="data.window=0 must be at least 1"):
        PriceDataModule(window=0)
    with pytest.raises(UserError, match=r"model.dropout=1.5 must be in \[0, 1\)"):
        RecurrentForecaster(1, dropout=1.5)


def test_validation_converts_types_and_keeps_only_the_trainer_keys_given(compose_cfg):
    cfg = validate(compose_cfg("data.window=30", "data.features=Close", "debug=tiny"))
    assert cfg.data.window == 30 and list(cfg.data.features) == ["Close"]  # one column is a list of one
    assert "max_steps" not in cfg.trainer and cfg.trainer.max_epochs == 2  # Lightning's own defaults apply


def test_the_scaler_follows_the_transform_unless_given(compose_cfg):
    from pricernn.data import PriceDataModule

    for transform, scaler in (("price", "window"), ("log_return", "standard")):
        cfg = validate(compose_cfg(f"data.target_transform={transform}"))
        assert cfg.data.scaler == scaler
        dm = PriceDataModule(target_transform=transform)
        assert dm.scaler == dm.settings["scaler"] == scaler  # and the checkpoint's data contract says so
    check_command_line("train", ["data.target_transform=log_return"], CONF_DIR)
    assert validate(compose_cfg("data.scaler=minmax")).data.scaler == "minmax"
    with pytest.raises(UserError, match="data.scaler=window scales prices by the last price; with data.target_tr"):
        check_command_line("train", ["data.target_transform=log_return", "data.scaler=window"], CONF_DIR)


def test_the_predict_and_backtest_configs_have_their_own_keys():
    check_command_line("predict", ["ckpt=some.ckpt", "steps=5", "data.path=x.csv"], CONF_DIR)
    with pytest.raises(UserError, match="steps=0 must be at least 1"):
        check_command_line("predict", ["steps=0"], CONF_DIR)
    with pytest.raises(UserError, match="folds=0 must be at least 1"):
        check_command_line("backtest", ["folds=0"], CONF_DIR)


def test_the_scripts_exit_2_with_the_line_before_importing_torch(run_script):
    result = run_script("train.py", "data.window=abc", timeout=60)
    assert result.returncode == 2 and result.stderr == "error: data.window=abc: expected a whole number\n"
    result = run_script("predict.py", "+data.windw=3", timeout=60)
    assert result.returncode == 2 and result.stderr == "error: unknown key data.windw; did you mean data.window?\n"
