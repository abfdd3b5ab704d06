"""Resume after a real SIGKILL, shards merging to the single run, and two CPU processes under torchrun."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from op4ksr_bench.errors import UsageError
from op4ksr_bench.results import SAMPLE_TIMING_FIELDS, load_run
from op4ksr_bench.run_commands import cli_merge, cli_run


def run(**kwargs) -> None:
    arguments = {"method": "bicubic", "suite": "tiny", "data": None, "results": None, "metrics": "psnr,ssim",
                 "opts": [], "device": "cpu", "dtype": "float32", "seed": 0, "limit": None, "shard": None}  # fmt: skip
    arguments.update(kwargs)
    cli_run(**arguments)


def comparable(folder: Path) -> tuple[dict, list[dict], dict[str, bytes]]:
    """What must be equal between a merged and a single run: summary, counts, samples minus timing, images."""
    record, samples = load_run(folder)
    rows = [{k: v for k, v in sample.items() if k not in SAMPLE_TIMING_FIELDS} for sample in samples]
    images = {path.name: path.read_bytes() for path in sorted((folder / "images").glob("*.png"))}
    return {"summary": record["summary"], "counts": record["counts"], "suite": record["suite"]}, rows, images


def test_shards_merge_to_the_single_run(bench_env, tmp_path):
    bench_env["build"]("tiny", count=5)
    single_results = tmp_path / "single"
    run(results=single_results)
    (single,) = (single_results / "tiny@v1" / "bicubic").glob("run-*")
    run(shard="0/2")
    base = bench_env["results"] / "tiny@v1" / "bicubic"
    assert not (base / single.name).exists()  # shard 1 has not run: nothing merged yet
    run(shard="1/2")
    shard_folders = sorted(base.glob("run-*-shard*of2"))
    assert [json.loads((f / "run.json").read_text())["counts"]["total"] for f in shard_folders] == [3, 2]
    merged = base / single.name  # the last shard to finish merged into <run-id>
    assert comparable(merged) == comparable(single)
    record, _ = load_run(merged)
    assert record["shard"] is None and record["merged_from"] == [f.name for f in shard_folders]
    # The merge command gives the same result into any folder; it refuses to overwrite a run that is not a merge.
    cli_merge(runs=shard_folders, out=tmp_path / "again")
    assert comparable(tmp_path / "again") == comparable(single)
    with pytest.raises(UsageError, match="never overwritten"):
        cli_merge(runs=shard_folders, out=single)
    with pytest.raises(UsageError, match="missing"):
        cli_merge(runs=shard_folders[:1], out=tmp_path / "partial")


def test_killed_run_resumes_with_nothing_lost_and_no_duplicates(bench_env, tmp_path):
    bench_env["build"]("tiny", count=8, lr_size=(160, 120))
    command = [sys.executable, "-m", "op4ksr_bench.cli", "run", "--method", "bicubic", "--suite", "tiny",
               "--metrics", "psnr"]  # fmt: skip
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=dict(os.environ))
    base = bench_env["results"] / "tiny@v1" / "bicubic"
    deadline = time.monotonic() + 240
    rows_before = 0
    try:
        while time.monotonic() < deadline and process.poll() is None:
            samples = list(base.glob("run-*/samples.jsonl"))
            if samples and samples[0].read_text().count("\n") >= 2:
                process.send_signal(signal.SIGKILL)
                break
            time.sleep(0.05)
        process.wait(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == -signal.SIGKILL, "the run finished before it could be killed"
    (folder,) = base.glob("run-*")
    killed = [json.loads(line) for line in (folder / "samples.jsonl").read_text().splitlines() if line.endswith("}")]
    rows_before = len(killed)
    assert 2 <= rows_before < 8
    run(metrics="psnr")
    record, samples = load_run(folder)
    lines = (folder / "samples.jsonl").read_text().splitlines()
    assert len(lines) == 8 and len({json.loads(line)["id"] for line in lines}) == 8
    assert record["counts"] == {"total": 8, "ok": 8, "failed": 0, "pending": 0}
    kept = {row["id"]: row for row in samples}
    for row in killed:  # rows written before the kill are kept as they were, not recomputed
        assert kept[row["id"]] == row
    assert record["sessions"][-1]["images"] == 8 - rows_before


def test_torchrun_two_cpu_processes_shard_and_merge(bench_env, tmp_path):
    bench_env["build"]("tiny", count=5)
    single_results = tmp_path / "single"
    run(results=single_results)
    (single,) = (single_results / "tiny@v1" / "bicubic").glob("run-*")
    torchrun = str(Path(sys.executable).parent / "torchrun")
    command = [torchrun, "--standalone", "--nproc-per-node=2", "--no-python", sys.executable, "-m",
               "op4ksr_bench.cli", "run", "--method", "bicubic", "--suite", "tiny",
               "--metrics", "psnr,ssim"]  # fmt: skip
    result = subprocess.run(command, capture_output=True, text=True, timeout=600, env=dict(os.environ))
    assert result.returncode == 0, result.stderr[-2000:]
    base = bench_env["results"] / "tiny@v1" / "bicubic"
    assert len(list(base.glob("run-*-shard*of2"))) == 2
    assert comparable(base / single.name) == comparable(single)


def test_run_id_ignores_machine_local_paths(bench_env, tmp_path, rrdb_weights):
    """Shards on machines with different paths to the same weights file share one run id."""
    import shutil as files

    bench_env["build"]("tiny", count=2)
    first, second = tmp_path / "a" / "w.safetensors", tmp_path / "b" / "w.safetensors"
    for path in (first, second):
        path.parent.mkdir()
        files.copyfile(rrdb_weights, path)
    run(method=f"spandrel:{first}", shard="0/2", metrics="psnr")
    run(method=f"spandrel:{second}", shard="1/2", metrics="psnr")
    base = bench_env["results"] / "tiny@v1" / "spandrel-w.safetensors"
    assert len(list(base.glob("run-*-shard*of2"))) == 2
    merged = [path for path in base.glob("run-*") if "shard" not in path.name]
    assert len(merged) == 1 and load_run(merged[0])[0]["counts"]["ok"] == 2
