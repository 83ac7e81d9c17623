"""Progress goes through the `salesjax` logger to stderr: info by default, -q warnings only, -v debug too."""

import logging

import numpy as np
import pytest

from salesjax.baselines import forecast_baselines
from salesjax.cli import main

INFO = "rows checked as panel"  # validate's info line
DEBUG = "validate: Contract("  # validate's debug line: the contract it checks against
SUMMARY = "rows: 2 in, 2 kept, 0 quarantined\n"


@pytest.fixture
def panel(tmp_path, monkeypatch):
    """A clean two-row panel in tmp_path, the working directory (no params.yaml there)."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "p.csv").write_text("month,store,category,revenue\n2020-01,1,Books,10\n2020-02,1,Books,12\n")
    return "p.csv"


def _run(capsys, *argv: str) -> tuple[int, str, str]:
    """Call `main` and return (exit code, stdout, stderr)."""
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_default_shows_info_lines_on_stderr_but_no_debug(panel, capsys):
    code, out, err = _run(capsys, "validate", panel, "--format", "panel")
    assert (code, out) == (0, SUMMARY)
    assert err == f"validate: {panel}: 2 rows checked as panel\n"


@pytest.mark.parametrize("where", ["before", "after"])
def test_quiet_suppresses_the_info_lines_not_the_result(panel, capsys, where):
    argv = ["validate", panel, "--format", "panel"]
    argv = ["-q", *argv] if where == "before" else [*argv, "--quiet"]
    assert _run(capsys, *argv) == (0, SUMMARY, "")


@pytest.mark.parametrize("flag", ["-v", "--verbose"])
def test_verbose_adds_the_debug_lines(panel, capsys, flag):
    code, out, err = _run(capsys, flag, "validate", panel, "--format", "panel")
    assert (code, out) == (0, SUMMARY)
    lines = err.splitlines()
    assert len(lines) == 2 and lines[0].startswith(DEBUG) and INFO in lines[1]


def test_quiet_keeps_errors_as_one_line(panel, capsys):
    code, out, err = _run(capsys, "-q", "validate", "absent.csv", "--format", "panel")
    assert (code, out) == (2, "") and err.startswith("error: ") and err.count("\n") == 1


def test_verbose_and_quiet_together_is_a_usage_error(panel, capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["-v", "validate", panel, "--format", "panel", "-q"])
    assert exit_.value.code == 2 and "exclude each other" in capsys.readouterr().err


def test_main_leaves_the_logger_as_it_found_it(panel, capsys):
    package = logging.getLogger("salesjax")
    before = (list(package.handlers), package.level, package.propagate)
    _run(capsys, "-v", "validate", panel, "--format", "panel")
    assert (list(package.handlers), package.level, package.propagate) == before


@pytest.mark.parametrize(("level", "shown"), [(logging.INFO, True), (logging.WARNING, False)])
def test_baselines_progress_bar_follows_the_log_level(caplog, capsys, level, shown):
    caplog.set_level(level, logger="salesjax")
    history = np.arange(1.0, 49.0).reshape(2, 24)
    forecast_baselines(history, np.ones_like(history, bool), 3, 12, (0.1, 0.5, 0.9))
    assert ("Forecast" in capsys.readouterr().err) == shown  # statsforecast's tqdm bar
