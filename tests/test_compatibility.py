"""Checkpoints written by earlier versions of pricernn still forecast and resume (tests/fixtures/)."""

import shutil
from pathlib import Path

import numpy as np
from conftest import CONF_DIR
from hydra import compose, initialize_config_dir

from pricernn.tasks.predict import forecast_history
from pricernn.tasks.train import train

FIXTURES = Path(__file__).resolve().parent / "fixtures"
SMALL = ["debug=fast", "data.window=10", "model.hidden_size=4", "model.num_layers=1"]


def test_a_checkpoint_from_before_the_regroup_predicts_and_resumes(compose_cfg, tmp_path):
    # where it was written: a checkpoint resumes only from its run's folder (the callback state names it)
    old = Path("/tmp/pricernn_fixture_pre_regroup/checkpoints")
    shutil.rmtree(old.parent, ignore_errors=True)
    shutil.copytree(FIXTURES / "pre_regroup", old)
    with initialize_config_dir(config_dir=CONF_DIR, version_base="1.3"):
        cfg = compose("predict", [f"ckpt={old / 'best.ckpt'}", "steps=5"])
    frame = forecast_history(cfg, tmp_path / "forecast").frame
    assert len(frame) == 5 and np.isfinite(frame[["predicted", "lower_80", "upper_95"]].to_numpy()).all()
    resumed = train(compose_cfg(*SMALL, "trainer.max_epochs=2", f"resume={old / 'last.ckpt'}"), tmp_path / "resumed")
    assert resumed["epochs"] == 2 and np.isfinite(resumed["test/rmse"])
    shutil.rmtree(old.parent)
