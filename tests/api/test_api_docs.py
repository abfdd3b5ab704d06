"""Every example of docs/api.md runs: the Python blocks in order as one script, then the shell lines, against a
tiny generated suite named 4ksr-syn (offline)."""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

DOC = Path(__file__).parents[2] / "docs" / "api.md"
BLOCK = re.compile(r"(?:<!-- file: (?P<file>[\w.]+) -->\n)?```(?P<lang>python|bash)\n(?P<code>.*?)```", re.DOTALL)


def test_every_example_in_docs_api_runs(bench_env, tmp_path):
    bench_env["build"]("4ksr-syn", count=3)
    work = tmp_path / "work"
    work.mkdir()
    env = {key: value for key, value in os.environ.items() if key != "OP4KSR_RESULTS"}  # the docs use ./results
    script, shell = [], []
    for match in BLOCK.finditer(DOC.read_text(encoding="utf-8")):
        if match["file"]:
            (work / match["file"]).write_text(match["code"])
        elif match["lang"] == "python":
            script.append(match["code"])
        else:
            shell += [line for line in match["code"].splitlines() if line.strip()]
    assert len(script) >= 6 and len(shell) == 2
    (work / "examples.py").write_text("\n".join(script))
    completed = subprocess.run(
        [sys.executable, "examples.py"], cwd=work, env=env, capture_output=True, text=True, timeout=600
    )
    assert completed.returncode == 0, completed.stderr[-3000:]
    assert "my-net" in completed.stdout and "failed" not in completed.stdout
    for line in shell:
        words = shlex.split(line)
        assignments = dict(word.split("=", 1) for word in words if re.match(r"^[A-Z_]+=", word))
        command = [word for word in words if word not in {f"{k}={v}" for k, v in assignments.items()}]
        assert command[0] == "op4ksr-bench"
        extra = {
            key: str((work / value).resolve()) + os.pathsep + env.get(key, "") for key, value in assignments.items()
        }
        completed = subprocess.run(
            [sys.executable, "-m", "op4ksr_bench", *command[1:]], cwd=work, env={**env, **extra},
            capture_output=True, text=True, timeout=300,
        )  # fmt: skip
        assert completed.returncode == 0, f"{line}\n{completed.stderr[-2000:]}"
    runs = sorted(path.parent.parent.name for path in (work / "results").rglob("run.json"))
    assert runs == ["bicubic", "bicubic+tile32-8-gaussian", "my-net", "my_sr.nearest", "nearest"], runs
