"""The raw-data contract: every bad-row kind is quarantined with its reason; file problems raise."""

import time

import numpy as np
import pandas as pd
import pytest

from salesjax.config import PanelColumns
from salesjax.data.schema import (
    TRANSACTION_COLUMNS,
    read_table,
    validate_panel,
    validate_transactions,
)
from salesjax.errors import SalesjaxError

YEARS = {"min_year": 2000, "max_year": 2100}
PANEL = PanelColumns(month="month", store="store", category="category", revenue="revenue")


def transactions(n: int = 4) -> pd.DataFrame:
    """n valid transactions as a CSV reader gives them: every value is text."""
    return pd.DataFrame(
        {
            "TransactionID": [f"T{i}" for i in range(n)],
            "SalesDate": [f"2020-0{1 + i % 9}-15" for i in range(n)],
            "ProductCategory": ["Books", "Toys"] * (n // 2) + ["Books"] * (n % 2),
            "ProductID": [f"P{i}" for i in range(n)],
            "ProductName": [f"name {i}" for i in range(n)],
            "Age": ["30"] * n,
            "Gender": ["F"] * n,
            "StoreId": [str(1 + i % 3) for i in range(n)],
            "Quantity": ["2"] * n,
            "Price": ["1.5"] * n,
            "Revenue": ["3.0"] * n,
        }
    )


def validate(df: pd.DataFrame, date_format: str = "%Y-%m-%d"):
    """Validate transactions with the test year range."""
    return validate_transactions(df, date_format=date_format, **YEARS)


def rejected(result) -> list[tuple[int, str]]:
    """(row, reason) of each quarantined row."""
    return list(zip(result.quarantined["row"], result.quarantined["reason"], strict=True))


def with_row(df: pd.DataFrame, row: int, **values: str) -> pd.DataFrame:
    """A copy of `df` with some values of one row replaced."""
    out = df.copy()
    for column, value in values.items():
        out.loc[row, column] = value
    return out


@pytest.mark.parametrize(
    ("values", "reason"),
    [
        ({"SalesDate": ""}, "missing_date"),
        ({"SalesDate": "   "}, "missing_date"),
        ({"SalesDate": "2020-13-01"}, "bad_date"),
        ({"SalesDate": "15/01/2020"}, "bad_date"),
        ({"SalesDate": "2020-01-15 10:00:00"}, "bad_date"),
        ({"SalesDate": "1999-12-31"}, "date_out_of_range"),
        ({"SalesDate": "2101-01-01"}, "date_out_of_range"),
        ({"StoreId": ""}, "missing_store"),
        ({"StoreId": "  "}, "missing_store"),
        ({"ProductCategory": ""}, "missing_category"),
        ({"Quantity": "0", "Revenue": "0"}, "bad_quantity"),
        ({"Quantity": "-2", "Revenue": "-3"}, "bad_quantity"),
        ({"Quantity": "1.5", "Revenue": "2.25"}, "bad_quantity"),
        ({"Quantity": "abc"}, "bad_quantity"),
        ({"Quantity": ""}, "bad_quantity"),
        ({"Price": "0", "Revenue": "0"}, "bad_price"),
        ({"Price": "-1.5", "Revenue": "-3"}, "bad_price"),
        ({"Price": "inf", "Revenue": "inf"}, "bad_price"),
        ({"Price": "nan"}, "bad_price"),
        ({"Price": ""}, "bad_price"),
        ({"Revenue": "3.02"}, "revenue_mismatch"),
        ({"Revenue": "abc"}, "revenue_mismatch"),
        ({"Revenue": ""}, "revenue_mismatch"),
        ({"TransactionID": "T0"}, "duplicate_transaction"),
        ({"TransactionID": ""}, "missing_transaction_id"),
        ({"TransactionID": "  ", "SalesDate": "bad"}, "missing_transaction_id"),
    ],
)
def test_each_bad_row_kind_is_quarantined_with_its_reason(values, reason):
    result = validate(with_row(transactions(), 2, **values))
    assert result.quarantined[["row", "reason"]].to_dict("records") == [{"row": 2, "reason": reason}]
    assert result.kept["TransactionID"].tolist() == ["T0", "T1", "T3"]
    assert result.counts == {reason: 1}


def test_a_row_gets_the_first_reason_that_applies():
    df = with_row(transactions(), 1, SalesDate="nope", StoreId="", Quantity="0", Revenue="9")
    df = with_row(df, 2, ProductCategory="", Price="-1")
    df = with_row(df, 3, Quantity="x", Price="-1", Revenue="y")
    result = validate(df)
    assert result.quarantined["reason"].tolist() == ["bad_date", "missing_category", "bad_quantity"]
    assert list(result.counts) == ["bad_date", "missing_category", "bad_quantity"]


def test_revenue_within_a_cent_is_kept_despite_float_error():
    df = with_row(transactions(), 0, Quantity="3", Price="0.1", Revenue="0.29")  # 3 * 0.1 = 0.3000...04
    df = with_row(df, 1, Revenue="3.01")
    df = with_row(df, 2, Revenue="2.989")
    result = validate(df)
    assert result.kept["TransactionID"].tolist() == ["T0", "T1", "T3"]
    assert result.quarantined["reason"].tolist() == ["revenue_mismatch"]


def test_rows_in_equal_kept_plus_quarantined_and_order_is_kept():
    df = transactions(9)
    df = with_row(df, 1, SalesDate="")
    df = with_row(df, 4, Quantity="0")
    df = with_row(df, 7, TransactionID="T5")
    result = validate(df)
    assert len(result.kept) + len(result.quarantined) == len(df)
    assert result.kept["TransactionID"].tolist() == ["T0", "T2", "T3", "T5", "T6", "T8"]
    assert result.quarantined["row"].tolist() == [1, 4, 7]
    original = df.iloc[[1, 4, 7]].reset_index(drop=True)
    pd.testing.assert_frame_equal(result.quarantined[list(df.columns)], original)


def test_first_valid_duplicate_stays_and_invalid_rows_do_not_count():
    df = with_row(transactions(5), 3, TransactionID="T1")
    df = with_row(df, 4, TransactionID="T0")
    df = with_row(df, 0, SalesDate="bad")  # so T0 at row 4 is the first valid T0
    result = validate(df)
    assert result.kept["TransactionID"].tolist() == ["T1", "T2", "T0"]
    assert result.kept["ProductID"].tolist() == ["P1", "P2", "P4"]
    assert rejected(result) == [(0, "bad_date"), (3, "duplicate_transaction")]


def test_kept_columns_are_typed_and_stripped():
    df = with_row(transactions(3), 0, StoreId=" 36.0 ", ProductCategory="  Books ")
    kept = validate(df).kept
    assert kept["SalesDate"].dtype == "datetime64[ns]"
    assert kept["Quantity"].dtype == np.int64
    assert kept["Price"].dtype == np.float64 and kept["Revenue"].dtype == np.float64
    assert pd.api.types.is_string_dtype(kept["StoreId"])
    assert kept["StoreId"].tolist() == ["36", "2", "3"]
    assert kept["ProductCategory"].tolist() == ["Books", "Toys", "Books"]
    assert kept["Age"].tolist() == ["30"] * 3  # columns outside the contract stay as they were


@pytest.mark.parametrize("store", [[36, 7], [36.0, 7.0], ["36", "7"], ["36.0", "7"]])
def test_typed_store_ids_become_plain_text(store):
    df = transactions(2)
    df["StoreId"] = store
    assert validate(df).kept["StoreId"].tolist() == ["36", "7"]


def test_typed_numbers_are_validated_like_text():
    df = transactions(4)
    df["Quantity"] = [2, 0, 2, 2]
    df["Price"] = [1.5, 1.5, np.nan, 1.5]
    df["Revenue"] = [3.0, 0.0, 3.0, 4.0]
    result = validate(df)
    assert result.quarantined["reason"].tolist() == [
        "bad_quantity",
        "bad_price",
        "revenue_mismatch",
    ]
    assert result.kept["Quantity"].tolist() == [2]


def test_date_format_is_applied_exactly_never_guessed():
    df = transactions(2)
    df["SalesDate"] = ["13-01-20", "05-01-20"]
    kept = validate(df, date_format="%d-%m-%y").kept
    assert kept["SalesDate"].tolist() == [pd.Timestamp("2020-01-13"), pd.Timestamp("2020-01-05")]
    assert validate(df).counts == {"bad_date": 2}


def test_parquet_and_csv_inputs_give_the_same_kept_rows(tmp_path):
    df = with_row(transactions(6), 4, Quantity="0")
    df.to_csv(tmp_path / "t.csv", index=False)
    typed = df.astype({"StoreId": int, "Price": float, "Revenue": float, "Quantity": int})
    typed.to_parquet(tmp_path / "t.parquet", index=False)
    from_csv = validate(read_table(tmp_path / "t.csv"))
    from_parquet = validate(read_table(tmp_path / "t.parquet"))
    assert len(from_csv.kept) == 5
    pd.testing.assert_frame_equal(from_csv.kept, from_parquet.kept)
    assert from_parquet.counts == from_csv.counts == {"bad_quantity": 1}


def test_parquet_date_column_is_used_as_stored(tmp_path):
    df = transactions(2)
    df["SalesDate"] = [pd.Timestamp("2020-01-13").date(), pd.Timestamp("1990-05-01").date()]
    df.to_parquet(tmp_path / "t.parquet", index=False)
    result = validate(read_table(tmp_path / "t.parquet"), date_format="%d-%m-%y")
    assert result.kept["SalesDate"].tolist() == [pd.Timestamp("2020-01-13")]
    assert result.counts == {"date_out_of_range": 1}


def test_half_a_million_rows_validate_in_seconds():
    df = transactions(10).iloc[np.tile(np.arange(10), 50_000)].reset_index(drop=True)
    df["TransactionID"] = np.arange(len(df)).astype(str)
    df.loc[::1000, "Quantity"] = "0"
    start = time.perf_counter()
    result = validate(df)
    assert time.perf_counter() - start < 10.0
    assert result.counts == {"bad_quantity": 500}


def _write(path, content):
    """Write bytes or text to `path` and return it."""
    (path.write_bytes if isinstance(content, bytes) else path.write_text)(content)
    return path


@pytest.mark.parametrize(
    ("make", "problem"),
    [
        (lambda d: d / "absent.csv", "not found"),
        (lambda d: d, "directory"),
        (lambda d: _write(d / "t.txt", "a,b\n1,2\n"), "not CSV or Parquet"),
        (lambda d: _write(d / "t.parquet", b"PAR1 this is not parquet"), "not valid Parquet"),
        (lambda d: _write(d / "t.csv", "a,b\n1,2\n1,2,3,4\n"), "not valid CSV"),
        (lambda d: _write(d / "t.csv", b"a,b\n\xff\xfe\xfa,1\n"), "not valid CSV (not UTF-8 text"),
        (lambda d: _write(d / "t.csv", "a;b\n1,5;2\n"), "not valid CSV (';' found where ',' was expected)"),
        (lambda d: _write(d / "t.csv", "a\tb\n1\t2\n"), "not valid CSV (a tab found where ',' was expected)"),
        (lambda d: _write(d / "t.csv", ",".join(TRANSACTION_COLUMNS) + "\n"), "no data rows"),
        (lambda d: _write(d / "t.csv", ""), "no data rows"),
    ],
)
def test_file_level_problems_raise_one_line_naming_problem_and_path(tmp_path, make, problem):
    path = make(tmp_path)
    with pytest.raises(SalesjaxError) as err:
        read_table(path)
    message = str(err.value)
    assert problem in message and str(path) in message
    assert "\n" not in message


def test_empty_parquet_has_no_data_rows(tmp_path):
    transactions(0).to_parquet(tmp_path / "t.pq", index=False)
    with pytest.raises(SalesjaxError, match="no data rows"):
        read_table(tmp_path / "t.pq")


def test_empty_transaction_ids_are_quarantined_not_kept_as_distinct():
    df = with_row(
        with_row(with_row(transactions(5), 1, TransactionID=""), 2, TransactionID=""), 3, TransactionID=" "
    )
    result = validate(df)
    assert result.kept["TransactionID"].tolist() == ["T0", "T4"]
    assert rejected(result) == [
        (1, "missing_transaction_id"),
        (2, "missing_transaction_id"),
        (3, "missing_transaction_id"),
    ]
    assert len(result.kept) + len(result.quarantined) == len(df)


def test_a_column_differing_only_by_case_or_spaces_is_named():
    df = transactions().rename(columns={"Revenue": " revenue"})
    with pytest.raises(SalesjaxError) as err:
        validate(df)
    assert str(err.value) == (
        "missing required column 'Revenue' "
        "(found ' revenue': names must match exactly, including case and spaces)"
    )


def test_missing_column_and_zero_rows_raise():
    with pytest.raises(SalesjaxError, match=r"^missing required column 'Revenue'$"):
        validate(transactions().drop(columns="Revenue"))
    with pytest.raises(SalesjaxError, match="'Price', 'Revenue'"):
        validate(transactions().drop(columns=["Revenue", "Price"]))
    with pytest.raises(SalesjaxError, match="no rows"):
        validate(transactions(0))


def panel(n: int = 4) -> pd.DataFrame:
    """n valid panel rows as text, with the input's own column names."""
    return pd.DataFrame(
        {
            "Month": [f"2020-{1 + i:02d}" for i in range(n)],
            "Shop": ["36.0"] + ["2"] * (n - 1),
            "Cat": [" Books "] + ["Toys"] * (n - 1),
            "Sales": ["10.5"] + ["0"] * (n - 1),
            "note": ["x"] * n,
        }
    )


COLUMNS = PanelColumns(month="Month", store="Shop", category="Cat", revenue="Sales")


@pytest.mark.parametrize(
    ("values", "reason"),
    [
        ({"Month": ""}, "bad_month"),
        ({"Month": "2020-01-15"}, "bad_month"),
        ({"Month": "01-2020"}, "bad_month"),
        ({"Month": "2020-13"}, "bad_month"),
        ({"Shop": " "}, "missing_store"),
        ({"Cat": ""}, "missing_category"),
        ({"Sales": "-0.01"}, "bad_revenue"),
        ({"Sales": "abc"}, "bad_revenue"),
        ({"Sales": "inf"}, "bad_revenue"),
        ({"Sales": ""}, "bad_revenue"),
        ({"Month": "2020-01", "Shop": "36", "Cat": "Books"}, "duplicate_row"),
    ],
)
def test_each_bad_panel_row_kind_is_quarantined_with_its_reason(values, reason):
    result = validate_panel(with_row(panel(), 2, **values), COLUMNS)
    assert result.quarantined[["row", "reason"]].to_dict("records") == [{"row": 2, "reason": reason}]
    assert result.kept["month"].astype(str).tolist() == ["2020-01", "2020-02", "2020-04"]
    assert result.counts == {reason: 1}


def test_panel_kept_is_renamed_and_typed_quarantine_keeps_input_names():
    df = with_row(panel(), 3, Month="bad")
    result = validate_panel(df, COLUMNS)
    kept = result.kept
    assert list(kept.columns) == ["month", "store", "category", "revenue", "note"]
    assert kept["month"].dtype == pd.PeriodDtype("M")
    assert kept["store"].tolist() == ["36", "2", "2"]
    assert kept["category"].tolist() == ["Books", "Toys", "Toys"]
    assert kept["revenue"].dtype == np.float64 and kept["revenue"].tolist() == [10.5, 0.0, 0.0]
    assert list(result.quarantined.columns) == [*df.columns, "row", "reason"]
    assert len(kept) + len(result.quarantined) == len(df)


def test_panel_missing_mapped_column_is_named():
    with pytest.raises(SalesjaxError, match=r"^missing required column 'Sales'$"):
        validate_panel(panel().drop(columns="Sales"), COLUMNS)
    with pytest.raises(SalesjaxError, match="'month'"):
        validate_panel(panel(), PANEL)
