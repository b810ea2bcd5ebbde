"""Many series, one data path: read a panel (a long file, a wide file or a folder of files), keep every series
end to end in one array with per-series offsets, and split all of them on the same dates.

One series is the panel of one: the data module goes through these functions whatever the count, so windows,
splits and scalers have one implementation. A window never crosses from one series into the next because its
start rows are generated per series (:func:`window_ranges`), and no asset's test period precedes another's
training data because the split boundaries are dates shared by all series (:func:`common_split`).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from pricernn.data.derived import PathInputs
from pricernn.data.formats import read_table
from pricernn.data.preprocess import PreparedSeries, split_rows
from pricernn.data.sources import EMBEDDED, in_order, load_prices, read_values, require_columns, resolve_path
from pricernn.errors import UserError, check

log = logging.getLogger("pricernn")


def panel_layout(path: str, layout: str | None, symbol_column: str | None) -> str:
    """The layout ``data.layout`` names, else the one the settings imply: a folder of files or a long file (with
    ``data.symbol_column``). A wide file (a date column and one price column per asset) must be named: guessed,
    an OHLCV file's Open, High, ..., Volume would become assets."""
    is_dir = str(path) not in EMBEDDED and Path(str(path)).expanduser().is_dir()
    check(is_dir or symbol_column or layout,
          f"data.symbols reads several series from data.path={path}: say how they lie, data.symbol_column=COLUMN "
          "for a long file (a row per date and asset), data.layout=wide for a date column and one price column per "
          "asset (every other column is taken as an asset)")  # fmt: skip
    found = "folder" if is_dir else "long" if symbol_column else "wide"
    check(layout != "long" or symbol_column, "data.layout=long needs data.symbol_column=COLUMN naming each row's asset")
    given = " (a folder)" if is_dir else f" with data.symbol_column={symbol_column}" if symbol_column else ""
    check(layout in (None, found), f"data.layout={layout} does not fit data.path={path}{given}")
    return layout or found


TABLE_SUFFIXES = (".csv", ".txt", ".tsv", ".parquet", ".pq", ".xlsx", ".xlsm", ".xls", ".ods")
PACKED_SUFFIXES = (".gz", ".bz2", ".zip", ".xz", ".zst")


def symbol_of(file: Path) -> str:
    """A file's series name in a folder: its name without the table and compression suffixes (BRK.B.csv.gz is
    BRK.B). A file that is not a table (no table suffix, a README, a hidden file) keeps its whole name: the
    folder reader leaves it out."""
    name = file.name
    unpacked = next((name[: -len(x)] for x in PACKED_SUFFIXES if name.lower().endswith(x)), name)
    table = next((unpacked[: -len(x)] for x in TABLE_SUFFIXES if unpacked.lower().endswith(x)), None)
    return table if table and not file.name.startswith(".") and table.upper() != "README" else name


def _chosen(names: Sequence[str], symbols: str | Sequence[str], where: str) -> list[str]:
    """``data.symbols=all`` takes every name in file order; a list must name only symbols ``where`` holds."""
    if symbols == "all":
        return list(names)
    wanted = [str(s) for s in symbols]
    missing = [s for s in wanted if s not in set(names)]
    shown = ", ".join(list(names)[:12]) + (", ..." if len(names) > 12 else "")
    same = [n for n in names if missing and n.lower() == missing[0].lower()]  # 'aapl' for 'AAPL'
    hint = f" (did you mean {same[0]}?)" if same else ""
    check(not missing, f"{where}: no series {', '.join(missing)} (data.symbols){hint}; it holds: {shown}")
    return wanted


def load_series(
    path: str,
    *,
    symbols: str | Sequence[str] | None,
    symbol: str | None = None,
    symbol_column: str | None = None,
    layout: str | None = None,
    **settings: object,
) -> dict[str, pd.DataFrame]:
    """Every series the settings name, by symbol: the one series of a file (``symbols`` None; named by
    ``symbol`` in a long file, else ""), or those of a panel (:func:`load_panel`)."""
    if symbols is None:
        return {symbol or "": load_prices(path, symbol_column=symbol_column, symbol=symbol, **settings)}
    return load_panel(path, symbols=symbols, layout=layout, symbol_column=symbol_column, **settings)


