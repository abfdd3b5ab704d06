"""Content-addressed run identity, --fresh, --ids, FR metrics without ground truth, and the heartbeat."""

from __future__ import annotations

import json
import shutil
import sys
import threading
from pathlib import Path

import numpy as np
import pytest

from op4ksr_bench.data.manifest import BuiltSuite
from op4ksr_bench.errors import UsageError
from op4ksr_bench.identity import run_identity
from op4ksr_bench.imageio import read_image, write_png
from op4ksr_bench.methods.base import Method, MethodCard
from op4ksr_bench.methods.factory import create_method
from op4ksr_bench.results import load_run
from op4ksr_bench.run_commands import cli_run
from op4ksr_bench.runner import Heartbeat, run_suite


def run(method: str = "bicubic", suite: str = "tiny", **kwargs) -> None:
    arguments = {"data": None, "results": None, "metrics": None, "opts": [], "device": "cpu", "dtype": "float32",
                 "seed": 0, "limit": None, "shard": None}  # fmt: skip
    arguments.update(kwargs)
    cli_run(method=method, suite=suite, **arguments)


def runs(results: Path, slug: str, suite: str = "tiny") -> list[Path]:
    return sorted(path for path in (results / f"{suite}@v1" / slug).glob("run-*") if path.is_dir())


def bicubic_outputs(data: Path, folder: Path) -> Path:
    """Write bicubic outputs of every LR image of the built suite at ``data`` into ``folder``."""
    from op4ksr_bench.imageio import from_tensor, to_tensor
    from op4ksr_bench.methods.interpolation import BicubicMethod

    folder.mkdir(parents=True, exist_ok=True)
    for lr in sorted((data / "lr").glob("*.png")):
        write_png(folder / lr.name, from_tensor(BicubicMethod().upscale(to_tensor(read_image(lr)))))
    return folder


def test_changed_folder_outputs_start_a_new_run_and_warn(bench_env, capsys):
    data = bench_env["build"]("tiny", count=2)
    outputs = bicubic_outputs(data, bench_env["results"].parent / "mysr")
    run(f"folder:{outputs}")
    (first,) = runs(bench_env["results"], "folder-mysr")
    first_psnr = load_run(first)[0]["summary"]["psnr"]["mean"]
    run(f"folder:{outputs}")  # unchanged: resumes the same run
    assert runs(bench_env["results"], "folder-mysr") == [first]
    capsys.readouterr()

    image = read_image(outputs / "img000.png")
    write_png(outputs / "img000.png", (255 - image).astype(np.uint8))  # replace one output
    run(f"folder:{outputs}")
    folders = runs(bench_env["results"], "folder-mysr")
    assert len(folders) == 2
    (second,) = [folder for folder in folders if folder != first]
    record, samples = load_run(second)
    assert record["counts"]["ok"] == 2 and record["summary"]["psnr"]["mean"] < first_psnr
    assert record["identity"]["content"]["outputs"] != load_run(first)[0]["identity"]["content"]["outputs"]
    assert "path" not in record["identity"]["options"]  # the content identifies the folder, not its path
    err = capsys.readouterr().err
    assert f"{first}" in err and "different inputs (outputs changed)" in err


def test_an_older_run_without_a_recorded_identity_is_named(bench_env, capsys):
    data = bench_env["build"]("tiny", count=1)
    outputs = bicubic_outputs(data, bench_env["results"].parent / "mysr")
    run(f"folder:{outputs}")
    (first,) = runs(bench_env["results"], "folder-mysr")
    record = json.loads((first / "run.json").read_text())
    del record["identity"]  # as written before run identities were stored
    (first / "run.json").write_text(json.dumps(record))
    renamed = first.parent / "run-000000000000"
    first.rename(renamed)
    capsys.readouterr()
    run(f"folder:{outputs}")
    assert f"{renamed} ran folder:{outputs} with the same settings before its inputs were hashed" in (
        capsys.readouterr().err
    )


