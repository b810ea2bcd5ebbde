"""Bad input, interruptions, divergence and concurrent runs, through the scripts as a user runs them."""

import json
import logging
import signal
import subprocess
import time
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
import pytorch_lightning as pl
import torch

from pricernn import UserError
from pricernn.data import load_prices
from pricernn.models import RecurrentForecaster
from pricernn.tasks.callbacks import DivergenceGuard, TrainingDiverged
from pricernn.tasks.train import train

# --- the catalogue of bad input: every case through the CLI, all started at once -----------------------------


def _catalogue(d: Path) -> dict[str, tuple[str, list[str], str]]:
    """case → (script, arguments, what the one-line error must contain)."""
    prices = load_prices("sp500")[["Close"]].iloc[:300].reset_index().rename(columns={"date": "Date"})

    def csv(name: str, frame: pd.DataFrame) -> str:
        frame.to_csv(d / name, index=False)
        return f"data.path={d / name}"

    text = prices.astype({"Close": object})
    text.loc[16, "Close"] = "n/a?"
    dates = prices.astype({"Date": str})
    dates.loc[5, "Date"] = "someday"
    long = pd.concat([prices.assign(symbol=s) for s in ("AAPL", "MSFT")])
    early_days = prices[prices["Date"].dt.day <= 12]  # every date reads both ways: 02/01 or 01/02?
    ambiguous = early_days.assign(Date=early_days["Date"].dt.strftime("%d/%m/%Y"))
    epoch_days = prices.assign(Date=range(len(prices)))  # day numbers where the reader expects dates
    (d / "empty.csv").write_text("")
    (d / "binary.csv").write_bytes(bytes(range(256)) * 8)
    (d / "subdir").mkdir()
    normalizer = {"scaler": "window", "log_return": False, "x_loc": [0.0], "x_scale": [0.01], "y_loc": 0.0}
    transform = {"features": ["Close"], "target": "Close", "window": 10, "horizon": 1, "target_transform": "price"}
    model = RecurrentForecaster(1, transform={**transform, "normalizer": {**normalizer, "y_scale": 0.01}})
    state = {"state_dict": model.state_dict(), "hyper_parameters": dict(model.hparams), "loops": {}}
    state["pytorch-lightning_version"] = pl.__version__
    torch.save(state, d / "good.ckpt")
    (d / "truncated.ckpt").write_bytes((d / "good.ckpt").read_bytes()[:2000])
    torch.save({"weights": [1, 2, 3]}, d / "foreign.ckpt")
    good = csv("good.csv", prices)
    t = "train.py"
    gpu = {} if torch.cuda.is_available() else {"gpu without CUDA": (t, ["trainer=gpu"], "no CUDA device is visible")}
    return gpu | {
        "missing file": (t, ["data=csv", f"data.path={d / 'nope.csv'}"], "nope.csv: no such file"),
        "directory": (t, ["data=csv", f"data.path={d / 'subdir'}"], "is a directory"),
        "empty file": (t, ["data=csv", f"data.path={d / 'empty.csv'}"], "empty.csv: the file is empty"),
        "binary file": (t, ["data=csv", f"data.path={d / 'binary.csv'}"], "binary.csv: looks like a binary file"),
        "unparseable date": (t, ["data=csv", csv("dates.csv", dates)], "unparseable date 'someday' at line 7"),
        "date column": (t, ["data=csv", good, "data.date_column=Day"], "column 'Day'"),
        "target column": (t, ["data=csv", good, "data.target=Price"], "column 'Price'; the columns are: Date, Close"),
        "feature column": (t, ["data=csv", good, "data.features=[Close,Vol]"], "column 'Vol'"),
        "symbol column": (
            t,
            ["data=csv", csv("long.csv", long), "data.symbol_column=ticker", "data.symbol=AAPL"],
            "column 'ticker'",
        ),
        "unknown symbol": (
            t,
            ["data=csv", f"data.path={d / 'long.csv'}", "data.symbol_column=symbol", "data.symbol=TSLA"],
            "data.symbol=TSLA",
        ),
        "text in prices": (t, ["data=csv", csv("text.csv", text)], "column 'Close' has text 'n/a?' at line 18"),
        "inf in prices": (
            t,
            ["data=csv", csv("inf.csv", prices.assign(Close=prices["Close"].where(prices.index != 20, np.inf)))],
            "column 'Close' has an infinite value at line 22",
        ),
        "no numbers": (t, ["data=csv", csv("nan.csv", prices.assign(Close=np.nan))], "column 'Close' has no numbers"),
        "non-positive with log_return": (
            t,
            [
                "data=csv",
                csv("neg.csv", prices.assign(Close=prices["Close"].where(prices.index != 30, -1.0))),
                "data.target_transform=log_return",
                "data.scaler=standard",
            ],
            "non-positive value -1",
        ),
        "too short": (t, ["data=csv", good, "data.window=280"], "too short for data.window=280"),
        "split without room": (t, ["data.split=[0.9,0.1,0.0]"], "three positive fractions"),
        "split of two parts": (t, ["data.split=[0.7,0.3]"], "data.split=[0.7,0.3] must be three positive fractions"),
        "wrong type": (t, ["data.window=abc"], "data.window=abc: expected a whole number"),
        "wrong type of lr": (t, ["model.lr=fast"], "model.lr=fast: expected a number"),
        "unknown key": (t, ["data.windw=30"], "unknown key data.windw; did you mean data.window?"),
        "unknown appended key": (t, ["+data.windw=30"], "unknown key data.windw; did you mean data.window?"),
        "unknown group option": (t, ["model=transformer"], "model=transformer: no such option; choose one of"),
        "wrong type in a sweep": (t, ["-m", "data.window=10,abc"], "data.window=abc: expected a whole number"),
        "several series": (
            t,
            ["data=csv", f"data.path={d / 'long.csv'}"],
            "2 rows per date (e.g. 1999-01-04); set data.symbol_column=symbol and data.symbol=one of AAPL, MSFT",
        ),  # fmt: skip
        "ambiguous dates": (t, ["data=csv", csv("ambiguous.csv", ambiguous)], "set data.dayfirst=true"),
        "dates in the wrong unit": (t, ["data=csv", csv("epoch.csv", epoch_days)], "as numbers read in the wrong unit"),
        "window zero": (t, ["data.window=0"], "data.window=0 must be at least 1"),
        "horizon negative": (t, ["data.horizon=-1"], "data.horizon=-1 must be at least 1"),
        "hidden size zero": (t, ["model.hidden_size=0"], "model.hidden_size=0 must be at least 1"),
        "unknown cell": (t, ["model.cell=transformer"], "unknown model.cell=transformer"),
        "resume missing": (t, [f"resume={d / 'gone.ckpt'}"], "gone.ckpt: no such checkpoint file"),
        "resume truncated": (t, [f"resume={d / 'truncated.ckpt'}"], "truncated.ckpt: not a readable checkpoint"),
        "resume foreign": (t, [f"resume={d / 'foreign.ckpt'}"], "foreign.ckpt: not a pricernn checkpoint"),
        "ckpt missing": ("predict.py", [f"ckpt={d / 'gone.ckpt'}"], "gone.ckpt: no such checkpoint file"),
        "ckpt truncated": ("predict.py", [f"ckpt={d / 'truncated.ckpt'}"], "truncated.ckpt: not a readable checkpoint"),
        "ckpt foreign": ("predict.py", [f"ckpt={d / 'foreign.ckpt'}"], "foreign.ckpt: not a pricernn checkpoint"),
        "ckpt columns": (
            "predict.py",
            [f"ckpt={d / 'good.ckpt'}", csv("open.csv", prices.rename(columns={"Close": "Open"}))],
            "reads columns Close",
        ),
    }


