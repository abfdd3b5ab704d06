"""The runner end to end: results schema, saved outputs scored through the same code path, resume, failures."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
import typer

from op4ksr_bench.errors import ManifestError, UsageError
from op4ksr_bench.imageio import from_tensor, read_image, to_tensor, write_png
from op4ksr_bench.methods.base import Method, MethodCard
from op4ksr_bench.methods.interpolation import BicubicMethod
from op4ksr_bench.metrics.scoring import create_metrics, score_files
from op4ksr_bench.results import load_run, read_samples
from op4ksr_bench.run_commands import cli_run, parse_shard
from op4ksr_bench.runner import check_output, run_suite
from op4ksr_bench.seeds import image_seed


def run(method: str = "bicubic", suite: str = "tiny", **kwargs) -> None:
    arguments = {"data": None, "results": None, "metrics": None, "opts": [], "device": "cpu", "dtype": "float32",
                 "seed": 0, "limit": None, "shard": None}  # fmt: skip
    arguments.update(kwargs)
    cli_run(method=method, suite=suite, **arguments)


def run_folders(results: Path, suite: str = "tiny", slug: str = "bicubic") -> list[Path]:
    return sorted(path for path in (results / f"{suite}@v1" / slug).glob("run-*") if path.is_dir())


def test_bicubic_run_writes_a_valid_scored_run(bench_env):
    bench_env["build"]("tiny", count=3)
    run()
    (folder,) = run_folders(bench_env["results"])
    record, samples = load_run(folder)
    assert record["status"] == "complete" and record["counts"] == {"total": 3, "ok": 3, "failed": 0, "pending": 0}
    assert record["suite"]["name"] == "tiny" and len(record["suite"]["hash"]) == 64
    assert record["method"]["card"]["name"] == "bicubic" and record["method"]["options"]["a"] == -0.5
    assert record["environment"]["torch"] == torch.__version__ and record["environment"]["memory_kind"]
    assert set(record["metrics"]) == {"psnr", "ssim"} and record["summary"]["psnr"]["count"] == 3
    metrics, _ = create_metrics(["psnr", "ssim"], crop_border=4)
    data = bench_env["data"] / "tiny"
    for index, sample in enumerate(samples):
        assert sample["index"] == index and sample["status"] == "ok" and sample["reason"] is None
        assert sample["seconds"] > 0 and sample["peak_memory_bytes"] is not None and sample["timing"] == "measured"
        saved = folder / sample["output"]
        expected = from_tensor(BicubicMethod().upscale(to_tensor(read_image(data / "lr" / f"{sample['id']}.png"))))
        assert np.array_equal(read_image(saved), expected)
        assert sample["metrics"] == pytest.approx(score_files(metrics, saved, data / "hr" / f"{sample['id']}.png"))
    assert record["summary"]["psnr"]["mean"] == pytest.approx(np.mean([s["metrics"]["psnr"] for s in samples]))


def test_rerun_resumes_and_redoes_only_what_is_missing_or_altered(bench_env):
    bench_env["build"]("tiny", count=3)
    run()
    (folder,) = run_folders(bench_env["results"])
    first = read_samples(folder / "samples.jsonl")
    run()
    assert read_samples(folder / "samples.jsonl") == first  # nothing redone
    write_png(folder / "images" / "img001.png", np.zeros((48, 64, 3), np.uint8))  # an altered output
    run()
    lines = (folder / "samples.jsonl").read_text().splitlines()
    assert len(lines) == 3 and len({json.loads(line)["id"] for line in lines}) == 3
    redone = {row["id"]: row for row in read_samples(folder / "samples.jsonl")}
    assert redone["img001"]["output_sha256"] == first[1]["output_sha256"]
    assert redone["img001"]["seconds"] != first[1]["seconds"]
    assert redone["img000"] == first[0]
    record, _ = load_run(folder)
    assert len(record["sessions"]) == 3 and record["sessions"][1]["images"] == 0


def test_torn_tail_is_dropped_and_redone(bench_env):
    bench_env["build"]("tiny", count=2)
    run()
    (folder,) = run_folders(bench_env["results"])
    path = folder / "samples.jsonl"
    rows = path.read_text().splitlines()
    path.write_text(rows[0] + "\n" + rows[1][: len(rows[1]) // 2])  # as if killed while writing row 2
    run()
    lines = path.read_text().splitlines()
    assert len(lines) == 2 and all(json.loads(line)["status"] == "ok" for line in lines)


def test_options_limit_and_tiling_are_recorded_and_change_the_run(bench_env):
    bench_env["build"]("tiny", count=3)
    run(limit=2)
    run(opts=["tile=32", "overlap=8", "blend=gaussian"], limit=1)
    (plain,) = run_folders(bench_env["results"])
    (tiled,) = run_folders(bench_env["results"], slug="bicubic+tile32-8-gaussian")
    record, samples = load_run(tiled)
    assert len(samples) == 1 and record["selection"]["limit"] == 1
    assert record["method"]["options"]["tile_stride"] == 24 and record["method"]["periods"] == [24]
    assert record["method"]["user_options"] == {"tile": 32, "overlap": 8, "blend": "gaussian"}
    assert len(read_samples(plain / "samples.jsonl")) == 2
    run()  # the full run resumes the limited one
    assert [row["id"] for row in read_samples(plain / "samples.jsonl")] == ["img000", "img001", "img002"]


class Misbehaving(Method):
    """Bicubic, except for chosen images: wrong shape, NaN, out of range, a crash."""

    card = MethodCard(name="misbehaving", display_name="misbehaving", paper="", licence="Apache-2.0",
                      family="interpolation", steps=0)  # fmt: skip

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.bicubic = BicubicMethod()
        self.calls = 0

    def upscale_sample(self, image_id, lr):
        self.calls += 1
        out = self.bicubic.upscale(lr)
        if image_id == "img000":
            return out[..., :-4]
        if image_id == "img001":
            return out.masked_fill(out > 0.5, float("nan"))
        if image_id == "img002":
            return out * 1.5
        if image_id == "img003":
            raise RuntimeError("out of memory (simulated)")
        return out

    def upscale(self, lr):
        return self.bicubic.upscale(lr)


def test_every_failure_is_recorded_and_the_run_goes_on(bench_env):
    bench_env["build"]("tiny", count=5)
    from op4ksr_bench.data.manifest import BuiltSuite

    built = BuiltSuite.open(bench_env["data"], "tiny")
    outcome = run_suite(built, Misbehaving(), spec="misbehaving", user_options={}, metric_names=["psnr"],
                        results_root=bench_env["results"], device="cpu", dtype="float32", seed=0,
                        echo=lambda line: None)  # fmt: skip
    assert outcome.ok == 1 and outcome.failed == 4
    reasons = dict(outcome.failures)
    assert reasons["img000"] == "wrong shape (1, 3, 48, 60), expected (1, 3, 48, 64)"
    assert reasons["img001"].startswith("non-finite values:") and "NaN" in reasons["img001"]
    assert reasons["img002"].startswith("values outside [0, 1]")
    assert reasons["img003"] == "crash: RuntimeError: out of memory (simulated)"
    record, samples = load_run(outcome.folder)
    assert record["counts"]["failed"] == 4 and record["summary"]["psnr"]["count"] == 1
    assert all(s["output"] is None for s in samples if s["status"] == "failed")


def test_cli_exit_code_and_summary_on_failure(bench_env, cli, tmp_path):
    bench_env["build"]("tiny", count=2)
    outputs = tmp_path / "outputs"
    outputs.mkdir()
    write_png(outputs / "img000.png", np.zeros((48, 64, 3), np.uint8))  # img001 missing
    result = cli("run", "--method", f"folder:{outputs}", "--suite", "tiny", "--metrics", "psnr")
    assert result.returncode == 1, result.stderr
    assert "1 ok, 1 failed" in result.stdout and "no output for id 'img001'" in result.stdout
    (folder,) = run_folders(bench_env["results"], slug="folder-outputs")
    record, samples = load_run(folder)
    assert record["method"]["timing"] == "none" and samples[0]["seconds"] is None


def test_external_method_runs_through_the_runner(bench_env, tmp_path):
    import sys
    import textwrap

    bench_env["build"]("tiny", count=2)
    repo = tmp_path / "repo"
    repo.mkdir()
    (repo / "run.py").write_text(
        textwrap.dedent("""\
        import sys, pathlib
        from PIL import Image
        source, target = map(pathlib.Path, sys.argv[1:3])
        for path in sorted(source.glob("*.png")):
            image = Image.open(path)
            image.resize((image.width * 4, image.height * 4), Image.BICUBIC).save(target / path.name)
        """)
    )
    card = tmp_path / "pilbicubic.yaml"
    card.write_text(
        textwrap.dedent("""\
        name: pilbicubic
        display_name: Pillow bicubic (test command)
        repository: https://github.com/example/pilbicubic
        licence: HPND
        backbone: none
        family: interpolation
        steps: 1
        command: "{python} run.py {input_dir} {output_dir}"
        output: "{id}.png"
        options: {repo: null}
        """)
    )
    run(method=f"external:{card}", opts=[f"repo={repo}", f"python={sys.executable}"])
    (folder,) = run_folders(bench_env["results"], slug="external-pilbicubic")
    record, samples = load_run(folder)
    assert record["counts"]["ok"] == 2 and record["method"]["timing"] == "amortised"
    assert samples[0]["seconds"] == samples[1]["seconds"] > 0
    assert (folder / "work" / "command.log").is_file()


def test_check_output_contract():
    lr_shape = (1, 3, 4, 5)
    good = torch.rand(1, 3, 16, 20)
    assert check_output(good, lr_shape, 4) is None
    assert "not a tensor" in check_output(good.numpy(), lr_shape, 4)
    assert "float tensor" in check_output((good * 255).byte(), lr_shape, 4)
    inf = good.clone()
    inf[0, 0, 0, 0] = float("inf")
    assert (
        check_output(inf, lr_shape, 4)
        == "non-finite values: 0 NaN, 1 Inf of 960 values; first at channel 0, y 0, x 0 (inf)"
    )


def test_shard_parsing_and_seeds(monkeypatch):
    assert parse_shard("1/4") == (1, 4)
    assert parse_shard(None, {"RANK": "1", "WORLD_SIZE": "2"}) == (1, 2)
    assert parse_shard(None, {"WORLD_SIZE": "1"}) is None and parse_shard(None, {}) is None
    for bad in ("4/4", "x/2", "1", "-1/2"):
        with pytest.raises(UsageError):
            parse_shard(bad)
    assert image_seed(0, "a") == image_seed(0, "a") != image_seed(1, "a")


def test_suite_selection_errors(bench_env):
    with pytest.raises(ManifestError, match="no evaluation suite is built"):
        run(suite="all")
    bench_env["build"]("tiny", count=1)
    (bench_env["suites"] / "other.yaml").write_text((bench_env["suites"] / "tiny.yaml").read_text().replace(
        "name: tiny", "name: other"))  # fmt: skip
    with pytest.raises(ManifestError, match="not built"):
        run(suite="other")
    with pytest.raises(UsageError, match="unknown suite"):
        run(suite="nonexistent")
    run(suite="all")  # skips `other` with a warning, runs `tiny`
    assert run_folders(bench_env["results"])
    with pytest.raises(typer.Exit):  # the LR images as "outputs": the wrong shape for every image, exit code 1
        run(method="folder:" + str(bench_env["data"] / "tiny" / "lr"), suite="tiny")


def test_default_metrics_skip_missing_weights_but_explicit_ones_fail(bench_env):
    from op4ksr_bench.errors import WeightsMissingError

    bench_env["build"]("tiny", count=1, metrics=("psnr", "lpips-alex"))
    run()
    (folder,) = run_folders(bench_env["results"])
    record, samples = load_run(folder)
    assert set(record["metrics"]) == {"psnr"} and "lpips-alex" in record["skipped_metrics"]
    assert "alexnet" in record["skipped_metrics"]["lpips-alex"]
    with pytest.raises(WeightsMissingError, match="lpips-alex"):
        run(metrics="psnr,lpips-alex")
