"""Leaderboard of a sweep: python scripts/compare.py outputs/multirun/<sweep> [--all]

Prints one table, best validation loss first, with the naive forecast as a row, and writes leaderboard.csv and
leaderboard.md (and repeats.csv/.md when runs differ only by seed) into the sweep folder. Works on a partly
failed or still running sweep.
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
            print("\nRepeats (runs that differ only by seed), mean and std:")
            print(grouped.to_string(index=False, float_format="{:.6g}".format, na_rep=""))
    print(
        f"written: {args.sweep}/leaderboard.csv, leaderboard.md"
        + (", repeats.csv, repeats.md" if grouped is not None else "")
    )


if __name__ == "__main__":
    strip_debug_flag()
    main()