@pytest.fixture(scope="session")
def catalogue_results(request, tmp_path_factory, start_script) -> dict[str, tuple[subprocess.CompletedProcess, str]]:
    """Run each selected catalogue case in its own subprocess, four at a time, once per test session."""
    d = tmp_path_factory.mktemp("catalogue")
    cases, results, running = _catalogue(d), {}, {}
    selected = {
        item.callspec.params["case"]
        for item in request.session.items
        if getattr(item, "originalname", "") == "test_bad_input_catalogue_one_line_no_traceback"
    }
    pending = [name for name in cases if name in selected]
    while pending or running:
        while pending and len(running) < 4:
            name = pending.pop()
            script, args, _ = cases[name]
            run_dir = d / "runs" / name.replace(" ", "_")
            running[name] = start_script(script, *args, f"hydra.run.dir={run_dir}", cwd=d)
        for name, proc in list(running.items()):
            if proc.poll() is not None:
                out, err = proc.communicate()
                results[name] = (subprocess.CompletedProcess(proc.args, proc.returncode, out, err), cases[name][2])
                del running[name]
        time.sleep(0.05)
    return results


def _case_names() -> list[str]:
    import tempfile

    with tempfile.TemporaryDirectory() as d:  # building the cases is cheap: files of 300 rows, a tiny model
        return list(_catalogue(Path(d)))


