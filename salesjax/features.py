"""Known-future monthly covariates: the season, working days and the Azerbaijani retail calendar.

Every column is computable for any month from public calendars alone, so it is known in advance for the
forecast months. Holidays come from the `holidays` package (Azerbaijan), which has Novruz and the two
Bayrams on their real, moving dates.
"""

import dataclasses
import datetime as dt
from typing import NamedTuple

import holidays
import numpy as np
import pandas as pd

# Weekend days that were official working days (cabinet transfers) and that `holidays` does not list;
# source: ../shared/calibration/FACTS.md, section 3.
EXTRA_WORKING_DAYS = frozenset(
    dt.date.fromisoformat(d)
    for d in (
        "2019-12-28",
        "2019-12-29",
        "2020-03-29",
        "2020-05-31",
        "2021-05-08",
        "2021-05-16",
        "2021-07-17",
    )
)
# Holiday names (as `holidays` spells them in en_US) that start a named shopping event.
HOLIDAY_EVENTS = {
    "novruz": "Spring Festival",
    "ramazan": "Eid al-Fitr",
    "gurban": "Eid al-Adha",
    "new_year": "New Year's Day",
    "womens_day": "Women's Day",
}
EVENT_LEAD_DAYS = 10  # gift and holiday shopping happens in the days before an event
FEATURES = (
    "month_sin",
    "month_cos",
    "days_in_month",
    "holidays",
    "working_days",
    *HOLIDAY_EVENTS,
    "black_friday",
    "school_start",
)


def black_friday(year: int) -> dt.date:
    """The Friday after the fourth Thursday of November."""
    first = dt.date(year, 11, 1)
    first_thursday = first + dt.timedelta(days=(3 - first.weekday()) % 7)
    return first_thursday + dt.timedelta(days=22)


def _event_days(year_holidays: dict[dt.date, str], name: str) -> list[dt.date]:
    """The shopping window of each occurrence of a holiday: the lead days plus its first day."""
    day = dt.timedelta(days=1)
    starts = sorted(d for d, n in year_holidays.items() if n == name and year_holidays.get(d - day) != name)
    return [s - dt.timedelta(days=k) for s in starts for k in range(EVENT_LEAD_DAYS + 1)]


def daily_calendar(start: pd.Period, end: pd.Period) -> pd.DataFrame:
    """One row per day from the first day of `start` to the last of `end`: holiday, working day, events."""
    days = pd.date_range(start.start_time, end.end_time.normalize(), freq="D")
    years = range(start.year - 1, end.year + 2)  # neighbours, so windows crossing a year boundary are whole
    az = holidays.country_holidays("AZ", years=years, language="en_US")
    official = {d: n for d, n in az.items() if "observed" not in n}
    dates = [d.date() for d in days]
    frame = pd.DataFrame(index=days)
    holiday = np.array([d in az for d in dates])
    transferred = np.array([d in EXTRA_WORKING_DAYS for d in dates])
    frame["holidays"] = holiday
    frame["working_days"] = ((days.day_of_week < 5) & ~holiday) | transferred
    for event, name in HOLIDAY_EVENTS.items():
        frame[event] = days.isin(pd.to_datetime(_event_days(official, name)))
    fridays = [black_friday(y) - dt.timedelta(days=k) for y in years for k in range(3)]
    frame["black_friday"] = days.isin(pd.to_datetime(fridays))
    school = [dt.date(y, 9, 15) - dt.timedelta(days=k) for y in years for k in range(EVENT_LEAD_DAYS + 1)]
    frame["school_start"] = days.isin(pd.to_datetime(school))
    return frame


def monthly_calendar(start: pd.Period, end: pd.Period) -> pd.DataFrame:
    """f32 features per month (rows: monthly periods `start`..`end`), each roughly in [-1, 1]."""
    daily = daily_calendar(start, end)
    per_month = daily.groupby(daily.index.to_period("M")).sum()
    months = pd.period_range(start, end, freq="M")
    out = pd.DataFrame(index=months)
    angle = 2 * np.pi * (months.month - 1) / 12
    out["month_sin"], out["month_cos"] = np.sin(angle), np.cos(angle)
    out["days_in_month"] = (months.days_in_month - 30) / 2
    out["holidays"] = per_month["holidays"].to_numpy() / 5
    out["working_days"] = (per_month["working_days"].to_numpy() - 21) / 3
    for event in (*HOLIDAY_EVENTS, "school_start"):
        out[event] = per_month[event].to_numpy() / (EVENT_LEAD_DAYS + 1)
    out["black_friday"] = per_month["black_friday"].to_numpy() / 3
    out.index.name = "month"
    return out[list(FEATURES)].astype(np.float32)


