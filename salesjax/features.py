"""Known-future monthly covariates: the season, working days and a country's retail calendar.

Every column is computable for any month from public calendars alone, so it is known in advance for the
forecast months. Holidays come from the `holidays` package for `data.country`, with moving holidays
(Novruz, the Bayrams, Easter) on their real dates; `data.events` names the retail events (see
`event_sources`).
"""

import dataclasses
import datetime as dt
import math
import re
from typing import NamedTuple

import holidays
import numpy as np
import pandas as pd

from salesjax.errors import SalesjaxError

# Weekend days that were official working days (cabinet transfers) and that `holidays` does not list,
# per country; source for AZ: ../shared/calibration/FACTS.md, section 3.
EXTRA_WORKING_DAYS = {
    "AZ": frozenset(
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
}
BASE_FEATURES = ("month_sin", "month_cos", "days_in_month", "holidays", "working_days")
RULES = ("black_friday", "school_start")  # built-in events, dated without the holiday calendar
# `data.events: auto`: each country's named retail events, column -> a holiday name as `holidays` spells it
# in en_US (shopping happens in the lead days before it) or a built-in rule. A country without an entry
# gets GENERIC_EVENTS, less the holidays its calendar does not have.
HOLIDAY_EVENTS = {
    "AZ": {
        "novruz": "Spring Festival",
        "ramazan": "Eid al-Fitr",
        "gurban": "Eid al-Adha",
        "new_year": "New Year's Day",
        "womens_day": "Women's Day",
        "black_friday": "black_friday",
        "school_start": "school_start",
    },
}
GENERIC_EVENTS = {
    "new_year": "New Year's Day",
    "christmas": "Christmas Day",
    "black_friday": "black_friday",
    "school_start": "school_start",
}
EVENT_LEAD_DAYS = 10  # gift and holiday shopping happens in the days before an event
BLACK_FRIDAY_DAYS = 3  # Black Friday's shopping: the Friday and the two days before it
SCHOOL_START = (9, 15)  # (month, day) of the first school day in Azerbaijan (near it in much of the north)


class CalendarSettings(NamedTuple):
    """What a monthly calendar is made of: the country's holidays and its named events (their columns).

    `events` is resolved (never "auto"): each name is a column of `event_sources`, so the same pair always
    gives the same columns; a saved model records it to rebuild its input width.
    """

    country: str
    events: tuple[str, ...]

    def columns(self) -> tuple[str, ...]:
        """The feature columns of `monthly_calendar`, in order."""
        return (*BASE_FEATURES, *self.events)


def black_friday(year: int) -> dt.date:
    """The Friday after the fourth Thursday of November."""
    first = dt.date(year, 11, 1)
    first_thursday = first + dt.timedelta(days=(3 - first.weekday()) % 7)
    return first_thursday + dt.timedelta(days=22)


def event_column(name: str) -> str:
    """A holiday name as a column: lower case, other characters as '_' ("New Year's Day": new_years_day)."""
    return re.sub(r"[^0-9a-z]+", "_", name.lower().replace("'", "")).strip("_")


def _years(start: pd.Period, end: pd.Period) -> range:
    """The calendar years of `start`..`end` and their neighbours, so windows crossing a year are whole."""
    return range(start.year - 1, end.year + 2)


def country_holidays(country: str, years: range) -> holidays.HolidayBase:
    """The public holidays of `country` in `years`, named in en_US where the package translates them."""
    return holidays.country_holidays(country, years=years, language="en_US")


def official_names(calendar: holidays.HolidayBase) -> dict[dt.date, frozenset[str]]:
    """Each holiday's names ("A; B" on a shared day split), without the days off in lieu ("observed")."""
    split = {
        d: frozenset(n for n in names.split("; ") if "observed" not in n) for d, names in calendar.items()
    }
    return {d: names for d, names in split.items() if names}


def event_sources(country: str, events: tuple[str, ...] | str, names: set[str]) -> dict[str, str]:
    """Column -> holiday name or rule of each named event, given the holiday `names` the calendar has.

    `events` is "auto" (the country's HOLIDAY_EVENTS, else GENERIC_EVENTS less the holidays not among
    `names`) or a list of: a built-in rule (RULES), a column of the country's or the generic defaults, or
    a holiday name (matched by its `event_column`). An unknown or repeated event is one SalesjaxError line.
    """
    defaults = HOLIDAY_EVENTS.get(country, GENERIC_EVENTS)
    if events == "auto":
        return {c: s for c, s in defaults.items() if s in RULES or s in names}
    known = GENERIC_EVENTS | defaults | {event_column(n): n for n in names} | {r: r for r in RULES}
    out = {}
    for event in events:
        column = event if event in known else event_column(event)
        source = known.get(column)
        if source is None or (source not in RULES and source not in names):
            raise SalesjaxError(_unknown_event(event, country, names))
        if column in out:
            raise SalesjaxError(f"data.events: {event!r} names the event {column!r} twice")
        out[column] = source
    return out


def _unknown_event(event: str, country: str, names: set[str]) -> str:
    """The one-line error of an event name that `event_sources` cannot date."""
    auto = ", ".join(event_sources(country, "auto", names))
    return (
        f"data.events: {event!r} is neither a built-in rule ({', '.join(RULES)}) nor a holiday of {country} "
        f"in the data's years (en_US names: {', '.join(sorted(names))}); its 'auto' events are {auto}"
    )


def resolve_calendar(
    start: pd.Period, end: pd.Period, country: str, events: tuple[str, ...] | str
) -> CalendarSettings:
    """`data.country` and `data.events` ("auto" resolved) for the calendar of months `start`..`end`."""
    names = set().union(*official_names(country_holidays(country, _years(start, end))).values())
    return CalendarSettings(country, tuple(event_sources(country, events, names)))


def _event_days(official: dict[dt.date, frozenset[str]], name: str) -> list[dt.date]:
    """The shopping window of each occurrence of a holiday: the lead days plus its first day."""
    day = dt.timedelta(days=1)
    starts = sorted(d for d, n in official.items() if name in n and name not in official.get(d - day, ()))
    return [s - dt.timedelta(days=k) for s in starts for k in range(EVENT_LEAD_DAYS + 1)]


def _rule_days(rule: str, years: range) -> list[dt.date]:
    """The days of a built-in event: Black Friday's weekend, or the lead days before school starts."""
    if rule == "black_friday":
        return [black_friday(y) - dt.timedelta(days=k) for y in years for k in range(BLACK_FRIDAY_DAYS)]
    school = [dt.date(y, *SCHOOL_START) for y in years]
    return [d - dt.timedelta(days=k) for d in school for k in range(EVENT_LEAD_DAYS + 1)]


def daily_calendar(
    start: pd.Period, end: pd.Period, country: str, events: tuple[str, ...] | str
) -> pd.DataFrame:
    """One row per day from the first day of `start` to the last of `end`: holiday, working day, events."""
    days = pd.date_range(start.start_time, end.end_time.normalize(), freq="D")
    years = _years(start, end)
    public = country_holidays(country, years)
    official = official_names(public)
    dates = [d.date() for d in days]
    frame = pd.DataFrame(index=days)
    holiday = np.array([d in public for d in dates])
    transferred = np.array([d in EXTRA_WORKING_DAYS.get(country, ()) for d in dates])
    frame["holidays"] = holiday
    frame["working_days"] = ((days.day_of_week < 5) & ~holiday) | transferred
    sources = event_sources(country, events, set().union(*official.values()))
    for column, source in sources.items():
        dated = _rule_days(source, years) if source in RULES else _event_days(official, source)
        frame[column] = days.isin(pd.to_datetime(dated))
    return frame


def monthly_calendar(
    start: pd.Period, end: pd.Period, country: str, events: tuple[str, ...] | str
) -> pd.DataFrame:
    """f32 features per month (rows: monthly periods `start`..`end`), each roughly in [-1, 1].

    Columns: `resolve_calendar(start, end, country, events).columns()`; an event's column is the share of
    its shopping days that fall in the month (a rule's column is named after the rule).
    """
    daily = daily_calendar(start, end, country, events)
    per_month = daily.groupby(daily.index.to_period("M")).sum()
    months = pd.period_range(start, end, freq="M")
    out = pd.DataFrame(index=months)
    angle = 2 * np.pi * (months.month - 1) / 12
    out["month_sin"], out["month_cos"] = np.sin(angle), np.cos(angle)
    out["days_in_month"] = (months.days_in_month - 30) / 2
    out["holidays"] = per_month["holidays"].to_numpy() / 5
    out["working_days"] = (per_month["working_days"].to_numpy() - 21) / 3
    for event in daily.columns.drop(["holidays", "working_days"]):
        days = BLACK_FRIDAY_DAYS if event == "black_friday" else EVENT_LEAD_DAYS + 1
        out[event] = per_month[event].to_numpy() / days
    out.index.name = "month"
    return out.astype(np.float32)


SEASON = 12  # months in a year: the seasonal reference is the same month one year earlier
LEVEL_FLOOR = 0.1  # a window's level is at least this share of its series' training mean
INDEX_FLOOR = 0.05  # a month whose profile index is below this tells nothing of the level
RECENT_BOUNDS = (0.5, 2.0)  # the recent level against the context's mean: beyond it, the profile is off


@dataclasses.dataclass(frozen=True)
class Scaler:
    """Per-series statistics of the training months, and how windows are normalised.

    `scale` is each series' mean revenue over its available training months (1 for a series that is
    all zero there, so it stays finite); `log_mean`/`log_std` standardise log1p(scale), which the model
    receives as a static input so that it still knows each series' size. `reference` names the
    normalisation (`ModelConfig.reference`): "mean" divides every window by `scale`; "seasonal" divides
    it by its own context level and forecasts the change from the same month a year earlier; "profile"
    likewise, from the month's index averaged over the complete years before it (`seasonal_profile`).
    `seasonal_seen` records whether the training months hold any such pair (a month and the month a
    year before it, both observed): without one the model never learned from a seasonal reference, so
    its windows use the level instead, in training and in forecasting alike. `covariate_mean` and
    `covariate_std` standardise each known-in-advance covariate with its values in the training months
    (all series pooled; a std of 0 counts as 1, so a covariate that never varies stays finite).
    """

    scale: np.ndarray  # f64[S] revenue
    log_mean: float
    log_std: float
    reference: str = "mean"
    seasonal_seen: bool = False
    covariate_mean: tuple[float, ...] = ()
    covariate_std: tuple[float, ...] = ()

    @classmethod
    def fit(
        cls, history: np.ndarray, available: np.ndarray, reference: str = "mean", covariates=None
    ) -> "Scaler":
        """Fit on f64[S,T] revenue, bool[S,T] availability and f[S,T,C] covariates of training months."""
        count = available.sum(axis=1)
        mean = np.where(available, history, 0.0).sum(axis=1) / np.maximum(count, 1)
        scale = np.where(mean > 0, mean, 1.0)
        logs = np.log1p(scale)
        seen = bool((available[:, SEASON:] & available[:, :-SEASON]).any())
        moments = ((), ()) if covariates is None else _covariate_moments(covariates)
        return cls(scale, float(logs.mean()), float(logs.std() or 1.0), reference, seen, *moments)

    def static(self) -> np.ndarray:
        """f32[S,1] standardised log scale."""
        return ((np.log1p(self.scale) - self.log_mean) / self.log_std).astype(np.float32)[:, None]

    def covariate_inputs(self, values: np.ndarray) -> np.ndarray:
        """f32[...,C] standardised covariates from raw f[...,C]; an unknown (NaN) value is 0, the mean."""
        scaled = (values - np.asarray(self.covariate_mean)) / np.asarray(self.covariate_std)
        return np.nan_to_num(scaled, nan=0.0).astype(np.float32)


def _covariate_moments(values: np.ndarray) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """(mean, std) of each covariate over the finite values of f[S,T,C]: (0, 1) where it has none."""
    flat = values.reshape(math.prod(values.shape[:-1]), values.shape[-1]).astype(np.float64)
    known = np.isfinite(flat).sum(axis=0)
    mean = np.where(known > 0, np.nansum(flat, axis=0) / np.maximum(known, 1), 0.0)
    std = np.sqrt(np.nansum((flat - mean) ** 2, axis=0) / np.maximum(known, 1))
    return tuple(map(float, mean)), tuple(float(s) if s > 0 else 1.0 for s in std)


def pad_covariates(values: np.ndarray, context: int, horizon: int) -> np.ndarray:
    """f[S,context + M + horizon,C] from f[S,M,C]: aligned with the calendar, NaN (unknown) outside."""
    return np.pad(values.astype(np.float32), ((0, 0), (context, horizon), (0, 0)), constant_values=np.nan)


class Windows(NamedTuple):
    """Model-ready windows of `context + horizon` months; a pytree, so it can be sliced and jitted.

    Revenue in a window is in units of its `level`: the model forecasts y / level - reference, so a
    forecast in revenue is level * (reference + output).
    """

    x: np.ndarray  # f32[N,T,F] revenue / level, observed flag, horizon flag, reference, its flag,
    # the store's and the category's profiles (`group_profiles`), calendar, covariates, static
    store: np.ndarray  # i32[N]
    category: np.ndarray  # i32[N]
    y: np.ndarray  # f32[N,H] target revenue / level - reference, 0 where masked
    mask: np.ndarray  # f32[N,H] 1 where the target month is available
    series: np.ndarray  # i32[N] series index
    level: np.ndarray  # f32[N] revenue units of the window
    reference: np.ndarray  # f32[N,H] the forecast's reference, in level units

    def reference_revenue(self) -> np.ndarray:
        """f64[N,H] the reference in revenue (level x reference, at least 0), the network's counterpart."""
        return np.clip(self.level[:, None] * self.reference, 0.0, None).astype(np.float64)


def num_features(n_calendar: int, n_covariates: int = 0) -> int:
    """F: the width of `Windows.x` with `n_calendar` calendar columns and `n_covariates` covariates."""
    return 7 + n_calendar + n_covariates + 1


def window_level(values: np.ndarray, observed: np.ndarray, scaler: Scaler) -> np.ndarray:
    """f64[S,O] revenue unit of each window from its context f64[S,O,C] and observed bool[S,O,C].

    "mean": the series' training mean. "seasonal": the mean of the observed context months, at least
    LEVEL_FLOOR of the training mean (a window of zeros keeps a finite, positive unit).
    """
    scale = np.broadcast_to(scaler.scale[:, None], values.shape[:2])
    if scaler.reference == "mean":
        return scale
    mean = np.where(observed, values, 0.0).sum(-1) / np.maximum(observed.sum(-1), 1)
    return np.maximum(mean, LEVEL_FLOOR * scale)


def seasonal_reference(
    values: np.ndarray, observed: np.ndarray, level: np.ndarray, horizon: int, scaler: Scaler
) -> tuple[np.ndarray, np.ndarray]:
    """(reference f64[...,O,H] in level units, bool[...,O,H] from a real month) from contexts f[...,O,C].

    Horizon step h refers to the month SEASON months before it when that month is an observed context
    month and the scaler's reference is "seasonal" with `seasonal_seen`; otherwise to the level (1), or
    to 0 in "mean" mode, where the model forecasts the scaled revenue itself.
    """
    context = values.shape[-1]
    source = context + np.arange(horizon) - SEASON
    usable = (source >= 0) & (source < context)
    source = np.clip(source, 0, context - 1)
    on = scaler.reference != "mean" and scaler.seasonal_seen
    taken = observed[..., source] & usable & on
    fallback = 0.0 if scaler.reference == "mean" else 1.0
    return np.where(taken, values[..., source] / level[..., None], fallback), taken


def seasonal_profile(
    values: np.ndarray, available: np.ndarray, starts: np.ndarray, offsets: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """(index f64[S,O,K], bool[S,O,K] where one exists) from padded f64[S,P] revenue and bool[S,P].

    The index of the month `offsets[k]` months after the window's first forecast month (negative: a
    context month) is the ratio of its calendar month to its year's mean, averaged over
    every complete year (SEASON consecutive observed months with a positive mean) that ends before the
    window's first forecast month (padded position `starts`), so it never reads a month at or after the
    forecast origin. With two years or more it is shrunk towards 1 by how much of its spread over the
    months the years' disagreement explains (`shrink`): a seasonal pattern that is mostly noise is damped.
    """
    starts = np.asarray(starts)
    total = np.zeros((values.shape[0], len(starts), SEASON))
    squares, count = np.zeros(total.shape), np.zeros(total.shape)
    for k in range(1, int(starts.max(initial=0)) // SEASON + 1):
        pos = starts[:, None] - SEASON * k + np.arange(SEASON)  # [O,SEASON]
        inside = (pos >= 0).all(-1)
        pos = np.maximum(pos, 0)
        block, seen = values[:, pos], available[:, pos]
        mean = block.mean(-1)
        complete = seen.all(-1) & (mean > 0) & inside
        ratio = np.where(complete[..., None], block / np.where(complete, mean, 1.0)[..., None], 0.0)
        total, squares, count = total + ratio, squares + ratio**2, count + complete[..., None]
    index = total / np.maximum(count, 1)
    spread = (squares - count * index**2) / np.maximum(count - 1, 1)  # the years' variance per month
    index = 1 + (index - 1) * shrink(index, spread / np.maximum(count, 1), count)[..., None]
    phase = np.asarray(offsets) % SEASON
    return index[..., phase], count[..., phase] > 0


def recent_level(scaled: np.ndarray, observed: np.ndarray, index: np.ndarray, smoothing: float) -> np.ndarray:
    """f64[S,O]: the level of a context's latest months, in units of its mean level.

    Each observed context month f64[S,O,C] (revenue / the window's level) is divided by its profile
    index f64[S,O,C] and weighted (1 - smoothing)^age, age 0 being the last context month: an
    exponentially weighted level, as in simple exponential smoothing; 0 weighs every month alike. Months
    without a usable index are left out, a context without any gives 1, and the result is bounded to
    RECENT_BOUNDS.
    """
    usable = observed & (index > INDEX_FLOOR)
    age = np.arange(scaled.shape[-1])[::-1]
    weight = np.where(usable, (1.0 - smoothing) ** age, 0.0)
    deseasonalised = np.where(usable, scaled / np.where(usable, index, 1.0), 0.0)
    total = weight.sum(-1)
    level = np.where(total > 0, (weight * deseasonalised).sum(-1) / np.where(total > 0, total, 1.0), 1.0)
    return np.clip(level, *RECENT_BOUNDS)


def shrink(index: np.ndarray, noise: np.ndarray, count: np.ndarray) -> np.ndarray:
    """f64[...] weight in [0, 1] of an index f64[...,SEASON] whose months' means have variance `noise`.

    The spread of the index over the months is the season's plus the noise of its means; the weight
    keeps the season's share of it (a James-Stein estimate). With fewer than two years there is no
    noise estimate, and the weight is 1.
    """
    spread = index.var(axis=-1)
    known = (count >= 2).all(axis=-1)
    noisy = np.where(count >= 2, noise, 0.0).mean(axis=-1)
    weight = np.clip(1 - noisy / np.maximum(spread, 1e-12), 0.0, 1.0)
    return np.where(known, weight, 1.0)


def group_profiles(
    values: np.ndarray, observed: np.ndarray, groups: np.ndarray, horizon: int, scaler: Scaler
) -> tuple[np.ndarray, np.ndarray]:
    """Each series' group (store or category) total, in units of its own context mean.

    values f64[S,O,C] context revenue, observed bool[S,O,C], groups int[S] -> (context f32[S,O,C],
    reference f32[S,O,H]): the group's context months and its seasonal reference for every horizon
    step. The group's shape tells a series which of its own ups and downs are shared, not noise.
    """
    n = int(groups.max(initial=-1)) + 1
    total = np.zeros((n, *values.shape[1:]))
    np.add.at(total, groups, np.where(observed, values, 0.0))
    seen = np.zeros(total.shape, bool)
    np.logical_or.at(seen, groups, observed)
    level = np.where(seen, total, 0.0).sum(-1) / np.maximum(seen.sum(-1), 1)
    level = np.where(level > 0, level, 1.0)
    ref, _ = seasonal_reference(total, seen, level, horizon, scaler)
    return (total / level[..., None])[groups], ref[groups]


def _steps(context_part: np.ndarray, horizon_part: np.ndarray) -> np.ndarray:
    """f[S,O,T,1]: one input feature over a window, from its context f[S,O,C] and horizon f[S,O,H] parts."""
    return np.concatenate([context_part, horizon_part], axis=-1)[..., None]


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
    smoothing: float = 0.0,
    covariates: np.ndarray | None = None,
) -> Windows:
    """Cut windows from f64[S,Th] revenue at each origin (index of the first forecast month).

    `calendar` is f32[context + Th + horizon, Fc]: its row `context + t` is history month t; raw
    `covariates` f[S,context + Th + horizon,C] are aligned the same way (`pad_covariates`) and enter
    every context and horizon step standardised by the scaler. Months
    before the history are padded and flagged unobserved; targets after it are masked, so nothing
    beyond `history` can reach a window. With `require_target` (training), windows without any target
    or without any observed context month are dropped. With the profile reference, `smoothing` is the
    weight of the latest context months in the level the profile is scaled to (`recent_level`).
    """
    s, _ = history.shape
    width = context + horizon
    pad = ((0, 0), (context, horizon))
    values = np.pad(np.where(available, history, 0.0), pad)
    avail = np.pad(available, pad)
    cols = np.asarray(origins)[:, None] + np.arange(width)  # [O,T] padded positions
    v, a = values[:, cols], avail[:, cols]  # [S,O,T]
    obs = a[..., :context]
    level = window_level(v[..., :context], obs, scaler)
    ref, taken = seasonal_reference(v[..., :context], obs, level, horizon, scaler)
    if scaler.reference == "profile" and scaler.seasonal_seen:
        starts = np.asarray(origins) + context
        index, complete = seasonal_profile(values, avail, starts, np.arange(-context, horizon))
        recent = recent_level(v[..., :context] / level[..., None], obs, index[..., :context], smoothing)
        index, complete = index[..., context:] * recent[..., None], complete[..., context:]
        ref, taken = np.where(complete, index, ref), complete | taken
    hor = np.zeros((*v.shape[:2], horizon))
    parts = [
        _steps(v[..., :context] / level[..., None], hor),
        _steps(obs, hor),
        _steps(0 * obs, hor + 1),
        _steps(0 * obs, ref),
        _steps(0 * obs, taken),
    ]
    for groups in (store, category):
        group_context, group_ref = group_profiles(v[..., :context], obs, groups, horizon, scaler)
        parts.append(_steps(group_context, group_ref))
    parts.append(np.broadcast_to(calendar[cols], (s, *cols.shape, calendar.shape[1])))
    if covariates is not None:
        parts.append(scaler.covariate_inputs(covariates[:, cols]))
    parts.append(np.broadcast_to(scaler.static()[:, None, None, :], (s, *cols.shape, 1)))
    n_covariates = 0 if covariates is None else covariates.shape[-1]
    x = np.concatenate(parts, axis=-1).reshape(-1, width, num_features(calendar.shape[1], n_covariates))
    x = x.astype(np.float32)
    mask = a[..., context:].reshape(-1, horizon).astype(np.float32)
    y = (v[..., context:] / level[..., None] - ref).reshape(-1, horizon)
    series = np.repeat(np.arange(s, dtype=np.int32), len(origins))
    has_data = (mask.sum(axis=1) > 0) & obs.reshape(len(mask), -1).any(axis=1)
    keep = has_data if require_target else np.ones(len(mask), bool)
    return Windows(
        x=x[keep],
        store=store[series][keep].astype(np.int32),
        category=category[series][keep].astype(np.int32),
        y=np.where(mask > 0, y, 0.0).astype(np.float32)[keep],
        mask=mask[keep],
        series=series[keep],
        level=level.reshape(-1).astype(np.float32)[keep],
        reference=ref.reshape(-1, horizon).astype(np.float32)[keep],
    )
