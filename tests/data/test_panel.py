"""Many series, one model: long, wide and folder files read alike; splits on common dates; windows that never
cross series; pooled and per-asset scores; forecasts for every asset."""

from __future__ import annotations

import json
import logging
import re

import numpy as np
import pandas as pd
import pytest
import torch

from pricernn.data import PriceDataModule, load_prices
from pricernn.errors import UserError
from pricernn.evaluation.significance import benjamini_hochberg
from pricernn.tasks.train import train

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
    (where / "folder" / "README.txt").write_text("downloaded from somewhere\n")  # not a series: left out
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
        assert ctx[row, 3].item() == np.searchsorted(dm.series.offsets, start, side="right") - 1  # its series


def test_each_asset_of_a_panel_carries_its_own_derived_inputs_to_its_forecast_origins(stocks, write_csv):
    # a forecast path from an origin goes on from that asset's own last prices and averages, never its neighbour's
    path = write_csv(_ragged_panel(stocks))
    settings = {"path": str(path), "layout": "wide", "window": 10, "derived": ["log_return", "rsi_14", "macd"]}
    panel = PriceDataModule(symbols="all", **settings)
    panel.setup()
    windows, origin, targets = panel.forecast_origins("test", 3)
    for k in (1, 2):  # KO, and XOM, whose rows end early
        alone = PriceDataModule(symbols=[panel.series.symbols[k]], **settings)
        alone.setup()
        np.testing.assert_array_equal(panel.part(k).series.carry, alone.series.carry)
        mine = targets.series == k
        first = int(panel.series.offsets[k])
        np.testing.assert_array_equal(targets.carry[mine], alone.series.carry[origin[mine] - first])
        # the carry begins with the last lags = 2 prices, p[t-1], p[t]: p[t] is the origin's own last price
        np.testing.assert_allclose(targets.carry[mine, 1], targets.anchor[mine])


def test_a_ragged_panel_trains_and_lists_every_asset_it_kept(stocks, tmp_path, write_csv, compose_cfg):
    path = write_csv(_ragged_panel(stocks))
    run = tmp_path / "run"
    metrics = train(compose_cfg(*TINY, f"data.path={path}", "data.symbols=all", "data.layout=wide"), run)
    table = pd.read_csv(run / "per_symbol.csv")
    assert list(table["symbol"]) == ["AAPL", "KO", "XOM"]
    assert {"rmse_ratio", "skill", "dm_pvalue", "dm_pvalue_bh", "ic", "directional_accuracy"} <= set(table.columns)
    np.testing.assert_allclose(table["dm_pvalue_bh"], benjamini_hochberg(table["dm_pvalue"].to_numpy()), rtol=1e-5)
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

    from pricernn.tasks.predict import forecast_history

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
        ({"symbols": ["AAPL", "NOPE"], "layout": "wide"}, "no series NOPE (data.symbols); it holds: AAPL, KO, XOM"),
        ({"symbols": ["aapl"], "layout": "wide"}, "no series aapl (data.symbols) (did you mean AAPL?)"),
        ({"symbols": "all", "layout": "wide", "scaler": "standard"}, "data.scaler=standard fits one price level"),
        ({"symbols": "all", "layout": "long"}, "data.layout=long needs data.symbol_column"),
        ({"symbols": "all"}, "say how they lie, data.symbol_column=COLUMN for a long file"),  # never guessed
        ({"symbols": "all", "layout": "wide", "features": ["AAPL", "KO"], "target": "AAPL"}, "a wide file holds one"),
    ],
)
def test_panel_settings_that_cannot_work_are_one_line(stocks, write_csv, settings, message):
    with pytest.raises(UserError, match=re.escape(message)):
        PriceDataModule(path=str(write_csv(stocks)), window=10, **settings).setup()


def test_symbols_and_symbol_together_are_refused(compose_cfg):
    from pricernn.config.validate import validate

    with pytest.raises(UserError, match="data.symbol picks one series and data.symbols several"):
        validate(compose_cfg("data.symbols=all", "data.symbol=AAPL", "data.symbol_column=ticker"))


