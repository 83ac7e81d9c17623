"""`salesjax <command>`: argv -> config -> one function call. The only module that sees argv.

Exit codes: 0 success, 1 the command ran but found problems (e.g. rows quarantined), 2 a usage,
configuration or file-level error, printed as one `error: ...` line on stderr, never a traceback;
130 interrupted (Ctrl-C), also one line.

A command's result (validate's counts, experiment's overrides, bench's summary) goes to stdout; progress
goes through the `salesjax` logger to stderr as plain lines: info by default, debug with -v, warnings
only (and no progress bars) with -q.

A command imports the code it runs when it runs, so that `salesjax validate` (or `--help`) starts in two
seconds instead of loading JAX and statsforecast first (13 s on a 2-core machine).
"""

import argparse
import contextlib
import importlib
import importlib.metadata
import logging
import sys
import typing
from collections.abc import Callable, Iterator
from pathlib import Path

from salesjax import experiment_sets
from salesjax.config import PARAMS, DataConfig, PanelColumns, check_date_format, load_config
from salesjax.data import simulate
from salesjax.data.schema import (
    Validated,
    read_table,
    same_file,
    validate_panel,
    validate_transactions,
    write_table,
)
from salesjax.errors import SalesjaxError

logger = logging.getLogger("salesjax.cli")  # not __name__: run as `python -m salesjax.cli` that is __main__


class Command(typing.NamedTuple):
    """One subcommand: its help line, how it adds its arguments, and what it runs."""

    help: str
    add_arguments: Callable[[argparse.ArgumentParser], None]
    run: Callable[[argparse.Namespace], int]


VALIDATE_HELP = """Check a raw file against the data contract; exit 1 when any row is quarantined.

A value not given as an option comes from the data section of the params file, which is read only when
one is needed. Without a params file, give --format (and --date-format for transactions); the year
bounds are then 2000..2100 and a panel's columns month, store, category, revenue (the repository's
params.yaml values)."""
# What validate uses for a value that is neither an option nor in a params file (params.yaml's values).
VALIDATE_FALLBACK = {
    "min_year": 2000,
    "max_year": 2100,
    "panel_columns": PanelColumns(month="month", store="store", category="category", revenue="revenue"),
}


class Contract(typing.NamedTuple):
    """What `salesjax validate` checks a file against."""

    format: str
    date_format: str | None  # None for a panel read without a params file
    min_year: int
    max_year: int
    panel_columns: PanelColumns


def _validate_arguments(parser: argparse.ArgumentParser) -> None:
    """Arguments of `salesjax validate`."""
    parser.description = VALIDATE_HELP
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.add_argument("path", type=Path, help="raw input, .csv or .parquet")
    parser.add_argument("--format", choices=["transactions", "panel"], help="default: data.format")
    parser.add_argument("--date-format", help="strptime format of SalesDate; default: data.date_format")
    parser.add_argument("--min-year", type=int, help="earliest valid SalesDate year; default: data.min_year")
    parser.add_argument("--max-year", type=int, help="latest valid SalesDate year; default: data.max_year")
    parser.add_argument(
        "--quarantine", type=Path, help="write rejected rows here (.csv or .parquet); never the input"
    )
    parser.add_argument("--params", type=Path, help="params file for values not given; default: params.yaml")


def _validate(args: argparse.Namespace) -> int:
    """Check a raw file against the data contract; exit 1 when any row is quarantined.

    `--quarantine` is written even for a clean file (header only), so the output always exists; it is
    refused when it names a file the command reads.
    """
    _refuse_overwrite(args.quarantine, [args.path, args.params or PARAMS], "--quarantine")
    contract = _contract(args)
    table = read_table(args.path)
    if contract.format == "transactions":
        years = {"min_year": contract.min_year, "max_year": contract.max_year}
        result = validate_transactions(table, date_format=contract.date_format, **years)
    else:
        result = validate_panel(table, contract.panel_columns)
    if args.quarantine is not None:
        write_table(result.quarantined, args.quarantine)
    logger.info(f"validate: {args.path}: {len(table)} rows checked as {contract.format}")
    print(_summary(result))
    return 1 if result.counts else 0


