"""Load a price history (embedded data set, CSV, Parquet or Excel) into a clean, date-indexed float DataFrame.

Everything a user can get wrong in a file is caught here and reported in one line that names the file,
the column and the row, as a :class:`~pricernn.errors.UserError`. Everything guessed about the file (separator,
number and date conventions, order) is logged in one INFO line, so no guess is silent.
"""

from __future__ import annotations

import difflib
import logging
from collections.abc import Sequence
from importlib.resources import files
from pathlib import Path

import numpy as np
import pandas as pd

from pricernn.data.dates import parse_dates
from pricernn.data.formats import BadValue, Table, detect_number_format, is_text, parse_numbers, read_table
from pricernn.errors import UserError, check

log = logging.getLogger("pricernn")

EMBEDDED = {"sp500": "datasets/sp500.csv.gz", "sp500_stocks": "datasets/sp500_stocks.csv.gz"}
DECIMALS = (".", ",")
THOUSANDS = (",", ".", "'", " ", "")


def resolve_path(path: str | Path) -> Path:
    """An embedded data set's name (``sp500``) or a file path, as a Path."""
    if str(path) in EMBEDDED:
        return Path(str(files("pricernn.data") / EMBEDDED[str(path)]))
    return Path(path).expanduser()


def source_name(path: str | Path) -> str:
    """An embedded data set keeps its name; a file becomes an absolute path, valid from any directory."""
    return str(path) if str(path) in EMBEDDED else str(Path(str(path)).expanduser().resolve())


def _check_options(decimal: str | None, thousands: str | None, timezone: str | None) -> None:
    """Reject impossible reading options before the file is opened."""
    check(decimal is None or decimal in DECIMALS, f"data.decimal={decimal!r} must be '.' or ','")
    check(thousands is None or thousands in THOUSANDS, f"data.thousands={thousands!r} must be one of , . ' space ''")
    check(decimal is None or decimal != thousands, f"data.decimal and data.thousands are both {decimal!r}")
    if timezone:
        try:
            pd.Timestamp("2000-01-01", tz=timezone)
        except (KeyError, ValueError) as err:
            raise UserError(f"unknown data.timezone={timezone}; use a name like UTC or America/New_York") from err


def _where(table: Table, frame: pd.DataFrame, label: int, date_column: str | None) -> str:
    """Name a row as a user finds it: the file line for text files (header is line 1), the row otherwise."""
    place = table.where(label)
    if date_column in frame.columns:
        place += f" ({date_column} {frame.at[label, date_column]})"
    return place


class MissingColumn(UserError):
    """A column the settings name is not in the file (predict.py adds which columns the checkpoint reads)."""


def require_columns(path: Path, frame: pd.DataFrame, wanted: Sequence[str], role: str) -> None:
    missing = [c for c in wanted if c not in frame.columns]
    if missing:
        have = [str(c) for c in frame.columns]
        same = [c for c in have if c.lower() == str(missing[0]).lower()]  # 'close' for 'Close'
        close = same or difflib.get_close_matches(str(missing[0]), have, n=1, cutoff=0.6)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise MissingColumn(f"{path}: no {role} column {missing[0]!r}{hint}; the columns are: {', '.join(have)}")


def sample_names(values: pd.Series) -> str:
    known = sorted(values.astype(str).unique())
    return ", ".join(known[:8]) + (", ..." if len(known) > 8 else "")


def _select_symbol(path: Path, frame: pd.DataFrame, symbol_column: str, symbol: str | None) -> pd.DataFrame:
    require_columns(path, frame, [symbol_column], "symbol (data.symbol_column)")
    names = frame[symbol_column].astype(str)
    sample = sample_names(names)
    check(symbol is not None, f"{path}: data.symbol_column={symbol_column} needs data.symbol=; it holds: {sample}")
    chosen = frame[names == str(symbol)]
    check(len(chosen) > 0, f"{path}: no rows for data.symbol={symbol} in column {symbol_column!r}; it holds: {sample}")
    return chosen


def _row_naming_columns(frame: pd.DataFrame, dates: pd.Series, skip: Sequence[str]) -> tuple[str | None, str | None]:
    """Text columns that tell apart the rows sharing a date: the one with fewest values that is not a time of
    day (a ticker, most likely), and a time-of-day column (intraday files split date and time)."""
    symbols: list[tuple[int, str]] = []
    times: list[str] = []
    for column in (c for c in frame.columns if c not in skip and is_text(frame[c])):  # columns, not rows
        names = frame[column].astype("string")
        count = names.nunique()
        if count < 2 or count > len(frame) / 2 or pd.to_numeric(names, errors="coerce").notna().mean() > 0.5:
            continue
        if pd.DataFrame({"date": dates.to_numpy(), "name": names.to_numpy()}).duplicated().any():
            continue
        if names.str.fullmatch(r"\s*\d{1,2}:\d{2}(?::\d{2})?\s*").fillna(False).mean() > 0.9:
            times.append(str(column))
        else:
            symbols.append((count, str(column)))
    return (min(symbols)[1] if symbols else None), (times[0] if times else None)


def _refuse_several_series(path: Path, frame: pd.DataFrame, dates: pd.Series, skip: Sequence[str]) -> None:
    """Most dates on several rows means several series interleaved, which would train as one; a few is noise."""
    counts = dates.value_counts()
    if (counts >= 2).mean() <= 0.5:
        return
    typical = int(counts.median())
    first = counts[counts == typical].index.min() if (counts == typical).any() else counts[counts >= 2].index.min()
    day = first.date() if first == first.normalize() else first
    head = f"{path}: {typical} rows per date (e.g. {day})"
    symbol, time = _row_naming_columns(frame, dates, skip)
    if symbol is not None:
        raise UserError(f"{head}; set data.symbol_column={symbol} and data.symbol=one of {sample_names(frame[symbol])}")
    if time is not None:
        raise UserError(f"{head}: the time of day is in column {time!r}; join it to the date in one column")
    have = ", ".join(map(str, frame.columns))
    raise UserError(f"{head}: the file seems to hold several series; set data.symbol_column (columns: {have})")


