"""`salesjax --version` prints the installed package's version."""

import tomllib

import pytest
from conftest import ROOT

from salesjax.cli import main


def test_version_prints_the_package_version_and_exits_0(capsys):
    with pytest.raises(SystemExit) as info:
        main(["--version"])
    assert info.value.code == 0
    version = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
    assert capsys.readouterr().out == f"salesjax {version}\n"
