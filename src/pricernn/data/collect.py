"""Collecting daily prices by ticker with yfinance (the optional extra ``.[collect]``) into one long file: date,
symbol, open, high, low, close, adj close, volume. A second call fetches only the dates after the last stored one
per ticker. ``scripts/collect.py`` is the command line.

Only :func:`_download` talks to the network; everything else works on frames in yfinance's return format, which
is what the tests give it.
"""

from __future__ import annotations

import io
import logging
import warnings
from collections.abc import Sequence
from importlib.util import find_spec
from pathlib import Path

import pandas as pd

from pricernn.errors import UserError, check
from pricernn.files import write_atomic

log = logging.getLogger("pricernn")
COLUMNS = ["date", "symbol", "open", "high", "low", "close", "adj close", "volume"]


def _download(tickers: list[str], start: str, end: str | None) -> pd.DataFrame:
    """yfinance's daily bars, unadjusted prices beside "Adj Close", columns (Price, Ticker)."""
    try:
        import yfinance
    except ImportError:
        raise UserError("collecting prices needs yfinance: pip install -e '.[collect]'") from None
    logging.getLogger("yfinance").setLevel(logging.CRITICAL)  # its per-ticker errors: collect() names them once
    with warnings.catch_warnings():  # pandas deprecations inside yfinance: not the user's business
        warnings.filterwarnings("ignore", module=r"yfinance\b")
        return yfinance.download(
            tickers, start=start, end=end, interval="1d", auto_adjust=False, actions=False, progress=False,
            group_by="column", multi_level_index=True, threads=True,
        )  # fmt: skip


def to_long(frame: pd.DataFrame, tickers: Sequence[str]) -> tuple[pd.DataFrame, list[str]]:
    """yfinance's frame as long rows (:data:`COLUMNS`), and the tickers it returned no price for. It has columns
    (Price, Ticker) for several tickers, or one level of price names for one (``multi_level_index=False``); a
    ticker that does not exist comes back as columns of NaN."""
    if isinstance(frame.columns, pd.MultiIndex):
        level = "Ticker" if "Ticker" in frame.columns.names else 1
        present = set(frame.columns.get_level_values(level))
        parts = [frame.xs(t, axis=1, level=level).assign(symbol=t) for t in tickers if t in present]
    else:
        parts = [frame.assign(symbol=tickers[0])] if len(tickers) == 1 else []
    rows = []
    for part in parts:
        part = part.rename(columns=lambda c: str(c).lower()).rename_axis("date").reset_index()
        rows.append(part.dropna(subset=["close"]))  # no price that day: a holiday, or a ticker that failed
    long = pd.concat(rows, ignore_index=True) if rows else pd.DataFrame(columns=COLUMNS)
    long["date"] = pd.to_datetime(long["date"]).dt.tz_localize(None).dt.normalize()
    missing = [t for t in tickers if t not in set(long["symbol"])]
    return long.reindex(columns=COLUMNS), missing


def read_stored(path: Path) -> pd.DataFrame:
    """A long file written by :func:`collect` (Parquet or CSV), or an empty frame where there is none yet."""
    if not path.exists():
        return pd.DataFrame(columns=COLUMNS)
    stored = pd.read_parquet(path) if path.suffix == ".parquet" else pd.read_csv(path)
    check(
        {"date", "symbol", "close"} <= set(stored.columns),
        f"out={path}: not a file collect.py wrote (it has no date, symbol and close columns); give another out=",
    )
    stored["date"] = pd.to_datetime(stored["date"])
    return stored


