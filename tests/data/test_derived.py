"""Derived inputs: no look-ahead for any of them, warm-up rows dropped and counted, names checked."""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pytest
import torch

from pricernn.data.derived import ALL, PathInputs, Recurrence, add_derived, resolve, wall_clock
from pricernn.errors import UserError


@pytest.fixture(scope="module")
def ohlcv(sp500) -> pd.DataFrame:
    return sp500[["Open", "High", "Low", "Close", "Volume"]].iloc[:400]


@pytest.mark.parametrize("name", [*ALL, "volatility_5", "rsi_3", "bollinger_10", "atr_5", "volume_z_5"])
def test_no_derived_input_reads_a_later_row(ohlcv, name):
    # change every row after t (prices, highs, lows, volumes): nothing at or before t may move
    base, warm, _ = add_derived(ohlcv, "Close", [name])
    rng = np.random.default_rng(0)
    for t in (warm + 5, 150, 300):
        changed = ohlcv.copy()
        later = changed.index > changed.index[t]
        changed.loc[later] = changed.loc[later].to_numpy() * rng.uniform(0.5, 1.5, size=(int(later.sum()), 5))
        other, _, _ = add_derived(changed, "Close", [name])
        upto = base.index <= ohlcv.index[t]
        pd.testing.assert_series_equal(other[name][upto], base[name][upto])
        assert not base[name].isna().any()


def test_warm_up_rows_are_dropped_and_counted(ohlcv):
    out, dropped, _ = add_derived(ohlcv, "Close", ["log_return", "volatility_20", "macd"])
    assert dropped == 25 and out.index[0] == ohlcv.index[25]  # macd's 26-bar EMA defines its first value at row 25
    assert list(out.columns) == [*ohlcv.columns, "log_return", "volatility_20", "macd"]


def test_all_takes_what_the_columns_allow_and_names_are_checked():
    assert resolve("all", ["Close"]) == ["log_return", "volatility_20", "rsi_14", "macd", "bollinger_20",
                                          "day_of_week", "month"]  # fmt: skip
    assert resolve("all", ["High", "Low", "Close", "Volume"]) == list(ALL)
    with pytest.raises(UserError, match="unknown input 'rsx_14'"):
        resolve(["rsx_14"], ["Close"])
    with pytest.raises(UserError, match="atr_14 reads column High, which the file lacks"):
        resolve(["atr_14"], ["Close"])


def test_rsi_by_hand():
    # 14 rises of 1: Wilder's averages of gains 1, of losses 0 → RSI 100; then a fall of 1:
    # gains 1·13/14, losses 1/14 → RS 13 → RSI 100 - 100/14 = 92.857
    prices = pd.DataFrame({"Close": np.r_[np.arange(100.0, 115.0), 113.0]},
                          index=pd.bdate_range("2020-01-01", periods=16))  # fmt: skip
    out, _, _ = add_derived(prices, "Close", ["rsi_14"])
    assert out["rsi_14"].iloc[0] == 100.0 and out["rsi_14"].iloc[-1] == pytest.approx(92.857, abs=1e-3)


def test_returns_and_volatility_equal_their_pandas_one_liners(ohlcv):
    out, _, _ = add_derived(ohlcv, "Close", ["log_return", "volatility_20", "volatility_5"])
    r = np.log(ohlcv["Close"] / ohlcv["Close"].shift(1))
    expected = {"log_return": r, "volatility_20": r.rolling(20).std(), "volatility_5": r.rolling(5).std()}
    for name, values in expected.items():
        pd.testing.assert_series_equal(out[name], values.loc[out.index], check_names=False, rtol=1e-10)


