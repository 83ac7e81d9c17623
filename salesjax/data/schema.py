"""The raw-data contract: read a table, keep the rows that honour it, quarantine the rest.

File-level problems (missing file, wrong format, missing column, no rows) raise `SalesjaxError`;
row-level problems never raise: each bad row is quarantined with the first reason that applies, in
the order of `TRANSACTION_REASONS` / `PANEL_REASONS`. Always len(kept) + len(quarantined) ==
len(df), and kept rows stay in input order.
"""

import dataclasses
import datetime
import os
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa

from salesjax.config import PanelColumns
from salesjax.errors import SalesjaxError

TRANSACTION_COLUMNS = (
    "TransactionID",
    "SalesDate",
    "ProductCategory",
    "ProductID",
    "ProductName",
    "Age",
    "Gender",
    "StoreId",
    "Quantity",
    "Price",
    "Revenue",
)
TRANSACTION_REASONS = (
    "missing_transaction_id",
    "missing_date",
    "bad_date",
    "date_out_of_range",
    "missing_store",
    "missing_category",
    "bad_quantity",
    "bad_price",
    "revenue_mismatch",
    "duplicate_transaction",
)
_NUMERIC = ("Quantity", "Price", "Revenue")
PANEL_REASONS = (
    "bad_month",
    "missing_store",
    "missing_category",
    "bad_revenue",
    "bad_covariate",
    "duplicate_row",
)
COVARIATE_REASONS = ("bad_month", "missing_store", "missing_category", "bad_covariate", "duplicate_row")
CSV_SUFFIXES = (".csv",)
PARQUET_SUFFIXES = (".parquet", ".pq")
REVENUE_TOLERANCE = 0.01  # revenue is quoted to the cent
# Kept dates are datetime64[ns]; its range is 1677-09-21..2262-04-11, so whole years 1678..2261.
_NS_YEARS = (1678, 2261)
# Delimiters a spreadsheet export may use instead of ',' (a header with one of them and no ',').
_DELIMITERS = {";": "';'", "\t": "a tab", "|": "'|'"}
# Anything a reader library raises while parsing is the file's fault, not ours.
_PARSE_ERRORS = (ValueError, TypeError, NotImplementedError, pa.ArrowException)


@dataclasses.dataclass(frozen=True)
class Validated:
    """The outcome of validating a table."""

    kept: pd.DataFrame  # valid rows, typed, in input order
    quarantined: pd.DataFrame  # rejected rows: input values + `row` (0-based position) + `reason`
    counts: dict[str, int]  # reason -> rows, only reasons that occurred, in priority order


def read_table(path: Path) -> pd.DataFrame:
    """Read a CSV (every column as text) or Parquet (as stored) file with at least one data row."""
    path = Path(path)
    if not path.exists():
        raise SalesjaxError(f"input file not found: {path}")
    if path.is_dir():
        raise SalesjaxError(f"input path is a directory, not a file: {path}")
    suffix = path.suffix.lower()
    if suffix not in CSV_SUFFIXES + PARQUET_SUFFIXES:
        raise SalesjaxError(f"input file is not CSV or Parquet (suffix '{suffix}'): {path}")
    kind = "CSV" if suffix in CSV_SUFFIXES else "Parquet"
    try:
        table = _read_csv(path) if kind == "CSV" else pd.read_parquet(path)
    except pd.errors.EmptyDataError:
        raise SalesjaxError(f"input file has no data rows (it is empty): {path}") from None
    except OSError as exc:
        raise SalesjaxError(f"cannot read input file ({exc.strerror or exc}): {path}") from None
    except _PARSE_ERRORS:
        raise SalesjaxError(f"input file is not valid {kind}: {path}") from None
    if table.empty:
        raise SalesjaxError(f"input file has no data rows: {path}")
    return table