def _refuse_overwrite(out: Path | None, reads: list[Path], option: str) -> None:
    """Fail when an output path names a file the command reads (it would be overwritten)."""
    for path in reads:
        if out is not None and same_file(out, path):
            raise SalesjaxError(f"{option} {out} is {path}, which this command reads; choose another path")


def _contract(args: argparse.Namespace) -> Contract:
    """The options, with the values not given from the params file (or VALIDATE_FALLBACK without one)."""
    transaction_options = (args.date_format, args.min_year, args.max_year)
    if args.format == "panel" and any(v is not None for v in transaction_options):
        raise SalesjaxError("--date-format, --min-year and --max-year apply to transactions, not to a panel")
    data = _data_section(args)
    given = {"format": args.format, "date_format": args.date_format}
    given |= {"min_year": args.min_year, "max_year": args.max_year, "panel_columns": None}
    values = {
        name: value if value is not None else getattr(data, name) if data else VALIDATE_FALLBACK.get(name)
        for name, value in given.items()
    }
    contract = Contract(**values)
    logger.debug(f"validate: {contract}")
    if contract.format == "transactions":
        check_date_format(contract.date_format, "--date-format")
        if contract.min_year > contract.max_year:
            raise SalesjaxError(f"the year bounds {contract.min_year}..{contract.max_year} are empty")
    return contract


def _data_section(args: argparse.Namespace) -> DataConfig | None:
    """The params file's data section when a value is needed and not given; None when none is needed.

    Without --params and without ./params.yaml, only the year bounds and panel columns may be missing.
    """
    given = [args.format, args.date_format, args.min_year, args.max_year]
    if args.format == "transactions" and None not in given:
        return None
    if args.params is None and not PARAMS.exists():
        if args.format is None or (args.format == "transactions" and args.date_format is None):
            raise SalesjaxError(
                f"no params.yaml in {Path.cwd()}: give --format (and --date-format for transactions), "
                "pass --params, or run from the repository root"
            )
        return None
    return load_config(args.params or PARAMS).data


def _summary(result: Validated) -> str:
    """One `reason: count` line per reason that occurred, then the row totals."""
    lines = [f"{reason}: {n}" for reason, n in result.counts.items()]
    n_kept, n_bad = len(result.kept), len(result.quarantined)
    lines.append(f"rows: {n_kept + n_bad} in, {n_kept} kept, {n_bad} quarantined")
    return "\n".join(lines)


def _params_argument(parser: argparse.ArgumentParser) -> None:
    """The only argument of a pipeline stage: which params file to read."""
    parser.add_argument("--params", type=Path, default=Path("params.yaml"), help="params file")


def _stage(target: str, multi_process: bool = False) -> Callable[[argparse.Namespace], int]:
    """The stage function at `target` ("module:function") as a command: load params, (join the
    processes,) import and run it, exit 0."""
    module, name = target.split(":")

    def run(args: argparse.Namespace) -> int:
        cfg = load_config(args.params)
        if multi_process:
            from salesjax import distributed

            distributed.initialize()
        getattr(importlib.import_module(module), name)(cfg)
        return 0

    return run


def _train_arguments(parser: argparse.ArgumentParser) -> None:
    """Arguments of `salesjax train`."""
    _params_argument(parser)
    parser.add_argument("--experiment", help="train a named set from experiments/<name>.yaml instead")


def _train(args: argparse.Namespace) -> int:
    """Train the default forecasters, or one named experiment set (run by every process of a group)."""
    from salesjax import distributed, stages

    cfg = load_config(args.params, args.experiment)
    distributed.initialize()
    stages.run_train(cfg, args.experiment)
    return 0


def _simulate_arguments(parser: argparse.ArgumentParser) -> None:
    """Arguments of `salesjax simulate`."""
    parser.add_argument("--seed", type=int, default=0, help="random seed (the default dataset uses 0)")
    parser.add_argument("--out", type=Path, default=Path("data"), help="output directory")
    stores, categories = len(simulate.STORES), len(simulate.CATEGORIES)
    parser.add_argument("--stores", type=int, default=stores, help=f"stores in the chain (default {stores})")
    parser.add_argument(
        "--categories", type=int, default=categories, help=f"categories per store (default {categories})"
    )
    parser.add_argument(
        "--closures",
        type=Path,
        help="also write each store's closed days per month (month, store, category, closed_days; .csv or "
        ".parquet), a covariate file for data.covariates_path",
    )