@pytest.mark.parametrize("name", ["rsi_14", "rsi_3", "macd", "atr_14", "atr_5", "bollinger_20", "bollinger_7"])
def test_indicators_equal_ta_lib_on_every_row(ohlcv, name):
    # TA-Lib, the field's reference, as the oracle: from the first row each one defines (the same warm-up)
    import talib  # a dev dependency (binary wheels)

    close, high, low = (ohlcv[c].to_numpy(dtype=float) for c in ("Close", "High", "Low"))
    n = int(name.rsplit("_", 1)[1]) if name != "macd" else 0
    if name.startswith("rsi"):
        expected = talib.RSI(close, n)
    elif name.startswith("atr"):
        expected = talib.ATR(high, low, close, n) / close
    elif name == "macd":  # the MACD line as a fraction of the price: TA-Lib's own up to row 33, then its EMAs'
        expected = talib.MACD(close, 12, 26, 9)[0] / close
        fast = np.r_[np.full(14, np.nan), talib.EMA(close[14:], 12)]  # started with the slow one, as MACD does
        expected[25:33] = ((fast - talib.EMA(close, 26)) / close)[25:33]
    else:
        upper, middle, _ = talib.BBANDS(close, n, 2, 2, 0)
        expected = (close - middle) / (upper - middle)
    out, warm, _ = add_derived(ohlcv, "Close", [name])
    assert warm == int(np.argmax(~np.isnan(expected)))
    np.testing.assert_allclose(out[name].to_numpy(), expected[warm:], rtol=1e-9, atol=1e-12)


def test_a_path_extends_the_inputs_exactly_as_the_history_does(ohlcv):
    # carry the recurrence from row t through the next 40 real closes: the values equal the file's at t + 40
    names = ["log_return", "volatility_20", "rsi_14", "macd", "bollinger_20", "day_of_week", "month"]
    recurrence, closes = Recurrence(names), ohlcv["Close"].to_numpy()
    carry = recurrence.carry(closes)
    expected = recurrence.values(carry, ohlcv.index)
    t = np.array([60, 200, 300])
    path = carry[t]
    for h in range(1, 41):
        path = recurrence.advance(path, closes[t + h])
    np.testing.assert_allclose(recurrence.values(path, ohlcv.index[t + 40]), expected[t + 40], rtol=1e-10)


def _ohlcv(rng: np.random.Generator, days: int, effect: float = 0.0) -> pd.DataFrame:
    """A generated daily OHLCV history. With ``effect``, the next close-to-close return moves by ``effect`` in the
    direction of today's volume anomaly (above or below its recent level); without, a pure random walk."""
    volume = np.exp(12 + 0.5 * rng.standard_normal(days))
    z = pd.Series(np.log1p(volume))
    anomaly = np.sign((z - z.shift(1).rolling(20).mean()).fillna(0).to_numpy())
    returns = 0.01 * rng.standard_normal(days)
    returns[1:] += effect * anomaly[:-1]
    close = 100 * np.exp(np.cumsum(returns))
    spread = np.abs(0.005 * rng.standard_normal(days))
    frame = {"Open": close * (1 + 0.002 * rng.standard_normal(days)), "High": close * (1 + spread),
             "Low": close * (1 - spread), "Close": close, "Volume": volume}  # fmt: skip
    return pd.DataFrame(frame, index=pd.DatetimeIndex(pd.bdate_range("2000-01-03", periods=days), name="date"))


RUN = ["data.window=20", "model.hidden_size=16", "model.num_layers=1", "model.lr=0.003", "trainer.max_epochs=3",
       "evaluation.steps=1", "evaluation.shrink=false", "~callbacks.early_stopping", "data.val_start=2008-01-02",
       "data.test_start=2010-01-04"]  # fmt: skip


def test_every_derived_input_on_a_random_walk_shows_no_skill(tmp_path, compose_cfg, write_csv, capsys, caplog):
    # a leak in any input (a value from a later row) would show as large, significant skill
    path = write_csv(_ohlcv(np.random.default_rng(1), 3200))
    from pricernn.tasks.train import train

    run = [o.replace("evaluation.steps=1", "evaluation.steps=3") for o in RUN]
    metrics = train(compose_cfg(*run, f"data.path={path}", "data.derived=all"), tmp_path / "run")
    print(f"random walk, derived=all: skill {metrics['test/skill']:.4f}, DM p {metrics['test/dm_pvalue']:.3g}")
    assert metrics["test/skill"] < 0.01
    assert not (metrics["test/dm_stat"] < 0 and metrics["test/dm_pvalue"] < 0.05)
    # atr_14, volume_z_20 and range read columns the model does not forecast: only its own horizon is scored, the
    # log says so, and the forecast command the run ends with asks for no more steps than that
    assert "test/h1/rmse" in metrics and "test/h3/rmse" not in metrics
    assert "evaluation.steps=3: scored up to h=1 only" in caplog.text and "atr_14 (from High, Low)" in caplog.text
    assert re.search(r"forecast: +python scripts/predict.py ckpt=\S+ steps=1\n", capsys.readouterr().out)


