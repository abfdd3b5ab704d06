"""The Python API: listings, suites, metrics, evaluate (specs and callables) and load_results, checked against
the command line and the registries they wrap."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import torch

import op4ksr_bench as ob
from op4ksr_bench.errors import ImageError, ManifestError, UsageError
from op4ksr_bench.imageio import read_image
from op4ksr_bench.metrics import METRICS
from op4ksr_bench.metrics.scoring import create_metrics, score_images


def nearest(lr: np.ndarray) -> np.ndarray:
    return np.repeat(np.repeat(lr, 4, axis=0), 4, axis=1)


def test_the_package_exports_the_api_lazily():
    code = (
        "import sys, op4ksr_bench as ob; assert 'op4ksr_bench.api' not in sys.modules; "
        "names = ob.list_suites(), ob.list_metrics(), ob.list_methods(); "
        "print('torch' in sys.modules, 'pyiqa' in sys.modules, 'create_metric' in dir(ob))"
    )
    completed = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert completed.stdout.split() == ["False", "False", "True"]
    with pytest.raises(AttributeError, match="no attribute 'nothing'"):
        ob.nothing  # noqa: B018


def test_listings_match_the_registries_and_the_cli(bench_env, cli):
    bench_env["build"]("tiny")
    assert ob.list_suites() == ["tiny"]
    assert ob.list_metrics() == METRICS.names()
    methods = ob.list_methods()
    assert methods[:2] == ["bicubic", "lanczos"] and "external:supir" in methods
    listed = cli("ls", "methods").stdout
    assert all(name.removeprefix("external:") in listed for name in methods)


def test_load_suite_gives_the_built_images_and_manifest_records(bench_env):
    root = bench_env["build"]("tiny", count=3)
    bench_env["build"]("real", count=2, with_hr=False)
    suite = ob.load_suite("tiny")
    assert len(suite) == 3 and suite.ids == ["img000", "img001", "img002"] and suite.spec.scale == 4
    samples = list(suite)
    assert [sample.id for sample in samples] == suite.ids
    np.testing.assert_array_equal(samples[1].lr, read_image(root / "lr" / "img001.png"))
    np.testing.assert_array_equal(suite["img001"].hr, read_image(root / "hr" / "img001.png"))
    assert samples[0].lr.shape == (12, 16, 3) and samples[0].hr.shape == (48, 64, 3)
    assert samples[0].entry["lr_sha256"] and samples[0].entry["license"] == "CC0-1.0"
    real = ob.load_suite("real")
    assert all(sample.hr is None for sample in real)


def test_load_suite_errors_name_the_fix(bench_env):
    bench_env["build"]("tiny")
    with pytest.raises(UsageError, match="Did you mean 'tiny'"):
        ob.load_suite("tinny")
    (bench_env["suites"] / "other.yaml").write_text(
        (bench_env["suites"] / "tiny.yaml").read_text().replace("tiny", "other")
    )
    with pytest.raises(ManifestError, match="build-dataset --suite other"):
        ob.load_suite("other")
    with pytest.raises(UsageError, match="one suite name"):
        ob.load_suite("tiny,other")


def test_create_metric_on_arrays_and_tensors_equals_the_scoring_path(bench_env):
    bench_env["build"]("tiny")
    sample = ob.load_suite("tiny")[0]
    output = nearest(sample.lr)
    for name in ("psnr", "ssim", "pas"):
        metric = ob.create_metric(name, crop_border=4)
        reference, _ = create_metrics([name], crop_border=4)
        ref = sample.hr if metric.kind == "FR" else None
        expected = score_images(reference, output, ref)
        assert metric(output, ref) == expected
        tensor = torch.from_numpy(output).permute(2, 0, 1).float() / 255.0
        assert metric(tensor, ref) == expected
        assert metric(tensor[None], ref) == expected
        assert metric.settings() == reference[0].settings()
    assert ob.create_metric("psnr").higher_is_better is True


def test_create_metric_rejects_bad_input(bench_env):
    psnr = ob.create_metric("psnr")
    image = np.zeros((8, 8, 3), np.uint8)
    with pytest.raises(UsageError, match="full-reference metric: pass ref="):
        psnr(image)
    with pytest.raises(ImageError, match=r"values must lie in \[0, 1\]"):
        psnr(torch.full((3, 8, 8), 1.5), image)
    with pytest.raises(ImageError, match="expected uint8 HxWx3"):
        psnr(image.astype(np.float32), image)
    with pytest.raises(UsageError, match="Did you mean 'psnr'"):
        ob.create_metric("psnrr")
    with pytest.raises(UsageError, match="unknown option"):
        ob.create_metric("psnr", colour="y")


def test_evaluate_spec_shares_the_cli_run_and_resumes_it(bench_env, cli):
    bench_env["build"]("tiny", count=3)
    completed = cli("run", "--method", "bicubic", "--suite", "tiny", "--metrics", "psnr,ssim", "--limit", "2")
    assert completed.returncode == 0, completed.stderr
    (folder,) = (bench_env["results"] / "tiny@v1" / "bicubic").iterdir()
    before = (folder / "samples.jsonl").read_bytes()
    frame = ob.evaluate("bicubic", "tiny", metrics=["psnr", "ssim"], limit=2, progress=False)
    assert frame.attrs["runs"] == [str(folder)]
    assert (folder / "samples.jsonl").read_bytes() == before  # both images resumed, nothing recomputed
    run = json.loads((folder / "run.json").read_text())
    assert run["sessions"][-1]["images"] == 0 and run["status"] == "complete"
    rows = [json.loads(line) for line in before.decode().splitlines()]
    assert list(frame["id"]) == [row["id"] for row in rows]
    assert list(frame["psnr"]) == [row["metrics"]["psnr"] for row in rows]
    assert list(frame.columns[:11]) == [
        "suite", "suite_version", "method", "run_id", "id", "status", "reason", "seconds", "peak_memory_bytes",
        "output", "run_path",
    ]  # fmt: skip
    assert set(frame["suite"]) == {"tiny"} and set(frame["method"]) == {"bicubic"}
    assert set(frame["run_id"]) == {folder.name}
    # the third image: the API extends the same run, which the CLI then finds complete
    frame = ob.evaluate("bicubic", "tiny", metrics="psnr,ssim", progress=False)
    assert len(frame) == 3 and frame.attrs["runs"] == [str(folder)] and (frame["status"] == "ok").all()


def test_callables_numpy_and_torch_give_checked_scored_rows(bench_env):
    bench_env["build"]("tiny", count=2)
    frame = ob.evaluate(nearest, "tiny", metrics=["psnr"], progress=False)
    assert list(frame["status"]) == ["ok", "ok"] and list(frame["method"]) == [f"{__name__}.nearest"] * 2
    suite = ob.load_suite("tiny")
    psnr = ob.create_metric("psnr", crop_border=4)
    assert list(frame["psnr"]) == [psnr(nearest(sample.lr), sample.hr)["psnr"] for sample in suite]
    assert (frame["seconds"] >= 0).all()

    def torch_nearest(lr: torch.Tensor) -> torch.Tensor:
        assert lr.dtype == torch.float32 and lr.shape == (1, 3, 12, 16)
        return torch.nn.functional.interpolate(lr, scale_factor=4, mode="nearest")

    torch_frame = ob.evaluate(torch_nearest, "tiny", inputs="torch", name="nearest-torch", metrics=["psnr"])
    assert list(torch_frame["psnr"]) == list(frame["psnr"])
    saved = read_image(
        bench_env["results"] / "tiny@v1" / "nearest-torch" / torch_frame["run_id"][0] / "images" / "img000.png"
    )
    np.testing.assert_array_equal(saved, nearest(suite[0].lr))


def test_failing_callables_become_failed_rows_and_the_run_goes_on(bench_env):
    bench_env["build"]("tiny", count=2)

    def flaky(lr):
        if lr[0, 0, 0] == suite_first[0, 0, 0] and np.array_equal(lr, suite_first):
            raise RuntimeError("out of memory")
        return nearest(lr)

    suite_first = ob.load_suite("tiny")[0].lr
    frame = ob.evaluate(flaky, "tiny", name="flaky", metrics=["psnr"], progress=False)
    assert list(frame["status"]) == ["failed", "ok"]
    assert frame["reason"][0] == "crash: RuntimeError: out of memory" and frame["output"].isna()[0]
    frame = ob.evaluate(lambda lr: lr, "tiny", name="identity", metrics=["psnr"], progress=False)
    assert set(frame["status"]) == {"failed"} and frame["reason"][0].startswith("wrong shape (1, 3, 12, 16)")
    frame = ob.evaluate(lambda lr: nearest(lr).astype(np.float32), "tiny", name="floaty", metrics=["psnr"])
    assert "expected uint8 HxWx3" in frame["reason"][0]


def test_callable_run_identity_follows_name_options_and_source(bench_env):
    bench_env["build"]("tiny", count=1)

    def first(lr):
        return nearest(lr)

    def second(lr):
        return np.ascontiguousarray(nearest(lr))

    run = {}
    for key, function, options in (("a", first, {}), ("b", second, {}), ("c", first, {"checkpoint": "epoch2"})):
        frame = ob.evaluate(function, "tiny", name="mine", options=options, metrics=["psnr"], progress=False)
        run[key] = frame["run_id"][0]
    assert len(set(run.values())) == 3  # other source, other option: other runs
    assert ob.evaluate(first, "tiny", name="mine", metrics=["psnr"])["run_id"][0] == run["a"]
    with pytest.raises(UsageError, match="pass name="):
        ob.evaluate(lambda lr: lr, "tiny")
    with pytest.raises(UsageError, match="options are scalars"):
        ob.evaluate(first, "tiny", name="mine", options={"weights": [1, 2]})
    with pytest.raises(UsageError, match="for Python callables"):
        ob.evaluate("bicubic", "tiny", name="mine")


def test_python_spec_on_the_cli_and_the_api_share_one_run(bench_env, cli, tmp_path, monkeypatch):
    bench_env["build"]("tiny", count=2)
    module = tmp_path / "code" / "my_sr.py"
    module.parent.mkdir()
    module.write_text(
        textwrap.dedent("""
        import numpy as np


        def nearest(lr):
            return np.repeat(np.repeat(lr, 4, axis=0), 4, axis=1)
    """)
    )
    completed = cli(
        "run", "--method", f"python:{module}:nearest", "--suite", "tiny", "--metrics", "psnr", "--limit", "1"
    )
    assert completed.returncode == 0, completed.stderr
    (folder,) = (bench_env["results"] / "tiny@v1" / "my_sr.nearest").iterdir()
    completed = cli(
        "run", "--method", "python:my_sr:nearest", "--suite", "tiny", "--metrics", "psnr",
        env={"PYTHONPATH": f"{module.parent}:{__import__('os').environ.get('PYTHONPATH', '')}"},
    )  # fmt: skip
    assert completed.returncode == 0, completed.stderr
    assert "2 ok, 0 failed, 1 resumed" in completed.stdout
    monkeypatch.syspath_prepend(str(module.parent))
    from my_sr import nearest as imported

    frame = ob.evaluate(imported, "tiny", metrics=["psnr"], progress=False)
    assert frame.attrs["runs"] == [str(folder)] and len(frame) == 2
    assert json.loads((folder / "run.json").read_text())["sessions"][-1]["images"] == 0
    completed = cli("run", "--method", "python:my_sr:missing", "--suite", "tiny")
    assert completed.returncode == 2 and "cannot import 'my_sr'" in completed.stderr
    completed = cli("run", "--method", f"python:{module}:missing", "--suite", "tiny")
    assert completed.returncode == 2 and "has no attribute 'missing'" in completed.stderr


def test_load_results_reads_every_run_below_a_folder(bench_env):
    bench_env["build"]("tiny", count=2)
    bench_env["build"]("real", count=1, with_hr=False, metrics=("pas",))
    ob.evaluate("bicubic", ["tiny", "real"], progress=False, metrics=None)
    ob.evaluate(nearest, "tiny", metrics=["psnr"], progress=False)
    frame = ob.load_results(bench_env["results"])
    assert sorted(frame.groupby(["suite", "method"]).size().items()) == [
        (("real", "bicubic"), 1), (("tiny", "bicubic"), 2), (("tiny", f"{__name__}.nearest"), 2),
    ]  # fmt: skip
    assert frame.loc[frame["suite"] == "real", "psnr"].isna().all()
    one = ob.load_results(frame["run_path"][0])
    assert len(one) == len(frame[frame["run_path"] == frame["run_path"][0]])
    with pytest.raises(UsageError, match="not a folder"):
        ob.load_results(bench_env["results"] / "nothing")


def test_a_callable_of_one_scale_skips_other_suites_under_all(bench_env, caplog):
    bench_env["build"]("tiny", count=1)
    bench_env["build"]("half", count=1, scale=2)
    frame = ob.evaluate(nearest, "all", scale=4, metrics=["psnr"], progress=False)
    assert set(frame["suite"]) == {"tiny"} and (frame["status"] == "ok").all()
    assert "skipping half (x2)" in caplog.text
    with pytest.raises(UsageError, match=r"supports scale \(4,\), not x2"):
        ob.evaluate(nearest, "half", scale=4, metrics=["psnr"])
    with pytest.raises(UsageError, match="scale= are for Python callables"):
        ob.evaluate("bicubic", "tiny", scale=4)
