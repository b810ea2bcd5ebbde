"""Read a price table from whatever a user downloaded, and turn its number columns into floats.

Files come from brokers, exchanges and finance sites in every local convention: ``;`` or tab separators,
``1.234,56`` (German) or ``"1,234.56"`` (US, quoted), ``1.2M`` volumes and ``-0.52%`` changes, gzip or zip
archives, Parquet and Excel. Each convention is detected from the file itself (an explicit ``data.*`` option
always wins) and reported, so that no guess is silent. Problems with single values are raised as
:class:`BadValue`, which the caller turns into one line naming the file, the column and the row.
"""

from __future__ import annotations

import bz2
import gzip
import lzma
import re
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from pricernn.errors import UserError, check, first_line

PARQUET_SUFFIXES = {".parquet", ".pq"}
EXCEL_PACKAGES = {".xlsx": "openpyxl", ".xlsm": "openpyxl", ".xls": "xlrd", ".ods": "odfpy"}
# Compression is told by the first bytes, so a gzip file named .csv still reads.
MAGIC = {b"\x1f\x8b": "gzip", b"BZh": "bz2", b"PK\x03\x04": "zip", b"\xfd7zXZ\x00": "xz", b"\x28\xb5\x2f\xfd": "zstd"}
# On a tie ',' comes last: it is also the decimal mark inside European numbers.
SEPARATORS = ("\t", ";", "|", ",")
SEP_NAMES = {"tab": "\t", "\\t": "\t", "comma": ",", "semicolon": ";", "pipe": "|"}
MISSING = ["-", "\u2013", "\u2014"]  # finance sites print a dash where a volume or price is missing
SCALE = {"K": 1e3, "M": 1e6, "B": 1e9, "T": 1e12, "%": 1.0}  # '-0.52%' stays -0.52, the unit its header names
# Sign, an optional currency symbol, the number itself, an optional K/M/B/T or % suffix. No look-arounds or
# back-references: pandas may hand these to pyarrow's RE2 engine.
NUMBER = r"^\s*(?P<sign>[-+\u2212]?)\s*[$€£¥]?\s*(?P<body>.*?)\s*(?P<unit>[KkMmBbTt%])?\s*$"
# Values only one decimal mark explains: both marks (the last is the decimal), a mark repeated (thousands),
# one mark not followed by exactly three digits, or after a leading 0 or more than three digits.
DOT_DECIMAL = r"\d{1,3}(?:,\d{3})+\.\d*|\d{1,3}(?:,\d{3}){2,}|\d*\.(?:\d{1,2}|\d{4,})|(?:0|\d{4,})\.\d+"
COMMA_DECIMAL = r"\d{1,3}(?:\.\d{3})+,\d*|\d{1,3}(?:\.\d{3}){2,}|\d*,(?:\d{1,2}|\d{4,})|(?:0|\d{4,}),\d+"
LOOKS_COMMA = r"\d{1,3}(?:\.\d{3})+(?:,\d+)?|\d+,\d+"
LOOKS_THOUSANDS = r"\d{1,3}(?:,\d{3})+(?:\.\d+)?"
GROUPED_BY_SPACE = r"^\d{1,3}([ '’])\d{3}"


class BadValue(ValueError):
    """A value (or a whole column) that cannot be read; ``label`` is its row, which only the caller can name."""

    def __init__(self, message: str, label: object = None, hint: str = "") -> None:
        super().__init__(message)
        self.message, self.label, self.hint = message, label, hint


@dataclass
class Table:
    """A file's rows as read (text columns stay text), how a user numbers them, and what reading detected."""

    frame: pd.DataFrame
    unit: str  # "line" for text files (the header is line 1), "row" for Parquet and Excel
    first: int  # the number of the first data row in that unit
    notes: list[str] = field(default_factory=list)
    sep: str | None = None  # a text file's separator: ';' files usually write decimal commas

    def where(self, label: int) -> str:
        return f"{self.unit} {label + self.first}"


def _compression(head: bytes) -> str | None:
    return next((kind for magic, kind in MAGIC.items() if head.startswith(magic)), None)


