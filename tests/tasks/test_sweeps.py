"""Sweeps through Hydra's launchers and sweeper, the leaderboard, and DDP through Lightning."""

import json
import os
from pathlib import Path

import optuna
import pandas as pd
import pytest
import torch

from pricernn.reporting.leaderboard import collect, configurations, leaderboard, write

FAST = ["debug=fast", "data.window=10"]


def _sweep_dir(tmp_path: Path) -> Path:
    (sweep,) = (tmp_path / "outputs" / "multirun").iterdir()
    return sweep


def test_joblib_sweep_runs_in_parallel_with_a_share_of_the_cores_and_survives_a_failing_run(run_script, tmp_path):
    result = run_script("train.py", "-m", "hydra/launcher=joblib", "hydra.launcher.n_jobs=2", "model=rnn",
                        "debug=fast", "data.window=5000,10")  # fmt: skip
    assert result.returncode == 2, result.stderr[-3000:]  # the sweep ran to its end, and says a run failed
    assert "Traceback" not in result.stderr
    assert "sweep finished: 1 runs done, 1 failed" in result.stdout
    assert "failed: job 0: the series has 5031 rows, too short for data.window=5000" in result.stdout
    sweep = _sweep_dir(tmp_path)
    metrics = json.loads((sweep / "1" / "metrics.json").read_text())  # the job after the failed one ran
    assert metrics["threads"] == max(1, (os.cpu_count() or 1) // 2)  # two jobs share the cores
    assert "too short" in json.loads((sweep / "0" / "failed.json").read_text())["error"]
    board = pd.read_csv(sweep / "leaderboard.csv")
    assert list(board["status"]) == ["done", "failed", "baseline"]
    compare = run_script("compare.py", str(sweep))
    assert "failed: job 0: the series has 5031 rows" in compare.stdout


@pytest.mark.slow
def test_submitit_local_sweep(run_script, tmp_path):
    result = run_script("train.py", "-m", "hydra/launcher=submitit_local", "model=rnn,gru", *FAST)
    assert result.returncode == 0, result.stderr[-3000:]
    sweep = _sweep_dir(tmp_path)
    for job in ("0", "1"):
        assert json.loads((sweep / job / "metrics.json").read_text())["epochs"] == 1
    assert "sweep finished: 2 runs done, 0 failed" in result.stdout


def test_optuna_search_persists_its_study_in_sqlite_and_resumes(run_script, tmp_path):
    args = ["-m", "hparams_search=optuna", "debug=fast"]
    first = run_script("train.py", *args, "hydra.sweeper.n_trials=2")
    assert first.returncode == 0, first.stderr[-3000:]
    storage = f"sqlite:///{tmp_path / 'outputs' / 'optuna.db'}"
    study = optuna.load_study(study_name="pricernn_search", storage=storage)
    assert [t.state.name for t in study.trials] == ["COMPLETE"] * 2
    # the objective is each run's validation metric, as its metrics.json records it
    runs = sorted((tmp_path / "outputs" / "multirun").glob("*/[0-9]*/metrics.json"))
    assert sorted(t.value for t in study.trials) == pytest.approx(
        sorted(json.loads(p.read_text())["val/rmse_best"] for p in runs)
    )
    again = run_script("train.py", *args, "hydra.sweeper.n_trials=1")  # the same command adds to the study
    assert again.returncode == 0, again.stderr[-3000:]
    assert len(optuna.load_study(study_name="pricernn_search", storage=storage).trials) == 3


@pytest.mark.slow  # the joblib sweep test checks a failing job in the default run
def test_an_optuna_trial_that_fails_on_a_user_error_is_a_failed_trial_and_the_study_goes_on(run_script, tmp_path):
    storage = f"sqlite:///{tmp_path / 'outputs' / 'optuna.db'}"
    failing = run_script("train.py", "-m", "hparams_search=optuna", "debug=fast", "hydra.sweeper.n_trials=2",
                         "data.window=choice(6000)", "hydra.sweeper.study_name=failing")  # fmt: skip
    assert failing.returncode == 2 and "Traceback" not in failing.stderr, failing.stderr[-3000:]
    trials = optuna.load_study(study_name="failing", storage=storage).trials
    assert [t.state.name for t in trials] == ["FAIL", "FAIL"]  # the second trial ran after the first failed
    assert "sweep finished: 0 runs done, 2 failed" in failing.stdout


def _fake_run(root: Path, job: str, overrides: list[str], metrics: dict | None = None, error: str | None = None):
    d = root / job
    (d / ".hydra").mkdir(parents=True)
    (d / ".hydra" / "overrides.yaml").write_text("".join(f"- {o}\n" for o in overrides))
    if metrics is not None:
        (d / "metrics.json").write_text(json.dumps(metrics))
    if error is not None:
        (d / "failed.json").write_text(json.dumps({"error": error}))


def _metrics(val: float, rmse: float) -> dict:
    return {"val/loss_best": val, "val/rmse_best": 60 * val, "test/rmse": rmse, "test/rmse_ratio_naive": rmse / 20.0,
            "naive/rmse": 20.0,
            "naive/mae": 13.0, "test/mae": rmse * 0.65, "epochs": 5, "train_seconds": 1.0, "params": 100}  # fmt: skip


def test_leaderboard_orders_by_validation_loss_and_aggregates_repeats(tmp_path, run_script):
    root = tmp_path / "sweep"
    _fake_run(root, "0", ["model=gru", "seed=0", "debug=fast"], _metrics(0.30, 19.0))
    _fake_run(root, "1", ["model=gru", "seed=1", "debug=fast"], _metrics(0.34, 21.0))
    _fake_run(root, "2", ["model=lstm", "seed=0", "debug=fast"], _metrics(0.20, 20.5))
    _fake_run(root, "3", ["model=lstm", "seed=1", "debug=fast"], _metrics(0.22, 20.1))
    _fake_run(root, "4", ["model=rnn", "seed=0", "debug=fast"], error="diverged")
    _fake_run(root, "5", ["model=rnn", "seed=1", "debug=fast"])  # still running: no metrics yet
    (root / "6" / ".hydra").mkdir(parents=True)  # a job Hydra has only just created
    board = leaderboard(collect(root))
    assert list(board["job"]) == ["2", "3", "0", "1", "4", "5", "naive"]
    assert list(board["status"]) == ["done"] * 4 + ["failed", "unfinished", "baseline"]
    assert board.iloc[-1]["test_rmse"] == 20.0 and board.iloc[-1]["ratio_naive"] == 1.0
    grouped = configurations(collect(root)).set_index("model")
    assert list(grouped.index) == ["lstm", "gru"]  # best mean validation loss first
    assert grouped.loc["gru", "runs"] == 2 and grouped.loc["gru", "configuration"] == "model=gru"
    assert grouped.loc["gru", "test_rmse_mean"] == pytest.approx(20.0)
    assert grouped.loc["gru", "test_rmse_std"] == pytest.approx(2**0.5)  # sample std of 19 and 21

    result = run_script("compare.py", str(root))
    assert result.returncode == 0, result.stderr
    assert "failed: job 4: diverged" in result.stdout and "Configurations" in result.stdout
    assert "same in every run: debug=fast" in result.stdout and "debug" not in board.columns  # not a swept value
    assert (root / "leaderboard.md").read_text().startswith("same in every run: debug=fast\n\n| job | model | seed |")
    assert pd.read_csv(root / "configurations.csv")["runs"].tolist() == [2, 2]
    # these runs left no validation forecasts: no confidence set, and it says so
    assert "no confidence set: not every finished run left validation.csv" in result.stdout
    assert run_script("compare.py", str(tmp_path / "nope")).returncode == 2


def test_write_works_on_a_sweep_with_one_run(tmp_path):
    _fake_run(tmp_path, "0", ["model=gru"], _metrics(0.3, 19.0))
    board, grouped = write(tmp_path)
    assert grouped is None and (tmp_path / "leaderboard.csv").is_file()


def test_ddp_with_two_cpu_processes_trains_on_both_and_writes_every_artifact(run_script, tmp_path):
    # Lightning's DDP strategy with the gloo backend: two processes on this CPU, each a shard of the batches
    ddp = run_script("train.py", "trainer=ddp", "trainer.accelerator=cpu", "trainer.devices=2", *FAST,
                     "trainer.limit_train_batches=4", "hydra.run.dir=ddp")  # fmt: skip
    assert ddp.returncode == 0, ddp.stderr[-3000:]
    run = tmp_path / "ddp"
    names = {"metrics.json", "predictions.csv", "horizons.csv", "config.yaml", "test_prices.png"}
    assert names <= {p.name for p in run.iterdir()}
    assert {p.name for p in (run / "checkpoints").iterdir()} == {"best.ckpt", "last.ckpt"}
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["epochs"] == 1 and metrics["test/rmse"] > 0
    state = torch.load(run / "checkpoints" / "last.ckpt", weights_only=True)
    assert state["global_step"] == 4  # limit_train_batches counts each process's own batches
    assert "MEMBER: 2/2" in ddp.stderr + ddp.stdout  # Lightning started the second process


def test_launcher_threads_share_the_cores_among_parallel_runs(monkeypatch):
    from omegaconf import OmegaConf

    from pricernn.tasks.jobs import launcher_threads

    monkeypatch.setattr(os, "cpu_count", lambda: 8)
    assert launcher_threads(OmegaConf.create({"n_jobs": -1})) == 1  # joblib's default: one run per core
    assert launcher_threads(OmegaConf.create({"n_jobs": 2})) == 4
    assert launcher_threads(OmegaConf.create({"n_jobs": -3})) == 1  # 6 jobs on 8 cores
    assert launcher_threads(OmegaConf.create({"cpus_per_task": 4, "tasks_per_node": 1})) == 4  # submitit
    assert launcher_threads(OmegaConf.create({"_target_": "basic"})) is None
    assert launcher_threads(None) is None
