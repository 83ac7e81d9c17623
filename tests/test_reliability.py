"""Issue #11: bad input or a broken state is one `error:` line, exit 2, nothing written, no traceback."""

import hashlib
import os
from pathlib import Path

import pandas as pd
import pytest
import yaml
from conftest import make_panel, tiny_params

from salesjax import backtest, cli, stages
from salesjax.cli import main
from salesjax.config import parse_config
from salesjax.data.panel import Panel, build_panel
from salesjax.data.schema import TRANSACTION_COLUMNS
from salesjax.errors import SalesjaxError

HEADER = ",".join(TRANSACTION_COLUMNS)
ROW = "T{i},2020-01-05,Books,P1,Novel,30,F,1,2,1.5,3.0"


def run(capsys, *argv) -> tuple[int, str, str]:
    """Call `main` and return (exit code, stdout, stderr), asserting that no traceback was printed."""
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    assert "Traceback" not in out + err
    return code, out, err


def assert_one_error(code: int, err: str, *parts: str) -> None:
    """Exit code 2 and exactly one `error:` line on stderr that contains every part."""
    assert code == 2
    assert err.startswith("error: ") and err.count("\n") == 1, err
    for part in parts:
        assert part in err, (part, err)


def snapshot(root: Path) -> dict[str, str]:
    """Relative path -> digest of every file under `root`."""
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def write_params(root: Path, params: dict) -> None:
    """params.yaml in `root`."""
    (root / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))


@pytest.fixture(scope="module")
def pipeline(tmp_path_factory, tiny_run) -> Path:
    """prepare, train, baselines and evaluate run on the tiny panel; tests damage and restore it."""
    return tiny_run(tmp_path_factory.mktemp("reliability") / "run")


@pytest.fixture
def in_pipeline(pipeline, monkeypatch):
    """The pipeline as the working directory; every file is restored and extra ones removed afterwards."""
    monkeypatch.chdir(pipeline)
    saved = {p: p.read_bytes() for p in pipeline.rglob("*") if p.is_file()}
    yield pipeline
    for p in pipeline.rglob("*"):
        if p.is_file() and p not in saved:
            p.unlink()
    for p, content in saved.items():
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(content)


# ------------------------------------------------------------------ 1. inputs are never overwritten


@pytest.mark.parametrize("spelling", ["same", "dotdot", "hardlink", "params"])
def test_validate_refuses_a_quarantine_path_that_it_reads(tmp_path, monkeypatch, capsys, spelling):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "sub").mkdir()
    path = tmp_path / "x.csv"
    path.write_text("\n".join([HEADER, *(ROW.format(i=i) for i in range(200)), "T0" + ROW[4:]]) + "\n")
    write_params(tmp_path, tiny_params() | {"data": tiny_params()["data"] | {"format": "transactions"}})
    target = {
        "same": path,
        "dotdot": Path("sub/../x.csv"),
        "hardlink": tmp_path / "sub" / "link.csv",
        "params": Path("params.yaml"),
    }[spelling]
    if spelling == "hardlink":
        os.link(path, target)
    before = snapshot(tmp_path)
    code, out, err = run(capsys, "validate", "x.csv", "--quarantine", target)
    assert_one_error(code, err, "--quarantine", "which this command reads")
    assert out == "" and snapshot(tmp_path) == before


def test_prepare_refuses_a_data_path_it_would_overwrite(panel_csv, params, monkeypatch, capsys):
    monkeypatch.chdir(panel_csv)
    (panel_csv / "artifacts/prepared").mkdir(parents=True)
    pd.read_csv("panel.csv").to_parquet("artifacts/prepared/quarantine.parquet", index=False)
    params["data"]["path"] = "artifacts/prepared/../prepared/quarantine.parquet"
    write_params(panel_csv, params)
    before = snapshot(panel_csv)
    code, _, err = run(capsys, "prepare")
    assert_one_error(code, err, "which prepare writes")
    assert snapshot(panel_csv) == before


