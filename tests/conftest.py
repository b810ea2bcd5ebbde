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
