"""One table of a sweep's runs, best first by validation RMSE in price units: swept values, validation and test
scores, status, cost.

Reads what runs leave behind (``.hydra/overrides.yaml``, ``metrics.json``, ``failed.json``, ``validation.csv``),
so it works on a finished, partly failed or still running sweep. Runs of one configuration (differing only in
``seed``) are grouped, with each score's mean and standard deviation, and the configurations are compared by a
Model Confidence Set on their validation losses (:func:`configurations`).
"""

from __future__ import annotations

import json
import math
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
from hydra.experimental.callback import Callback
from omegaconf import DictConfig, OmegaConf

from pricernn.errors import EXIT_USER_ERROR, UserError, check, first_line
from pricernn.evaluation.selection import model_confidence_set
from pricernn.evaluation.significance import loss_difference_test
from pricernn.files import write_atomic

SCORES = {
    "val/rmse_best": "val_rmse",  # price units: the sort key, comparable across scalers and transforms
    "val/loss_best": "val_loss",
    "test/rmse": "test_rmse",
    "test/mae": "test_mae",
    "test/rmse_ratio_naive": "ratio_naive",
    "test/dm_pvalue": "dm_p",
    "test/median_rmse_ratio": "median_ratio",
    "test/share_beating_naive": "share_beat",
    "test/ic": "ic",
    "trade/sharpe": "sharpe",
    "test/coverage_80": "cover_80",
    "test/width_80": "width_80",
    "epochs": "epochs",
    "train_seconds": "seconds",
    "params": "params",
}
NAIVE = {
    "naive/rmse": "test_rmse",
    "naive/mae": "test_mae",
    "naive/coverage_80": "cover_80",
    "naive/width_80": "width_80",
}
PANEL_ONLY = ("median_ratio", "share_beat")  # how many assets a panel model beats naive on
LEVEL = 0.10  # the confidence set's level, Hansen, Lunde & Nason's
VALIDATION_COLUMNS = {"date", "symbol", "last", "actual", "predicted"}  # what a run's validation.csv holds
RUN_COLUMNS = {"job", "status", "error", "seed", *SCORES.values()}  # what a run is, beside its swept values


def collect(sweep_dir: str | Path) -> pd.DataFrame:
    """One row per job folder of ``sweep_dir`` (every folder holding a ``.hydra/`` record)."""
    root = Path(sweep_dir)
    check(root.is_dir(), f"{sweep_dir}: no such sweep folder")
    jobs = sorted((p.parent for p in root.glob("**/.hydra")), key=lambda p: (len(p.parts), _job_key(p)))
    jobs = [j for j in jobs if (j / ".hydra" / "overrides.yaml").is_file()]
    check(jobs, f"{sweep_dir}: no runs in it (no job folder with a .hydra/overrides.yaml)")
    runs = pd.DataFrame([_row(root, job) for job in jobs])
    # an override every run shares (debug=fast) is not a swept value: one line, not a column
    fixed = [c for c in runs.columns if c not in RUN_COLUMNS and not c.startswith("_") and runs[c].nunique() == 1]
    fixed = fixed if len(runs) > 1 and runs[fixed].notna().all().all() else []
    shared = {c: runs[c].iloc[0] for c in fixed}
    runs = runs.drop(columns=fixed)
    runs.attrs["same_in_every_run"] = shared
    return runs


def _job_key(path: Path) -> tuple:
    return (0, int(path.name), "") if path.name.isdigit() else (1, 0, path.name)


def _row(root: Path, job: Path) -> dict:
    overrides = _overrides(job / ".hydra" / "overrides.yaml")
    row: dict = {"job": str(job.relative_to(root))}
    for item in overrides:
        key, _, value = str(item).partition("=")
        row[key.lstrip("+~")] = value
    metrics = _read_json(job / "metrics.json")
    failed = _read_json(job / "failed.json")
    if failed is not None:
        row.update(status="failed", error=failed.get("error", ""))
    elif metrics is None:
        row["status"] = "unfinished"  # still running, or killed before it wrote anything
    else:
        row["status"] = metrics.get("status", "done")
    for key, column in SCORES.items():
        row[column] = (metrics or {}).get(key, math.nan)
    row.update({f"_{k}": (metrics or {}).get(k, math.nan) for k in NAIVE})
    return row


