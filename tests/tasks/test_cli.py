"""scripts/train.py as a user runs it: subprocesses, real files, TensorBoard event files read back."""

import json
import re
import sys
from pathlib import Path

import pandas as pd
import pytest
import torch
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
from tensorboard.plugins.hparams.plugin_data_pb2 import HParamsPluginData

from pricernn.tasks.train import train

METRIC_KEYS = [
    "test/mse",
    "test/rmse",
    "test/mae",
    "test/mape",
    "test/directional_accuracy",
    "naive/mse",
    "naive/rmse",
    "naive/mae",
    "naive/mape",
    "naive/directional_accuracy",
    "test/rmse_ratio_naive",
    "test/skill",
    "test/mase",
    "test/dm_stat",
    "test/dm_pvalue",
    "test/h5/dir_pvalue",
    "test/ic",
    "test/ic_pvalue",
    "test/pt_pvalue",
    "test/h5/ic",
    "ar/rmse",
    "ar/h5/rmse",
    "test/dm_ar_pvalue",
    "trade/sharpe",
    "trade/sharpe_pvalue",
    "trade/vs_hold_pvalue",
    "buyhold/max_drawdown",
    "val/rmse_best",
    "drift/rmse",
    "ma/rmse",
    "test/h5/rmse",
    "naive/h5/rmse",
    "drift/h10/mae",
    "test/h10/dm_pvalue",
    "val/loss_best",
    "epochs",
    "train_seconds",
    "params",
]


def _events(run_dir: Path) -> EventAccumulator:
    acc = EventAccumulator(str(run_dir), size_guidance={"scalars": 0, "images": 0, "tensors": 0})
    acc.Reload()
    return acc


def test_train_cli_writes_artifacts_and_tensorboard_logs_and_says_where(run_script, tmp_path):
    result = run_script("train.py", "debug=tiny", "model=gru", "hydra.run.dir=outputs/runs/mine")
    assert result.returncode == 0, result.stderr[-3000:]
    # piped, as in a file, SLURM or CI log: one plain line an epoch, no progress bar redraws
    assert "\r" not in result.stdout + result.stderr
    lines = re.findall(
        r"^epoch (\d)/2: train/loss [\d.]+, val/loss [\d.]+, val/rmse [\d.]+ \([\d.]+ s\)$", result.stdout, re.M
    )
    assert lines == ["1", "2"], result.stdout[:2000]
    assert "next day: " in result.stdout and "RMSE per horizon" in result.stdout and "trading the sign" in result.stdout

    (run_dir,) = (tmp_path / "outputs" / "runs").iterdir()
    # strict JSON: NaN (which Python would write) is null, so any JSON reader takes the file
    metrics = json.loads((run_dir / "metrics.json").read_text(), parse_constant=lambda c: pytest.fail(f"{c} in JSON"))
    assert set(METRIC_KEYS) <= set(metrics)
    assert metrics["test/rmse_ratio_naive"] == pytest.approx(metrics["test/rmse"] / metrics["naive/rmse"])
    predictions = pd.read_csv(run_dir / "predictions.csv", parse_dates=["date"])
    bands = ["lower_80", "upper_80", "lower_95", "upper_95"]
    assert list(predictions.columns) == ["date", "actual", "predicted", *bands, "naive"]
    assert (predictions["lower_95"] <= predictions["lower_80"]).all() and (
        predictions["lower_80"] <= predictions["upper_80"]
    ).all()
    for key in (
        "test/coverage_80",
        "naive/coverage_95",
        "test/width_80",
        "test/winkler_80",
        "test/pinball",
        "test/h10/coverage_80",
    ):
        assert 0 <= metrics[key] < float("inf"), key
    assert predictions["date"].min() >= pd.Timestamp(metrics["split_dates"]["test"][0])
    assert (run_dir / "config.yaml").is_file()
    assert metrics["naive/directional_accuracy"] is None  # null: naive predicts no move
    for figure in ("test_prices", "horizon_errors", "forecast_fan", "trading"):
        assert (run_dir / f"{figure}.png").stat().st_size > 10_000
    horizons = pd.read_csv(run_dir / "horizons.csv")
    assert list(horizons["horizon"]) == list(range(1, 11))
    assert horizons["naive_rmse"].iloc[4] == pytest.approx(metrics["naive/h5/rmse"], rel=1e-5)
    assert {p.name for p in (run_dir / "checkpoints").iterdir()} == {"best.ckpt", "last.ckpt"}

    (tb_run,) = (tmp_path / "outputs" / "tensorboard" / "sp500" / "gru_w20_hs8_l1").iterdir()
    events = _events(tb_run)
    scalars = set(events.Tags()["scalars"])
    assert {
        "train/loss",
        "val/loss",
        "val/rmse",
        "val/mae",
        "val/loss_best",
        "lr-Adam",
        "test/rmse",
        "naive/rmse_by_horizon",
        "test/rmse_ratio_naive",
    } <= scalars
    assert events.Scalars("test/rmse")[-1].value == pytest.approx(metrics["test/rmse"], rel=1e-5)
    assert len(events.Scalars("val/loss")) == 2  # one per epoch
    assert {"test/prices", "test/horizon_errors", "test/forecast_fan", "test/trading"} <= set(events.Tags()["images"])

    hparams = events.PluginTagToContent("hparams")
    start = HParamsPluginData.FromString(hparams["_hparams_/session_start_info"]).session_start_info
    assert start.hparams["model.cell"].string_value == "gru"
    assert start.hparams["data.window"].number_value == 20
    experiment = HParamsPluginData.FromString(hparams["_hparams_/experiment"]).experiment
    assert experiment.metric_infos[0].name.tag == "test/rmse"
    # what the run printed last: where its results are, and the commands that use them
    lines = result.stdout.splitlines()
    assert lines[0] == "run directory: outputs/runs/mine"
    assert "results in outputs/runs/mine/: summary.txt, metrics.json, predictions.csv" in result.stdout
    summary = (tmp_path / "outputs" / "runs" / "mine" / "summary.txt").read_text()
    assert summary.startswith("Test period ") and summary.strip() in result.stdout  # what it printed, kept
    last = "outputs/runs/mine/checkpoints/last.ckpt (resume=)"
    assert f"checkpoints: outputs/runs/mine/checkpoints/best.ckpt (scored above), {last}" in result.stdout
    assert "forecast:    python scripts/predict.py ckpt=outputs/runs/mine/checkpoints/best.ckpt\n" in result.stdout
    (tensorboard,) = [line for line in lines if line.startswith("TensorBoard: tensorboard --logdir ")]
    log_dir = tensorboard.split("--logdir ")[1].split()[0]
    assert (
        list((tmp_path / log_dir).glob("events.out.tfevents.*"))
        and "(all runs: --logdir outputs/tensorboard)" in tensorboard
    )