def load_panel(
    path: str,
    *,
    symbols: str | Sequence[str],
    layout: str | None = None,
    symbol_column: str | None = None,
    date_column: str = "Date",
    target: str = "Close",
    features: Sequence[str] | None = None,
    **read: object,
) -> dict[str, pd.DataFrame]:
    """Every series ``symbols`` names (``all`` or a list) as its own date-indexed frame with the columns
    :func:`~pricernn.data.sources.load_prices` gives one series. In a wide file each asset's column is renamed
    to ``target``; a series' rows run from its first to its last value (no fill past a delisting)."""
    kind = panel_layout(path, layout, symbol_column)
    features = list(features) if features else [target]
    optional = read.pop("optional", ())  # High, Low, Volume where the file has them (derived inputs)
    if kind == "folder":
        folder = Path(str(path)).expanduser()
        files: dict[str, Path] = {}
        tables = [f for f in sorted(folder.iterdir()) if f.is_file() and symbol_of(f) != f.name]
        ignored = [f.name for f in sorted(folder.iterdir()) if f.is_file() and f not in tables and f.name[0] != "."]
        if ignored:
            log.info("%s: not tables, ignored: %s", folder, ", ".join(ignored))
        for file in tables:
            name = symbol_of(file)
            check(name not in files, f"{folder}: {files.get(name, file).name} and {file.name} are both series {name}")
            files[name] = file
        check(files, f"{folder}: the folder holds no files (data.layout=folder reads one file per asset)")
        chosen = _chosen(list(files), symbols, str(folder))
        return {
            s: load_prices(files[s], date_column=date_column, target=target, features=features, **read) for s in chosen
        }
    file = resolve_path(path)
    table = read_table(file, sep=read.get("sep"), sheet=read.get("sheet"))
    frame = table.frame
    require_columns(file, frame, [date_column], "date (data.date_column)")
    parse = {k: read.get(k) for k in ("date_format", "dayfirst", "timezone", "decimal", "thousands")}
    if kind == "wide":
        check(features == [target], f"{file}: a wide file holds one price column per asset, so data.features "
              f"cannot name other columns ({', '.join(features)}); leave data.features unset")  # fmt: skip
        names = [str(c) for c in frame.columns if c != date_column]
        chosen = _chosen(names, symbols, str(file))
        dates, values, notes, dayfirst = read_values(file, table, frame, chosen, date_column, **parse)
        log.info("%s: %s", file.name, ", ".join(notes))
        index = pd.DatetimeIndex(dates.to_numpy(), name="date")
        out = {}
        for s in chosen:
            one = in_order(pd.DataFrame({target: values[s].to_numpy()}, index=index), f"{file.name}[{s}]")
            valid = one[target].notna().to_numpy()
            out[s] = one.iloc[int(np.argmax(valid)) : len(one) - int(np.argmax(valid[::-1]))] if valid.any() else one
            out[s].attrs["dayfirst"] = dayfirst
        return out
    require_columns(file, frame, [symbol_column], "symbol (data.symbol_column)")
    columns = list(dict.fromkeys([*features, target]))
    require_columns(file, frame, columns, "price (data.target, data.features)")
    columns += [c for c in optional if c in frame.columns and c not in columns]
    names = frame[symbol_column].astype(str)
    chosen = _chosen(list(dict.fromkeys(names)), symbols, f"{file} column {symbol_column!r}")
    frame = frame[names.isin(chosen).to_numpy()].reset_index(drop=True)
    dates, values, notes, dayfirst = read_values(file, table, frame, columns, date_column, one_series=False, **parse)
    log.info("%s: %s", file.name, ", ".join(notes))
    whole = pd.DataFrame(
        {c: values[c].to_numpy() for c in columns}, index=pd.DatetimeIndex(dates.to_numpy(), name="date")
    )
    codes = frame[symbol_column].astype(str).to_numpy()
    out = {s: in_order(whole[codes == s], f"{file.name}[{s}]") for s in chosen}
    for one in out.values():
        one.attrs["dayfirst"] = dayfirst
    return out


def concat(parts: Sequence[PreparedSeries]) -> PreparedSeries:
    """Series end to end in one set of arrays, with the offsets where each begins."""
    if len(parts) == 1:
        return parts[0]
    first = parts[0]
    lengths = [len(p.dates) for p in parts]
    return PreparedSeries(
        dates=pd.DatetimeIndex(np.concatenate([p.dates.values for p in parts]), name=first.dates.name),
        inputs=np.concatenate([p.inputs for p in parts]),
        target=np.concatenate([p.target for p in parts]),
        levels=np.concatenate([p.levels for p in parts]),
        features=first.features,
        target_name=first.target_name,
        log_return=first.log_return,
        symbols=tuple(p.symbols[0] for p in parts),
        offsets=np.concatenate([[0], np.cumsum(lengths)]),
        kinds=first.kinds,
        bounds=first.bounds,
        carry=np.concatenate([p.carry for p in parts]),
    )


