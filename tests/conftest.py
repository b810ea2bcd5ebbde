"""Shared fixtures: small slices of the embedded S&P 500 data and files written from them."""

from __future__ import annotations

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


@pytest.fixture
def run_script(tmp_path: Path):
    """Run one of scripts/*.py in a subprocess from tmp_path (so outputs/ lands there)."""
    import os
    import subprocess
    import sys

    def run(script: str, *args: str, timeout: float = 240) -> subprocess.CompletedProcess:
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        env.pop("PRICERNN_DEBUG", None)
        return subprocess.run(
            [sys.executable, str(SCRIPTS / script), *args],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            timeout=timeout,
        )

    return run
