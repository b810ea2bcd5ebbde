"""Many series, one model: long, wide and folder files read alike; splits on common dates; windows that never
cross series; pooled and per-asset scores; forecasts for every asset."""

from __future__ import annotations

import json
import logging

import numpy as np
import pandas as pd
import pytest
import torch

from pricernn.data import PriceDataModule, load_prices
from pricernn.errors import UserError
from pricernn.training import train

STOCKS = ["AAPL", "KO", "XOM"]
TINY = ["debug=fast", "data.window=10", "model.hidden_size=8", "model.num_layers=1", "evaluation.steps=3"]


@pytest.fixture(scope="module")
def stocks() -> pd.DataFrame:
    """The last 400 days of three of the embedded stocks, date-indexed, one column each."""
    return load_prices("sp500_stocks", features=STOCKS, target="AAPL").iloc[-400:]


def _write_layouts(frame: pd.DataFrame, where) -> dict[str, list[str]]:
    """The same panel as a wide file, a long file (shuffled rows) and a folder of files; the data.* settings of
    each."""
    wide = frame.rename_axis("Date").reset_index()
    wide.to_csv(where / "wide.csv", index=False)
    long = wide.melt(id_vars="Date", var_name="ticker", value_name="Close").sample(frac=1.0, random_state=0)
    long.to_csv(where / "long.csv", index=False)
    (where / "folder").mkdir()
    for symbol in frame.columns:
        wide[["Date", symbol]].rename(columns={symbol: "Close"}).to_csv(where / "folder" / f"{symbol}.csv", index=False)
    return {
        "wide": [f"data.path={where / 'wide.csv'}", "data.layout=wide"],
        "long": [f"data.path={where / 'long.csv'}", "data.symbol_column=ticker"],
        "folder": [f"data.path={where / 'folder'}"],
    }


def test_long_wide_and_folder_files_give_the_same_panel_and_the_same_result(stocks, tmp_path, compose_cfg):
    layouts = _write_layouts(stocks, tmp_path)
    results = {}
    for name, settings in layouts.items():
        run = tmp_path / f"run_{name}"
        metrics = train(compose_cfg(*TINY, *settings, "data.symbols=all", "seed=3"), run)
        results[name] = (metrics, pd.read_csv(run / "per_symbol.csv"), pd.read_csv(run / "predictions.csv"))
    metrics, table, predictions = results["wide"]
    assert list(table["symbol"]) == STOCKS and metrics["panel/series"] == 3
    assert set(predictions["symbol"]) == set(STOCKS)
    for name in ("long", "folder"):
        other_metrics, other_table, other_predictions = results[name]
        for key in ("test/rmse", "naive/rmse", "test/dm_pvalue", "test/median_rmse_ratio", "val/rmse_best"):
            assert other_metrics[key] == pytest.approx(metrics[key], rel=1e-9), (name, key)
        pd.testing.assert_frame_equal(other_table, table)
        pd.testing.assert_frame_equal(other_predictions, predictions)


def _ragged_panel(stocks: pd.DataFrame) -> pd.DataFrame:
    """Series of different date ranges with gaps: KO starts 100 days late and misses 30 days, XOM stops 30 days
    early (delisted), SHORT has only 15 days in all, inside the training period."""
    frame = stocks.copy()
    frame.loc[frame.index[:100], "KO"] = np.nan
    frame.loc[frame.index[150:180], "KO"] = np.nan
    frame.loc[frame.index[-30:], "XOM"] = np.nan
    frame["SHORT"] = np.nan
    frame.loc[frame.index[200:215], "SHORT"] = 50.0 + np.arange(15)
    return frame


def test_a_ragged_panel_splits_on_common_dates_and_skips_what_is_too_short(stocks, tmp_path, write_csv, caplog):
    path = write_csv(_ragged_panel(stocks))
    with caplog.at_level(logging.WARNING, logger="pricernn"):
        dm = PriceDataModule(path=str(path), symbols="all", layout="wide", window=10, horizon=1)
        dm.setup()
    assert "skipped 1 of 4 series" in caplog.text and "SHORT (validation 0 rows, test 0 rows)" in caplog.text
    assert dm.series.symbols == ("AAPL", "KO", "XOM")
    assert len(dm.part(2).series.dates) == 370  # XOM's rows end at its last price: not carried to the end
    # one boundary date for all: every training target before every validation target, before every test target
    by_split = {name: dm.targets(name) for name in ("train", "val", "test")}
    assert by_split["train"].target_dates.max() < by_split["val"].target_dates.min()
    assert by_split["val"].target_dates.max() < by_split["test"].target_dates.min()
    for k in range(3):  # each series takes part in every split
        assert all((t.series == k).any() for t in by_split.values())
    # no window reads rows of two series: its first and last rows (and targets) lie in one series
    for dataset in dm.datasets.values():
        starts = dataset.starts.numpy()
        first = np.searchsorted(dm.series.offsets, starts, side="right")
        last = np.searchsorted(dm.series.offsets, starts + dm.window + dm.horizon - 1, side="right")
        assert (first == last).all()
    # a gathered batch is the windows of the series' own arrays, whatever the position
    positions = torch.tensor([0, len(dm.datasets["train"]) - 1, 123])
    x, _, ctx = dm.datasets["train"][positions]
    for row, start in enumerate(dm.datasets["train"].starts[positions].tolist()):
        raw = dm.series.levels[start : start + dm.window]
        np.testing.assert_allclose(ctx[row, 0].item(), raw[-1], rtol=1e-6)