def test_folder_identity_does_not_depend_on_the_folder_path(bench_env, tmp_path):
    data = bench_env["build"]("tiny", count=2)
    built = BuiltSuite.open(bench_env["data"], "tiny")
    one = bicubic_outputs(data, tmp_path / "a" / "mysr")
    two = tmp_path / "b" / "mysr"
    shutil.copytree(one, two)
    identities = [
        run_identity(suite_hash=built.hash, method=create_method(f"folder:{folder}"), metric_records={}, device="cpu",
                     seed=0)
        for folder in (one, two)
    ]  # fmt: skip
    assert identities[0] == identities[1]
    (two / "card.yaml").write_text("display_name: MySR\n")
    changed = run_identity(
        suite_hash=built.hash, method=create_method(f"folder:{two}"), metric_records={}, device="cpu", seed=0
    )
    assert changed["content"]["outputs"] != identities[0]["content"]["outputs"]


def test_methods_reading_no_files_keep_their_identity(bench_env):
    bench_env["build"]("tiny", count=1)
    built = BuiltSuite.open(bench_env["data"], "tiny")
    identity = run_identity(suite_hash=built.hash, method=create_method("bicubic"), metric_records={}, device="cpu",
                            seed=0)  # fmt: skip
    assert "content" not in identity
    assert set(identity) == {"suite_hash", "method", "options", "device_type", "metrics", "seed", "package_version"}


def test_changed_spandrel_weights_start_a_new_run(bench_env, rrdb_weights):
    bench_env["build"]("tiny", count=1, lr_size=(8, 8))
    run(f"spandrel:{rrdb_weights}", metrics="psnr")
    from safetensors.numpy import load_file, save_file

    state = load_file(rrdb_weights)
    state = {key: value * 0.5 if key.endswith("weight") else value for key, value in state.items()}
    save_file(state, rrdb_weights)  # retrained into the same file
    run(f"spandrel:{rrdb_weights}", metrics="psnr")
    assert len(runs(bench_env["results"], f"spandrel-{rrdb_weights.name}")) == 2


@pytest.mark.slow
def test_changed_op4ksr_weights_start_a_new_run_and_the_shipped_checkpoint_is_identified_by_content(
    bench_env, tmp_path
):
    from op4ksr_bench.methods.op4ksr import shipped_checkpoint

    bench_env["build"]("tiny", count=1, lr_size=(8, 8))
    built = BuiltSuite.open(bench_env["data"], "tiny")
    copy = tmp_path / "elsewhere" / "nano"
    shutil.copytree(shipped_checkpoint(), copy)

    def identity(weights: Path | None) -> dict:
        options = {"weights": str(weights)} if weights else {}
        method = create_method("op4ksr", options=options)
        return run_identity(suite_hash=built.hash, method=method, metric_records={}, device="cpu", seed=0)

    shipped = identity(None)
    assert shipped == identity(copy)  # same bytes elsewhere: same identity (no absolute path in it)
    assert "weights" not in shipped["options"] and len(shipped["content"]["weights"]) == 64
    (copy / "README.md").write_text("notes only: the model does not read this file\n")
    assert identity(copy) == shipped
    with open(copy / "prompt_embeddings.safetensors", "r+b") as handle:  # "retrained": one byte of a tensor
        handle.seek(-1, 2)
        last = handle.read(1)
        handle.seek(-1, 2)
        handle.write(bytes([last[0] ^ 1]))
    assert identity(copy)["content"] != shipped["content"]
    run("op4ksr", metrics="psnr", opts=[f"weights={copy}"])
    run("op4ksr", metrics="psnr")
    assert len(runs(bench_env["results"], "op4ksr")) == 2


def test_fresh_starts_the_run_over(bench_env, capsys):
    bench_env["build"]("tiny", count=2)
    run()
    (folder,) = runs(bench_env["results"], "bicubic")
    stray = folder / "images" / "stray.png"
    stray.write_bytes(b"not from this run")
    run()
    assert "2 resumed" in capsys.readouterr().out
    run(fresh=True)
    out = capsys.readouterr()
    assert "2 ok, 0 failed, 0 resumed" in out.out and "--fresh" in out.err
    assert not stray.exists() and runs(bench_env["results"], "bicubic") == [folder]
    assert len(load_run(folder)[0]["sessions"]) == 1


