"""Shared fixtures: small slices of the embedded S&P 500 data and files written from them."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from pricernn.data import load_prices


@pytest.fixture(scope="session")
def sp500() -> pd.DataFrame:
    """The embedded data set, all columns, date-indexed."""
    return load_prices("sp500", features=["Open", "High", "Low", "Close", "Adj Close", "Volume"])


@pytest.fixture
def write_csv(tmp_path: Path):
    """Write a frame (date index or a Date column) to a CSV file and return its path."""

    def write(frame: pd.DataFrame, name: str = "prices.csv") -> Path:
        path = tmp_path / name
        out = frame.reset_index().rename(columns={"date": "Date"}) if "Date" not in frame.columns else frame
        out.to_csv(path, index=False)
        return path

    return write


CONF_DIR = str(Path(__file__).resolve().parent.parent / "conf")
SCRIPTS = Path(__file__).resolve().parent.parent / "scripts"


@pytest.fixture
def compose_cfg(tmp_path: Path):
    """Compose the training config as scripts/train.py would, with TensorBoard logs under tmp_path."""
    from hydra import compose, initialize_config_dir

    def make(*overrides: str):
        with initialize_config_dir(config_dir=CONF_DIR, version_base="1.3"):  # clears GlobalHydra on exit
            return compose("train", overrides=[f"logger.save_dir={tmp_path / 'tb'}", *overrides])

    return make


def _launch(script: str, args: tuple[str, ...], cwd: Path) -> dict:
    """Arguments for subprocess.Popen/run: one of scripts/*.py from ``cwd`` (so outputs/ lands there), as a user
    would run it, with text output captured."""
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    env.pop("PRICERNN_DEBUG", None)  # tracebacks are what the tests check for
    command = [sys.executable, str(SCRIPTS / script), *args]
    return {"args": command, "cwd": cwd, "env": env, "stdout": subprocess.PIPE, "stderr": subprocess.PIPE, "text": True}


@pytest.fixture(scope="session")
def start_script():
    """``start_script(script, *args, cwd=...)``: a running script (Popen), for tests that run several at once."""
    return lambda script, *args, cwd: subprocess.Popen(**_launch(script, args, cwd))


@pytest.fixture
def run_script(tmp_path: Path):
    """Run one of scripts/*.py to the end in a subprocess from tmp_path (so outputs/ lands there)."""

    def run(script: str, *args: str, timeout: float = 240) -> subprocess.CompletedProcess:
        return subprocess.run(**_launch(script, args, tmp_path), timeout=timeout)

    return run
