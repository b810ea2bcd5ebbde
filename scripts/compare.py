"""Leaderboard of a sweep: python scripts/compare.py outputs/multirun/<sweep>

Prints every run, best validation RMSE first, with the naive forecast as a row; then the configurations (runs
that differ only in seed grouped: mean and standard deviation across seeds), the Model Confidence Set over them
on validation losses and each one's DM p-value against the best, and one line saying which can be told apart.
Writes leaderboard.csv/.md and configurations.csv/.md into the sweep folder. Works on a partly failed or still
running sweep: it compares what finished.
"""

import argparse

import pandas as pd

from pricernn.errors import exit_on_user_error, strip_debug_flag
from pricernn.reporting.leaderboard import shared_line, write


@exit_on_user_error
def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("sweep", help="a sweep folder, e.g. outputs/multirun/2026-11-23_10-00-00_000000")
    args = parser.parse_args()
    board, grouped = write(args.sweep)
    if shared := shared_line(board):
        print(shared)
    with pd.option_context("display.max_columns", None, "display.width", 200, "display.max_colwidth", 60):
        shown = board.drop(columns=["error"], errors="ignore")
        print(shown.to_string(index=False, float_format="{:.6g}".format, na_rep=""))
        failed = board[board["status"] == "failed"]
        for row in failed.itertuples():
            print(f"failed: job {row.job}: {row.error}")
        if grouped is not None:
            print("\nConfigurations (runs that differ only in seed), mean and std across seeds:")
            shown = [c for c in grouped.columns if not c.endswith("_std") or c.startswith(("val_rmse", "ratio"))]
            print(grouped[shown].to_string(index=False, float_format="{:.6g}".format, na_rep=""))
            if verdict := grouped.attrs.get("verdict"):
                print(verdict)
    print(
        f"written: {args.sweep}/leaderboard.csv, leaderboard.md"
        + (", configurations.csv, configurations.md" if grouped is not None else "")
    )


if __name__ == "__main__":
    strip_debug_flag()
    main()