def test_ids_pick_images_by_id_and_glob(bench_env):
    bench_env["build"]("tiny", count=5)
    run(ids="img001,img003")
    (folder,) = runs(bench_env["results"], "bicubic")
    record, samples = load_run(folder)
    assert [sample["id"] for sample in samples] == ["img001", "img003"]
    assert record["selection"]["ids"] == ["img001", "img003"] and record["counts"]["total"] == 2
    assert [sample["index"] for sample in samples] == [1, 3]  # manifest indices, not positions in the selection
    run(ids="img00[0-2],img004")
    record, samples = load_run(folder)
    assert sorted(sample["id"] for sample in samples) == ["img000", "img001", "img002", "img003", "img004"]
    assert record["counts"] == {"total": 4, "ok": 4, "failed": 0, "pending": 0}
    with pytest.raises(UsageError, match=r"'nope\*' matches no image of tiny; ids are: img000, img001"):
        run(ids="img001,nope*")
    with pytest.raises(UsageError, match="names no image id"):
        run(ids=" , ")


def test_fr_metric_on_a_suite_without_ground_truth(bench_env, capsys):
    bench_env["build"]("real", count=2, lr_size=(20, 20), metrics=("niqe", "glcm"), with_hr=False)
    with pytest.raises(UsageError, match="full-reference metrics need ground truth and suite real has none"):
        run(suite="real", metrics="psnr,ssim")
    run(suite="real", metrics="psnr,glcm")
    (folder,) = runs(bench_env["results"], "bicubic", suite="real")
    record, samples = load_run(folder)
    assert record["skipped_metrics"] == {"psnr": "no ground truth"}
    assert set(record["metrics"]) == {"glcm"}
    assert all(set(sample["metrics"]) == {"glcm"} for sample in samples)
    assert "skipping psnr on real: no ground truth" in capsys.readouterr().err
    bench_env["build"]("tiny", count=1)
    run(suite="all", metrics="psnr")  # every suite: the one without ground truth is skipped, the other runs
    assert "skipping real: it has no ground truth for psnr" in capsys.readouterr().err
    assert len(runs(bench_env["results"], "bicubic")) == 1


class _Waits(Method):
    """Returns only once the runner's heartbeat has printed a line (or fails after a minute)."""

    card = MethodCard(name="waits", display_name="waits", paper="", licence="MIT", family="interpolation", steps=0)

    def __init__(self, beat: threading.Event) -> None:
        super().__init__()
        self.beat = beat
        self.progress = (2, 6)

    def upscale(self, lr):
        import torch

        if not self.beat.wait(60):
            raise RuntimeError("no heartbeat within a minute")
        return torch.nn.functional.interpolate(lr, scale_factor=4, mode="nearest")


def test_heartbeat_lines_during_a_long_inference(bench_env):
    bench_env["build"]("tiny", count=1)
    lines: list[str] = []
    beat = threading.Event()

    def echo(line: str) -> None:
        lines.append(line)
        if "still running" in line:
            beat.set()

    built = BuiltSuite.open(bench_env["data"], "tiny")
    outcome = run_suite(
        built, _Waits(beat), spec="waits", user_options={}, metric_names=["psnr"], results_root=bench_env["results"],
        device="cpu", dtype="float32", seed=0, echo=echo, heartbeat_seconds=0.01,
    )  # fmt: skip
    assert outcome.ok == 1
    beats = [line for line in lines if "still running" in line]
    assert beats[0].startswith("[tiny] 1/1 img000: still running after 0s (tile 3 of 6)")


def test_heartbeat_reports_tiles_of_the_tiling_engine():
    import torch

    from op4ksr_bench.runner import method_progress

    method = create_method("bicubic", options={"tile": 16, "overlap": 0})
    seen: list[str | None] = []
    inner = method.inner.upscale

    def spy(crop):
        seen.append(method_progress(method))
        return inner(crop)

    method.inner.upscale = spy
    method.upscale(torch.rand(1, 3, 8, 8))
    assert seen == ["tile 1 of 4", "tile 2 of 4", "tile 3 of 4", "tile 4 of 4"]
    assert method_progress(method) is None