def _overrides(path: Path) -> list[str]:
    """A job's command-line overrides, as Hydra records them: a YAML list of ``key=value`` texts, read as data
    (OmegaConf's safe YAML loader: a tag such as ``!!python/object`` is refused, never run) and only shown."""
    try:
        overrides = OmegaConf.to_container(OmegaConf.load(path)) or []
    except Exception as err:  # not YAML, or YAML that asks to build objects
        raise UserError(f"{path}: not a Hydra overrides record ({first_line(err, limit=80)})") from None
    check(
        isinstance(overrides, list) and all(isinstance(o, str) for o in overrides),
        f"{path}: not a Hydra overrides record (a list of key=value texts)",
    )
    return overrides


def _read_json(path: Path) -> dict | None:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):  # absent, or being written by a run that is still going
        return None


def leaderboard(runs: pd.DataFrame) -> pd.DataFrame:
    """Rows sorted best first by the best epoch's validation RMSE in price units (unscored runs last), with the
    naive forecast as a row."""
    board = runs.sort_values(["val_rmse", "job"], na_position="last", kind="stable").reset_index(drop=True)
    naive = runs[[f"_{k}" for k in NAIVE]].dropna(subset=["_naive/rmse"]).drop_duplicates()
    for _, values in naive.iterrows():
        row = {"job": "naive", "status": "baseline", "ratio_naive": 1.0}
        row.update({NAIVE[k]: values[f"_{k}"] for k in NAIVE})
        board = pd.concat([board, pd.DataFrame([row])], ignore_index=True)
    board = board.drop(columns=[f"_{k}" for k in NAIVE])
    board = board.drop(columns=[c for c in PANEL_ONLY if board[c].isna().all()])  # runs on one series
    board.attrs["same_in_every_run"] = runs.attrs.get("same_in_every_run", {})
    return board


def shared_line(board: pd.DataFrame) -> str:
    """``same in every run: debug=fast``: the overrides no run differs in, or an empty string."""
    shared = board.attrs.get("same_in_every_run") or {}
    return ("same in every run: " + " ".join(f"{k}={v}" for k, v in shared.items())) if shared else ""


def configurations(runs: pd.DataFrame, root: str | Path | None = None, level: float = LEVEL) -> pd.DataFrame | None:
    """The sweep's configurations (runs that differ only in ``seed`` grouped), best mean validation RMSE first:
    how many runs each has, the mean and standard deviation of every score across its seeds and, where every
    finished run left its validation forecasts (``validation.csv`` under ``root``), the Model Confidence Set at
    ``level`` over the configurations (pricernn.evaluation.selection) on their validation-period losses (never
    the test period's) and each one's Diebold-Mariano p-value against the best. None with fewer than two
    finished runs. ``attrs["verdict"]``: one line saying which configurations can be told apart."""
    done = runs[runs["status"] == "done"]
    if len(done) < 2:
        return None
    swept = [c for c in runs.columns if c not in {"job", "seed", "status", "error", *SCORES.values()}]
    swept = [c for c in swept if not c.startswith("_")]
    label = done[swept].astype(str).apply(lambda r: " ".join(f"{k}={v}" for k, v in r.items()), axis=1) if swept \
        else pd.Series("all runs", index=done.index)  # fmt: skip
    grouped = done.assign(configuration=label).groupby("configuration", sort=False)
    table = grouped[list(SCORES.values())].agg(["mean", "std"])
    table.columns = [f"{a}_{b}" for a, b in table.columns]
    table.insert(0, "runs", grouped.size())
    table = table.reset_index().sort_values("val_rmse_mean", kind="stable").reset_index(drop=True)
    table = table.dropna(axis=1, how="all")  # scores no run has (a panel's on one series)
    for column in swept:  # the swept values, for filtering the CSV
        table.insert(1 + swept.index(column), column, grouped[column].first().reindex(table["configuration"]).values)
    losses = _validation_losses(done.assign(configuration=label), root) if root is not None else None
    if isinstance(losses, str) or losses is None or losses.shape[1] < 2:
        table.attrs["verdict"] = f"no confidence set: {losses}" if isinstance(losses, str) else ""
        return table
    losses = losses[table["configuration"]]  # best mean validation RMSE first, as the table
    chosen = int(np.argmin(losses.mean().to_numpy()))
    found = model_confidence_set(losses.to_numpy(), level=level)
    table["mcs_pvalue"] = found.pvalues
    table["in_confidence_set"] = [k in found.kept for k in range(len(table))]
    best = losses.iloc[:, chosen].to_numpy()
    table["dm_p_vs_best"] = [
        1.0 if k == chosen else loss_difference_test(losses.iloc[:, k].to_numpy() - best)[1] for k in range(len(table))
    ]
    table.attrs["verdict"] = _verdict(table, chosen, level, len(losses))
    return table