def test_a_model_of_target_only_inputs_forecasts_recursively_in_the_report_and_predict(tmp_path, compose_cfg,
                                                                                        write_csv, caplog):  # fmt: skip
    import logging

    from conftest import CONF_DIR
    from hydra import compose, initialize_config_dir

    from pricernn.tasks.predict import forecast_history
    from pricernn.tasks.train import train

    path = write_csv(_ohlcv(np.random.default_rng(1), 1500)[["Close"]])
    run = [o.replace("evaluation.steps=1", "evaluation.steps=3") for o in RUN if "start=" not in o]
    cfg = compose_cfg(*run, f"data.path={path}", "data.derived=all", "trainer.max_epochs=1")
    with caplog.at_level(logging.INFO, logger="pricernn"):
        metrics = train(cfg, tmp_path / "run")
    assert "(data.derived=all without atr_14, volume_z_20, range: no High, Low, Volume column)" in caplog.text
    assert np.isfinite(metrics["test/h3/rmse"]) and metrics["test/h3/rmse"] > metrics["test/h1/rmse"]
    with initialize_config_dir(config_dir=CONF_DIR, version_base="1.3"):
        cfg = compose("predict", [f"ckpt={tmp_path / 'run/checkpoints/best.ckpt'}", "steps=7"])
    frame = forecast_history(cfg, tmp_path / "out").frame
    assert len(frame) == 7 and np.isfinite(frame["predicted"]).all()
    assert (frame["upper_80"] > frame["predicted"]).all() and (frame["predicted"] > frame["lower_80"]).all()
    # where validation found no signal (λ = 0) the forecast is the last price, and predict.py says so
    ckpt = tmp_path / "run/checkpoints/best.ckpt"
    state = torch.load(ckpt, weights_only=True)
    state["pricernn_forecast"]["shrink"] = [0.0] * len(state["pricernn_forecast"]["shrink"])
    torch.save(state, ckpt)
    with caplog.at_level(logging.INFO, logger="pricernn"):
        flat = forecast_history(cfg, tmp_path / "flat").frame
    assert (flat["predicted"] == pd.read_csv(path)["Close"].iloc[-1]).all()
    assert "the forecast is the last price at every step, where the validation period found no" in caplog.text
    # a checkpoint whose derived inputs an earlier pricernn computed (other formulas) is refused, not fed others
    del state["hyper_parameters"]["transform"]["derived_version"]
    torch.save(state, ckpt)
    with pytest.raises(UserError, match=r"ckpt=.*best.ckpt: its derived inputs \(data.derived=all\) were computed "
                                        r"by an earlier pricernn.*\(version 1, now 2\); train it anew"):  # fmt: skip
        forecast_history(cfg, tmp_path / "out")


def test_auto_strategy_with_inputs_a_path_cannot_extend_is_refused_before_training(compose_cfg, tmp_path):
    from pricernn.tasks.train import train

    cfg = compose_cfg("debug=fast", "model.strategy=auto", "evaluation.steps=3", "data.derived=[log_return,atr_14]")
    says = r"weighs a recursive network .* inputs atr_14 \(from High, Low\), which it does not forecast: use model"
    with pytest.raises(UserError, match=says):
        train(cfg, tmp_path / "run")
    assert not (tmp_path / "run" / "checkpoints").exists()