def test_heartbeat_stops_with_its_block():
    lines: list[str] = []
    with Heartbeat(lines.append, "x", interval=3600):
        pass
    assert lines == []


def test_run_json_records_the_identity(bench_env):
    bench_env["build"]("tiny", count=1)
    run()
    (folder,) = runs(bench_env["results"], "bicubic")
    record = json.loads((folder / "run.json").read_text())
    from op4ksr_bench.identity import run_id

    assert run_id(record["identity"]) == record["run_id"] == folder.name


SCRIPT = """\
import argparse, pathlib
from PIL import Image
parser = argparse.ArgumentParser()
parser.add_argument("--input")
parser.add_argument("--output")
parser.add_argument("--resample", type=int)
args = parser.parse_args()
for path in sorted(pathlib.Path(args.input).iterdir()):
    image = Image.open(path)
    image.resize((image.width * 4, image.height * 4), args.resample).save(pathlib.Path(args.output) / path.name)
"""


def test_external_card_without_a_repository_and_its_script_in_the_identity(bench_env, tmp_path, capsys):
    bench_env["build"]("tiny", count=2)
    script = tmp_path / "upscale.py"
    script.write_text(SCRIPT.replace("args.resample", "0 if args.resample is None else args.resample"))
    card = tmp_path / "pil.yaml"
    card.write_text(
        "name: pil\ndisplay_name: PIL resize\nrepository: https://example.org/pil\nlicence: MIT-CMU\nbackbone: none\n"
        "family: interpolation\nsteps: 0\noutput: '{id}.png'\noptions: {script: null}\n"
        "command: '{python} {script} --input {input_dir} --output {output_dir} --resample 0'\n"
    )
    method = create_method(f"external:{card}", options={"script": str(script)})  # no --opt repo= needed
    assert Path(method.values["python"]).is_absolute()  # {python}: the interpreter on PATH, resolved and recorded
    run(f"external:{card}", opts=[f"script={script}", f"python={sys.executable}"], metrics="psnr")
    (first,) = runs(bench_env["results"], "external-pil")
    record, samples = load_run(first)
    assert record["counts"]["ok"] == 2 and (first / "work" / "command.log").is_file()
    assert len(record["identity"]["content"]["files"]["script"]) == 64 and "card" not in record["identity"]["options"]
    script.write_text(SCRIPT.replace("args.resample", "3"))  # the method changed: bicubic instead of nearest
    capsys.readouterr()
    run(f"external:{card}", opts=[f"script={script}", f"python={sys.executable}"], metrics="psnr")
    assert len(runs(bench_env["results"], "external-pil")) == 2
    assert "different inputs (files changed)" in capsys.readouterr().err


def test_ls_methods_says_where_op4ksr_weights_come_from():
    from op4ksr_bench.methods.commands import method_rows

    (row,) = [row for row in method_rows() if row[0] == "op4ksr"]
    assert row[-1].startswith("present, shipped in the repository (reference_model/checkpoints/nano/)")
    assert "catalogue" not in row[-1]


def test_hash_cache_remembers_large_files_and_notices_changes(tmp_path, monkeypatch):
    import hashlib

    from op4ksr_bench import identity

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.setattr(identity, "CACHE_MIN_BYTES", 4)
    path = tmp_path / "weights.bin"
    path.write_bytes(b"first weights")
    assert identity.file_sha256(path) == hashlib.sha256(b"first weights").hexdigest()
    cache = json.loads((tmp_path / "cache" / "op4ksr-bench" / "sha256.json").read_text())
    assert cache[str(path.resolve())]["sha256"] == hashlib.sha256(b"first weights").hexdigest()
    path.write_bytes(b"other weights, retrained")
    assert identity.file_sha256(path) == hashlib.sha256(b"other weights, retrained").hexdigest()
