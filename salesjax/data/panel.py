"""The monthly store x category panel every model reads, as a long table and as dense arrays."""

import dataclasses
import logging

import numpy as np
import pandas as pd

from salesjax.config import SplitConfig
from salesjax.errors import SalesjaxError

logger = logging.getLogger(__name__)

KEYS = ["store", "category"]


def monthly_revenue(transactions: pd.DataFrame) -> pd.DataFrame:
    """Sum validated transactions into (month, store, category, revenue) rows."""
    frame = pd.DataFrame(
        {
            "month": transactions["SalesDate"].dt.to_period("M"),
            "store": transactions["StoreId"],
            "category": transactions["ProductCategory"],
            "revenue": transactions["Revenue"],
        }
    )
    return frame.groupby(["month", *KEYS], as_index=False, sort=True)["revenue"].sum()


def _grid(series: pd.DataFrame, months: pd.PeriodIndex) -> pd.DataFrame:
    """Every series crossed with every month, ordered by series then month."""
    index = pd.MultiIndex.from_product([range(len(series)), months], names=["series", "month"])
    grid = index.to_frame(index=False)
    return pd.concat([series.iloc[grid["series"]].reset_index(drop=True), grid["month"]], axis=1)


def build_panel(
    monthly: pd.DataFrame,
    counterfactual: pd.DataFrame | None,
    split: SplitConfig,
    *,
    explicit_zeros: bool,
    context: int,
    covariates: pd.DataFrame | None = None,
) -> tuple[pd.DataFrame, dict[str, int]]:
    """Long panel over train_start..test_end with `available`, `observed` and (maybe) `counterfactual`.

    A series is a store x category pair seen in the training months. With `explicit_zeros`
    (transactions) a month without sales after the series' first sale is a real zero; otherwise (a
    panel) a month without a row is missing and masked. Pairs seen only in the test months cannot be
    forecast: they are counted and named in a warning, not silently dropped. Short, late and
    gappy histories are kept (the model pads and masks them) and counted, as are the series with
    fewer available training months than `context` (the model's window).

    A month after the data's last month is unobserved (masked), never a zero; a test period with no
    month inside the data is an error (forecasting beyond the data is the forecast stage's job).
    `covariates` (month, store, category + one column each) join every series' months, NaN where a
    row is missing; one that never varies in the training months is named in a warning.
    """
    train_start, train_end, test_start, test_end = split.months()
    last = monthly["month"].max()
    monthly = monthly[(monthly["month"] >= train_start) & (monthly["month"] <= test_end)]
    in_train = monthly["month"] <= train_end
    series = monthly.loc[in_train, KEYS].drop_duplicates().sort_values(KEYS, ignore_index=True)
    if series.empty:
        raise SalesjaxError(f"no rows fall in the training months {train_start}..{train_end}")
    _check_test_months(last, test_start, test_end)
    test_only = monthly.loc[~in_train, KEYS].drop_duplicates().merge(series, how="left", indicator=True)
    test_only = test_only.loc[test_only["_merge"] == "left_only", KEYS].sort_values(KEYS, ignore_index=True)
    panel = _grid(series, pd.period_range(train_start, test_end, freq="M"))
    panel = panel.merge(monthly.rename(columns={"revenue": "observed"}), how="left", on=["month", *KEYS])
    first = panel.dropna(subset="observed").groupby(KEYS)["month"].min().rename("first")
    panel = panel.merge(first, on=KEYS)
    panel["available"] = (panel["month"] >= panel["first"]) & (panel["month"] <= last)
    if not explicit_zeros:
        panel["available"] &= panel["observed"].notna()
    panel["observed"] = panel["observed"].fillna(0.0).where(panel["available"], 0.0)
    if counterfactual is not None:
        cf = counterfactual.rename(columns={"revenue": "cf"})
        panel = panel.merge(cf, how="left", on=["month", *KEYS])
        replaced = panel["month"].isin(cf["month"].unique()) & panel["available"]
        panel["counterfactual"] = panel["observed"].where(~replaced, panel["cf"].fillna(0.0))
        panel = panel.drop(columns="cf")
    panel = panel.drop(columns="first")
    if covariates is not None:
        panel = panel.merge(covariates, how="left", on=["month", *KEYS])
        names = list(covariates.columns.drop(["month", *KEYS]))
        _check_covariates_known(panel, names)
        warn_constant_covariates(panel.loc[panel["month"] <= train_end, names], f"{train_start}..{train_end}")
    train = panel[panel["month"] <= train_end].groupby(KEYS, sort=False)
    all_zero = train["observed"].sum() == 0
    counts = {
        "series": len(series),
        "series_only_in_test": len(test_only),
        "stores_only_in_test": len(set(test_only["store"]) - set(series["store"])),
        "categories_only_in_test": len(set(test_only["category"]) - set(series["category"])),
        "series_all_zero_in_training": int(all_zero.sum()),
    }
    counts |= _history_counts(panel, len(series), (train_end - train_start).n + 1, context)
    _warn_flags(test_only, series, [f"{s} / {c}" for s, c in all_zero[all_zero].index])
    panel["month"] = panel["month"].astype(str)
    return panel, counts