def _text_head(path: Path, compression: str | None, size: int = 65536) -> bytes:
    """The first bytes of the table inside the file, decompressed, to detect the encoding and separator."""
    openers = {"gzip": gzip.open, "bz2": bz2.open, "xz": lzma.open}
    try:
        if compression in openers:
            with openers[compression](path, "rb") as fh:
                return fh.read(size)
        if compression == "zip":
            with zipfile.ZipFile(path) as archive:
                return archive.open(archive.namelist()[0]).read(size)
        if compression == "zstd":
            import zstandard

            with path.open("rb") as fh:
                return zstandard.ZstdDecompressor().stream_reader(fh).read(size)
        with path.open("rb") as fh:
            return fh.read(size)
    except ImportError as err:
        raise UserError(f"{path}: reading .zst files needs zstandard (pip install zstandard)") from err
    except (OSError, EOFError, IndexError, zipfile.BadZipFile, lzma.LZMAError) as err:
        raise UserError(f"{path}: could not be decompressed as {compression}: {first_line(err)}") from err


def _encoding(head: bytes) -> str:
    """UTF-16 (Excel's "Unicode text"), UTF-8 (with or without BOM), else Windows' Western European code page."""
    if head.startswith((b"\xff\xfe", b"\xfe\xff")):
        return "utf-16"
    try:
        head[: head.rfind(b"\n") + 1 or len(head)].decode("utf-8")
        return "utf-8-sig"
    except UnicodeDecodeError:
        return "cp1252"


def detect_separator(text: str) -> str:
    """The candidate found in the header and the same number of times on most lines (quoted text ignored)."""
    lines = pd.Series([line for line in text.splitlines() if line.strip()][:50], dtype="string")
    unquoted = lines.str.replace(r'"[^"]*"', "", regex=True)
    best, best_share = ",", 0.0
    for sep in SEPARATORS:  # four candidates, each counted over all sample lines at once
        counts = unquoted.str.count("\\" + sep if sep == "|" else sep)
        if len(counts) and counts.iloc[0] > 0 and (share := float((counts == counts.iloc[0]).mean())) > best_share:
            best, best_share = sep, share
    return best


def _read_csv(path: Path, sep: str | None) -> Table:
    with path.open("rb") as fh:
        compression = _compression(fh.read(8))
    head = _text_head(path, compression)
    encoding = _encoding(head)
    if b"\x00" in head and encoding != "utf-16":
        raise UserError(f"{path}: looks like a binary file, not a CSV, Parquet or Excel table")
    given = sep is not None
    sep = SEP_NAMES.get(str(sep).lower(), sep) if given else detect_separator(head.decode(encoding, errors="replace"))
    frame = pd.read_csv(
        path, sep=sep, dtype=str, encoding=encoding, compression=compression, na_values=MISSING, skipinitialspace=True
    )
    notes = [f"separator {sep!r}" + (" (data.sep)" if given else "")]
    notes += [f"{compression}-compressed"] if compression else []
    notes += [f"encoding {encoding}"] if encoding != "utf-8-sig" else []
    return Table(frame, "line", 2, notes, sep)


def _read_excel(path: Path, sheet: str | int | None) -> Table:
    package = EXCEL_PACKAGES[path.suffix.lower()]
    try:
        book = pd.ExcelFile(path)
    except ImportError as err:
        raise UserError(f"{path}: reading {path.suffix} files needs {package} (pip install {package})") from err
    with book:
        names = book.sheet_names
        chosen = 0 if sheet is None else sheet
        if isinstance(chosen, str) and chosen not in names and chosen.isdigit():
            chosen = int(chosen)
        known = chosen in names if isinstance(chosen, str) else 0 <= chosen < len(names)
        check(known, f"{path}: no sheet {sheet!r} (data.sheet); the sheets are: {', '.join(map(str, names))}")
        frame = pd.read_excel(book, sheet_name=chosen)
    name = names[chosen] if isinstance(chosen, int) else chosen
    return Table(frame, "row", 2, [f"sheet {name!r}" + (" (data.sheet)" if sheet is not None else "")])