def collect(tickers: Sequence[str], start: str, out: str | Path, end: str | None = None) -> pd.DataFrame:
    """Download ``tickers`` from ``start`` (to yfinance's exclusive ``end``) into the long file ``out``. A ticker
    already stored is fetched from its last stored day on: that day must come back with the same adjusted close,
    else Yahoo has re-adjusted the history (a dividend or split since) and the ticker is fetched again from
    ``start``. Rows are unique per (date, symbol), the newest download winning; the file is written whole or not
    at all. A ticker that returns nothing is named; when none returns anything, nothing is written (exit 2).
    Returns the whole file's rows."""
    tickers = list(dict.fromkeys(str(t).strip() for t in tickers if str(t).strip()))
    check(tickers, 'tickers is empty: give tickers=[AAPL,MSFT] (quote a ticker with ^ or =: "^GSPC")')
    out = Path(out)
    check(out.suffix in (".parquet", ".csv"), f"out={out}: give a .parquet or .csv file")
    if out.suffix == ".parquet":
        check(find_spec("pyarrow") is not None, f"out={out}: Parquet needs pyarrow: pip install -e '.[parquet]', "
              "or give out=prices.csv")  # fmt: skip
    stored = read_stored(out)
    last = stored.groupby("symbol")["date"].max() if len(stored) else pd.Series(dtype="datetime64[ns]")
    starts = {t: last[t].strftime("%Y-%m-%d") if t in last else start for t in tickers}
    fresh, failed, again = [], [], []
    for begin in sorted(set(starts.values())):
        group = [t for t in tickers if starts[t] == begin]
        if end is not None and pd.Timestamp(begin) >= pd.Timestamp(end):
            continue  # nothing before the end that is not stored already
        rows, absent = to_long(_download(group, begin, end), group)
        failed += absent
        for ticker in set(group) & set(last.index) - set(absent):
            if _readjusted(stored, rows, ticker, last[ticker]):
                again.append(ticker)
                rows = rows[rows["symbol"] != ticker]
        fresh.append(rows)
    if again:  # the stored history no longer matches Yahoo's adjusted closes: replace it
        log.info("%s: re-adjusted by Yahoo since the last update (a dividend or split): fetched again from %s",
                 ", ".join(again), start)  # fmt: skip
        rows, absent = to_long(_download(again, start, end), again)
        failed += absent
        stored = stored[~stored["symbol"].isin(set(again) - set(absent))]
        fresh.append(rows)
    check(
        len(failed) < len(tickers),
        f"no data for any of {', '.join(tickers)} (not tickers, nothing from {start}, or no network): "
        + ("nothing written" if not len(stored) else f"{out} left as it was"),
    )
    if failed:
        log.warning("no data for %s (not a ticker, nothing in the period, or the download failed); kept the others",
                    ", ".join(failed))  # fmt: skip
    merged = pd.concat([stored, *fresh], ignore_index=True).drop_duplicates(["date", "symbol"], keep="last")
    merged = merged.sort_values(["symbol", "date"], kind="stable").reset_index(drop=True)
    out.parent.mkdir(parents=True, exist_ok=True)
    if out.suffix == ".parquet":
        buffer = io.BytesIO()
        merged.to_parquet(buffer, index=False)
        write_atomic(out, buffer.getvalue())
    else:
        write_atomic(out, merged.to_csv(index=False, date_format="%Y-%m-%d"))
    for symbol, rows in merged.groupby("symbol"):
        log.info("%s: %d rows, %s .. %s", symbol, len(rows), rows["date"].min().date(), rows["date"].max().date())
    return merged


def _readjusted(stored: pd.DataFrame, fresh: pd.DataFrame, ticker: str, day: pd.Timestamp) -> bool:
    """Whether the adjusted close of ``ticker`` on its last stored ``day`` differs between the file and a new
    download (Yahoo rescales a whole adjusted history at each dividend or split)."""
    old = stored.loc[(stored["symbol"] == ticker) & (stored["date"] == day), "adj close"]
    new = fresh.loc[(fresh["symbol"] == ticker) & (fresh["date"] == day), "adj close"]
    if old.empty or new.empty:
        return False
    return abs(float(new.iloc[0]) / float(old.iloc[0]) - 1) > 1e-6
