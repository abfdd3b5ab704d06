"""The command line: help for every command, version, exit codes."""

from __future__ import annotations

import subprocess
import sys

import pytest
from typer.testing import CliRunner

from op4ksr_bench import __version__
from op4ksr_bench.cli import app

COMMANDS = [
    [],
    ["ls"],
    ["ls", "suites"],
    ["ls", "metrics"],
    ["ls", "methods"],
    ["build-dataset"],
    ["validate"],
    ["export"],
    ["score"],
    ["weights"],
    ["weights", "list"],
    ["weights", "verify"],
    ["weights", "fetch"],
    ["weights", "import"],
    ["run"],
    ["merge"],
    ["leaderboard"],
]


@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: " ".join(c) or "root")
def test_every_command_has_help(command):
    result = CliRunner().invoke(app, [*command, "--help"])
    assert result.exit_code == 0, result.output
    assert "Usage" in result.output


def test_version():
    result = CliRunner().invoke(app, ["--version"])
    assert result.exit_code == 0
    assert result.output.strip() == f"op4ksr-bench {__version__}"


def test_usage_error_exits_2():
    completed = subprocess.run(
        [sys.executable, "-m", "op4ksr_bench.cli", "no-such-command"], capture_output=True, text=True
    )
    assert completed.returncode == 2


def test_help_does_not_import_torch():
    code = "import sys; from op4ksr_bench.cli import app; print('torch' in sys.modules)"
    completed = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert completed.stdout.strip() == "False"