def _read_csv(path: Path) -> pd.DataFrame:
    """All columns as text with no NA guessing, so validation decides what is valid."""
    with path.open(encoding="utf-8-sig", errors="replace") as file:
        header = file.readline()
    if "," not in header and (found := [name for sep, name in _DELIMITERS.items() if sep in header]):
        raise SalesjaxError(f"input file is not valid CSV ({found[0]} found where ',' was expected): {path}")
    try:
        return pd.read_csv(path, dtype=str, keep_default_na=False, encoding="utf-8-sig")
    except UnicodeDecodeError:
        raise SalesjaxError(
            f"input file is not valid CSV (not UTF-8 text; save it as UTF-8): {path}"
        ) from None


def same_file(a: Path, b: Path) -> bool:
    """True when two paths name the same file (through links, `..` or another spelling)."""
    a, b = Path(a), Path(b)
    if a.exists() and b.exists():
        return os.path.samefile(a, b)
    return a.resolve() == b.resolve()


def write_table(frame: pd.DataFrame, path: Path) -> None:
    """Write a frame as CSV or Parquet, chosen by the suffix of `path`."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in CSV_SUFFIXES + PARQUET_SUFFIXES:
        raise SalesjaxError(f"output file must end in .csv, .parquet or .pq: {path}")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        if suffix in CSV_SUFFIXES:
            frame.to_csv(path, index=False)
        else:
            frame.to_parquet(path, index=False)
    except OSError as exc:
        raise SalesjaxError(f"cannot write output file ({exc.strerror or exc}): {path}") from None


def validate_transactions(df: pd.DataFrame, *, date_format: str, min_year: int, max_year: int) -> Validated:
    """Split transactions into typed valid rows and quarantined rows with reasons.

    `date_format` is a strptime format applied exactly: never inferred, never day-first guessing.
    Years outside [min_year, max_year], or outside 1678..2261 (datetime64[ns]), are out of range.
    A row with an empty TransactionID is quarantined (`missing_transaction_id`), so duplicates are judged
    by non-empty TransactionIDs among otherwise valid rows.
    """
    df = _checked(df, TRANSACTION_COLUMNS)
    typed = {
        "SalesDate": _dates(df["SalesDate"], date_format),
        "StoreId": _store_text(df["StoreId"]),
        "ProductCategory": _text(df["ProductCategory"]),
        **{c: _numbers(df[c]) for c in _NUMERIC},
    }
    years = (max(min_year, _NS_YEARS[0]), min(max_year, _NS_YEARS[1]))
    ids = _text(df["TransactionID"])
    reason = _first_reason(TRANSACTION_REASONS[:-1], [ids == "", *_transaction_faults(df, typed, years)])
    reason[_repeated(ids.to_frame(), reason)] = TRANSACTION_REASONS[-1]
    return _split(df, reason, typed, TRANSACTION_REASONS, _transaction_dtypes())


def _transaction_faults(
    df: pd.DataFrame, typed: dict[str, pd.Series], years: tuple[int, int]
) -> list[pd.Series]:
    """One boolean mask per row-level reason from missing_date to revenue_mismatch, in their order."""
    dates, quantity, price, revenue = (typed[c] for c in ("SalesDate", *_NUMERIC))
    expected = quantity * price
    tolerance = REVENUE_TOLERANCE + 1e-9 + 1e-12 * expected.abs()  # room for float error only
    return [
        _missing(df["SalesDate"]),
        dates.isna(),
        (dates.dt.year < years[0]) | (dates.dt.year > years[1]),
        typed["StoreId"] == "",
        typed["ProductCategory"] == "",
        ~_positive_integer(quantity),
        ~(_finite(price) & (price > 0)),
        ~(_finite(revenue) & ((revenue - expected).abs() <= tolerance)),
    ]


def _positive_integer(x: pd.Series) -> np.ndarray:
    """True where a float is a whole number in 1..2**53 (exact in float64 and int64)."""
    return _finite(x) & (x > 0) & (x == np.floor(x)) & (x <= 2**53)


def _transaction_dtypes() -> dict[str, str]:
    """Dtypes of the typed transaction columns in `kept`."""
    return {
        "SalesDate": "datetime64[ns]",
        "StoreId": "str",
        "ProductCategory": "str",
        "Quantity": "int64",
        "Price": "float64",
        "Revenue": "float64",
    }


def validate_panel(df: pd.DataFrame, columns: PanelColumns, covariates: tuple[str, ...] = ()) -> Validated:
    """Split a monthly panel into typed valid rows (month, store, category, revenue) and quarantine.

    `kept` has the mapped columns renamed to month/store/category/revenue (other columns as they
    were); `quarantined` keeps the input's own column names and values. Each of `covariates` must be
    a column of finite numbers (else `bad_covariate`).
    """
    return _validate_keyed(df, columns, covariates, PANEL_REASONS)


def validate_covariates(df: pd.DataFrame, columns: PanelColumns, covariates: tuple[str, ...]) -> Validated:
    """A side file of known-in-advance values: month, store, category (named as in `columns`) + covariates."""
    return _validate_keyed(df, columns, covariates, COVARIATE_REASONS)


def _validate_keyed(
    df: pd.DataFrame, columns: PanelColumns, covariates: tuple[str, ...], order: tuple[str, ...]
) -> Validated:
    """`validate_panel` (with revenue) or `validate_covariates` (without), by the reasons in `order`."""
    mapping = {getattr(columns, f.name): f.name for f in dataclasses.fields(columns)}
    if "bad_revenue" not in order:
        del mapping[columns.revenue]
    if missing := [c for c in covariates if c not in df.columns]:
        raise SalesjaxError(
            f"missing covariate column {_named(missing[0], df.columns)}: add it to the input or remove it "
            "from data.covariates"
        )
    df = _checked(df, tuple(mapping))
    typed = {"month": _months(df[columns.month])}
    typed |= {"store": _store_text(df[columns.store]), "category": _text(df[columns.category])}
    faults = {"bad_month": typed["month"].isna(), "missing_store": typed["store"] == ""}
    faults["missing_category"] = typed["category"] == ""
    if "revenue" in mapping.values():
        typed["revenue"] = _numbers(df[columns.revenue])
        faults["bad_revenue"] = ~(_finite(typed["revenue"]) & (typed["revenue"] >= 0))
    typed |= {c: _numbers(df[c]) for c in covariates}
    faults["bad_covariate"] = ~np.logical_and.reduce([_finite(typed[c]) for c in covariates], initial=True)
    reason = _first_reason(order[:-1], [faults[r] for r in order[:-1]])
    keys = pd.DataFrame({k: typed[k] for k in ("month", "store", "category")})
    reason[_repeated(keys, reason)] = order[-1]
    dtypes = dict.fromkeys(typed, "float64") | {"month": "period[M]", "store": "str", "category": "str"}
    return _split(df, reason, typed, order, dtypes, kept_frame=df.rename(columns=mapping))


def _checked(df: pd.DataFrame, required: tuple[str, ...]) -> pd.DataFrame:
    """The frame with a fresh 0..n-1 index, after checking required columns and at least one row."""
    if missing := [c for c in required if c not in df.columns]:
        noun = "column" if len(missing) == 1 else "columns"
        raise SalesjaxError(f"missing required {noun} " + ", ".join(_named(c, df.columns) for c in missing))
    if df.empty:
        raise SalesjaxError("the input has no rows")
    return df.reset_index(drop=True)


def _named(column: str, found: pd.Index) -> str:
    """'column', with the input's name that differs from it only by case or surrounding spaces, if any."""
    near = [str(f) for f in found if str(f).strip().casefold() == column.casefold()]
    if not near:
        return f"'{column}'"
    return f"'{column}' (found {near[0]!r}: names must match exactly, including case and spaces)"