def read_table(path: Path, *, sep: str | None = None, sheet: str | int | None = None) -> Table:
    """Read a CSV (plain or compressed), Parquet or Excel file; every failure becomes a one-line UserError."""
    check(path.exists(), f"{path}: no such file")
    check(path.is_file(), f"{path}: is a directory, not a CSV, Parquet or Excel file")
    check(path.stat().st_size > 0, f"{path}: the file is empty")
    with path.open("rb") as fh:
        is_parquet = fh.read(4) == b"PAR1" or bool(PARQUET_SUFFIXES & set(path.suffixes))
    kind = "Parquet" if is_parquet else "Excel" if path.suffix.lower() in EXCEL_PACKAGES else "CSV"
    try:
        if is_parquet:
            table = Table(pd.read_parquet(path), "row", 1, ["Parquet"])
        else:
            table = _read_excel(path, sheet) if kind == "Excel" else _read_csv(path, sep)
    except ImportError as err:  # Excel and zstd name their package above; this is Parquet's
        raise UserError(f"{path}: reading {kind} needs pyarrow (pip install pyarrow): {first_line(err)}") from err
    except pd.errors.EmptyDataError as err:
        raise UserError(f"{path}: the file has no columns (empty or blank)") from err
    except (UnicodeDecodeError, pd.errors.ParserError, ValueError, OSError, KeyError, zipfile.BadZipFile) as err:
        option = "; set data.sep (, ; tab |)" if isinstance(err, pd.errors.ParserError) else ""
        raise UserError(f"{path}: could not be read as {kind}: {first_line(err)}{option}") from err
    check(len(table.frame) > 0, f"{path}: has a header but no data rows")
    table.frame = table.frame.reset_index(drop=True).rename(columns=lambda c: c.strip() if isinstance(c, str) else c)
    return table


@dataclass(frozen=True)
class NumberFormat:
    """How a file writes numbers: its decimal mark and thousands separator ('' = none)."""

    decimal: str = "."
    thousands: str = ""


def _parts(raw: pd.Series) -> pd.DataFrame:
    """Sign, body and suffix of each text value (missing stays missing)."""
    text = raw.astype("string").str.replace("\u00a0", " ", regex=False).str.replace("\u202f", " ", regex=False)
    return text.str.extract(NUMBER)


def is_text(raw: pd.Series) -> bool:
    """Numbers stored as text (CSV, or strings in Parquet and Excel) that need parsing."""
    return not (pd.api.types.is_numeric_dtype(raw) and not pd.api.types.is_bool_dtype(raw))


def detect_number_format(
    columns: list[pd.Series], decimal: str | None = None, thousands: str | None = None, sep: str | None = None
) -> tuple[NumberFormat, str]:
    """Decide the decimal mark from values only one reading explains ('1,234.5', '12,5', '1.234.567' ...).

    One convention holds for the whole file. Without any such value ('1,234' or '1.234' alone could be
    either), the separator decides (';' files come from decimal-comma locales), and the note says it was assumed.
    """
    texts = [c.dropna().drop_duplicates().astype("string") for c in columns if is_text(c)]
    if not texts or all(t.empty for t in texts):
        return NumberFormat(decimal or ".", thousands or ""), ""
    everything = pd.concat(texts)
    # evidence from up to 2,000 distinct values per column: one convention holds for the whole file
    bodies = pd.concat([_parts(t.head(2000))["body"] for t in texts])
    note = f"decimal {decimal!r} (data.decimal)" if decimal else ""
    if decimal is None:
        dot, comma = (int(bodies.str.fullmatch(p).fillna(False).sum()) for p in (DOT_DECIMAL, COMMA_DECIMAL))
        decimal = "," if comma > dot or (comma == dot == 0 and sep == ";") else "."
        unproven = dot == comma == 0 and bool(bodies.str.contains(r"[.,]").fillna(False).any())
        if unproven and decimal == "," and not everything.str.contains(",", regex=False).fillna(False).any():
            # '151.234' in a ';' file: dot decimals, or dot thousands (151234)? A thousandfold error is not a guess
            column = next(t for t in texts if t.str.contains(".", regex=False).fillna(False).any())
            example = str(column[column.str.contains(".", regex=False).fillna(False)].iloc[0])
            raise BadValue(
                f"column {column.name!r} holds numbers like {example!r}, which read as dot decimals or as dot "
                f"thousands ({example.replace('.', '')}), and no value tells which; set data.decimal='.' "
                "(decimals) or data.decimal=',' (thousands)"
            )
        note = f"decimal {decimal!r}" + (" (assumed: no value tells; set data.decimal)" if unproven else "")
    if thousands is None:
        other = "," if decimal == "." else "."
        spaced = bodies.str.extract(GROUPED_BY_SPACE)[0].dropna()
        thousands = other if everything.str.contains(other, regex=False).fillna(False).any() else ""
        thousands = thousands or (str(spaced.iloc[0]) if len(spaced) else "")
        note += f", thousands {thousands!r}" if thousands else ""
    elif thousands:
        note += f", thousands {thousands!r} (data.thousands)"
    return NumberFormat(decimal, thousands), note


