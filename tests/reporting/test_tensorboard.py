"""TensorBoard as a user sees it: runs written by train(), read back through a real TensorBoard server's HTTP API
on loopback (scalars, text, custom scalars and the HParams plugin), not through the event files."""

from __future__ import annotations

import json
import math
import re
import shutil
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
import pytorch_lightning as pl
from pytorch_lightning.utilities.exceptions import SIGTERMException

from pricernn.tasks.resume import Interrupted
from pricernn.tasks.train import train

ALL_STATUSES = ["STATUS_FAILURE", "STATUS_RUNNING", "STATUS_SUCCESS", "STATUS_UNKNOWN"]


class StopInSecondEpoch(pl.Callback):
    """Raises ``error`` (a class name below) as the second epoch starts: the scheduler's SIGTERM, or a bug."""

    def __init__(self, error: str) -> None:
        self.error = {"sigterm": SIGTERMException, "bug": RuntimeError}[error]

    def on_train_epoch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if trainer.current_epoch == 1:
            raise self.error()


class Server:
    """``tensorboard --logdir`` on a free loopback port, and JSON from its HTTP API."""

    def __init__(self, logdir: Path) -> None:
        command = [sys.executable, "-m", "tensorboard.main", "--logdir", str(logdir), "--host", "127.0.0.1"]
        self.process = subprocess.Popen([*command, "--port", "0"], stderr=subprocess.PIPE, text=True)
        for line in self.process.stderr:  # it names its port once it listens
            if found := re.search(r"http://127\.0\.0\.1:(\d+)/", line):
                self.url = f"http://127.0.0.1:{found[1]}"
                return
        raise RuntimeError("tensorboard did not start")

    def get(self, path: str, body: dict | None = None):
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(self.url + path, data, {"Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=30) as response:
            return json.loads(response.read())

    def wait_for_runs(self, count: int, tag: str) -> dict[str, list[str]]:
        """Scalar tags per run once ``count`` runs show ``tag`` (the server loads event files in the background)."""
        deadline = time.time() + 90
        while time.time() < deadline:
            tags = self.get("/data/plugin/scalars/tags")
            if sum(tag in t for t in tags.values()) >= count:
                return tags
            time.sleep(0.5)
        raise AssertionError(f"the server shows {tags}")

    def close(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=30)


def test_a_sweep_compares_in_tensorboard_s_scalars_text_and_hparams(compose_cfg, tmp_path):
    tiny = ["debug=tiny", "model.hidden_size=8"]
    finished = [
        train(compose_cfg(*tiny, "model=rnn", "data.window=10"), tmp_path / "rnn"),
        train(compose_cfg(*tiny, "model=gru", "data.window=20", "model.hidden_size=12"), tmp_path / "gru"),
    ]
    stop = "+callbacks.stop._target_=test_tensorboard.StopInSecondEpoch"
    with pytest.raises(Interrupted):
        train(compose_cfg(*tiny, "model=lstm", stop, "+callbacks.stop.error=sigterm"), tmp_path / "stopped")
    with pytest.raises(RuntimeError):
        train(compose_cfg(*tiny, "model=lstm", "data.window=30", stop, "+callbacks.stop.error=bug"), tmp_path / "bug")
    with pytest.raises(Exception, match="precision"):  # Lightning refuses it as the Trainer is built
        train(compose_cfg(*tiny, "model=gru", "trainer.precision=7"), tmp_path / "no_trainer")
    # what a user sees of an interrupted run (kept aside: the resumed run below continues that TensorBoard run)
    (stopped_logs,) = (tmp_path / "tb" / "sp500" / "lstm_w20_hs8_l1").glob("stopped")
    shutil.copytree(stopped_logs, tmp_path / "tb" / "aside" / "interrupted")
    # resumed to its end, then resumed again to train on: one status, one report, at the final step
    last = tmp_path / "stopped" / "checkpoints" / "last.ckpt"
    train(compose_cfg(*tiny, "model=lstm", f"resume={last}"), tmp_path / "resumed")
    train(compose_cfg(*tiny, "model=lstm", "trainer.max_epochs=3", f"resume={last}"), tmp_path / "resumed_more")

    server = Server(tmp_path / "tb")
    try:
        tags = server.wait_for_runs(3, "test/rmse")
        runs = {Path(run).name: run for run in tags}
        assert set(runs) == {"rnn", "gru", "stopped", "bug", "interrupted"}  # named by their run directory
        assert "no_trainer" not in runs  # it has no scalars, but a session (below)
        for run in ("rnn", "gru", "stopped"):
            assert 20 <= len(tags[runs[run]]) <= 40, tags[runs[run]]  # a few tags, not hundreds
            assert {
                "train/loss",
                "val/loss",
                "val/rmse",
                "test/rmse",
                "naive/rmse_by_horizon",
                "test/skill_by_horizon",
            } <= set(tags[runs[run]])
        for run, run_tags in tags.items():
            for tag in run_tags:
                points = server.get(f"/data/plugin/scalars/scalars?run={run}&tag={tag}")
                assert all(math.isfinite(value) for _, _, value in points), (run, tag, points)
                if tag.startswith("test/") and not tag.endswith("_by_horizon"):
                    assert len(points) == 1, (run, tag, points)  # once, also after resumes
        resumed = server.get(f"/data/plugin/scalars/scalars?run={runs['stopped']}&tag=test/rmse")
        assert resumed[0][1] == 15  # the final step of the run trained on to 3 epochs of 5 batches
        rnn_metrics = finished[0]
        by_horizon = server.get(f"/data/plugin/scalars/scalars?run={runs['rnn']}&tag=test/rmse_by_horizon")
        assert [step for _, step, _ in by_horizon] == list(range(1, 11))  # the horizon is the step
        assert by_horizon[4][2] == pytest.approx(rnn_metrics["test/h5/rmse"], rel=1e-6)
        headline = server.get(f"/data/plugin/scalars/scalars?run={runs['rnn']}&tag=test/rmse")
        assert headline[0][1] == 10 and headline[0][2] == pytest.approx(rnn_metrics["test/rmse"], rel=1e-6)

        texts = server.get("/data/plugin/text/tags")[runs["rnn"]]
        assert {"run/directory/text_summary", "report/next_step/text_summary", "report/horizons/text_summary"} <= set(
            texts
        )
        layout = server.get("/data/plugin/custom_scalars/layout")
        (category,) = layout["category"]  # one category, whatever the number of runs
        assert len(category["chart"]) == 6
        drift = server.get(f"/data/plugin/scalars/scalars?run={runs['rnn']}&tag=test/drift_bp_by_horizon")
        assert drift[4][1] == 5 and drift[4][2] == pytest.approx(rnn_metrics["test/h5/drift_bp"], rel=1e-5, abs=1e-6)

        experiment = server.get("/data/plugin/hparams/experiment", {"experimentName": ""})
        columns = [h["name"] for h in experiment["hparamInfos"]]  # the first five are on screen
        assert columns[:5] == ["data.window", "model.cell", "model.hidden_size", "model.lr", "model.num_layers"]
        assert {
            "data",
            "data.scaler",
            "data.target_transform",
            "data.batch_size",
            "model.dropout",
            "data.derived",
        } <= set(columns)
        metrics = [m["name"]["tag"] for m in experiment["metricInfos"]]
        assert metrics[:5] == ["test/rmse", "test/rmse_ratio_naive", "test/skill", "test/dm_pvalue", "val/rmse_best"]
        request = {"experimentName": "", "allowedStatuses": ALL_STATUSES, "startIndex": 0, "sliceSize": 100}
        groups = server.get("/data/plugin/hparams/session_groups", request)["sessionGroups"]
        status = {Path(g["name"]).name: g["sessions"][0]["status"] for g in groups}
        assert status == {"rnn": "STATUS_SUCCESS", "gru": "STATUS_SUCCESS", "stopped": "STATUS_SUCCESS",
                          "bug": "STATUS_FAILURE", "no_trainer": "STATUS_FAILURE",
                          "interrupted": "STATUS_UNKNOWN"}  # fmt: skip
        values = {Path(g["name"]).name: g["hparams"] for g in groups}
        assert (values["gru"]["model.cell"], values["gru"]["data.window"], values["gru"]["model.hidden_size"]) == (
            "gru",
            20,
            12,
        )
        assert (values["rnn"]["model.cell"], values["rnn"]["data.window"]) == ("rnn", 10)
        for group in groups:
            shown = {m["name"]["tag"]: m["value"] for m in group["metricValues"]}
            assert all(math.isfinite(value) for value in shown.values())
            if Path(group["name"]).name == "rnn":
                assert shown["test/rmse"] == pytest.approx(rnn_metrics["test/rmse"], rel=1e-6)
    finally:
        server.close()
    shutil.rmtree(tmp_path / "tb", ignore_errors=True)


def test_a_panel_run_shows_its_pooled_figures_and_assets_in_tensorboard(compose_cfg, tmp_path):
    from pricernn.data import load_prices

    stocks = load_prices("sp500_stocks", features=["AAPL", "KO", "XOM"], target="AAPL").iloc[-400:]
    stocks.rename_axis("Date").reset_index().to_csv(tmp_path / "three.csv", index=False)
    settings = [f"data.path={tmp_path / 'three.csv'}", "data.symbols=all", "data.layout=wide", "debug=fast",
                "data.window=10", "evaluation.steps=3"]  # fmt: skip
    metrics = train(compose_cfg(*settings), tmp_path / "panel")
    server = Server(tmp_path / "tb")
    try:
        tags = server.wait_for_runs(1, "test/median_rmse_ratio")
        (run,) = tags
        assert run == "three/lstm_w10_hs64_l2/panel"  # named by the file, not by one asset
        for tag in ("test/median_rmse_ratio", "test/share_beating_naive", "test/rmse"):
            (point,) = server.get(f"/data/plugin/scalars/scalars?run={run}&tag={tag}")
            assert point[2] == pytest.approx(metrics[tag], rel=1e-6)
        images = server.get("/data/plugin/images/tags")[run]
        assert {"test/per_symbol_skill", "test/horizon_errors"} <= set(images)
        experiment = server.get("/data/plugin/hparams/experiment", {"experimentName": ""})
        assert "test/share_beating_naive" in [m["name"]["tag"] for m in experiment["metricInfos"]]
    finally:
        server.close()