DDP_SCRIPT = '''
import json, sys
import numpy as np, pandas as pd, pytorch_lightning as pl
from pricernn.data import PriceDataModule
from pricernn.models import RecurrentForecaster

class Recording(RecurrentForecaster):
    """Writes the last price of every training window it gets: each (series, row) has its own price."""
    def training_step(self, batch, batch_idx):
        self.seen.extend(batch[2][:, 0].double().tolist())
        return super().training_step(batch, batch_idx)

if __name__ == "__main__":
    out = sys.argv[1]
    days = pd.bdate_range("2000-01-03", periods=300)
    panel = {f"S{k}": 100.0 * (k + 1) + 0.01 * np.arange(300) for k in range(4)}
    pd.DataFrame({"Date": days, **panel}).to_csv(f"{out}/panel.csv", index=False)
    pl.seed_everything(0)
    dm = PriceDataModule(path=f"{out}/panel.csv", symbols="all", layout="wide", window=10, batch_size=16)
    dm.setup()
    model = Recording(1, hidden_size=4, num_layers=1, transform=dm.transform_state())
    model.seen = []
    trainer = pl.Trainer(strategy="ddp", accelerator="cpu", devices=2, max_epochs=1, limit_train_batches=5,
                         limit_val_batches=1, logger=False, enable_checkpointing=False, enable_progress_bar=False)
    trainer.fit(model, datamodule=dm)
    with open(f"{out}/rank{trainer.global_rank}.json", "w") as f:
        json.dump(model.seen, f)
'''