def _first_reason(names: tuple[str, ...], conditions: list[pd.Series]) -> np.ndarray:
    """Per row, the name of the first true condition, or '' when none holds."""
    masks = [np.asarray(c, dtype=bool) for c in conditions]
    return np.select(masks, list(names), default="").astype(object)


def _repeated(keys: pd.DataFrame, reason: np.ndarray) -> np.ndarray:
    """True for otherwise-valid rows whose keys repeat an earlier otherwise-valid row."""
    valid = reason == ""
    out = np.zeros(len(reason), dtype=bool)
    out[valid] = keys[valid].duplicated(keep="first").to_numpy()
    return out


def _split(
    df: pd.DataFrame,
    reason: np.ndarray,
    typed: dict[str, pd.Series],
    order: tuple[str, ...],
    dtypes: dict[str, str],
    kept_frame: pd.DataFrame | None = None,
) -> Validated:
    """Build `Validated` from per-row reasons: typed kept rows, untouched quarantined rows."""
    keep = reason == ""
    kept = (df if kept_frame is None else kept_frame).loc[keep].copy()
    for name, values in typed.items():
        kept[name] = values[keep].astype(dtypes[name])
    quarantined = df.loc[~keep].copy()
    quarantined["row"] = np.flatnonzero(~keep)
    quarantined["reason"] = reason[~keep].astype(str)
    counts = {r: int(n) for r in order if (n := np.count_nonzero(reason == r))}
    return Validated(kept.reset_index(drop=True), quarantined.reset_index(drop=True), counts)