def test_an_input_breaking_its_contract_is_named_with_its_param(panel_csv, params, monkeypatch, capsys):
    monkeypatch.chdir(panel_csv)  # a panel run that kept the default data's counterfactual (transactions)
    Path("counterfactual.csv").write_text(HEADER + "\n" + ROW.format(i=1) + "\n")
    params["data"]["counterfactual_path"] = "counterfactual.csv"
    write_params(panel_csv, params)
    before = snapshot(panel_csv)
    code, _, err = run(capsys, "prepare")
    assert_one_error(
        code,
        err,
        "counterfactual.csv (data.counterfactual_path): missing required columns 'month'",
        "set data.counterfactual_path=null",
    )
    assert snapshot(panel_csv) == before


# ------------------------------------------------------------ 2. expected models are never dropped


@pytest.mark.parametrize(
    ("remove", "named", "stage"),
    [
        ("artifacts/models", "artifacts/models/lstm/model.json", "train"),
        ("artifacts/models/lstm_ensemble", "artifacts/models/lstm_ensemble/model.json", "train"),
        (None, "artifacts/models/thesis/model.json", "train_thesis"),  # thesis.yaml: the thesis is expected
    ],
)
def test_evaluate_fails_on_a_missing_model_and_writes_nothing(in_pipeline, capsys, remove, named, stage):
    if remove is None:
        (in_pipeline / "experiments").mkdir()
        (in_pipeline / "experiments/thesis.yaml").write_text("train:\n  loss: mse\n")
    else:
        for p in sorted((in_pipeline / remove).rglob("*"), reverse=True):
            p.unlink() if p.is_file() else p.rmdir()
        (in_pipeline / remove).rmdir()
    before = snapshot(in_pipeline)
    code, out, err = run(capsys, "evaluate")
    assert_one_error(code, err, named, "missing", f"run `dvc repro {stage}`")
    assert out == "" and snapshot(in_pipeline) == before


# ----------------------------------------------------------- 3. months after the data are not zeros


def test_a_test_period_after_the_data_fails_naming_its_last_month(panel_csv, params, monkeypatch, capsys):
    monkeypatch.chdir(panel_csv)  # the tiny panel ends in 2020-03
    params["split"].update(train_end="2020-03", test_start="2020-04", test_end="2020-06")
    write_params(panel_csv, params)
    before = snapshot(panel_csv)
    code, out, err = run(capsys, "prepare")
    assert_one_error(code, err, "the data ends in 2020-03, before split.test_start 2020-04")
    assert snapshot(panel_csv) == before


def test_test_months_after_the_data_are_masked_not_zero(panel_csv, params, monkeypatch, capsys):
    monkeypatch.chdir(panel_csv)
    params["split"].update(train_end="2020-01", test_start="2020-02", test_end="2020-04")
    write_params(panel_csv, params)
    assert main(["prepare"]) == 0
    assert "test months 2020-04..2020-04 are unobserved (masked)" in capsys.readouterr().err
    panel = pd.read_parquet("artifacts/prepared/panel.parquet")
    assert not panel.loc[panel["month"] == "2020-04", "available"].any()
    assert panel.loc[panel["month"] == "2020-03", "available"].all()


def test_a_backtest_origin_after_the_data_is_an_error(params):
    params["backtest"]["origins"] = ["2019-07", "2020-02"]
    cfg = parse_config(params)
    frame = make_panel(end="2020-01")
    monthly = frame.assign(month=pd.PeriodIndex(frame["month"], freq="M"))
    panel, _ = build_panel(monthly, None, cfg.split, explicit_zeros=False, context=cfg.model.context)
    with pytest.raises(SalesjaxError, match="backtest.origins: 2020-02 has no observed test month"):
        backtest.origins(cfg, Panel.from_frame(panel))


# ------------------------------------------------------------------ 4. damaged artifacts, by the issue


