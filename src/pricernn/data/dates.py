"""Turn a date column into tz-naive timestamps, whatever the file's convention; refuse readings that cannot be right.

Handled: ISO dates and datetimes, day-first or month-first numeric dates (decided from the data: a first field
above 12 proves day-first), month names ("Jan 02, 2024"), yyyymmdd integers, epoch seconds to nanoseconds
(told apart by magnitude), typed datetimes from Parquet or Excel, and UTC offsets. A guess that the data cannot
settle (every day <= 12) is an error that names the option to set; so are readings that give dates in the
future or dates crowded around 1970-01-01, which is where numbers read in the wrong unit land.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from pricernn.data.formats import BadValue

# Regexes avoid look-arounds and back-references: pandas may hand them to pyarrow's RE2 engine.
OFFSET = r"^(?P<wall>.*\d:\d{2}(?::\d{2}(?:\.\d+)?)?)\s*(?P<offset>Z|UTC|GMT|[+-]\d{2}(?::?\d{2})?)$"
NUMERIC_DATE = r"^(?P<a>\d{1,4})(?P<sep>[./-])(?P<b>\d{1,2})(?P<sep2>[./-])(?P<c>\d{4}|\d{2})(?P<rest>.*)$"
ISO_TIME = r"(?:[ T]\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?)?"
NAMED_FORMATS = ("%b %d, %Y", "%B %d, %Y", "%d %b %Y", "%d %B %Y", "%d-%b-%Y", "%d-%b-%y", "%b %d %Y", "%d.%b.%Y")
# Epoch numbers by magnitude: 1e11 seconds is the year 5138, so anything larger is a finer unit.
EPOCH_UNITS = ((1e11, "s", "seconds"), (1e14, "ms", "milliseconds"), (1e17, "us", "microseconds"))
EPOCH = pd.Timestamp("1970-01-01")


def show(value: object) -> str:
    """A cell as a user would recognise it: strings quoted, numbers and stamps plain."""
    return repr(value) if isinstance(value, str) else str(value)


@dataclass
class Stamps:
    """Wall-clock times as the file means them, and the instants they are when the file says (else None)."""

    wall: pd.Series
    how: str
    instants: pd.Series | None = None
    zones: tuple[str, ...] = ()  # the named zone or the distinct UTC offsets behind ``instants``
    dayfirst: bool | None = None  # the day order decided for dates like 02/01/2024 (None: no such dates)


def _year(c: pd.Series) -> pd.Series:
    """Four-digit years; two-digit ones pivot like strftime's %y (69-99 -> 1900s, 00-68 -> 2000s)."""
    years = pd.to_numeric(c, errors="coerce").astype("Int64")
    century = (years < 69).astype("Int64") * 100 + 1900
    return years.where((c.str.len() != 2).fillna(True), years + century).astype("string")


def _dayfirst_from_data(text: pd.Series, first: pd.Series, second: pd.Series) -> bool:
    """A first field above 12 proves day-first, a second one above 12 month-first; neither is an error."""
    big_first, big_second = (first > 12).fillna(False), (second > 12).fillna(False)
    if big_first.any() and big_second.any():
        a, b = text[big_first].iloc[0], text[big_second].iloc[0]
        raise BadValue(
            f"column {text.name!r} mixes day-first {a!r} and month-first {b!r} dates",
            big_second.idxmax(),
            "; set data.date_format (e.g. %d/%m/%Y)",
        )
    if big_first.any() or big_second.any():
        return bool(big_first.any())
    differ = (first != second).fillna(False)
    label = differ.idxmax() if differ.any() else text.index[0]
    raise BadValue(
        f"column {text.name!r} has dates that read both day-first and month-first, e.g. {text[label]!r}",
        label,
        "; set data.dayfirst=true (day first) or data.dayfirst=false, or data.date_format (e.g. %d/%m/%Y)",
    )


def _year_first(sep: str) -> str:
    return "dates ISO (%Y-%m-%d)" if sep == "-" else f"dates year-first (%Y{sep}%m{sep}%d)"