def common_split(
    parts: Sequence[PreparedSeries],
    window: int,
    horizon: int,
    fractions: Sequence[float],
    val_start: str | None,
    test_start: str | None,
) -> tuple[list[int], np.ndarray]:
    """Which series to keep and, for each kept one, its first validation and first test row (K, 2).

    The boundaries are dates, the same for every series: by ``data.split`` fractions of all the panel's dates
    (for one series, of its rows) or by ``data.val_start`` / ``data.test_start``. A series with fewer rows in a
    part than one window needs (train: window + horizon; validation and test: horizon) is skipped with a warning
    that names it; one series too short is an error, as is a panel left empty.
    """
    union = (
        parts[0].dates
        if len(parts) == 1
        else pd.DatetimeIndex(np.unique(np.concatenate([p.dates.values for p in parts])))
    )
    val_row, test_row = split_rows(union, window, horizon, fractions, val_start, test_start)
    boundaries = union[[val_row, test_row]]
    kept, rows, short = [], [], []
    for k, part in enumerate(parts):
        v, t = (int(r) for r in part.dates.searchsorted(boundaries))
        sizes = {"train": v, "validation": t - v, "test": len(part.dates) - t}
        needed = {"train": window + horizon, "validation": horizon, "test": horizon}
        lacking = [f"{name} {sizes[name]} rows" for name in sizes if sizes[name] < needed[name]]
        if lacking:
            short.append(f"{part.symbols[0]} ({', '.join(lacking)})")
        else:
            kept.append(k)
            rows.append((v, t))
    if short:
        log.warning("skipped %d of %d series, too short for data.window=%d + data.horizon=%d in a part split at "
                    "%s and %s: %s", len(short), len(parts), window, horizon, boundaries[0].date(),
                    boundaries[1].date(), "; ".join(short))  # fmt: skip
    if not kept:
        raise UserError(f"no series has enough rows in every part for data.window={window} + data.horizon={horizon} "
                        f"(split at {boundaries[0].date()} and {boundaries[1].date()})")  # fmt: skip
    return kept, np.array(rows, dtype=np.int64)


def window_ranges(offsets: np.ndarray, bounds: np.ndarray, window: int, horizon: int) -> dict[str, list[range]]:
    """Per split, one range of window start rows (rows of the whole panel) per series. A window starting at i
    reads rows i..i+W-1 and predicts i+W..i+W+H-1; all of them lie inside its series, and every target inside
    its split."""
    out: dict[str, list[range]] = {"train": [], "val": [], "test": []}
    for k, (val_row, test_row) in enumerate(bounds):
        start, n = int(offsets[k]), int(offsets[k + 1] - offsets[k])
        first = {"train": 0, "val": val_row - window, "test": test_row - window}
        last = {"train": val_row - window - horizon, "val": test_row - window - horizon, "test": n - window - horizon}
        for split in out:
            out[split].append(range(start + first[split], start + last[split] + 1))
    return out


@dataclass(frozen=True)
class SplitTargets:
    """What one split's windows predict, in price units: row j is window j, column h is horizon h+1."""

    origin_dates: pd.DatetimeIndex  # (M,) day of the last observed price (the forecast origin)
    target_dates: np.ndarray  # (M, H) datetime64 day of each target
    anchor: np.ndarray  # (M,) last observed target price: the naive forecast for every horizon
    actual: np.ndarray  # (M, H) realised target prices
    series: np.ndarray | None = None  # (M,) which series of the panel (its number) each window belongs to
    carry: np.ndarray | None = None  # (M, C) each origin's carry: what its derived inputs go on from

    @property
    def path(self) -> PathInputs:
        """What a recursive forecast from these origins needs to extend their derived inputs."""
        return PathInputs.of(self.carry, self.target_dates, self.origin_dates.tz)


def split_targets(series: PreparedSeries, origin: np.ndarray, steps: int, first_series: int = 0) -> SplitTargets:
    """The targets of forecasts from the rows ``origin`` (of the whole panel), ``steps`` ahead; series numbers
    count from ``first_series`` (a part view's own series)."""
    rows = origin[:, None] + np.arange(1, steps + 1)
    number = np.searchsorted(series.offsets, origin, side="right") - 1 + first_series
    return SplitTargets(series.dates[origin], series.dates.values[rows], series.levels[origin], series.levels[rows],
                        number, series.carry[origin])  # fmt: skip


def scored_origins(offsets: np.ndarray, bounds: np.ndarray, split: str, steps: int) -> np.ndarray:
    """Every origin row of ``split`` ("val" or "test") from which all of ``steps`` targets lie inside the split,
    series by series. A series of a panel whose part is shorter is left out; none left is an error."""
    origins, rows = [], []
    for k, (val_row, test_row) in enumerate(bounds):
        start, end = int(offsets[k]), int(offsets[k + 1])
        first = start + (test_row if split == "test" else val_row) - 1
        last = end - 1 - steps if split == "test" else start + test_row - 1 - steps
        origins.append(np.arange(first, last + 1))
        rows.append(end - start - test_row if split == "test" else test_row - val_row)
    origin = np.concatenate(origins)
    check(len(origin) > 0, f"evaluation.steps={steps} is longer than the {split} period ({max(rows)} rows)")
    return origin