@pytest.mark.parametrize(
    ("damage", "named", "why"),
    [
        (
            lambda p: os.truncate(p / "artifacts/models/lstm/params.msgpack", 1000),
            "lstm/params.msgpack",
            "damaged",
        ),
        (
            lambda p: (p / "artifacts/models/lstm/model.json").write_text("{"),
            "lstm/model.json",
            "JSONDecodeError",
        ),
        (lambda p: (p / "artifacts/models/lstm/scaler.json").unlink(), "lstm/scaler.json", "missing"),
        (lambda p: (p / stages.BASELINES).unlink(), "baselines/forecasts.msgpack", "missing"),
    ],
)
def test_evaluate_names_a_damaged_artifact_and_the_stage_to_rerun(in_pipeline, capsys, damage, named, why):
    damage(in_pipeline)
    before = snapshot(in_pipeline)
    code, out, err = run(capsys, "evaluate")
    stage = "baselines" if "baselines" in named else "train"
    assert_one_error(code, err, named, why, f"run `dvc repro {stage}`")
    assert out == "" and snapshot(in_pipeline) == before


# Each subcommand with the artifacts it reads, and the stage that writes them.
PREPARED = ["artifacts/prepared/panel.parquet", "artifacts/prepared/calendar.parquet"]
EVALUATE_READS = [
    *PREPARED,
    *(
        f"artifacts/models/{m}/{f}"
        for m in ("lstm", "lstm_ensemble")
        for f in ("model.json", "params.msgpack")
    ),
    "artifacts/models/lstm_ensemble/scaler.json",
    "artifacts/baselines/forecasts.msgpack",
]
REPORT_READS = [
    "artifacts/prepared/panel.parquet",
    "artifacts/evaluation/forecasts.parquet",
    "reports/metrics.json",
    *(f"reports/evaluate/{name}.csv" for name in ("levels", "series", "horizon", "gap")),
    "reports/prepare.json",
]
CURVE = "reports/train/live/plots/metrics/lstm/validation/member_0/val_loss.tsv"  # DVCLive's
OPTIONAL = ["reports/train/metrics.json", CURVE]  # the report works without a fit
WALK = [
    ("validate", "panel.csv"),
    ("prepare", "panel.csv"),
    *((command, path) for command in ("train", "baselines", "backtest", "sweep") for path in PREPARED),
    *(("evaluate", path) for path in EVALUATE_READS),
    *(("report", path) for path in REPORT_READS + OPTIONAL),
]
DAMAGE = {
    "missing": lambda p: p.unlink(),
    "garbage": lambda p: p.write_bytes(b"\x93\xff\x00{not what was written\xfe"),
    "halved": lambda p: p.write_bytes(p.read_bytes()[: p.stat().st_size // 2]),
}


def _cases():
    """(command, path, damage) for every read artifact: missing, garbage, and halved where detectable."""
    for command, path in WALK:
        for how in DAMAGE:
            tables = path.endswith((".csv", ".tsv"))  # halving a table can leave a shorter valid one
            skip = (how == "missing" and path in OPTIONAL) or (how == "halved" and tables)
            if not skip:
                yield pytest.param(command, path, how, id=f"{command}-{path}-{how}")


@pytest.mark.parametrize(("command", "path", "how"), list(_cases()))
def test_every_subcommand_turns_a_damaged_input_into_one_line(in_pipeline, capsys, command, path, how):
    DAMAGE[how](in_pipeline / path)
    before = snapshot(in_pipeline)
    argv = [command, "panel.csv", "--format", "panel"] if command == "validate" else [command]
    code, _, err = run(capsys, *argv)
    assert_one_error(code, err, path)
    assert snapshot(in_pipeline) == before


# --------------------------------------------------------- 5. values that passed the checks, then crashed


def test_train_refuses_an_ensemble_of_zero_members(in_pipeline, capsys):
    params = tiny_params()
    params["train"]["ensemble_size"] = 0
    write_params(in_pipeline, params)
    before = snapshot(in_pipeline)
    code, _, err = run(capsys, "train")
    assert_one_error(code, err, "'train.ensemble_size' must be at least 1, got 0")
    assert snapshot(in_pipeline) == before


def test_validate_refuses_a_bad_date_format_directive(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "t.csv").write_text(f"{HEADER}\n{ROW.format(i=0)}\n")
    code, out, err = run(capsys, "validate", "t.csv", "--format", "transactions", "--date-format", "%Q")
    assert_one_error(code, err, "--date-format '%Q' is not a strptime date format", "bad directive")
    assert out == "" and sorted(os.listdir(tmp_path)) == ["t.csv"]


# -------------------------------------------------------------------------------- 6. the smaller ones


def test_empty_transaction_ids_are_quarantined_and_every_row_is_counted(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    rows = [
        ROW.format(i=0),
        ROW.format(i="").replace("T,", ",", 1),
        "  " + ROW.format(i="")[1:],
        ROW.format(i=3),
    ]
    (tmp_path / "t.csv").write_text("\n".join([HEADER, *rows]) + "\n")
    args = [
        "validate",
        "t.csv",
        "--format",
        "transactions",
        "--date-format",
        "%Y-%m-%d",
        "--quarantine",
        "q.csv",
    ]
    code, out, _ = run(capsys, *args)
    assert code == 1
    assert out.splitlines() == ["missing_transaction_id: 2", "rows: 4 in, 2 kept, 2 quarantined"]
    assert pd.read_csv(tmp_path / "q.csv")["reason"].tolist() == ["missing_transaction_id"] * 2


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        (f"{HEADER}\n{ROW.format(i=0)}\n".encode("utf-16"), "not UTF-8 text"),
        (f"{HEADER}\n{ROW.format(i=0)}\n".replace(",", ";").encode(), "';' found where ',' was expected"),
        (f"{HEADER.replace('Revenue', 'revenue ')}\n{ROW.format(i=0)}\n".encode(), "found 'revenue '"),
    ],
)
def test_csv_problems_name_their_likely_cause(tmp_path, monkeypatch, capsys, content, problem):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "t.csv").write_bytes(content)
    code, out, err = run(capsys, "validate", "t.csv", "--format", "transactions", "--date-format", "%Y-%m-%d")
    assert_one_error(code, err, problem)