def _validation_losses(done: pd.DataFrame, root: str | Path) -> pd.DataFrame | str:
    """Per validation date, each configuration's mean loss over its seeds (dates every run has): the squared
    next-step error in price units, or for a panel each date's mean squared error relative to the last price (a
    $500 stock's error is not 100 $5 ones'). Where the runs cannot be compared so, the reason why."""
    per_run, actual = {}, None
    for job, configuration in zip(done["job"], done["configuration"], strict=True):
        path = Path(root) / job / "validation.csv"
        frame = _read_csv(path)
        if frame is None:
            return "not every finished run left validation.csv"
        numbers = frame.reindex(columns=["last", "actual", "predicted"])
        if not set(frame.columns) >= VALIDATION_COLUMNS or not all(map(pd.api.types.is_numeric_dtype, numbers.dtypes)):
            return f"{path} is not a run's validation record (numeric columns last, actual, predicted by date, symbol)"
        prices = frame.set_index(["date", "symbol"])["actual"]
        if actual is not None:
            shared = actual.index.intersection(prices.index)
            if not np.allclose(actual[shared], prices[shared], rtol=1e-9):
                return "the runs forecast different series on the same dates (a swept data.path or data.target?)"
        actual = prices
        error = frame["predicted"] - frame["actual"]
        panel = frame["symbol"].nunique(dropna=False) > 1
        loss = (error / frame["last"]) ** 2 if panel else error**2
        per_run[job] = (configuration, loss.groupby(frame["date"]).mean())
    runs = pd.DataFrame({job: loss for job, (_, loss) in per_run.items()}).dropna()
    if runs.empty:
        return "the runs share no validation date"
    configuration = pd.Series({job: c for job, (c, _) in per_run.items()})
    return runs.T.groupby(configuration).mean().T


def _read_csv(path: Path) -> pd.DataFrame | None:
    try:
        return pd.read_csv(path, keep_default_na=False, na_values={"predicted": [""], "actual": [""]})
    except (OSError, ValueError):
        return None


def _verdict(table: pd.DataFrame, chosen: int, level: float, dates: int) -> str:
    """One line: which configurations the confidence set keeps, and the chosen one's test figure beside naive."""
    names, kept = table["configuration"], table["in_confidence_set"]
    head = f"model confidence set at {round(100 * level)} % (validation losses, {dates} days, block bootstrap): "
    if kept.all():
        head += f"all {len(table)} configurations; none can be told apart from the best"
    elif kept.sum() == 1:
        head += f"only {names[chosen]}; every other configuration is worse on validation"
    else:
        head += f"{int(kept.sum())} of {len(table)} cannot be told apart from the best ({', '.join(names[kept])})"
    row = table.iloc[chosen]
    test = ""
    if np.isfinite(row.get("test_rmse_mean", np.nan)):
        rmse, ratio = row["test_rmse_mean"], row["ratio_naive_mean"]
        test = (f"; test period, {names[chosen]} (best on validation, {int(row['runs'])} runs): RMSE {rmse:.6g} "
                f"beside naive's {rmse / ratio:.6g} (ratio {ratio:.4f})")  # fmt: skip
    return head + test


def to_markdown(frame: pd.DataFrame) -> str:
    """A GitHub table; numbers to 6 significant digits, missing values blank."""

    def cell(value) -> str:
        if isinstance(value, float):
            if math.isnan(value):
                return ""
            return f"{int(value)}" if value.is_integer() and abs(value) < 1e12 else f"{value:.6g}"
        return str(value).replace("|", "\\|").replace("\n", " ")

    lines = ["| " + " | ".join(frame.columns) + " |", "|" + "---|" * len(frame.columns)]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in frame.itertuples(index=False)]
    return "\n".join(lines) + "\n"


def write(sweep_dir: str | Path) -> tuple[pd.DataFrame, pd.DataFrame | None]:
    """Build the leaderboard and the configurations table of ``sweep_dir`` and write them beside it as CSV and
    Markdown: leaderboard.csv/.md and, with two finished runs or more, configurations.csv/.md. Each run's row of
    the leaderboard names its configuration and whether the confidence set keeps it."""
    runs = collect(sweep_dir)
    root = Path(sweep_dir)
    board, grouped = leaderboard(runs), configurations(runs, root)
    if grouped is not None and "in_confidence_set" in grouped:
        board = _with_configurations(board, runs, grouped)
    write_atomic(root / "leaderboard.csv", board.to_csv(index=False))
    shared = shared_line(board)
    write_atomic(root / "leaderboard.md", (f"{shared}\n\n" if shared else "") + to_markdown(board))
    if grouped is not None:
        verdict = grouped.attrs.get("verdict", "")
        write_atomic(root / "configurations.csv", grouped.to_csv(index=False))
        write_atomic(root / "configurations.md", (f"{verdict}\n\n" if verdict else "") + to_markdown(grouped))
    return board, grouped