def test_calendar_inputs_of_a_path_read_the_dates_in_the_history_s_time_zone():
    # NumPy keeps zoned dates as UTC: Tokyo's Monday midnight is Sunday 15:00 UTC
    days = pd.bdate_range("2024-01-01", periods=10, tz="Asia/Tokyo")
    recurrence = Recurrence(["day_of_week", "month"])
    carry = recurrence.carry(np.ones(len(days)))
    path = PathInputs.of(carry[:1], days.tz_convert(None).to_numpy()[None, :], days.tz)  # as SplitTargets has
    np.testing.assert_array_equal(path.dates[0], wall_clock(days))  # as predict.py reads its future dates
    np.testing.assert_array_equal(recurrence.values(carry[:1], path.dates[:, 0]), [[0.0, 1.0]])
    expected = recurrence.values(carry, days)
    for step in range(len(days)):
        np.testing.assert_array_equal(recurrence.values(carry[:1], path.dates[:, step]), expected[step : step + 1])


def test_an_input_the_prices_cannot_show_is_learnt_and_beats_the_price_only_model(tmp_path, compose_cfg, write_csv):
    from pricernn.evaluation.significance import diebold_mariano
    from pricernn.tasks.train import train

    path = write_csv(_ohlcv(np.random.default_rng(2), 3200, effect=0.004))
    runs = {}
    for name, derived in (("prices", "null"), ("volume", "[volume_z_20]")):
        train(compose_cfg(*RUN, f"data.path={path}", f"data.derived={derived}"), tmp_path / name)
        runs[name] = pd.read_csv(tmp_path / name / "predictions.csv").set_index("date")
    both = runs["prices"].merge(runs["volume"], left_index=True, right_index=True, suffixes=("", "_volume"))
    assert len(both) == len(runs["prices"]) > 500  # the same test days: the split is by date
    statistic, pvalue = diebold_mariano(both["predicted_volume"] - both["actual"], both["predicted"] - both["actual"])
    assert statistic < 0 and pvalue < 0.01
    print(f"derived vs prices: DM {statistic:.2f}, p {pvalue:.2g}")


def _mean_reverting_on_rsi(rng: np.random.Generator, days: int, effect: float) -> pd.DataFrame:
    """A generated daily close whose next log return leans against Wilder's 14-bar RSI of today: ``effect`` times
    (RSI - 50) / 50 downwards, under 1 % noise. A 5-bar window shows little of the 14-bar average's long memory."""
    closes, gain, loss, rsi, changes = [100.0], 0.0, 0.0, 50.0, []
    for _ in range(days - 1):
        closes.append(closes[-1] * np.exp(0.01 * rng.standard_normal() - effect * (rsi - 50) / 50))
        change = closes[-1] - closes[-2]
        changes.append(change)
        if len(changes) == 14:  # Wilder's seed: the mean of the first 14
            gain, loss = np.mean(np.maximum(changes, 0)), np.mean(np.maximum(np.negative(changes), 0))
        elif len(changes) > 14:
            gain, loss = (13 * gain + max(change, 0)) / 14, (13 * loss + max(-change, 0)) / 14
        if len(changes) >= 14:
            rsi = 100 - 100 / (1 + gain / loss) if loss > 0 else 100.0
    days_index = pd.DatetimeIndex(pd.bdate_range("2000-01-03", periods=days), name="date")
    return pd.DataFrame({"Close": closes}, index=days_index)


def test_a_recursive_forecast_with_rsi_beats_the_last_price_days_ahead(tmp_path, compose_cfg, write_csv):
    # the model reads rsi_14 and is fed its own forecasts for h = 2, 3, each bar's RSI computed from the path so far
    # (exact against recomputing over the whole file: tests/forecasting/test_forecasting.py); here, what that is worth
    from pricernn.tasks.train import train

    path = write_csv(_mean_reverting_on_rsi(np.random.default_rng(5), 4200, effect=0.015))
    run = [o.replace("evaluation.steps=1", "evaluation.steps=3").replace("data.window=20", "data.window=5")
           for o in RUN]  # fmt: skip
    metrics = train(compose_cfg(*run, f"data.path={path}", "data.derived=[rsi_14]", "trainer.max_epochs=4"),
                    tmp_path / "run")  # fmt: skip
    print(f"rsi_14, h=3: skill {metrics['test/h3/skill']:.4f}, DM p {metrics['test/h3/dm_pvalue']:.2g}")
    assert metrics["test/h3/skill"] > 0.02 and metrics["test/h3/dm_pvalue"] < 0.01