def _numeric_dates(text: pd.Series, parts: pd.DataFrame, dayfirst: bool | None) -> tuple[pd.Series, str, bool | None]:
    """Dates like 2024-01-02, 02.01.2024 or 1/2/24 (optionally with a time): rewritten as ISO, then parsed."""
    sep = str(parts["sep"].dropna().iloc[0])
    consistent = (parts["sep"] == parts["sep2"]).fillna(False)
    a, b, c = (parts[k].where(consistent) for k in "abc")
    if (a.str.len() == 4).fillna(False).mean() > 0.5:
        year, month, day = a, b, c
        how, dayfirst = _year_first(sep), None
    else:
        given = dayfirst is not None
        if not given:
            dayfirst = _dayfirst_from_data(text, pd.to_numeric(a), pd.to_numeric(b))
        day, month = (a, b) if dayfirst else (b, a)
        year = _year(c)
        fields = ("%d", "%m") if dayfirst else ("%m", "%d")
        y = "%y" if (c.str.len() == 2).fillna(False).mean() > 0.5 else "%Y"
        how = f"dates {'day' if dayfirst else 'month'}-first ({sep.join([*fields, y])})"
        how += " (data.dayfirst)" if given else ""
    rest = parts["rest"].fillna("")
    how += " with times" if (rest != "").any() else ""
    if rest.str.fullmatch(ISO_TIME).fillna(False).all():
        iso = year + "-" + month.str.zfill(2) + "-" + day.str.zfill(2) + rest
        return pd.to_datetime(iso, format="ISO8601", errors="coerce"), how, dayfirst
    # times like "3:30 PM": dateutil, one value at a time, with the day order already decided
    return pd.to_datetime(text, format="mixed", dayfirst=bool(dayfirst), errors="coerce"), how, dayfirst


def _wall_from_text(
    text: pd.Series, date_format: str | None, dayfirst: bool | None
) -> tuple[pd.Series, str, bool | None]:
    if date_format:
        fmt = date_format.replace("%z", "").strip()  # offsets are split off before and handled for all formats
        return pd.to_datetime(text, format=fmt, errors="coerce"), f"dates {date_format} (data.date_format)", None
    parts = text.str.extract(NUMERIC_DATE)
    if parts["a"].notna().mean() > 0.5:
        return _numeric_dates(text, parts, dayfirst)
    sample = text.head(50)
    for fmt in NAMED_FORMATS:  # a handful of formats, each tried on a sample of the column at once
        if pd.to_datetime(sample, format=fmt, errors="coerce").notna().mean() > 0.5:
            return pd.to_datetime(text, format=fmt, errors="coerce"), f"dates like {text.iloc[0]!r} ({fmt})", None
    mixed = pd.to_datetime(text, format="mixed", dayfirst=bool(dayfirst), errors="coerce")
    return mixed, "dates in mixed formats (read one by one)", dayfirst


def _offset_name(minutes: int) -> str:
    return f"{'-' if minutes < 0 else '+'}{abs(minutes) // 60:02d}:{abs(minutes) % 60:02d}"


def _from_text(text: pd.Series, date_format: str | None, dayfirst: bool | None) -> Stamps:
    """Split trailing UTC offsets off, parse the wall-clock part, and work out the instants from both."""
    if not date_format:  # the common case first, at C speed: ISO dates or times without offsets
        try:
            iso = pd.to_datetime(text, format="ISO8601", errors="coerce")
        except ValueError:  # mixed offsets
            iso = None
        if iso is not None and iso.dt.tz is None and iso.notna().all():
            timed = (iso != iso.dt.normalize()).any()
            return Stamps(iso, _year_first(str(text.iloc[0])[4:5]) + (" with times" if timed else ""))
    split = text.str.extract(OFFSET)
    has_offset = split["offset"].notna()
    if has_offset.any() and not has_offset.all():
        label = (~has_offset).idxmax() if has_offset.iloc[0] else has_offset.idxmax()
        raise BadValue(f"column {text.name!r} mixes times with and without a UTC offset", label, "; make them alike")
    wall_text = split["wall"] if has_offset.all() else text
    wall, how, decided = _wall_from_text(wall_text.rename(text.name), date_format, dayfirst)
    if not has_offset.all():
        return Stamps(wall, how, dayfirst=decided)
    offset = (
        split["offset"]
        .str.replace(r"^(?:Z|UTC|GMT)$", "+00:00", regex=True)
        .str.extract(r"(?P<sign>[+-])(?P<h>\d{2}):?(?P<m>\d{2})?")
    )
    minutes = pd.to_numeric(offset["h"]) * 60 + pd.to_numeric(offset["m"].fillna("0"))
    minutes = minutes.where(offset["sign"] == "+", -minutes).astype("int64")
    instants = (wall - pd.to_timedelta(minutes, unit="min")).dt.tz_localize("UTC")
    zones = tuple(_offset_name(int(m)) for m in sorted(minutes.unique()))
    return Stamps(wall, how, instants, zones, decided)


def _from_numbers(values: pd.Series) -> Stamps:
    """yyyymmdd integers if every value is one, else epoch time in the unit its magnitude says (UTC)."""
    v = values.astype("float64")
    known = v.dropna()
    if ((known % 1 == 0) & known.between(18000101, 21001231)).all():
        wall = pd.to_datetime(v.astype("Int64").astype("string"), format="%Y%m%d", errors="coerce")
        if wall.notna().sum() == len(known):
            return Stamps(wall, "dates yyyymmdd (%Y%m%d)")
    scale = float(v.abs().median())
    unit, word = next(((u, w) for limit, u, w in EPOCH_UNITS if scale < limit), ("ns", "nanoseconds"))
    exact = values.astype("int64") if unit == "ns" and (v % 1 == 0).all() else v  # floats lose ns precision
    instants = pd.to_datetime(exact, unit=unit, utc=True, errors="coerce")
    return Stamps(instants.dt.tz_localize(None), f"dates epoch {word}", instants, ("UTC",))


