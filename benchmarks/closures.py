"""How much of the simulated 2020 drop do store closures explain, as a covariate or as exposure?

    uv run python benchmarks/closures.py   # about 4 minutes on 2 CPU cores; writes benchmarks/closures.json

The default chain (`salesjax simulate --seed 0`, built here in memory) loses revenue in 2020 to its closure
timeline; `simulate.closure_days` gives each store's closed days per month from the same timeline. Every
approach trains on 2018-2019 only and forecasts 2020 (12 months, the params.yaml model, one member, K=1):
- lstm: the plain LSTM;
- lstm_closures: the LSTM with `data.covariates: [closed_days]` and the real 2020 closed days as future
  values. Closed days are 0 in every training month, so it cannot learn their effect (`fit` warns);
- seasonal_naive: 2019's revenue of the same month;
- *_exposure: a plain forecast per open day times the open days (days in month - closed days).
Scores (revenue of the store x category series, mean forecasts): the share of the 2020 drop explained,
(counterfactual - forecast) / (counterfactual - observed) over 2020, for the company and per store; and
the MAE per series and month on the observed 2020.
"""

import dataclasses
import json
import logging
import time
from pathlib import Path

import numpy as np
import pandas as pd

from salesjax import api
from salesjax.config import load_config
from salesjax.data import simulate

OUT = Path(__file__).with_name("closures.json")
KEYS = ["month", "store", "category"]


def monthly(transactions: pd.DataFrame) -> pd.DataFrame:
    """Long rows (month YYYY-MM, store, category, revenue) of simulated transactions."""
    frame = pd.DataFrame(
        {
            "month": pd.to_datetime(transactions["SalesDate"]).dt.to_period("M").astype(str),
            "store": transactions["StoreId"].astype(str),
            "category": transactions["ProductCategory"].astype(str),
            "revenue": transactions["Revenue"],
        }
    )
    return frame.groupby(KEYS, as_index=False)["revenue"].sum()


def lstm_mean(df: pd.DataFrame, config, future: pd.DataFrame | None) -> pd.DataFrame:
    """2020 store x category mean forecasts of a one-member LSTM trained on the 2018-2019 rows `df`."""
    model = api.fit(df, config, members=1)
    table = model.predict(12, covariates=future)
    table = table[table["level"] == "store_category"]
    return table[KEYS + ["mean"]].rename(columns={"mean": "forecast"})


def scores(frame: pd.DataFrame, column: str) -> dict:
    """Share of the 2020 drop explained (company, per store) and MAE per series and month, of `column`."""
    by_store = frame.groupby("store")[["observed", "counterfactual", column]].sum()
    total = by_store.sum()
    share = (by_store["counterfactual"] - by_store[column]) / (
        by_store["counterfactual"] - by_store["observed"]
    )
    return {
        "company_forecast": round(float(total[column]), 0),
        "drop_explained": round(
            float((total["counterfactual"] - total[column]) / (total["counterfactual"] - total["observed"])),
            4,
        ),
        "drop_explained_by_store": {s: round(float(v), 4) for s, v in share.items()},
        "mae_observed": round(float((frame[column] - frame["observed"]).abs().mean()), 1),
    }


class Warnings(logging.Handler):
    """Collects the salesjax warnings of a run."""

    def __init__(self):
        super().__init__(logging.WARNING)
        self.lines = []

    def emit(self, record):
        self.lines.append(record.getMessage())


def main() -> None:
    """Simulate, train and forecast every approach, print and write the scores."""
    start = time.perf_counter()
    observed, counterfactual = simulate.simulate(0)
    rows = monthly(observed)
    cf = monthly(counterfactual).rename(columns={"revenue": "counterfactual"})
    closures = simulate.by_category(simulate.closure_days(), sorted(rows["category"].unique()))
    history = rows[rows["month"] < "2020-01"]
    base = load_config()
    config = dataclasses.replace(base, train=dataclasses.replace(base.train, ensemble_size=1))
    with_closures = dataclasses.replace(
        config, data=dataclasses.replace(config.data, covariates=("closed_days",))
    )
    warnings = Warnings()
    logging.getLogger("salesjax").addHandler(warnings)
    frame = rows[rows["month"] >= "2020-01"].rename(columns={"revenue": "observed"}).merge(cf, on=KEYS)
    frame = frame.merge(closures, on=KEYS)
    frame["lstm"] = frame.merge(lstm_mean(history, config, None), on=KEYS, how="left")["forecast"]
    future = closures[closures["month"] >= "2020-01"]
    covariate_fit = lstm_mean(history.merge(closures, on=KEYS), with_closures, future)
    frame["lstm_closures"] = frame.merge(covariate_fit, on=KEYS, how="left")["forecast"]
    last_year = history.assign(month=(pd.PeriodIndex(history["month"], freq="M") + 12).astype(str))
    frame["seasonal_naive"] = frame.merge(last_year, on=KEYS, how="left")["revenue"].fillna(0.0)
    days = pd.PeriodIndex(frame["month"], freq="M").days_in_month
    open_share = (days - frame["closed_days"]) / days
    for name in ("lstm", "seasonal_naive"):
        frame[f"{name}_exposure"] = frame[name] * open_share
    models = ["lstm", "lstm_closures", "lstm_exposure", "seasonal_naive", "seasonal_naive_exposure"]
    totals = frame[["observed", "counterfactual"]].sum()
    result = {
        "observed_2020": round(float(totals["observed"]), 0),
        "counterfactual_2020": round(float(totals["counterfactual"]), 0),
        "warnings": [w for w in warnings.lines if "never varies" in w],
        "models": {name: scores(frame, name) for name in models},
        "seconds": round(time.perf_counter() - start, 1),
    }
    OUT.write_text(json.dumps(result, indent=2) + "\n")
    for name, s in result["models"].items():
        stores = np.array(list(s["drop_explained_by_store"].values()))
        print(
            f"{name:24s} drop explained {s['drop_explained']:7.1%} (stores: median {np.median(stores):7.1%}, "
            f"min {stores.min():7.1%}, max {stores.max():7.1%}); MAE {s['mae_observed']:,.0f}"
        )
    print(result["warnings"], f"{result['seconds']} s")


if __name__ == "__main__":
    main()