def _at_row(path: Path, table: Table, frame: pd.DataFrame, err: BadValue, date_column: str | None) -> UserError:
    where = "" if err.label is None else " at " + _where(table, frame, err.label, date_column)
    return UserError(f"{path}: {err.message}{where}{err.hint}")


def read_values(
    path: Path,
    table: Table,
    frame: pd.DataFrame,
    columns: list[str],
    date_column: str,
    *,
    date_format: str | None,
    dayfirst: bool | None,
    timezone: str | None,
    decimal: str | None,
    thousands: str | None,
    one_series: bool = True,
) -> tuple[pd.Series, dict[str, pd.Series], list[str], bool | None]:
    """Dates, number columns, the notes on how they were read and the day order decided; a BadValue becomes a
    UserError at its row. ``one_series``: refuse a file whose dates repeat (several series interleaved)."""
    try:
        raw = frame[date_column]
        dates, date_note, decided = parse_dates(raw, date_format=date_format, dayfirst=dayfirst, timezone=timezone)
    except BadValue as err:
        raise _at_row(path, table, frame, err, None) from err  # the date itself is in the message
    if one_series:
        _refuse_several_series(path, frame, dates, [date_column, *columns])
    try:
        fmt, number_note = detect_number_format([frame[c] for c in columns], decimal, thousands, table.sep)
        parsed = {c: parse_numbers(frame[c], fmt) for c in columns}
    except BadValue as err:
        raise _at_row(path, table, frame, err, date_column) from err
    units = [f"{'K/M/B' if u != '%' else '%'} in {c!r}" for c, (_, used) in parsed.items() for u in sorted(used)]
    notes = [*table.notes, number_note, date_note, *dict.fromkeys(units)]
    notes = [n for n in notes if n]
    return dates, {c: values for c, (values, _) in parsed.items()}, notes, decided


def load_prices(
    path: str | Path = "sp500",
    *,
    date_column: str = "Date",
    target: str = "Close",
    features: Sequence[str] | None = None,
    symbol_column: str | None = None,
    symbol: str | None = None,
    sep: str | None = None,
    decimal: str | None = None,
    thousands: str | None = None,
    date_format: str | None = None,
    dayfirst: bool | None = None,
    sheet: str | int | None = None,
    timezone: str | None = None,
    optional: Sequence[str] = (),
) -> pd.DataFrame:
    """Load a price history as a DataFrame indexed by date, sorted, one float column per needed column, and the
    ``optional`` columns the file has (High, Low, Volume for derived inputs).

    The columns are ``features`` (default: just ``target``) followed by ``target`` if it is not among them.
    Missing values stay NaN (filling is preprocessing's job). Reading options left None are detected from the
    file and logged. A newest-first file is reversed; otherwise unsorted dates are sorted and duplicated dates
    keep their last row, each with a warning that counts the rows concerned.
    """
    path = resolve_path(path)
    _check_options(decimal, thousands, timezone)
    table = read_table(path, sep=sep, sheet=sheet)
    frame = table.frame
    if symbol_column:
        frame = _select_symbol(path, frame, symbol_column, symbol)
    features = list(features) if features else [target]
    columns = list(dict.fromkeys([*features, target, *(c for c in optional if c in frame.columns)]))
    require_columns(path, frame, [date_column], "date (data.date_column)")
    require_columns(path, frame, [target], "target (data.target)")
    require_columns(path, frame, features, "feature (data.features)")

    dates, values, notes, dayfirst = read_values(
        path,
        table,
        frame,
        columns,
        date_column,
        date_format=date_format,
        dayfirst=dayfirst,
        timezone=timezone,
        decimal=decimal,
        thousands=thousands,
    )
    index = pd.DatetimeIndex(dates.to_numpy(), name="date")
    prices = pd.DataFrame({c: values[c].to_numpy() for c in columns}, index=index)
    prices.attrs["dayfirst"] = dayfirst  # the day order decided, for a checkpoint to read the next file alike
    if prices.index.is_monotonic_decreasing and not prices.index.is_monotonic_increasing:
        prices = prices.iloc[::-1]
        notes.append("newest row first: sorted oldest first")
    log.info("%s: %s", path.name, ", ".join(notes))
    return in_order(prices, path.name)


def in_order(prices: pd.DataFrame, name: str) -> pd.DataFrame:
    """Oldest row first: a newest-first history is reversed; otherwise unsorted dates are sorted and duplicated
    dates keep their last row, each with a warning (naming ``name``, a file or a symbol) that counts the rows."""
    if prices.index.is_monotonic_decreasing and not prices.index.is_monotonic_increasing:
        prices = prices.iloc[::-1]
        log.info("%s: newest row first: sorted oldest first", name)
    elif not prices.index.is_monotonic_increasing:
        out_of_order = int((np.diff(prices.index.asi8) < 0).sum())
        log.warning("%s: dates were not in order (%d steps back in time); sorted them", name, out_of_order)
        prices = prices.sort_index(kind="stable")
    duplicated = prices.index.duplicated(keep="last")
    if duplicated.any():
        log.warning("%s: %d rows repeat an earlier date; kept the last row of each date", name, duplicated.sum())
        prices = prices[~duplicated]
    return prices
