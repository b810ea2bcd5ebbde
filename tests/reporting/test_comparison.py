"""Is the winner really better? A sweep's runs grouped by configuration across seeds, and the Model Confidence
Set over the configurations on validation losses, read from the run directories alone."""

import json
import time

import numpy as np
import pandas as pd
import pytest
from conftest import CONF_DIR
from hydra import compose, initialize_config_dir

from pricernn.reporting.leaderboard import collect, configurations, write
from pricernn.tasks.train import train

SMALL = ["data.window=20", "model.hidden_size=16", "model.num_layers=1", "trainer.max_epochs=8"]
# a deliberately crippled configuration: one epoch at a learning rate too small to move the weights
CRIPPLED = ["trainer.max_epochs=1", "model.lr=1e-6"]


def _ar1_series(path, n: int = 3000, phi: float = 0.5) -> str:
    rng = np.random.default_rng(11)
    e, r = rng.normal(0, 0.01, n), np.zeros(n)
    for t in range(1, n):
        r[t] = phi * r[t - 1] + e[t]
    days = pd.bdate_range("2005-01-03", periods=n)
    pd.DataFrame({"Date": days, "Close": 100 * np.exp(np.cumsum(r))}).to_csv(path, index=False)
    return str(path)


@pytest.fixture(scope="module")
def sweep(tmp_path_factory):
    """Four runs as a Hydra sweep leaves them (job folders with their overrides): a working configuration and a
    crippled one, two seeds each, on log returns with real one-step signal (AR(1), 0.5)."""
    root = tmp_path_factory.mktemp("comparison")
    data = _ar1_series(root / "ar1.csv")
    jobs = [(["model.lr=0.001"], seed) for seed in (0, 1)] + [(CRIPPLED[1:], seed) for seed in (0, 1)]
    for job, (swept, seed) in enumerate(jobs):
        overrides = [*swept, f"seed={seed}"]
        extra = CRIPPLED[:1] if swept == CRIPPLED[1:] else []
        with initialize_config_dir(config_dir=CONF_DIR, version_base="1.3"):
            cfg = compose("train", [f"logger.save_dir={root / 'tb'}", "data=csv", f"data.path={data}", *SMALL,
                                    *extra, *overrides])  # fmt: skip
        run = root / "sweep" / str(job)
        train(cfg, run)
        (run / ".hydra").mkdir()
        (run / ".hydra" / "overrides.yaml").write_text("".join(f"- {o}\n" for o in overrides))
    return root / "sweep"


def test_a_crippled_configuration_falls_outside_the_confidence_set(sweep):
    table = configurations(collect(sweep), sweep).set_index("model.lr")
    assert table.loc["0.001", "runs"] == 2 and table.loc["1e-6", "runs"] == 2
    assert table.loc["0.001", "in_confidence_set"] and not table.loc["1e-6", "in_confidence_set"]
    assert table.loc["1e-6", "mcs_pvalue"] < 0.1 and table.loc["1e-6", "dm_p_vs_best"] < 0.05
    assert np.isfinite(table.loc["0.001", "val_rmse_std"])  # spread across the seeds
    verdict = table.attrs["verdict"]
    assert verdict.startswith("model confidence set at 10 % (validation losses, ")
    assert "only model.lr=0.001; every other configuration is worse on validation" in verdict
    assert "test period, model.lr=0.001 (best on validation, 2 runs): RMSE" in verdict


def test_the_leaderboard_names_each_run_s_configuration_and_a_half_finished_sweep_still_compares(sweep, tmp_path):
    board, _ = write(sweep)
    csv = pd.read_csv(sweep / "leaderboard.csv")
    done = csv[csv["status"] == "done"]
    assert set(done["configuration"]) == {"model.lr=0.001", "model.lr=1e-6"}
    assert (done["in_confidence_set"] == (done["configuration"] == "model.lr=0.001")).all()
    assert (sweep / "configurations.md").read_text().startswith("model confidence set at 10 %")
    # a sweep killed halfway: one run of each configuration finished, the others have only their overrides
    half = tmp_path / "half"
    for job in ("0", "1", "2", "3"):
        (half / job / ".hydra").mkdir(parents=True)
        (half / job / ".hydra" / "overrides.yaml").write_text((sweep / job / ".hydra" / "overrides.yaml").read_text())
    for job in ("0", "2"):
        for name in ("metrics.json", "validation.csv"):
            (half / job / name).write_text((sweep / job / name).read_text())
    table = configurations(collect(half), half).set_index("model.lr")
    assert table["runs"].tolist() == [1, 1] and not table.loc["1e-6", "in_confidence_set"]
    assert json.loads((sweep / "0" / "metrics.json").read_text())["val/rmse_best"] > 0
    # runs of another series (a swept data.target) are not compared on their losses: said, not guessed
    other = pd.read_csv(half / "2" / "validation.csv")
    other["actual"] *= 2
    other.to_csv(half / "2" / "validation.csv", index=False)
    table = configurations(collect(half), half)
    assert "in_confidence_set" not in table and table.attrs["verdict"].startswith(
        "no confidence set: the runs forecast different series on the same dates"
    )
    # a damaged record is one line naming the file, not a traceback
    (half / "2" / "validation.csv").write_text("date,symbol,last\n2020-01-02,,abc\n")
    verdict = configurations(collect(half), half).attrs["verdict"]
    assert verdict == f"no confidence set: {half / '2' / 'validation.csv'} is not a run's validation record (numeric " \
        "columns last, actual, predicted by date, symbol)"  # fmt: skip


def test_the_comparison_is_a_text_summary_in_tensorboard(sweep, tmp_path):
    from test_tensorboard import Server

    from pricernn.reporting.leaderboard import log_sweep

    folder = log_sweep(configurations(collect(sweep), sweep), tmp_path / "tb", sweep)
    assert folder == tmp_path / "tb" / "sweeps" / sweep.name
    server = Server(tmp_path / "tb")
    try:
        deadline = time.time() + 60
        while not (tags := server.get("/data/plugin/text/tags")) and time.time() < deadline:
            time.sleep(0.5)
        run = f"sweeps/{sweep.name}"
        assert tags == {run: ["sweep/configurations/text_summary"]}, tags
        (entry,) = server.get(f"/data/plugin/text/text?run={run}&tag=sweep/configurations/text_summary")
        assert "model confidence set at 10 %" in entry["text"] and "model.lr=1e-6" in entry["text"]
    finally:
        server.close()
