"""Shared fixtures: a tiny config and a tiny monthly panel, so real code runs in seconds."""

import copy
import os
import shutil
from pathlib import Path

import jax
import numpy as np
import pandas as pd
import pytest
import yaml

from salesjax import baselines, stages
from salesjax.config import Config, parse_config

ROOT = Path(__file__).parents[1]


def pytest_configure(config):
    """JAX settings for the tests and, through the environment, their subprocesses.

    The tests check behaviour, not speed, and their programs are tiny: most of XLA's optimisation
    passes are off (a third less CPU time for test_train.py and test_model.py; the suite passes either
    way), while the stages and the benchmarks run fully optimised. Tests build many identical programs
    from fresh closures; JAX's compilation cache, kept in pytest's cache directory (.pytest_cache;
    `--cache-clear` empties it), lets them share compiled code within a run and across runs. An entry
    that one process reads while another still writes it fails to load, and is compiled again. Without
    pytest's cache (`-p no:cacheprovider`) every program compiles anew."""
    settings = {"jax_disable_most_optimizations": True}
    if hasattr(config, "cache"):
        settings |= {
            "jax_compilation_cache_dir": str(config.cache.mkdir("jax-compilation")),
            "jax_persistent_cache_min_compile_time_secs": 0.0,
            "jax_persistent_cache_min_entry_size_bytes": 0,
        }
    for name, value in settings.items():
        jax.config.update(name, value)
        os.environ[name.upper()] = str(value)


def tiny_params() -> dict:
    """params.yaml with a tiny model, a short test period and a few epochs."""
    params = copy.deepcopy(yaml.safe_load((ROOT / "params.yaml").read_text()))
    params["data"].update(format="panel", path="panel.csv", counterfactual_path=None)
    params["split"].update(test_end="2020-03")
    params["model"].update(context=6, horizon=3, hidden_size=8, store_embedding=2, category_embedding=2)
    params["train"].update(batch_size=16, max_epochs=3, patience=2, ensemble_size=2, validation_months=6)
    params["train"]["min_steps_per_epoch"] = 1  # batches of 16: the tiny panel fills few steps
    params["baselines"]["n_jobs"] = 1  # in process: this one has started JAX, and forking it can deadlock
    return params


@pytest.fixture(scope="session", autouse=True)
def shared_baseline_fits():
    """The stages that tests run share statsforecast's fits by their exact inputs (a fresh copy each).

    AutoARIMA takes most of a tiny panel's stage time, the fits are deterministic
    (test_baselines.py::test_deterministic) and many tests refit the same months; a fit whose inputs
    differ in any value (a leaked test month) is a new fit. test_baselines.py tests the fits themselves.
    """
    fits, fit = {}, baselines.forecast_baselines

    def shared(history, history_mask, *args, **options):
        key = repr((history.shape, history.tobytes(), history_mask.tobytes(), args, sorted(options.items())))
        if key not in fits:
            fits[key] = fit(history, history_mask, *args, **options)
        return {name: forecast.copy() for name, forecast in fits[key].items()}

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(baselines, "forecast_baselines", shared)
        yield


def run_stages(root: Path, panel: pd.DataFrame) -> Config:
    """prepare, train, baselines and evaluate on `panel` with the tiny params, in `root`."""
    root.mkdir(parents=True, exist_ok=True)
    panel.to_csv(root / "panel.csv", index=False)
    params = tiny_params()
    (root / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    cfg = parse_config(params)
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(root)
        for stage in (stages.prepare, stages.run_train, stages.run_baselines, stages.run_evaluate):
            stage(cfg)
    return cfg


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory):
    """A function that copies one run of `run_stages` on the tiny panel (made once per worker) to a path."""
    run = tmp_path_factory.mktemp("tiny_run")
    run_stages(run, make_panel())
    return lambda root: Path(shutil.copytree(run, root))


@pytest.fixture
def params() -> dict:
    """A fresh copy of the tiny params for a test to change."""
    return tiny_params()


@pytest.fixture
def config():
    """The tiny params as a Config."""
    return parse_config(tiny_params())


def make_panel(
    stores: int = 3, categories: int = 2, start: str = "2018-01", end: str = "2020-03"
) -> pd.DataFrame:
    """Seasonal, trending monthly revenue in the panel input format."""
    rng = np.random.default_rng(0)
    months = pd.period_range(start, end, freq="M")
    rows = []
    for s in range(stores):
        for c in range(categories):
            level = 1000.0 * (1 + s) * (1 + 2 * c)
            season = 1 + 0.4 * np.sin(2 * np.pi * months.month / 12 + c)
            trend = 1 + 0.01 * np.arange(len(months))
            revenue = level * season * trend * rng.lognormal(0, 0.05, len(months))
            rows += [(str(m), f"S{s}", f"C{c}", round(r, 2)) for m, r in zip(months, revenue, strict=True)]
    return pd.DataFrame(rows, columns=["month", "store", "category", "revenue"])


@pytest.fixture
def panel_csv(tmp_path, params) -> Path:
    """A tiny panel written as the raw input, with params.yaml beside it, in tmp_path."""
    make_panel().to_csv(tmp_path / "panel.csv", index=False)
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    return tmp_path