def test_a_ragged_panel_trains_and_lists_every_asset_it_kept(stocks, tmp_path, write_csv, compose_cfg):
    path = write_csv(_ragged_panel(stocks))
    run = tmp_path / "run"
    metrics = train(compose_cfg(*TINY, f"data.path={path}", "data.symbols=all", "data.layout=wide"), run)
    table = pd.read_csv(run / "per_symbol.csv")
    assert list(table["symbol"]) == ["AAPL", "KO", "XOM"]
    assert {"rmse_ratio", "skill", "dm_pvalue", "dm_pvalue_bh", "ic", "directional_accuracy"} <= set(table.columns)
    assert (table["dm_pvalue_bh"] >= table["dm_pvalue"]).all()
    assert metrics["test/share_beating_naive"] == pytest.approx((table["rmse_ratio"] < 1).mean())
    assert metrics["test/median_rmse_ratio"] == pytest.approx(table["rmse_ratio"].median())
    # pooled RMSE is over every test target of every asset
    predictions = pd.read_csv(run / "predictions.csv")
    pooled = np.sqrt(np.mean((predictions["predicted"] - predictions["actual"]) ** 2))
    assert metrics["test/rmse"] == pytest.approx(pooled, rel=1e-9)
    summary = (run / "summary.txt").read_text()
    assert "3 assets, one model: below naive's RMSE on" in summary
    assert {"per_symbol_skill.png", "horizon_errors.png"} <= {p.name for p in run.iterdir()}
    saved = json.loads((run / "metrics.json").read_text())
    assert "test/ic_pvalue" not in saved  # a stacked-rows test would ignore that stocks move together


def test_predict_forecasts_every_asset_of_a_panel_checkpoint(stocks, tmp_path, write_csv, compose_cfg):
    from conftest import CONF_DIR
    from hydra import compose, initialize_config_dir

    from pricernn.predict import forecast_history

    path = write_csv(stocks)
    run = tmp_path / "run"
    train(compose_cfg(*TINY, f"data.path={path}", "data.symbols=all", "data.layout=wide"), run)

    def predict_cfg(*overrides: str):
        with initialize_config_dir(config_dir=CONF_DIR, version_base="1.3"):
            return compose("predict", overrides=[f"ckpt={run / 'checkpoints' / 'best.ckpt'}", "steps=4", *overrides])

    forecast = forecast_history(predict_cfg(), tmp_path / "all")
    frame = pd.read_csv(tmp_path / "all" / "forecast.csv")
    assert list(frame["symbol"].unique()) == STOCKS and len(frame) == 12
    for symbol in STOCKS:  # each from its own last price
        first = frame[frame["symbol"] == symbol].iloc[0]
        assert first["lower_80"] < first["predicted"] < first["upper_80"]
        assert abs(first["predicted"] / stocks[symbol].iloc[-1] - 1) < 0.1
    assert forecast.symbols == tuple(STOCKS)
    forecast_history(predict_cfg("data.symbols=[KO]"), tmp_path / "ko", given={"symbols"})
    assert set(pd.read_csv(tmp_path / "ko" / "forecast.csv")["symbol"]) == {"KO"}


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"symbols": ["AAPL", "NOPE"]}, "no series NOPE (data.symbols); it holds: AAPL, KO, XOM"),
        ({"symbols": "all", "scaler": "standard"}, "data.scaler=standard fits one price level to all 3 series"),
        ({"symbols": "all", "layout": "long"}, "data.layout=long needs data.symbol_column"),
        ({"symbols": "all", "features": ["AAPL", "KO"], "target": "AAPL"}, "a wide file holds one price column"),
    ],
)
def test_panel_settings_that_cannot_work_are_one_line(stocks, write_csv, settings, message):
    with pytest.raises(UserError, match=message.replace("(", r"\(").replace(")", r"\)")):
        PriceDataModule(path=str(write_csv(stocks)), window=10, **settings).setup()


def test_symbols_and_symbol_together_are_refused(compose_cfg):
    from pricernn.config import validate

    with pytest.raises(UserError, match="data.symbol picks one series and data.symbols several"):
        validate(compose_cfg("data.symbols=all", "data.symbol=AAPL", "data.symbol_column=ticker"))