# Each case costs a fresh interpreter (~5 s of imports on 2 cores): the default run takes one case of each
# kind; `pytest -m slow` runs the whole catalogue (tests/data/test_sources.py checks every case in-process too, and
# tests/tasks/test_cli.py an unknown key and option through the command line).
DEFAULT_CASES = {"missing file", "text in prices", "too short", "resume truncated", "several series", "ckpt columns",
                 "gpu without CUDA"}  # fmt: skip


@pytest.mark.parametrize(
    "case", [c if c in DEFAULT_CASES else pytest.param(c, marks=pytest.mark.slow) for c in _case_names()]
)
def test_bad_input_catalogue_one_line_no_traceback(catalogue_results, case):
    result, needle = catalogue_results[case]
    assert result.returncode == 2, (result.stdout[-1500:], result.stderr[-1500:])
    assert "Traceback" not in result.stderr
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("error: ") and needle in last, last


def test_unsorted_and_repeated_dates_train_with_a_warning_that_counts(compose_cfg, tmp_path, caplog):
    prices = load_prices("sp500")[["Close"]].iloc[:400].reset_index().rename(columns={"date": "Date"})
    messy = pd.concat([prices.iloc[200:], prices.iloc[:200], prices.iloc[[5, 9, 11]]])
    messy.to_csv(tmp_path / "messy.csv", index=False)
    with caplog.at_level(logging.WARNING, logger="pricernn"):
        train(compose_cfg("data=csv", f"data.path={tmp_path / 'messy.csv'}", "debug=fast", "data.window=10"),
              tmp_path / "run")  # fmt: skip
    assert "dates were not in order" in caplog.text and "3 rows repeat an earlier date" in caplog.text


# --- interruption and resume ---------------------------------------------------------------------------------

LONG_RUN = ["data.window=20", "model.hidden_size=8", "model.num_layers=1", "trainer.max_epochs=6"]
LONG_RUN += ["trainer.limit_train_batches=20", "trainer.limit_val_batches=3", "~callbacks.early_stopping"]


