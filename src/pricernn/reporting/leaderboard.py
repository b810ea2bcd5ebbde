"""One table of a sweep's runs, best first by validation RMSE in price units: swept values, validation and test
scores, status, cost.

Reads what runs leave behind (``.hydra/overrides.yaml``, ``metrics.json``, ``failed.json``), so it works on a
finished, partly failed or still running sweep. Repeats of one configuration (differing only in ``seed``)
are also summarised as mean ± std.
"""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path

import pandas as pd
from hydra.experimental.callback import Callback
from omegaconf import DictConfig, OmegaConf

from pricernn.errors import EXIT_USER_ERROR, UserError, check, first_line
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


def repeats(runs: pd.DataFrame) -> pd.DataFrame | None:
    """Mean ± std over runs that differ only in their seed; None when the sweep has no repeats."""
    if "seed" not in runs:
        return None
    swept = [c for c in runs.columns if c not in {"job", "seed", "status", "error", *SCORES.values()}]
    swept = [c for c in swept if not c.startswith("_")]
    done = runs[runs["status"] == "done"]
    if done.empty:
        return None
    grouped = done.groupby(swept, dropna=False) if swept else done.groupby(lambda _: "all")
    table = grouped[list(SCORES.values())].agg(["mean", "std"])
    table.columns = [f"{a}_{b}" for a, b in table.columns]
    table.insert(0, "repeats", grouped.size())
    return table.reset_index().sort_values("val_rmse_mean", kind="stable")


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
    """Build the leaderboard (and the repeats table) of ``sweep_dir`` and write them beside it as CSV and
    Markdown: leaderboard.csv/.md and, with repeats, repeats.csv/.md."""
    runs = collect(sweep_dir)
    board, grouped = leaderboard(runs), repeats(runs)
    root = Path(sweep_dir)
    write_atomic(root / "leaderboard.csv", board.to_csv(index=False))
    shared = shared_line(board)
    write_atomic(root / "leaderboard.md", (f"{shared}\n\n" if shared else "") + to_markdown(board))
    if grouped is not None:
        write_atomic(root / "repeats.csv", grouped.to_csv(index=False))
        write_atomic(root / "repeats.md", to_markdown(grouped))
    return board, grouped


class LeaderboardCallback(Callback):
    """Hydra callback (conf/hydra/default.yaml): when a sweep ends, write its leaderboard and say which runs
    failed, so a partly failed sweep is reported in its own output, and end the sweep with exit status 2 when
    any run failed (every run still ran: a failed run does not stop the others)."""

    def on_multirun_end(self, config: DictConfig, **kwargs) -> None:
        sweep_dir = Path(config.hydra.sweep.dir)
        try:
            board, _ = write(sweep_dir)
        except UserError as err:  # e.g. every job was killed before Hydra wrote its record
            print(f"leaderboard: {err}")
            return
        failed = board[board["status"] == "failed"]
        done = int((board["status"] == "done").sum())
        print(f"sweep finished: {done} runs done, {len(failed)} failed; leaderboard: {sweep_dir / 'leaderboard.md'}")
        for row in failed.itertuples():
            print(f"  failed: job {row.job}: {row.error}")
        if len(failed):
            sys.stdout.flush()
            sys.exit(EXIT_USER_ERROR)