def test_a_covariate_is_joined_as_of_each_row_and_never_from_a_later_date(tmp_path, caplog):
    import logging

    from pricernn.data import PriceDataModule

    days = pd.bdate_range("2020-01-01", periods=300)
    target = pd.DataFrame({"Date": days, "Close": 100 + np.arange(300.0)})
    target.to_csv(tmp_path / "target.csv", index=False)
    # the covariate misses every 10th day and is stamped on its own dates (a different market's holidays)
    kept = days[np.arange(300) % 10 != 3]
    pd.DataFrame({"Date": kept, "Level": 1000 + np.arange(len(kept)) * 2.0}).to_csv(tmp_path / "cov.csv", index=False)
    spec = [{"path": str(tmp_path / "cov.csv"), "column": "Level", "name": "IDX"}]
    with caplog.at_level(logging.INFO, logger="pricernn"):
        dm = PriceDataModule(path=str(tmp_path / "target.csv"), covariates=spec, window=10)
        dm.setup()
    assert "covariate IDX: 30 of 300 rows take its value from an earlier date" in caplog.text
    assert dm.series.features == ("Close", "IDX") and dm.normalizer.x_kinds == ("price", "price")
    joined = pd.Series(dm.series.inputs[:, 1], index=dm.series.dates)
    covariate = pd.read_csv(tmp_path / "cov.csv", parse_dates=["Date"]).set_index("Date")["Level"]
    for day in joined.index[::7]:  # the last value dated at or before the row's date
        assert joined[day] == covariate[covariate.index <= day].iloc[-1]


def test_covariates_that_cannot_be_read_are_one_line(tmp_path):
    from pricernn.data import PriceDataModule

    with pytest.raises(UserError, match=r"data.covariates\[0\]=.*give path and column"):
        PriceDataModule(covariates=[{"path": "x.csv"}]).setup()
    with pytest.raises(UserError, match="unknown key"):
        PriceDataModule(covariates=[{"path": "x.csv", "column": "Close", "colour": "red"}]).setup()
    with pytest.raises(UserError, match="no such file"):
        PriceDataModule(covariates=[{"path": str(tmp_path / "none.csv"), "column": "Close"}]).setup()


def test_an_other_asset_the_target_follows_is_learnt(tmp_path, compose_cfg, write_csv):
    # the target's next return follows the covariate's return of today (0.5 % per 1 % move, under 1 % noise):
    # a model that reads the covariate beats the price-only one on the same test days
    from pricernn.evaluation.significance import diebold_mariano
    from pricernn.tasks.train import train

    rng = np.random.default_rng(4)
    days = pd.bdate_range("2000-01-03", periods=3200)
    leader = 0.01 * rng.standard_normal(len(days))
    returns = 0.01 * rng.standard_normal(len(days))
    returns[1:] += 0.5 * leader[:-1]
    write_csv(pd.DataFrame({"Close": 100 * np.exp(np.cumsum(returns))}, index=days.rename("date")), "target.csv")
    cov = write_csv(pd.DataFrame({"Level": 50 * np.exp(np.cumsum(leader))}, index=days.rename("date")), "lead.csv")
    runs = {}
    for name, covariates in (("prices", "null"), ("lead", f"[{{path:{cov},column:Level}}]")):
        cfg = compose_cfg(*RUN, f"data.path={tmp_path / 'target.csv'}", f"data.covariates={covariates}")
        train(cfg, tmp_path / name)
        runs[name] = pd.read_csv(tmp_path / name / "predictions.csv").set_index("date")
    both = runs["prices"].merge(runs["lead"], left_index=True, right_index=True, suffixes=("", "_lead"))
    assert len(both) == len(runs["prices"]) > 500
    statistic, pvalue = diebold_mariano(both["predicted_lead"] - both["actual"], both["predicted"] - both["actual"])
    print(f"covariate vs prices: DM {statistic:.2f}, p {pvalue:.2g}")
    assert statistic < 0 and pvalue < 0.01