def test_sigterm_stops_cleanly_and_resume_matches_an_uninterrupted_run(tmp_path, start_script, run_script):
    reference = start_script("train.py", *LONG_RUN, "hydra.run.dir=reference", cwd=tmp_path)
    victim = start_script("train.py", *LONG_RUN, "hydra.run.dir=victim", cwd=tmp_path)
    first_epoch_done = tmp_path / "victim" / "checkpoints" / "last.ckpt"
    deadline = time.time() + 120
    while not first_epoch_done.exists() and time.time() < deadline and victim.poll() is None:
        time.sleep(0.02)
    victim.send_signal(signal.SIGTERM)
    out, err = victim.communicate(timeout=120)
    assert victim.returncode == 143, err[-2000:]
    assert "Traceback" not in err
    last_line = err.strip().splitlines()[-1]
    assert last_line.startswith("interrupted by SIGTERM at epoch") and "resume=" in last_line, last_line
    state = json.loads((tmp_path / "victim" / "metrics.json").read_text())
    assert state["status"] == "interrupted" and Path(state["last_checkpoint"]) == first_epoch_done.resolve()
    assert state["epoch"] < 5  # it really stopped early

    resumed = run_script("train.py", *LONG_RUN, "hydra.run.dir=resumed", f"resume={first_epoch_done}")
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert reference.wait(timeout=240) == 0, reference.communicate()[1][-2000:]
    want = json.loads((tmp_path / "reference" / "metrics.json").read_text())
    got = json.loads((tmp_path / "resumed" / "metrics.json").read_text())
    assert got["epochs"] == want["epochs"] == 6
    for key in ("val/loss_best", "test/rmse", "test/mae", "test/h5/rmse"):
        assert got[key] == pytest.approx(want[key], rel=1e-6), key
    # the resumed run continued the interrupted run's TensorBoard run rather than starting a third
    runs = list((tmp_path / "outputs" / "tensorboard" / "sp500" / "lstm_w20_hs8_l1").iterdir())
    assert len(runs) == 2  # reference, and victim + its resumption


def test_a_diverging_run_stops_with_a_message_and_keeps_its_best_checkpoint(run_script, tmp_path):
    # an absurd learning rate without clipping: the loss overflows to inf within a few steps of epoch 1
    args = ["data.window=10", "model.hidden_size=8", "trainer.max_epochs=3", "trainer.limit_train_batches=10"]
    result = run_script("train.py", *args, "model.lr=1e30", "trainer.gradient_clip_val=null", "hydra.run.dir=run")
    assert result.returncode == 2 and "Traceback" not in result.stderr
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("error: training diverged: the loss became") and "at epoch" in last and "step" in last
    assert "model.lr" in last and "gradient_clip_val" in last


class BlowUpInSecondEpoch(pl.Callback):
    """An absurd learning rate from the second epoch on: the first epoch's checkpoints are good, then the loss
    overflows."""

    def on_train_epoch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if trainer.current_epoch == 1:
            for group in trainer.optimizers[0].param_groups:
                group["lr"] = 1e30


def test_a_diverging_run_keeps_the_checkpoints_of_the_last_finite_epoch(compose_cfg, tmp_path):
    cfg = compose_cfg("debug=tiny", "trainer.max_epochs=3", "trainer.gradient_clip_val=null",
                      "+callbacks.blow_up._target_=test_reliability.BlowUpInSecondEpoch")  # fmt: skip
    with pytest.raises(TrainingDiverged, match="the loss became .* at epoch 1, step") as caught:
        train(cfg, tmp_path / "run")
    best = (tmp_path / "run" / "checkpoints" / "best.ckpt").resolve()
    assert str(caught.value).endswith(f"best checkpoint so far: {best}")
    for name in ("best", "last"):  # nothing was written from the diverged weights
        state = torch.load(best.parent / f"{name}.ckpt", weights_only=True)
        assert state["epoch"] == 0 and all(torch.isfinite(w).all() for w in state["state_dict"].values())