def _missing(s: pd.Series) -> pd.Series:
    """True where a value is null or blank text."""
    if _is_date_typed(s):
        return s.isna()
    return _text(s) == ""


def _text(s: pd.Series) -> pd.Series:
    """Values as stripped text, with nulls as ''."""
    return s.astype(object).where(s.notna(), "").astype(str).str.strip()


def _store_text(s: pd.Series) -> pd.Series:
    """Store ids as text, with a float-formatted integer ('36.0') written as '36'."""
    return _text(s).str.replace(r"^(-?\d+)\.0*$", r"\1", regex=True)


def _numbers(s: pd.Series) -> pd.Series:
    """Values as float64, NaN where a value is not a number (typed numbers are used as stored)."""
    if pd.api.types.is_numeric_dtype(s.dtype) and not pd.api.types.is_bool_dtype(s.dtype):
        return pd.Series(s.to_numpy(dtype="float64", na_value=np.nan), index=s.index)
    return pd.to_numeric(_text(s), errors="coerce").astype("float64")


def _finite(x: pd.Series) -> np.ndarray:
    """True where a float is neither NaN nor infinite."""
    return np.isfinite(x.to_numpy(dtype="float64"))


def _is_date_typed(s: pd.Series) -> bool:
    """True for a datetime column, or an object column of Python dates (Parquet date32)."""
    if pd.api.types.is_datetime64_any_dtype(s.dtype):
        return True
    if s.dtype != object:
        return False
    first = s.dropna().head(1)
    return len(first) == 1 and isinstance(first.iloc[0], datetime.date)


def _dates(s: pd.Series, date_format: str) -> pd.Series:
    """Dates parsed exactly with `date_format` (typed dates used as stored), NaT where invalid."""
    if _is_date_typed(s):
        dates = pd.to_datetime(s, errors="coerce")
        return dates.dt.tz_localize(None) if dates.dt.tz is not None else dates
    return pd.to_datetime(_text(s), format=date_format, errors="coerce")


def _months(s: pd.Series) -> pd.Series:
    """Monthly periods from exact 'YYYY-MM' text (or typed month starts), NaT where invalid."""
    if isinstance(s.dtype, pd.PeriodDtype):
        return s.dt.asfreq("M")
    if _is_date_typed(s):
        dates = _dates(s, "%Y-%m")
        dates = dates.where(dates == dates.dt.to_period("M").dt.start_time)
    else:
        dates = pd.to_datetime(_text(s), format="%Y-%m", errors="coerce")
    return dates.dt.to_period("M")
