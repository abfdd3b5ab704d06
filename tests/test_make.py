"""The two make targets and the default test selection: `make demo` writes only gitignored folders, a plain
`pytest` leaves out slow, browser and GPU tests, and `make test` leaves out only GPU tests."""

from __future__ import annotations

import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def _recipe(target: str) -> list[list[str]]:
    """The commands `make -n TARGET` would run (prerequisites included), split into words."""
    assert shutil.which("make"), "make is needed (the README's two commands are make targets)"
    completed = subprocess.run(["make", "-n", "-B", target], cwd=REPO, capture_output=True, text=True, check=True)
    return [shlex.split(line) for line in completed.stdout.splitlines() if "op4ksr-bench" in line or "pytest" in line]


def test_make_demo_writes_only_gitignored_folders_and_never_the_published_leaderboard():
    commands = [words for words in _recipe("demo") if words[0].endswith("op4ksr-bench")]
    written = [words[words.index(flag) + 1] for words in commands for flag in ("--results", "--out") if flag in words]
    assert "results" in written and "site" in written
    for folder in written:
        assert not folder.startswith("leaderboard"), f"make demo writes into the published {folder}"
        ignored = subprocess.run(["git", "check-ignore", "-q", "--no-index", f"{folder}/x"], cwd=REPO)
        assert ignored.returncode == 0, f"make demo writes {folder}/, which .gitignore does not ignore"
    leaderboard = [words for words in commands if words[1] == "leaderboard"]
    runs = [words for words in commands if words[1] == "run"]
    assert leaderboard and all(words[words.index("--results") + 1] == "results" for words in runs + leaderboard)


def test_plain_pytest_deselects_slow_browser_and_gpu_and_make_test_only_gpu():
    (make_test,) = [words for words in _recipe("test") if "pytest" in words]
    marks = make_test[make_test.index("pytest") + 1 :]
    assert marks[marks.index("-m") + 1] == "not gpu"

    def collected(*args: str) -> set[str]:
        completed = subprocess.run(
            [sys.executable, "-m", "pytest", "--collect-only", "-q", "-p", "no:randomly", *args,
             "tests/test_package.py", "tests/report/test_report_browser.py"],
            cwd=REPO, capture_output=True, text=True, timeout=300,
        )  # fmt: skip
        return {line.split("::")[1] for line in completed.stdout.splitlines() if "::" in line}

    default = collected()
    everything_but_gpu = collected("-m", "not gpu")
    assert "test_wheel_installed_elsewhere_lists_and_runs" not in default
    assert not any(re.search("chromium", name) for name in default)
    assert "test_wheel_installed_elsewhere_lists_and_runs" in everything_but_gpu
    assert len(everything_but_gpu - default) >= 2  # the wheel test and the browser tests