def test_resume_refuses_other_settings_or_changed_data_and_names_what_differs(compose_cfg, tmp_path, sp500):
    path = tmp_path / "prices.csv"
    sp500[["Close"]].iloc[:1500].reset_index().rename(columns={"date": "Date"}).to_csv(path, index=False)
    run = ["data=csv", f"data.path={path}", "debug=fast", "data.window=10"]
    train(compose_cfg(*run), tmp_path / "first")
    last = tmp_path / "first" / "checkpoints" / "last.ckpt"
    with pytest.raises(UserError, match=r"trained with data.window=10 \(now 12\), model.cell=lstm \(now gru\); resume"):
        train(compose_cfg(*run, "data.window=12", "model=gru", f"resume={last}"), tmp_path / "other_model")
    with pytest.raises(UserError, match=rf"trained with data.path={path} \(now sp500\); resume with its settings"):
        train(compose_cfg(*run[2:], f"resume={last}"), tmp_path / "other_file")
    sp500[["Close"]].iloc[:1600].reset_index().rename(columns={"date": "Date"}).to_csv(path, index=False)
    changed = r"the data changed since the checkpoint was written \(test period 2004-01-30 .. 2004-12-20, now 2004-06"
    with pytest.raises(UserError, match=changed):
        train(compose_cfg(*run, f"resume={last}"), tmp_path / "edited_file")
    sp500[["Close"]].iloc[:1500].reset_index().rename(columns={"date": "Date"}).to_csv(path, index=False)
    resumed = train(compose_cfg(*run, "trainer.max_epochs=2", f"resume={last}"), tmp_path / "longer")  # may change
    assert resumed["epochs"] == 2
    # ... unless the learning rate is annealed over max_epochs: the schedule would then be no run's schedule
    train(compose_cfg(*run, "model.scheduler=cosine"), tmp_path / "cosine")
    cosine_last = tmp_path / "cosine" / "checkpoints" / "last.ckpt"
    with pytest.raises(UserError, match=r"model.scheduler=cosine anneals the learning rate over trainer.max_epochs=1"):
        train(compose_cfg(*run, "model.scheduler=cosine", "trainer.max_epochs=2", f"resume={cosine_last}"), tmp_path)


def test_the_divergence_flag_stays_on_the_device_and_catches_a_loss_between_reads():
    # a loss that is inf at step 103 only: read every 4 steps, the guard still stops at the read after it
    guard, hparams = DivergenceGuard(every=4), SimpleNamespace(lr=1e-3)
    trainer = SimpleNamespace(global_step=100, current_epoch=3, is_last_batch=False, gradient_clip_val=1.0)
    guard.on_train_start(trainer, None)  # e.g. resumed at step 100
    losses = [0.5, 0.4, float("inf"), 0.3, 0.2]
    with pytest.raises(TrainingDiverged, match=r"was NaN or infinite at epoch 3, between steps 101 and 104"):
        for step, loss in enumerate(losses, start=101):
            trainer.global_step = step
            guard.on_train_batch_end(trainer, SimpleNamespace(hparams=hparams), torch.tensor(loss), None, step)
    assert step == 104
    # read every step (the CPU default), it names the exact step and the value
    guard, trainer.global_step = DivergenceGuard(), 6
    guard.on_train_batch_end(trainer, SimpleNamespace(hparams=hparams), torch.tensor(0.1), None, 0)
    trainer.global_step = 7
    with pytest.raises(TrainingDiverged, match=r"became nan at epoch 3, step 7"):
        guard.on_train_batch_end(trainer, SimpleNamespace(hparams=hparams), torch.tensor(float("nan")), None, 0)


# --- concurrent runs ------------------------------------------------------------------------------------------


def test_two_runs_started_at_once_keep_separate_intact_artifacts(tmp_path, start_script):
    procs = [start_script("train.py", "debug=tiny", f"seed={s}", cwd=tmp_path) for s in (1, 2)]
    for proc in procs:
        _, err = proc.communicate(timeout=240)
        assert proc.returncode == 0, err[-2000:]
    runs = sorted((tmp_path / "outputs" / "runs").iterdir())
    assert len(runs) == 2
    seeds = {json.loads((r / "metrics.json").read_text())["val/loss_best"] for r in runs}
    assert len(seeds) == 2  # two different models, not one written twice
    for run in runs:
        assert {p.name for p in (run / "checkpoints").iterdir()} == {"best.ckpt", "last.ckpt"}
        assert torch.load(run / "checkpoints" / "best.ckpt", weights_only=True)["state_dict"]
    tb = list((tmp_path / "outputs" / "tensorboard" / "sp500" / "lstm_w20_hs8_l1").iterdir())
    assert len(tb) == 2 and all(any(p.glob("events.out.tfevents.*")) for p in tb)