def _simulate(args: argparse.Namespace) -> int:
    """Write the simulated chain's transactions (observed and counterfactual worlds), maybe its closures."""
    observed, counterfactual = simulate.simulate(args.seed, args.stores, args.categories)
    simulate.write_dataset(observed, counterfactual, args.out)
    rows = f"{len(observed)} observed and {len(counterfactual)} counterfactual rows"
    logger.info(f"simulate: {rows} in {args.out}")
    if args.closures is not None:
        categories = simulate.make_chain(args.stores, args.categories).category_names
        write_table(simulate.by_category(simulate.closure_days(args.stores), categories), args.closures)
        logger.info(f"simulate: closed days per store and month in {args.closures}")
    return 0


def _experiment_arguments(parser: argparse.ArgumentParser) -> None:
    """Arguments of `salesjax experiment`."""
    parser.add_argument("name", help="a set in experiments/<name>.yaml, e.g. default, thesis, sweep")


def _experiment(args: argparse.Namespace) -> int:
    """Print a named set's `-S key=value` overrides, one pair a line, for `dvc exp run $(...)`."""
    pairs = experiment_sets.overrides(args.name)
    for flag, pair in zip(pairs[::2], pairs[1::2], strict=True):
        print(flag, pair)
    return 0


FORECAST_HELP = """DVC stage: refit the LSTMs on all observed months and forecast beyond them, beside the
baselines that the forecast-baselines stage fitted on the same months.

With --model: forecast the panel --data (.csv/.parquet: month, store, category, revenue) with a saved
model directory (e.g. artifacts/forecast/models/lstm_ensemble), without retraining, into --out (from
every month of the panel with model.reference profile, else its last model.context months); series the
model was not trained on are named and skipped. A model with covariates reads them from the panel's
columns and their forecast-month values from --covariates (month, store, category + the covariates)."""


def _forecast_arguments(parser: argparse.ArgumentParser) -> None:
    """Arguments of `salesjax forecast`."""
    parser.description = FORECAST_HELP
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    _params_argument(parser)
    parser.add_argument("--model", type=Path, help="a saved model directory to apply instead of the stage")
    parser.add_argument("--data", type=Path, help="with --model: the panel to forecast from")
    parser.add_argument("--months", type=int, help="with --model: months ahead; default: the model's horizon")
    parser.add_argument("--out", type=Path, help="with --model: the forecast table, .csv or .parquet")
    parser.add_argument("--covariates", type=Path, help="with --model: the covariates of the forecast months")


def _forecast(args: argparse.Namespace) -> int:
    """Run the forecast stage, or apply a saved model to a panel (--model, --data, --out)."""
    from salesjax.forecast_stage import run_apply, run_forecast

    applying = (args.data, args.months, args.out, args.covariates)
    if args.model is None:
        if any(v is not None for v in applying):
            raise SalesjaxError("--data, --months, --out and --covariates go with --model")
        run_forecast(load_config(args.params))
    elif args.data is None or args.out is None:
        raise SalesjaxError("--model needs --data (the panel) and --out (the forecast table)")
    else:
        run_apply(args.model, args.data, args.months, args.out, args.covariates)
    return 0