@pytest.mark.slow
def test_ddp_on_a_panel_gives_each_process_its_own_windows(tmp_path):
    import subprocess
    import sys

    (tmp_path / "ddp.py").write_text(DDP_SCRIPT)
    result = subprocess.run([sys.executable, str(tmp_path / "ddp.py"), str(tmp_path)], capture_output=True,
                            text=True, timeout=240, cwd=tmp_path)  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    seen = [set(np.round(json.loads((tmp_path / f"rank{r}.json").read_text()), 6)) for r in (0, 1)]
    assert len(seen[0]) == len(seen[1]) == 5 * 16  # five batches of 16 distinct windows each
    assert not seen[0] & seen[1]  # no window trained on by both processes
    series = {int(price // 100) for both in seen for price in both}
    assert series == {1, 2, 3, 4}  # windows of every series


def test_a_symbol_embedding_learns_what_a_window_cannot_show(tmp_path, compose_cfg, write_csv):
    # six assets, three drifting up 0.4 % a day and three down, under 1 % daily noise: a 3-day window cannot tell
    # which is which, a per-asset vector can (the best forecast is the drift; its skill about 7 %)
    rng = np.random.default_rng(5)
    days = pd.bdate_range("2010-01-04", periods=1200)
    drift = {f"UP{k}": 0.004 for k in range(3)} | {f"DOWN{k}": -0.004 for k in range(3)}
    panel = {s: 100 * np.exp(np.cumsum(mu + 0.01 * rng.standard_normal(len(days)))) for s, mu in drift.items()}
    path = write_csv(pd.DataFrame(panel, index=pd.DatetimeIndex(days, name="date")))
    common = [f"data.path={path}", "data.symbols=all", "data.layout=wide", "data.window=3", "model.hidden_size=16",
              "model.num_layers=1", "model.lr=0.01", "trainer.max_epochs=4", "evaluation.steps=1", "data.batch_size=32",
              "evaluation.shrink=false", "~callbacks.early_stopping"]  # fmt: skip
    scores = {}
    for size in (0, 4):
        run = tmp_path / f"embedding{size}"
        scores[size] = train(compose_cfg(*common, f"model.symbol_embedding={size}"), run)
        table = pd.read_csv(run / "per_symbol.csv").set_index("symbol")
        predictions = pd.read_csv(run / "predictions.csv")
        moves = (predictions["predicted"] / predictions["naive"] - 1).groupby(predictions["symbol"]).mean()
        scores[size]["right_sign"] = int((np.sign(moves) == np.sign(pd.Series(drift)[moves.index])).sum())
        scores[size]["table"] = table
    assert scores[4]["right_sign"] == 6  # with the embedding every asset's forecast drifts its way
    assert (scores[4]["table"]["skill"] > 0).all()  # beats naive on every asset
    assert scores[4]["test/rmse_ratio_naive"] < scores[0]["test/rmse_ratio_naive"] - 0.02
    assert scores[4]["test/dm_pvalue"] < 0.01
    # predict knows each asset by its number in the panel: one asset asked for alone still drifts its way
    from conftest import CONF_DIR
    from hydra import compose, initialize_config_dir

    from pricernn.tasks.predict import forecast_history

    with initialize_config_dir(config_dir=CONF_DIR, version_base="1.3"):
        cfg = compose("predict", overrides=[f"ckpt={tmp_path / 'embedding4' / 'checkpoints' / 'best.ckpt'}", "steps=1",
                                            "data.symbols=[DOWN1,UP2]"])  # fmt: skip
    frame = forecast_history(cfg, tmp_path / "forecast", given={"symbols"}).frame.set_index("symbol")
    last = {symbol: panel[symbol][-1] for symbol in ("DOWN1", "UP2")}
    assert frame.loc["DOWN1", "predicted"] < last["DOWN1"] and frame.loc["UP2", "predicted"] > last["UP2"]
    grown = write_csv(pd.DataFrame({"UP0": panel["UP0"], "NEW": panel["UP0"]}, index=days.rename("date")), "new.csv")
    with initialize_config_dir(config_dir=CONF_DIR, version_base="1.3"):
        cfg = compose("predict", overrides=[f"ckpt={tmp_path / 'embedding4' / 'checkpoints' / 'best.ckpt'}",
                                            "data.symbols=[UP0,NEW]", f"data.path={grown}"])  # fmt: skip
    with pytest.raises(UserError, match="it knows no NEW; give data.symbols= among those"):
        forecast_history(cfg, tmp_path / "new", given={"symbols", "path"})


def test_an_asset_with_too_few_test_bars_for_every_horizon_is_named_and_left_out(stocks, tmp_path, write_csv,
                                                                                   compose_cfg, caplog):  # fmt: skip
    frame = stocks.copy()
    frame.loc[frame.index[-55:], "XOM"] = np.nan  # 5 of the 60 test bars left: too few for 10 steps
    path = write_csv(frame)
    with caplog.at_level(logging.WARNING, logger="pricernn"):
        metrics = train(compose_cfg(*TINY, f"data.path={path}", "data.symbols=all", "data.layout=wide",
                                    "evaluation.steps=10"), tmp_path / "run")  # fmt: skip
    assert "not scored: XOM, with fewer test bars than evaluation.steps=10" in caplog.text
    assert list(pd.read_csv(tmp_path / "run" / "per_symbol.csv")["symbol"]) == ["AAPL", "KO"]
    assert metrics["panel/not_scored"] == 1
    assert "1 not scored (too few test bars)" in (tmp_path / "run" / "summary.txt").read_text()


def test_a_walk_forward_backtest_of_a_panel_splits_on_its_dates(stocks, tmp_path, write_csv):
    from conftest import CONF_DIR
    from hydra import compose, initialize_config_dir

    from pricernn.tasks.backtest import backtest

    path = write_csv(stocks)
    overrides = ["folds=2", *TINY, f"data.path={path}", "data.symbols=all", "data.layout=wide",
                 f"logger.save_dir={tmp_path / 'tb'}"]  # fmt: skip
    with initialize_config_dir(config_dir=CONF_DIR, version_base="1.3"):
        summary = backtest(compose("backtest", overrides=overrides), tmp_path / "run")
    folds = pd.read_csv(tmp_path / "run" / "folds.csv")
    assert summary["backtest/folds"] == 2 and folds["test_end"].iloc[-1] == str(stocks.index[-1].date())
    assert folds["share_beating_naive"].between(0, 1).all() and folds["median_rmse_ratio"].notna().all()
    assert set(pd.read_csv(tmp_path / "run" / "fold1" / "per_symbol.csv")["symbol"]) == set(STOCKS)