def test_multirun_gives_each_run_its_directory_and_tensorboard_run(run_script, tmp_path):
    result = run_script("train.py", "-m", "model=rnn,lstm", "debug=fast", "data.window=10")
    assert result.returncode == 0, result.stderr[-3000:]
    (sweep,) = (tmp_path / "outputs" / "multirun").iterdir()
    assert sorted(p.name for p in sweep.iterdir() if p.is_dir()) == ["0", "1"]
    for job in ("0", "1"):
        assert json.loads((sweep / job / "metrics.json").read_text())["epochs"] == 1
    tb = tmp_path / "outputs" / "tensorboard" / "sp500"
    assert sorted(p.name for p in tb.iterdir()) == ["lstm_w10_hs64_l2", "rnn_w10_hs64_l2"]
    # each TensorBoard run is named by its run directory, outputs/multirun/<sweep>/<job>
    assert (tb / "rnn_w10_hs64_l2" / sweep.name / "0").is_dir() and (
        tb / "lstm_w10_hs64_l2" / sweep.name / "1"
    ).is_dir()


def test_unknown_key_and_option_fail_with_one_line_naming_the_closest(run_script):
    result = run_script("train.py", "data.windw=30")
    assert result.returncode == 2 and result.stderr == "error: unknown key data.windw; did you mean data.window?\n"
    result = run_script("train.py", "model=transformer")
    assert result.returncode == 2
    assert result.stderr == "error: model=transformer: no such option; choose one of: gru, lstm, rnn\n"
    result = run_script("train.py", "trainer.enable_progress_bar=false")  # a real key no config file sets
    assert result.returncode == 2 and result.stderr == (
        "error: trainer.enable_progress_bar is not set by any config file: "
        "add it with +trainer.enable_progress_bar=false\n"
    )


def test_last_checkpoint_is_the_last_epoch_and_best_the_best(compose_cfg, tmp_path):
    # a learning rate at which the first epoch stays the best one: Lightning's save_last would leave last.ckpt there
    metrics = train(compose_cfg("debug=tiny", "trainer.max_epochs=4", "model.lr=0.01"), tmp_path / "run")
    best, last = (
        torch.load(tmp_path / "run" / "checkpoints" / f"{n}.ckpt", weights_only=True) for n in ("best", "last")
    )
    assert best["epoch"] < last["epoch"] == metrics["epochs"] - 1 == 3  # epochs count from 0 in checkpoints
    assert last["global_step"] == 4 * 5  # the end of the last epoch: 4 epochs of 5 batches


def test_an_interrupted_run_with_dropout_resumes_to_exactly_the_uninterrupted_result(compose_cfg, tmp_path):
    # dropout draws random numbers in every training step; the generators' states travel in the checkpoint
    run = ["debug=tiny", "model.num_layers=2", "model.dropout=0.3"]
    whole = train(compose_cfg(*run, "trainer.max_epochs=4"), tmp_path / "whole")
    train(compose_cfg(*run, "trainer.max_epochs=2"), tmp_path / "half")
    last = tmp_path / "half" / "checkpoints" / "last.ckpt"
    resumed = train(compose_cfg(*run, "trainer.max_epochs=4", f"resume={last}"), tmp_path / "resumed")
    assert resumed["epochs"] == whole["epochs"] == 4
    for key in ("val/loss_best", "test/rmse", "test/mae", "test/h5/rmse"):
        assert resumed[key] == pytest.approx(whole[key], rel=1e-6, abs=0), key


def test_a_terminal_keeps_the_progress_bar_and_a_pipe_gets_a_line_an_epoch(compose_cfg, tmp_path, monkeypatch):
    from pytorch_lightning.callbacks import TQDMProgressBar

    from pricernn.tasks.callbacks import EpochLines
    from pricernn.tasks.train import build_callbacks

    cfg = compose_cfg()
    for terminal, bar in ((True, TQDMProgressBar), (False, EpochLines)):
        monkeypatch.setattr(sys.stdout, "isatty", lambda terminal=terminal: terminal)
        bars = [c for c in build_callbacks(cfg, tmp_path) if isinstance(c, TQDMProgressBar | EpochLines)]
        assert [type(c) for c in bars] == [bar]