def _check_test_months(last: pd.Period, test_start: pd.Period, test_end: pd.Period) -> None:
    """Fail when the test period starts after the data's last month; say which test months are masked."""
    if last < test_start:
        raise SalesjaxError(
            f"the data ends in {last}, before split.test_start {test_start}: no test month is observed; "
            f"choose test months up to {last} (forecasting beyond the data is the forecast stage's job)"
        )
    if last < test_end:
        unobserved = f"test months {last + 1}..{test_end} are unobserved (masked)"
        logger.warning(f"prepare: the data ends in {last}: {unobserved}")


def _history_counts(panel: pd.DataFrame, n_series: int, n_train: int, context: int) -> dict[str, int]:
    """Series whose training history starts late, has missing months inside, or is shorter than `context`."""
    available = panel["available"].to_numpy(bool).reshape(n_series, -1)[:, :n_train]
    n = available.sum(axis=1)
    first = available.argmax(axis=1)
    last = n_train - 1 - available[:, ::-1].argmax(axis=1)
    return {
        "series_late_start": int((first > 0).sum()),
        "series_with_gaps": int((last - first + 1 > n).sum()),
        "series_shorter_than_context": int((n < context).sum()),
    }


def _names(labels: list[str], limit: int = 10) -> str:
    """The first `limit` labels joined by commas, then how many more."""
    more = f" and {len(labels) - limit} more" if len(labels) > limit else ""
    return ", ".join(labels[:limit]) + more


def _warn_flags(test_only: pd.DataFrame, series: pd.DataFrame, all_zero: list[str]) -> None:
    """Tell the user which pairs get no forecast (test months only) and which are all zero in training."""
    if len(test_only):
        pairs = _names([f"{s} / {c}" for s, c in test_only[KEYS].itertuples(index=False)])
        logger.warning(
            f"prepare: {len(test_only)} store x category pair(s) appear only in the test months: {pairs}. "
            "They have no training history, so no model forecasts them and the metrics leave them out."
        )
    for key, plural in zip(KEYS, ("stores", "categories"), strict=True):
        if new := sorted(set(test_only[key]) - set(series[key])):
            logger.warning(f"prepare: {plural} only in the test months (no training history): {_names(new)}")
    if all_zero:
        logger.warning(
            f"prepare: {len(all_zero)} series are zero in every training month (their MASE scale is 0, so "
            f"MASE leaves them out): {_names(all_zero)}"
        )


def _check_covariates_known(panel: pd.DataFrame, names: list[str]) -> None:
    """Every available month of every series has a value of each covariate; else one line naming the first."""
    missing = panel[panel["available"] & panel[names].isna().any(axis=1)]
    if len(missing):
        first = missing.sort_values(["month", *KEYS]).iloc[0]
        raise SalesjaxError(
            f"data.covariates_path: no value of the covariates {', '.join(names)} for {first['month']}, "
            f"series {first['store']} / {first['category']} (the first missing; every observed month of "
            "every series needs one)"
        )


def warn_constant_covariates(training: pd.DataFrame, months: str, where: str = "prepare") -> None:
    """Name each covariate (a column of `training`) that holds one value in every training month."""
    for name in training.columns:
        values = training[name].dropna().unique()
        if len(values) <= 1:
            shown = f"always {values[0]:g}" if len(values) else "no value"
            logger.warning(
                f"{where}: covariate '{name}' never varies in the training months {months} ({shown}): the "
                "LSTM cannot learn its effect, and a different value later is an input it has never seen"
            )


@dataclasses.dataclass(frozen=True)
class Panel:
    """Dense view of the long panel: S series by M months."""

    months: pd.PeriodIndex  # [M]
    stores: tuple[str, ...]
    categories: tuple[str, ...]
    store: np.ndarray  # i32[S] index into stores
    category: np.ndarray  # i32[S] index into categories
    available: np.ndarray  # bool[S,M]
    worlds: dict[str, np.ndarray]  # world name -> f64[S,M] revenue, 0 where not available
    covariate_names: tuple[str, ...] = ()
    covariates: np.ndarray | None = None  # f32[S,M,C] known-in-advance values, NaN where unknown

    @classmethod
    def from_frame(cls, frame: pd.DataFrame, covariates: tuple[str, ...] = ()) -> "Panel":
        """Pivot the long panel (rows ordered by series then month) into arrays, with its `covariates`."""
        months = pd.PeriodIndex(frame["month"].drop_duplicates(), freq="M")
        shape = (len(frame) // len(months), len(months))
        keys = frame[KEYS].iloc[:: len(months)]
        stores, store = np.unique(keys["store"].to_numpy(str), return_inverse=True)
        categories, category = np.unique(keys["category"].to_numpy(str), return_inverse=True)
        worlds = [w for w in ("observed", "counterfactual") if w in frame]
        return cls(
            months=months,
            stores=tuple(stores),
            categories=tuple(categories),
            store=store.astype(np.int32),
            category=category.astype(np.int32),
            available=frame["available"].to_numpy(bool).reshape(shape),
            worlds={w: frame[w].to_numpy(np.float64).reshape(shape) for w in worlds},
            covariate_names=covariates,
            covariates=frame[list(covariates)].to_numpy(np.float32).reshape(*shape, -1)
            if covariates
            else None,
        )

    def index(self, month: pd.Period) -> int:
        """Position of `month` on the month axis."""
        return int((month - self.months[0]).n)