def _settle_zone(stamps: Stamps, timezone: str | None) -> tuple[pd.Series, str]:
    """Naive times: converted to ``timezone`` if given, else the local wall clock when it is one clock, else UTC.

    Keeping the wall clock matters for daily bars: '2024-01-02 00:00+01:00' is the 2nd, not the 1st in UTC.
    Offsets that change with daylight saving still make one local clock as long as it never runs backwards.
    """
    if stamps.instants is None:
        return stamps.wall, (", no time zone in the file: data.timezone not applied" if timezone else "")
    if timezone:
        local = stamps.instants.dt.tz_convert(timezone).dt.tz_localize(None)
        return local, f", converted to {timezone} (data.timezone)"
    if len(stamps.zones) <= 1:
        return stamps.wall, f", {stamps.zones[0]} wall time" if stamps.zones else ""
    by_instant = stamps.wall.iloc[np.argsort(stamps.instants.to_numpy(), kind="stable")]
    if by_instant.is_monotonic_increasing and stamps.wall.nunique() == stamps.instants.nunique():
        return stamps.wall, f", local wall time kept across offsets {'/'.join(stamps.zones)}"
    utc = stamps.instants.dt.tz_localize(None)
    return utc, f", offsets {'/'.join(stamps.zones)} converted to UTC (set data.timezone to choose)"


def _check_plausible(raw: pd.Series, dates: pd.Series, how: str) -> None:
    """Refuse dates after today (a day's slack for zones ahead of this machine) or crowded around 1970-01-01."""
    future = dates > pd.Timestamp.now().normalize() + pd.Timedelta(days=2)
    if future.any():
        label = future.idxmax()
        raise BadValue(
            f"column {raw.name!r} has a date after today: {show(raw[label])} read as {dates[label]}",
            label,
            f" ({how}); set data.date_format or data.dayfirst, or fix the file",
        )
    near = (dates - EPOCH).abs() < pd.Timedelta(days=31)
    if len(dates) >= 2 and near.all():
        label = dates.idxmax()
        raise BadValue(
            f"column {raw.name!r}: all {len(dates)} dates fall between {dates.min()} and {dates.max()}, as numbers "
            f"read in the wrong unit do ({show(raw[label])} read as {dates[label]}, {how})",
            label,
            "; write the dates as text (2024-01-02) or epoch seconds or milliseconds, or set data.date_format",
        )


def parse_dates(
    raw: pd.Series, *, date_format: str | None = None, dayfirst: bool | None = None, timezone: str | None = None
) -> tuple[pd.Series, str, bool | None]:
    """A date column as tz-naive timestamps (same index), a note on how it was read, for the log, and the day order
    it decided for dates like 02/01/2024 (None where the dates have no such ambiguity), for checkpoints to keep.

    Raises :class:`BadValue` for an empty, unparseable, ambiguous or implausible date.
    """
    missing = raw.isna()
    if missing.any():
        raise BadValue(f"column {raw.name!r} has an empty date", missing.idxmax())
    if isinstance(raw.dtype, pd.DatetimeTZDtype):
        stamps = Stamps(raw.dt.tz_localize(None), "dates typed", raw.dt.tz_convert("UTC"), (str(raw.dt.tz),))
    elif pd.api.types.is_datetime64_dtype(raw):
        stamps = Stamps(raw, "dates typed")
    elif pd.api.types.is_numeric_dtype(raw) and not pd.api.types.is_bool_dtype(raw):
        stamps = _from_numbers(raw)
    else:
        text = raw.astype("string").str.strip()
        if not date_format and text.str.fullmatch(r"[-+]?\d+(?:\.\d+)?").fillna(False).mean() > 0.5:
            stamps = _from_numbers(pd.to_numeric(text, errors="coerce"))
        else:
            stamps = _from_text(text, date_format, dayfirst)
    unparsed = stamps.wall.isna()
    if unparsed.any():
        label = unparsed.idxmax()
        hint = f" ({stamps.how}); set data.date_format" + ("" if dayfirst is not None else " or data.dayfirst")
        raise BadValue(f"column {raw.name!r} has an unparseable date {show(raw[label])}", label, hint)
    dates, zone = _settle_zone(stamps, timezone)
    _check_plausible(raw, dates, stamps.how)
    return dates, stamps.how + zone, stamps.dayfirst