@dataclasses.dataclass(frozen=True)
class Scaler:
    """Per-series mean scaling, fitted on training months only.

    `scale` is each series' mean revenue over its available training months (1 for a series that is
    all zero there, so it stays finite); `log_mean`/`log_std` standardise log1p(scale), which the model
    receives as a static input so that it still knows each series' size.
    """

    scale: np.ndarray  # f64[S] revenue
    log_mean: float
    log_std: float

    @classmethod
    def fit(cls, history: np.ndarray, available: np.ndarray) -> "Scaler":
        """Fit on f64[S,T] revenue and bool[S,T] availability of training months."""
        count = available.sum(axis=1)
        mean = np.where(available, history, 0.0).sum(axis=1) / np.maximum(count, 1)
        scale = np.where(mean > 0, mean, 1.0)
        logs = np.log1p(scale)
        return cls(scale=scale, log_mean=float(logs.mean()), log_std=float(logs.std() or 1.0))

    def static(self) -> np.ndarray:
        """f32[S,1] standardised log scale."""
        return ((np.log1p(self.scale) - self.log_mean) / self.log_std).astype(np.float32)[:, None]


class Windows(NamedTuple):
    """Model-ready windows of `context + horizon` months; a pytree, so it can be sliced and jitted."""

    x: np.ndarray  # f32[N,T,F] scaled revenue, observed flag, horizon flag, calendar, static
    store: np.ndarray  # i32[N]
    category: np.ndarray  # i32[N]
    y: np.ndarray  # f32[N,H] scaled target, 0 where masked
    mask: np.ndarray  # f32[N,H] 1 where the target month is available
    series: np.ndarray  # i32[N] series index


def num_features() -> int:
    """F: the width of `Windows.x`."""
    return 3 + len(FEATURES) + 1


def make_windows(
    history: np.ndarray,
    available: np.ndarray,
    calendar: np.ndarray,
    scaler: Scaler,
    store: np.ndarray,
    category: np.ndarray,
    origins: np.ndarray,
    *,
    context: int,
    horizon: int,
    require_target: bool,
) -> Windows:
    """Cut windows from f64[S,Th] revenue at each origin (index of the first forecast month).

    `calendar` is f32[context + Th + horizon, Fc]: its row `context + t` is history month t. Months
    before the history are padded and flagged unobserved; targets after it are masked, so nothing
    beyond `history` can reach a window. With `require_target` (training), windows without any target
    or without any observed context month are dropped.
    """
    s, th = history.shape
    width = context + horizon
    pad = ((0, 0), (context, horizon))
    values = np.pad(np.where(available, history / scaler.scale[:, None], 0.0), pad)
    avail = np.pad(available, pad)
    cols = np.asarray(origins)[:, None] + np.arange(width)  # [O,T] padded positions
    v, a = values[:, cols], avail[:, cols]  # [S,O,T]
    in_horizon = np.arange(width) >= context
    x_y = np.where(in_horizon, 0.0, v)
    obs = a & ~in_horizon
    parts = [
        x_y[..., None],
        obs[..., None],
        np.broadcast_to(in_horizon, v.shape)[..., None],
        np.broadcast_to(calendar[cols], (s, *cols.shape, calendar.shape[1])),
        np.broadcast_to(scaler.static()[:, None, None, :], (s, *cols.shape, 1)),
    ]
    x = np.concatenate(parts, axis=-1).reshape(-1, width, num_features()).astype(np.float32)
    y = v[..., context:].reshape(-1, horizon).astype(np.float32)
    mask = a[..., context:].reshape(-1, horizon).astype(np.float32)
    series = np.repeat(np.arange(s, dtype=np.int32), len(origins))
    has_data = (mask.sum(axis=1) > 0) & obs.reshape(len(mask), -1).any(axis=1)
    keep = has_data if require_target else np.ones(len(mask), bool)
    return Windows(
        x=x[keep],
        store=store[series][keep].astype(np.int32),
        category=category[series][keep].astype(np.int32),
        y=np.where(mask > 0, y, 0.0)[keep],
        mask=mask[keep],
        series=series[keep],
    )