def test_validate_with_every_value_given_needs_no_params_file(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "t.csv").write_text(
        f"{HEADER}\n{ROW.format(i=0)}\n{ROW.format(i=1).replace('2020', '1999')}\n"
    )
    code, out, _ = run(capsys, "validate", "t.csv", "--format", "transactions", "--date-format", "%Y-%m-%d")
    assert (code, out) == (1, "date_out_of_range: 1\nrows: 2 in, 1 kept, 1 quarantined\n")  # 2000..2100
    code, out, _ = run(
        capsys,
        "validate",
        "t.csv",
        "--format",
        "transactions",
        "--date-format",
        "%Y-%m-%d",
        "--min-year",
        "1990",
    )
    assert (code, out) == (0, "rows: 2 in, 2 kept, 0 quarantined\n")
    make_panel().to_csv(tmp_path / "p.csv", index=False)
    assert run(capsys, "validate", "p.csv", "--format", "panel")[:2] == (
        0,
        "rows: 162 in, 162 kept, 0 quarantined\n",
    )


def test_validate_without_params_or_format_says_how_to_fix_it(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "t.csv").write_text(f"{HEADER}\n{ROW.format(i=0)}\n")
    code, _, err = run(capsys, "validate", "t.csv", "--format", "transactions")
    assert_one_error(code, err, "no params.yaml", "--date-format", "run from the repository root")


@pytest.mark.parametrize("command", ["prepare", "train", "evaluate", "report"])
def test_a_stage_run_from_a_subdirectory_says_to_run_from_the_root(in_pipeline, monkeypatch, capsys, command):
    monkeypatch.chdir(in_pipeline / "reports")
    code, _, err = run(capsys, command)
    assert_one_error(
        code, err, "cannot read params file params.yaml", "run salesjax from the repository root"
    )


def test_an_interrupt_is_one_line_not_a_traceback(monkeypatch, capsys):
    def interrupted(args):
        raise KeyboardInterrupt

    monkeypatch.setitem(cli.COMMANDS, "experiment", cli.COMMANDS["experiment"]._replace(run=interrupted))
    code, out, err = run(capsys, "experiment", "default")
    assert code == 130 and out == ""
    assert err == "error: interrupted; `salesjax experiment` may have left partial outputs, rerun it\n"
