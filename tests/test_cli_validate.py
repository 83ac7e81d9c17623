"""`salesjax validate`: exit codes, printed counts, the quarantine file, one-line errors."""

import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from salesjax.cli import main
from salesjax.data.schema import TRANSACTION_COLUMNS

PARAMS = Path(__file__).parents[1] / "params.yaml"
HEADER = ",".join(TRANSACTION_COLUMNS)
GOOD = [
    "T1,2020-01-05,Books,P1,Novel,30,F,1,2,1.5,3.0",
    "T2,2020-02-05,Toys,P2,Ball,41,M,2,1,4.0,4.0",
]
BAD = [
    "T3,05-01-20,Books,P1,Novel,30,F,1,2,1.5,3.0",  # bad_date
    "T4,2020-03-05,Books,P1,Novel,30,F,1,0,1.5,0",  # bad_quantity
    "T5,2020-03-05,Books,P1,Novel,30,F,1,x,1.5,3.0",  # bad_quantity
    "T1,2020-04-05,Books,P1,Novel,30,F,1,2,1.5,3.0",  # duplicate_transaction
]


@pytest.fixture
def params(tmp_path) -> Path:
    """A copy of the repository's params.yaml."""
    return Path(shutil.copy(PARAMS, tmp_path / "params.yaml"))


def csv(path: Path, *lines: str) -> Path:
    """Write a CSV file from its lines and return its path."""
    path.write_text("\n".join(lines) + "\n")
    return path


def run(capsys, *argv) -> tuple[int, str, str]:
    """Call `main` and return (exit code, stdout, stderr)."""
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    assert "Traceback" not in out + err
    return code, out, err


def test_clean_file_exits_0_with_the_summary(tmp_path, params, capsys):
    path = csv(tmp_path / "t.csv", HEADER, *GOOD)
    code, out, err = run(capsys, "validate", path, "--params", params)
    assert (code, out) == (0, "rows: 2 in, 2 kept, 0 quarantined\n")
    assert err == f"validate: {path}: 2 rows checked as transactions\n"  # progress: stderr, not the result


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_bad_rows_exit_1_print_counts_and_write_quarantine(tmp_path, params, capsys, suffix):
    path = csv(tmp_path / "t.csv", HEADER, *GOOD, *BAD)
    out_path = tmp_path / "out" / f"quarantine{suffix}"
    code, out, err = run(capsys, "validate", path, "--params", params, "--quarantine", out_path)
    assert code == 1 and err == f"validate: {path}: 6 rows checked as transactions\n"
    assert out.splitlines() == [
        "bad_date: 1",
        "bad_quantity: 2",
        "duplicate_transaction: 1",
        "rows: 6 in, 2 kept, 4 quarantined",
    ]
    read = pd.read_csv if suffix == ".csv" else pd.read_parquet
    quarantine = read(out_path)
    assert quarantine["reason"].tolist() == [
        "bad_date",
        "bad_quantity",
        "bad_quantity",
        "duplicate_transaction",
    ]
    assert quarantine["row"].tolist() == [2, 3, 4, 5]


def test_date_format_flag_overrides_params(tmp_path, params, capsys):
    path = csv(tmp_path / "t.csv", HEADER, BAD[0], GOOD[0].replace("2020-01-05", "13-01-20"))
    code, out, _ = run(capsys, "validate", path, "--params", params)
    assert (code, out) == (1, "bad_date: 2\nrows: 2 in, 0 kept, 2 quarantined\n")
    code, out, _ = run(capsys, "validate", path, "--params", params, "--date-format", "%d-%m-%y")
    assert (code, out) == (0, "rows: 2 in, 2 kept, 0 quarantined\n")


def test_panel_format(tmp_path, params, capsys):
    path = csv(
        tmp_path / "p.csv",
        "month,store,category,revenue",
        "2020-01,1,Books,10",
        "2020-1-5,1,Books,3",
        "2020-02,1,Books,-1",
    )
    code, out, _ = run(capsys, "validate", path, "--format", "panel", "--params", params)
    assert code == 1
    assert out.splitlines() == [
        "bad_month: 1",
        "bad_revenue: 1",
        "rows: 3 in, 1 kept, 2 quarantined",
    ]


def test_missing_column_exits_2_naming_it_on_one_stderr_line(tmp_path, params, capsys):
    header = HEADER.removesuffix(",Revenue")
    path = csv(tmp_path / "t.csv", header, *(line.rsplit(",", 1)[0] for line in GOOD))
    code, out, err = run(capsys, "validate", path, "--params", params)
    assert (code, out) == (2, "")
    assert err == "error: missing required column 'Revenue'\n"


@pytest.mark.parametrize(
    ("name", "content", "problem"),
    [
        ("absent.csv", None, "not found"),
        ("t.json", "{}", "not CSV or Parquet"),
        ("t.parquet", "garbage", "not valid Parquet"),
        ("t.csv", HEADER, "no data rows"),
    ],
)
def test_file_level_problems_exit_2_with_one_error_line(tmp_path, params, capsys, name, content, problem):
    path = tmp_path / name
    if content is not None:
        path.write_text(content)
    code, out, err = run(capsys, "validate", path, "--params", params)
    assert (code, out) == (2, "")
    assert err.startswith("error: ") and problem in err and err.count("\n") == 1


def test_missing_params_file_exits_2(tmp_path, capsys):
    path = csv(tmp_path / "t.csv", HEADER, *GOOD)
    code, _, err = run(capsys, "validate", path, "--params", tmp_path / "nope.yaml")
    assert code == 2 and err.startswith("error: cannot read params file")


def test_the_module_exits_with_mains_code(tmp_path, params):
    path = csv(tmp_path / "t.csv", HEADER, *GOOD, *BAD)
    argv = [sys.executable, "-m", "salesjax.cli", "validate", str(path), "--params", str(params)]
    done = subprocess.run(argv, capture_output=True, text=True, check=False)
    assert done.returncode == 1 and "rows: 6 in, 2 kept, 4 quarantined" in done.stdout
    assert done.stderr == f"validate: {path}: 6 rows checked as transactions\n"


def test_validate_loads_neither_jax_nor_statsforecast(tmp_path, params):
    path = csv(tmp_path / "t.csv", HEADER, *GOOD)
    program = (
        "import sys; from salesjax.cli import main; "
        f"code = main(['validate', {str(path)!r}, '--params', {str(params)!r}]); "
        "print(code, [m for m in ('jax', 'statsforecast', 'flax') if m in sys.modules])"
    )
    done = subprocess.run([sys.executable, "-c", program], capture_output=True, text=True, check=True)
    assert done.stdout.splitlines()[-1] == "0 []"