def _with_configurations(board: pd.DataFrame, runs: pd.DataFrame, grouped: pd.DataFrame) -> pd.DataFrame:
    """The leaderboard with each finished run's configuration, its MCS p-value and whether the set keeps it."""
    swept = [c for c in grouped.columns if c in runs.columns and c not in {"job", "seed"}]
    columns = ["configuration", "mcs_pvalue", "in_confidence_set", "dm_p_vs_best"]
    keyed = grouped[[*swept, *columns]].astype({c: str for c in swept})
    merged = board.astype({c: str for c in swept if c in board}).merge(keyed, on=swept, how="left") if swept else \
        board.assign(**{c: grouped[c].iloc[0] for c in columns})  # fmt: skip
    merged.loc[merged["status"] != "done", columns] = np.nan
    merged.attrs = board.attrs
    return merged


def sweep_text(grouped: pd.DataFrame) -> str:
    """The configurations table as TensorBoard text (Markdown), its verdict first."""
    verdict = grouped.attrs.get("verdict", "")
    wanted = ("configuration", "runs", "val_rmse_mean", "val_rmse_std", "ratio_naive_mean", "ratio_naive_std")
    shown = [c for c in (*wanted, "mcs_pvalue", "in_confidence_set", "dm_p_vs_best") if c in grouped]
    return (f"{verdict}\n\n" if verdict else "") + to_markdown(grouped[shown])


def log_sweep(grouped: pd.DataFrame, save_dir: str | Path, sweep_dir: Path) -> Path:
    """Write the configurations table as a TensorBoard text summary, in its own run ``sweeps/<sweep folder>``
    under the logger's folder, beside the sweep's runs; returns that run's folder. Written with TensorBoard's own
    event writer: the process that ends a parallel sweep has not loaded torch, and need not (about 2 s)."""
    from tensorboard.compat.proto.event_pb2 import Event
    from tensorboard.compat.proto.summary_pb2 import Summary, SummaryMetadata
    from tensorboard.compat.proto.tensor_pb2 import TensorProto
    from tensorboard.compat.proto.tensor_shape_pb2 import TensorShapeProto
    from tensorboard.summary.writer.event_file_writer import EventFileWriter

    folder = Path(save_dir) / "sweeps" / sweep_dir.name
    text = TensorProto(dtype="DT_STRING", string_val=[sweep_text(grouped).encode()],
                       tensor_shape=TensorShapeProto(dim=[TensorShapeProto.Dim(size=1)]))  # fmt: skip
    metadata = SummaryMetadata(plugin_data=SummaryMetadata.PluginData(plugin_name="text"))
    value = Summary.Value(tag="sweep/configurations/text_summary", metadata=metadata, tensor=text)
    writer = EventFileWriter(str(folder))
    writer.add_event(Event(step=0, wall_time=time.time(), summary=Summary(value=[value])))
    writer.close()
    return folder


class LeaderboardCallback(Callback):
    """Hydra callback (conf/hydra/default.yaml): when a sweep ends, write its leaderboard and say which runs
    failed, so a partly failed sweep is reported in its own output, and end the sweep with exit status 2 when
    any run failed (every run still ran: a failed run does not stop the others)."""

    def on_multirun_end(self, config: DictConfig, **kwargs) -> None:
        sweep_dir = Path(config.hydra.sweep.dir)
        try:
            board, grouped = write(sweep_dir)
        except UserError as err:  # e.g. every job was killed before Hydra wrote its record
            print(f"leaderboard: {err}")
            return
        if grouped is not None:
            if verdict := grouped.attrs.get("verdict"):
                print(verdict)
            save_dir = (config.get("logger") or {}).get("save_dir")
            if save_dir:
                folder = log_sweep(grouped, save_dir, sweep_dir)
                print(f"configurations: {sweep_dir / 'configurations.md'}; in TensorBoard: {folder}")
        failed = board[board["status"] == "failed"]
        done = int((board["status"] == "done").sum())
        print(f"sweep finished: {done} runs done, {len(failed)} failed; leaderboard: {sweep_dir / 'leaderboard.md'}")
        for row in failed.itertuples():
            print(f"  failed: job {row.job}: {row.error}")
        if len(failed):
            sys.stdout.flush()
            sys.exit(EXIT_USER_ERROR)