def _hint(body: str, fmt: NumberFormat) -> str:
    """What a value that failed to parse looks like, and the option that would read it."""
    if fmt.decimal != "," and re.fullmatch(LOOKS_COMMA, body):
        extra = " and data.thousands='.'" if "." in body else ""
        return f": read with decimal {fmt.decimal!r}, it looks like decimal comma; set data.decimal=','{extra}"
    if fmt != NumberFormat(".", ",") and re.fullmatch(LOOKS_THOUSANDS, body):
        return f": read with decimal {fmt.decimal!r}, it looks like thousands ','; set data.thousands=','"
    return ", expected a number"


def parse_numbers(raw: pd.Series, fmt: NumberFormat) -> tuple[pd.Series, set[str]]:
    """A column as float64 (NaN where missing) and the suffixes it used (K/M/B/T, %)."""
    name = raw.name
    if is_text(raw):
        values = pd.to_numeric(raw, errors="coerce") if fmt.decimal == "." else pd.Series(np.nan, raw.index)
        values = values.astype("Float64").to_numpy(dtype="float64", na_value=np.nan)
        rest = np.isnan(values) & raw.notna().to_numpy()  # plain numbers are done; the rest is parsed below
        parts = _parts(raw[rest])
        body = parts["body"]
        invalid = pd.Series(False, index=parts.index)
        if fmt.thousands:
            grouped = rf"\d{{1,3}}(?:\{fmt.thousands}\d{{3}})+(?:\{fmt.decimal}\d*)?"
            has = body.str.contains(fmt.thousands, regex=False)
            invalid = (has & ~body.str.fullmatch(grouped)).fillna(False)
            body = body.str.replace(fmt.thousands, "", regex=False)
        if fmt.decimal == ",":
            body = body.str.replace(",", ".", regex=False)
        sign = parts["sign"].fillna("").str.replace("\u2212", "-", regex=False)
        units = parts["unit"].str.upper()
        scale = units.map(SCALE, na_action="ignore").astype("Float64").to_numpy(dtype="float64", na_value=1.0)
        numbers = pd.to_numeric(sign + body, errors="coerce").to_numpy(dtype="float64", na_value=np.nan)
        values[rest] = np.where(invalid.to_numpy(dtype=bool), np.nan, numbers * scale)
        values = pd.Series(values, raw.index, name=name)
        failed = values.isna() & raw.notna()
        if failed.any():
            label = failed.idxmax()
            hint = _hint(str(parts.at[label, "body"]), fmt)
            raise BadValue(f"column {name!r} has text {raw.loc[label]!r}", label, hint)
        used = set(units.dropna().unique())
    else:
        values, used = raw.astype("float64"), set()
    infinite = np.isinf(values.to_numpy())
    if infinite.any():
        raise BadValue(f"column {name!r} has an infinite value", values.index[int(np.argmax(infinite))])
    if values.isna().all():
        raise BadValue(f"column {name!r} has no numbers at all (every value is missing)")
    return values, used
