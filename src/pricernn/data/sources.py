"""Load a price history (embedded data set, CSV or Parquet) into a clean, date-indexed float DataFrame.

Everything a user can get wrong in a file is caught here and reported in one line that names the file,
the column and the row, as a :class:`~pricernn.errors.UserError`.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from importlib.resources import files
from pathlib import Path

import numpy as np
import pandas as pd

from pricernn.errors import UserError, check, first_line

log = logging.getLogger("pricernn")

EMBEDDED = {"sp500": "datasets/sp500.csv.gz"}
PARQUET_SUFFIXES = {".parquet", ".pq"}
# Gzip and Parquet files hold NUL bytes legitimately; anything else with one is not a text table.
BINARY_MAGIC_OK = (b"\x1f\x8b", b"PAR1")


def resolve_path(path: str | Path) -> Path:
    """An embedded data set's name (``sp500``) or a file path, as a Path."""
    if str(path) in EMBEDDED:
        return Path(str(files("pricernn.data") / EMBEDDED[str(path)]))
    return Path(path).expanduser()


def read_table(path: Path) -> pd.DataFrame:
    """Read a CSV (optionally compressed) or Parquet file; every failure becomes a one-line UserError."""
    check(path.exists(), f"{path}: no such file")
    check(path.is_file(), f"{path}: is a directory, not a CSV or Parquet file")
    check(path.stat().st_size > 0, f"{path}: the file is empty")
    is_parquet = bool(PARQUET_SUFFIXES & set(path.suffixes))
    with path.open("rb") as fh:
        head = fh.read(8192)
    if b"\x00" in head and not head.startswith(BINARY_MAGIC_OK):
        raise UserError(f"{path}: looks like a binary file, not a CSV or Parquet table")
    try:
        frame = pd.read_parquet(path) if is_parquet else pd.read_csv(path)
    except ImportError as err:
        raise UserError(f"{path}: reading Parquet needs pyarrow (pip install pyarrow): {err}") from err
    except pd.errors.EmptyDataError as err:
        raise UserError(f"{path}: the file has no columns (empty or blank)") from err
    except (UnicodeDecodeError, pd.errors.ParserError, ValueError, OSError) as err:
        kind = "Parquet" if is_parquet else "CSV"
        reason = first_line(err)
        raise UserError(f"{path}: could not be read as {kind}: {reason}") from err
    check(len(frame) > 0, f"{path}: has a header but no data rows")
    return frame.reset_index(drop=True)


def _where(path: Path, frame: pd.DataFrame, label: int, date_column: str) -> str:
    """Name a row as a user finds it: the file line for CSV (header is line 1), the row number otherwise."""
    place = f"row {label + 1}" if PARQUET_SUFFIXES & set(path.suffixes) else f"line {label + 2}"
    if date_column in frame.columns:
        place += f" ({date_column} {frame.at[label, date_column]})"
    return place


def _require_columns(path: Path, frame: pd.DataFrame, wanted: Sequence[str], role: str) -> None:
    missing = [c for c in wanted if c not in frame.columns]
    if missing:
        have = ", ".join(map(str, frame.columns))
        raise UserError(f"{path}: no {role} column {missing[0]!r}; the columns are: {have}")


def _select_symbol(path: Path, frame: pd.DataFrame, symbol_column: str, symbol: str | None) -> pd.DataFrame:
    _require_columns(path, frame, [symbol_column], "symbol (data.symbol_column)")
    names = frame[symbol_column].astype(str)
    known = sorted(names.unique())
    sample = ", ".join(known[:8]) + (", ..." if len(known) > 8 else "")
    check(symbol is not None, f"{path}: data.symbol_column={symbol_column} needs data.symbol=; it holds: {sample}")
    chosen = frame[names == str(symbol)]
    check(len(chosen) > 0, f"{path}: no rows for data.symbol={symbol} in column {symbol_column!r}; it holds: {sample}")
    return chosen


def _parse_dates(path: Path, frame: pd.DataFrame, date_column: str) -> pd.DatetimeIndex:
    raw = frame[date_column]
    dates = pd.to_datetime(raw, errors="coerce")
    if dates.isna().any() and raw.notna().all():
        # The format was inferred from the first value; try per-value parsing before giving up.
        dates = pd.to_datetime(raw, errors="coerce", format="mixed")
    bad = dates.isna()
    if bad.any():
        label = bad.idxmax()
        value = raw.loc[label]
        where = _where(path, frame, label, "")
        raise UserError(f"{path}: column {date_column!r} has an unparseable date {value!r} at {where}")
    if getattr(dates.dt, "tz", None) is not None:
        dates = dates.dt.tz_localize(None)
    return pd.DatetimeIndex(dates, name="date")


def _to_float(path: Path, frame: pd.DataFrame, column: str, date_column: str) -> pd.Series:
    raw = frame[column]
    values = pd.to_numeric(raw, errors="coerce")
    text = values.isna() & raw.notna()
    if text.any():
        label = text.idxmax()
        where = _where(path, frame, label, date_column)
        raise UserError(f"{path}: column {column!r} has text {raw.loc[label]!r} at {where}, expected a number")
    infinite = np.isinf(values.to_numpy(dtype=float))
    if infinite.any():
        label = values.index[int(np.argmax(infinite))]
        where = _where(path, frame, label, date_column)
        raise UserError(f"{path}: column {column!r} has an infinite value at {where}")
    check(values.notna().any(), f"{path}: column {column!r} has no numbers at all (every value is missing)")
    return values.astype("float64")


def load_prices(
    path: str | Path = "sp500",
    *,
    date_column: str = "Date",
    target: str = "Close",
    features: Sequence[str] | None = None,
    symbol_column: str | None = None,
    symbol: str | None = None,
) -> pd.DataFrame:
    """Load a price history as a DataFrame indexed by date, sorted, one float column per needed column.

    The columns are ``features`` (default: just ``target``) followed by ``target`` if it is not among them.
    Missing values stay NaN (filling is preprocessing's job). Unsorted dates are sorted and duplicated dates
    keep their last row, each with a warning that counts the rows concerned.
    """
    path = resolve_path(path)
    frame = read_table(path)
    if symbol_column:
        frame = _select_symbol(path, frame, symbol_column, symbol)
    features = list(features) if features else [target]
    columns = list(dict.fromkeys([*features, target]))
    _require_columns(path, frame, [date_column], "date (data.date_column)")
    _require_columns(path, frame, [target], "target (data.target)")
    _require_columns(path, frame, features, "feature (data.features)")

    index = _parse_dates(path, frame, date_column)
    prices = pd.DataFrame({c: _to_float(path, frame, c, date_column).to_numpy() for c in columns}, index=index)

    if not prices.index.is_monotonic_increasing:
        out_of_order = int((np.diff(prices.index.asi8) < 0).sum())
        log.warning("%s: dates were not in order (%d steps back in time); sorted them", path.name, out_of_order)
        prices = prices.sort_index(kind="stable")
    duplicated = prices.index.duplicated(keep="last")
    if duplicated.any():
        log.warning("%s: %d rows repeat an earlier date; kept the last row of each date", path.name, duplicated.sum())
        prices = prices[~duplicated]
    return prices
