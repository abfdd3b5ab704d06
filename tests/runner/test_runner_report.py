"""What the runner writes for the report: intervals in run.json, retried failures, the process of a running run,
and ``score --suite`` giving the same numbers as ``run`` on the same files."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
from typer.testing import CliRunner

from op4ksr_bench.cli import app
from op4ksr_bench.methods.base import Method, MethodCard
from op4ksr_bench.methods.interpolation import BicubicMethod
from op4ksr_bench.report.runs import load_runs, process_state
from op4ksr_bench.results import load_run, process_record
from op4ksr_bench.run_commands import cli_run
from op4ksr_bench.runner import run_suite
from op4ksr_bench.stats import bootstrap_ci


def run(**kwargs) -> None:
    arguments = {"method": "bicubic", "suite": "tiny", "data": None, "results": None, "metrics": None, "opts": [],
                 "device": "cpu", "dtype": "float32", "seed": 0, "limit": None, "shard": None}  # fmt: skip
    arguments.update(kwargs)
    cli_run(**arguments)


class FailsOnce(Method):
    """Bicubic that returns out-of-range values for ``img001`` while ``broken`` is set."""

    card = MethodCard(name="fails-once", display_name="fails once", paper="", licence="Apache-2.0",
                      family="interpolation", steps=0)  # fmt: skip

    def __init__(self, broken: bool, **kwargs):
        super().__init__(**kwargs)
        self.bicubic = BicubicMethod()
        self.broken = broken

    def upscale_sample(self, image_id, lr):
        out = self.bicubic.upscale(lr)
        return out + 2.0 if self.broken and image_id == "img001" else out

    def upscale(self, lr):
        return self.bicubic.upscale(lr)


def test_a_rerun_retries_failed_images(bench_env):
    bench_env["build"]("tiny", count=3)
    from op4ksr_bench.data.manifest import BuiltSuite

    built = BuiltSuite.open(bench_env["data"], "tiny")
    options = {"spec": "fails-once", "user_options": {}, "metric_names": ["psnr"], "results_root": bench_env["results"],
               "device": "cpu", "dtype": "float32", "seed": 0, "echo": lambda line: None}  # fmt: skip
    first = run_suite(built, FailsOnce(broken=True), **options)
    assert first.failed == 1 and first.failures[0][0] == "img001"
    assert "above 1 (max " in first.failures[0][1] and " at channel " in first.failures[0][1]
    second = run_suite(built, FailsOnce(broken=False), **options)
    assert second.folder == first.folder and second.resumed == 2 and second.failed == 0 and second.ok == 3
    record, samples = load_run(second.folder)
    assert record["status"] == "complete" and all(sample["status"] == "ok" for sample in samples)
    assert record["summary"]["psnr"]["ci95"] == bootstrap_ci([sample["metrics"]["psnr"] for sample in samples])


def test_running_runs_record_their_process_and_a_dead_one_is_interrupted(bench_env):
    bench_env["build"]("tiny", count=2)
    run()
    (folder,) = (bench_env["results"] / "tiny@v1" / "bicubic").glob("run-*")
    record = json.loads((folder / "run.json").read_text())
    assert record["process"]["pid"] > 0 and record["process"]["host"]
    assert load_runs(bench_env["results"])[0][0].status == "complete"

    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    dead = {**process_record(), "pid": int(gone.stdout)}
    for process, expected in ((process_record(), "running"), (dead, "interrupted"), (None, "interrupted")):
        record.update(status="running", process=process)
        (folder / "run.json").write_text(json.dumps(record))
        assert load_runs(bench_env["results"])[0][0].status.startswith(expected), process
    assert process_state({**process_record(), "host": "elsewhere.invalid"}) == "elsewhere"
    record.update(process={**process_record(), "host": "elsewhere.invalid"})
    (folder / "run.json").write_text(json.dumps(record))
    assert load_runs(bench_env["results"])[0][0].status.startswith("running: recorded on another machine")
    assert process_state({**process_record(), "start": "0"}) == "gone"  # a reused pid


@pytest.mark.parametrize("use_suite", [True, False])
def test_score_with_the_suite_conventions_equals_run(bench_env, use_suite):
    bench_env["build"]("tiny", count=3, metrics=("psnr", "ssim", "psnr-y"))
    run()
    (folder,) = (bench_env["results"] / "tiny@v1" / "bicubic").glob("run-*")
    _, samples = load_run(folder)
    if use_suite:
        arguments = ["--suite", "tiny", "--data", str(bench_env["data"])]
    else:  # the same by hand: the suite's references, crop border and metrics
        arguments = ["--ref", str(bench_env["data"] / "tiny" / "hr"), "--crop-border", "4", "--metrics",
                     "psnr,ssim,psnr-y"]  # fmt: skip
    result = CliRunner().invoke(app, ["score", "--pred", str(folder / "images"), *arguments, "--format", "json"])
    assert result.exit_code == 0, result.output
    document = json.loads(result.stdout)
    scored = {row["id"]: row for row in document["per_image"]}
    assert len(scored) == 3
    for sample in samples:
        for name in ("psnr", "ssim", "psnr-y"):
            assert scored[sample["id"]][name] == sample["metrics"][name], (sample["id"], name)
    if use_suite:
        assert document["settings"]["suite"]["name"] == "tiny" and document["settings"]["crop_border"] == 4
    plain = CliRunner().invoke(
        app, ["score", "--pred", str(folder / "images"), "--ref", str(bench_env["data"] / "tiny" / "hr"),
              "--metrics", "psnr", "--format", "json"],
    )  # fmt: skip
    assert json.loads(plain.stdout)["per_image"][0]["psnr"] != samples[0]["metrics"]["psnr"]  # no crop differs


def test_score_suite_flags_predictions_that_are_not_suite_images(bench_env, tmp_path):
    bench_env["build"]("tiny", count=2)
    run()
    (folder,) = (bench_env["results"] / "tiny@v1" / "bicubic").glob("run-*")
    (folder / "images" / "img001.png").rename(folder / "images" / "stray.png")
    result = CliRunner().invoke(app, ["score", "--pred", str(folder / "images"), "--suite", "tiny", "--format",
                                      "json"])  # fmt: skip
    assert result.exit_code == 1
    assert "failed stray: not an image of the suite" in result.stderr
    assert "1 of 2 suite images have no prediction" in result.stderr
    document = json.loads(result.stdout)
    assert document["settings"]["suite_images_without_prediction"] == ["img001"] and document["scored"] == 1


def test_score_suite_without_ground_truth_refuses_fr_metrics_and_defaults_to_nr(bench_env, tmp_path):
    bench_env["build"]("real", count=2, metrics=("psnr", "pas"), with_hr=False)
    pred = tmp_path / "pred"
    from op4ksr_bench.imageio import write_png

    for index in range(2):
        write_png(pred / f"img{index:03d}.png", (np.arange(64 * 48 * 3).reshape(48, 64, 3) % 251).astype(np.uint8))
    refused = CliRunner().invoke(app, ["score", "--pred", str(pred), "--suite", "real", "--metrics", "psnr"])
    assert refused.exit_code != 0 and "suite real has no ground truth" in str(refused.exception)
    result = CliRunner().invoke(app, ["score", "--pred", str(pred), "--suite", "real", "--format", "json"])
    assert result.exit_code == 0, result.output
    document = json.loads(result.stdout)
    assert [record["name"] for record in document["settings"]["metrics"]] == ["pas"] and document["scored"] == 2