COMMANDS: dict[str, Command] = {
    "validate": Command("check a raw file against the data contract", _validate_arguments, _validate),
    "simulate": Command(
        "write the calibrated default dataset (or a chain of another size)", _simulate_arguments, _simulate
    ),
    "prepare": Command(
        "DVC stage: validate, aggregate, calendar features",
        _params_argument,
        _stage("salesjax.stages:prepare"),
    ),
    "train": Command("DVC stage: train the LSTM and its seed ensemble", _train_arguments, _train),
    "baselines": Command(
        "DVC stage: fit the statsforecast baselines",
        _params_argument,
        _stage("salesjax.stages:run_baselines"),
    ),
    "evaluate": Command(
        "DVC stage: score every forecaster on the test months",
        _params_argument,
        _stage("salesjax.stages:run_evaluate"),
    ),
    "report": Command(
        "DVC stage: figures and the report", _params_argument, _stage("salesjax.report.stage:run_report")
    ),
    "backtest-baselines": Command(
        "DVC stage: the baselines at every backtest origin",
        _params_argument,
        _stage("salesjax.backtest:run_backtest_baselines"),
    ),
    "backtest": Command(
        "DVC stage: rolling-origin backtest, all models",
        _params_argument,
        _stage("salesjax.backtest:run_backtest"),
    ),
    "sweep": Command(
        "DVC stage: vmapped hyperparameter sweep on the hold-out",
        _params_argument,
        _stage("salesjax.sweep:run_sweep", multi_process=True),
    ),
    "forecast-baselines": Command(
        "DVC stage: the baselines fitted on all observed months, for forecast",
        _params_argument,
        _stage("salesjax.forecast_stage:run_forecast_baselines"),
    ),
    "forecast": Command(
        "DVC stage: forecast beyond the data; --model: apply a model", _forecast_arguments, _forecast
    ),
    "experiment": Command(
        "print a named experiment set as `dvc exp run -S` overrides", _experiment_arguments, _experiment
    ),
}


def _parser() -> argparse.ArgumentParser:
    """The top-level parser with one subparser per entry of COMMANDS."""
    parser = argparse.ArgumentParser(
        prog="salesjax", description="Monthly store x category revenue forecasting: the DVC stages and tools."
    )
    version = f"%(prog)s {importlib.metadata.version('salesjax')}"
    parser.add_argument("--version", action="version", version=version, help="print the version and exit")
    _verbosity_arguments(parser, default=False)
    sub = parser.add_subparsers(dest="command", required=True, metavar="command")
    for name, command in COMMANDS.items():
        subparser = sub.add_parser(name, help=command.help, description=command.help)
        command.add_arguments(subparser)
        _verbosity_arguments(subparser, default=argparse.SUPPRESS)  # unset there keeps the top-level value
    return parser


def _verbosity_arguments(parser: argparse.ArgumentParser, default: object) -> None:
    """-v/--verbose and -q/--quiet, accepted before the command and after it."""
    group = parser.add_mutually_exclusive_group()
    flag = {"action": "store_true", "default": default}
    group.add_argument("-v", "--verbose", help="also debug messages", **flag)
    group.add_argument("-q", "--quiet", help="warnings and errors only, no progress bars", **flag)


def _log_level(args: argparse.Namespace) -> int:
    """DEBUG with -v, WARNING with -q, else INFO; both given is a usage error."""
    if args.verbose and args.quiet:
        _parser().error("-v/--verbose and -q/--quiet exclude each other")
    return logging.DEBUG if args.verbose else logging.WARNING if args.quiet else logging.INFO


@contextlib.contextmanager
def _logging(level: int) -> Iterator[None]:
    """The `salesjax` logger's messages at `level` and above as plain lines on stderr, while a command runs.

    Restored afterwards, so `main` called in-process (the tests) leaves no handler behind; not passed on to
    the root logger, so a library that configures logging cannot print a line twice.
    """
    package = logging.getLogger("salesjax")
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(message)s"))
    saved = package.level, package.propagate
    package.addHandler(handler)
    package.setLevel(level)
    package.propagate = False
    try:
        yield
    finally:
        package.removeHandler(handler)
        package.setLevel(saved[0])
        package.propagate = saved[1]


def main(argv: list[str] | None = None) -> int:
    """Run one command and return its exit code; user-facing errors become `error: ...`, code 2."""
    args = _parser().parse_args(argv)
    try:
        with _logging(_log_level(args)):
            return COMMANDS[args.command].run(args)
    except SalesjaxError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(
            f"error: interrupted; `salesjax {args.command}` may have left partial outputs, rerun it",
            file=sys.stderr,
        )
        return 130


if __name__ == "__main__":
    raise SystemExit(main())
