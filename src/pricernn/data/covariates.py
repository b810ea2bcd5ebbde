"""Other assets as inputs (``data.covariates``): a column of another file (an index, VIX, a rate), joined to the
target's rows by date *as of* each row: the covariate's last value dated at or before it, carried forward over
its gaps, never a value from a later date.

``data.covariates=[{path: vix.csv, column: Close, name: VIX}]``; each entry may also give ``date_column`` (the
target file's by default) and ``symbol_column`` + ``symbol`` for a long file. A covariate whose values are all
positive (a price or an index level) is scaled like the target, relative to the window's last value; one with a
value ≤ 0 (a rate, a spread) is standardised with training-period statistics.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import NamedTuple

import numpy as np
import pandas as pd

from pricernn.data.derived import ALL, add_derived, other_columns, resolve
from pricernn.data.derived import kinds as derived_kinds
from pricernn.data.sources import load_prices
from pricernn.errors import UserError, check

log = logging.getLogger("pricernn")
KEYS = ("path", "column", "name", "date_column", "symbol_column", "symbol")


def load_covariates(specs: Sequence[dict] | None, date_column: str, read: dict) -> dict[str, pd.Series]:
    """Every covariate ``data.covariates`` names, by its name, as a date-indexed series."""
    out: dict[str, pd.Series] = {}
    for k, spec in enumerate(specs or []):
        check(isinstance(spec, dict) and "path" in spec and "column" in spec,
              f"data.covariates[{k}]={spec}: give path and column, like {{path: vix.csv, column: Close}}")  # fmt: skip
        unknown = [key for key in spec if key not in KEYS]
        check(
            not unknown, f"data.covariates[{k}]: unknown key {unknown[0] if unknown else ''}; keys: {', '.join(KEYS)}"
        )
        name = str(spec.get("name") or f"{Path(str(spec['path'])).name.split('.')[0]}:{spec['column']}")
        check(name not in out, f"data.covariates: two covariates named {name}; give each a name")
        values = load_prices(spec["path"], date_column=spec.get("date_column") or date_column, target=spec["column"],
                             symbol_column=spec.get("symbol_column"), symbol=spec.get("symbol"), **read)  # fmt: skip
        out[name] = values[spec["column"]].dropna()
        check(len(out[name]) > 0, f"data.covariates: {name} has no values")
    return out


def join_as_of(prices: pd.DataFrame, covariates: dict[str, pd.Series], series: str = "") -> tuple[pd.DataFrame, int]:
    """``prices`` with a column per covariate, each row taking the covariate's last value dated at or before it;
    rows before every covariate has a value are dropped. Returns the frame and how many rows were dropped; how
    many rows took a value from an earlier date (the join's gaps) is logged per covariate."""
    if not covariates:
        return prices, 0
    out = prices.copy()
    for name, values in covariates.items():
        if name in out.columns:
            raise UserError(f"data.covariates: {name} is already a column of the target's file; name it otherwise")
        position = values.index.searchsorted(out.index, side="right") - 1  # the last date ≤ each row's
        known = position >= 0
        out[name] = np.where(known, values.to_numpy()[np.clip(position, 0, None)], np.nan)
        stale = int((known & ~out.index.isin(values.index)).sum())
        if stale:
            log.info("%scovariate %s: %d of %d rows take its value from an earlier date (it has no row that date)",
                     f"{series}: " if series else "", name, stale, len(out))  # fmt: skip
    defined = out[list(covariates)].notna().all(axis=1).to_numpy()
    first = int(np.argmax(defined)) if defined.any() else len(out)
    return out.iloc[first:], first


def kind_of(values: pd.Series) -> tuple[str, tuple[float, float]]:
    """How a covariate is scaled: like a price when all its values are positive, else standardised."""
    return ("price" if (values > 0).all() else "standard"), (0.0, 1.0)


class ExtraInputs(NamedTuple):
    frame: pd.DataFrame  # the series with a column per extra input, warm-up rows dropped
    names: list[str]  # the derived inputs' and covariates' names
    kinds: tuple[str, ...]  # every input's scaling kind (the file's features first); () when all are prices
    bounds: tuple[tuple[float, float], ...]  # every input's range, for bounded ones
    carry: np.ndarray  # (rows, C): what the next row's derived inputs follow from (pricernn.data.derived)


def extra_inputs(
    prices: pd.DataFrame,
    target: str,
    features: Sequence[str],
    derived: Sequence[str] | str | None,
    covariates: dict[str, pd.Series],
    symbol: str = "",
) -> ExtraInputs:
    """One series' inputs beyond its file's columns: the derived inputs (pricernn.data.derived) and the covariates,
    their warm-up rows dropped (and counted in the log), every input's scaling kind and range (``features`` first,
    scaled like prices; both empty without extra inputs, when every input is a price), and the rows' carry."""
    names = resolve(derived, list(prices.columns))
    prices, warm_up, carry = add_derived(prices, target, names)
    prices, before = join_as_of(prices, covariates, symbol)
    carry = carry[before:]  # the join drops leading rows only
    extra = [*names, *covariates]
    if not extra:
        return ExtraInputs(prices, [], (), (), carry)
    left_out = [n for n in ALL if n not in names] if derived == "all" else []
    lacking = sorted({c for n in left_out for c in other_columns(n)})
    without = f" (data.derived=all without {', '.join(left_out)}: no {', '.join(lacking)} column)" if left_out else ""
    log.info("%sinputs %s%s: the first %d rows dropped (their warm-up)", f"{symbol}: " if symbol else "",
             ", ".join(extra), without, warm_up + before)  # fmt: skip
    kinds = [("price", (0.0, 1.0))] * len(features) + derived_kinds(names)
    kinds += [kind_of(values) for values in covariates.values()]
    return ExtraInputs(prices, extra, tuple(k for k, _ in kinds), tuple(b for _, b in kinds), carry)
