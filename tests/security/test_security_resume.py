"""Item 5: resume repairs damaged run folders wherever the damage is, and explains what it cannot use."""

from __future__ import annotations

import json

import numpy as np
import pytest

from op4ksr_bench.imageio import write_png
from op4ksr_bench.results import read_samples, scan_samples, write_samples


@pytest.fixture
def done(bench, tools):
    bench["suite"]()
    tools.run_bicubic()
    folder = tools.run_folder(bench["results"])
    return folder, (folder / "samples.jsonl").read_text().splitlines()


def _rerun_and_check(tools, folder, capsys, expect: str | None) -> str:
    tools.run_bicubic()
    captured = capsys.readouterr()
    err = captured.err + captured.out
    if expect:
        assert expect in err
    scan = scan_samples(folder / "samples.jsonl")
    assert scan.clean and not scan.problems and sorted(row["id"] for row in scan.rows) == ["img000", "img001", "img002"]
    record = json.loads((folder / "run.json").read_text())
    assert record["status"] == "complete" and record["counts"]["ok"] == 3
    return err


def test_a_torn_first_line_is_repaired(done, tools, capsys):
    folder, lines = done
    (folder / "samples.jsonl").write_text(lines[0][:25])  # killed while writing the first row
    capsys.readouterr()
    err = _rerun_and_check(tools, folder, capsys, "samples.jsonl:1: not valid JSON (a torn or damaged line)")
    assert "3 ok, 0 failed, 0 resumed" in err  # the torn row's image is redone, the others were never written


def test_a_row_glued_onto_a_torn_line_is_dropped_and_redone(done, tools, capsys):
    folder, lines = done
    (folder / "samples.jsonl").write_text(lines[0][:25] + lines[1] + "\n" + lines[2] + "\n")
    capsys.readouterr()
    err = _rerun_and_check(tools, folder, capsys, "samples.jsonl:1: not valid JSON")
    assert "3 ok, 0 failed, 1 resumed" in err


@pytest.mark.parametrize("damage", ["{not json", "42", "null", '{"no": "id"}', "\udcff"])
def test_a_damaged_middle_line_is_dropped_and_redone(done, tools, capsys, damage):
    folder, lines = done
    text = lines[0] + "\n" + damage + "\n" + lines[2] + "\n"
    (folder / "samples.jsonl").write_bytes(text.encode("utf-8", "surrogateescape"))
    capsys.readouterr()
    _rerun_and_check(tools, folder, capsys, "samples.jsonl:2:")


def test_an_unreadable_run_json_is_rebuilt_from_the_samples(done, tools, capsys):
    folder, _ = done
    (folder / "run.json").write_text("{ torn")
    capsys.readouterr()
    err = _rerun_and_check(tools, folder, capsys, "run.json is unreadable")
    assert "rebuilt from samples.jsonl" in err and "Traceback" not in err
    (folder / "run.json").write_text("[1, 2]")
    _rerun_and_check(tools, folder, capsys, "run.json is not a JSON object; rebuilt from samples.jsonl")


@pytest.mark.parametrize("value", ["NaN", "Infinity", "-Infinity"])
def test_non_finite_rows_are_reported_at_read_and_redone(done, tools, capsys, value):
    folder, lines = done
    row = json.loads(lines[1])
    row["metrics"]["psnr"] = "__X__"
    lines[1] = json.dumps(row).replace('"__X__"', value)
    (folder / "samples.jsonl").write_text("\n".join(lines) + "\n")
    scan = scan_samples(folder / "samples.jsonl")
    assert scan.non_finite == {"img001"} and f"image img001 holds {value}" in scan.problems[0]
    capsys.readouterr()
    _rerun_and_check(tools, folder, capsys, f"image img001 holds {value}")
    assert json.loads(lines[0])["metrics"]["psnr"] is not None


def test_non_finite_values_are_refused_when_written(tmp_path):
    with pytest.raises(ValueError, match="not JSON compliant"):
        write_samples(tmp_path / "samples.jsonl", [{"id": "a", "status": "ok", "metrics": {"psnr": float("nan")}}])
    assert not (tmp_path / "samples.jsonl").exists()


def test_runner_records_a_non_finite_metric_as_no_value():
    from op4ksr_bench.runner import _metric_values

    assert _metric_values({"psnr": float("inf"), "ssim": float("nan"), "x": 1.0}) == {
        "psnr": None, "ssim": None, "x": 1.0,
    }  # fmt: skip


@pytest.mark.parametrize("damage", ["delete", "corrupt"])
def test_resume_after_a_deleted_or_corrupted_output_redoes_it(done, tools, capsys, damage):
    """Held before: an output PNG that is gone or altered is redone, never trusted."""
    folder, _ = done
    output = folder / "images" / "img002.png"
    if damage == "delete":
        output.unlink()
    else:
        output.write_bytes(b"\x89PNG garbage")
    tools.run_bicubic()
    assert "3 ok, 0 failed, 2 resumed" in capsys.readouterr().out and output.is_file()
    assert {row["id"] for row in read_samples(folder / "samples.jsonl")} == {"img000", "img001", "img002"}


def test_read_samples_never_raises_on_damage(tmp_path):
    path = tmp_path / "samples.jsonl"
    path.write_bytes(b'{"id": "a", "status": "ok", "metrics": {}}\n\xff\xfe\n[]\n{"id": 3}\n{"id": "b", "st')
    rows = read_samples(path)
    assert [row["id"] for row in rows] == ["a"]
    assert len(scan_samples(path).problems) == 4


def test_a_damaged_output_png_never_writes_outside(done, tools, bench):
    """An output path in a resumed row that leaves the folder is never read or written (see test_security_paths)."""
    folder, lines = done
    write_png(bench["tmp"] / "elsewhere.png", np.zeros((4, 4, 3), np.uint8))
    row = json.loads(lines[0])
    row["output"] = "../../../../elsewhere.png"
    (folder / "samples.jsonl").write_text(json.dumps(row) + "\n" + "\n".join(lines[1:]) + "\n")
    before = (bench["tmp"] / "elsewhere.png").read_bytes()
    tools.run_bicubic()
    assert (bench["tmp"] / "elsewhere.png").read_bytes() == before


def test_merging_a_shard_with_an_unreadable_run_json_says_what_to_do(bench, tools):
    from op4ksr_bench.errors import UsageError
    from op4ksr_bench.run_commands import cli_merge

    bench["suite"](count=2)
    for index in range(2):
        tools.run_bicubic(shard=f"{index}/2")
    shards = sorted((bench["results"] / "tiny@v1" / "bicubic").glob("run-*-shard*of2"))
    (shards[0] / "run.json").write_text("{ torn")
    with pytest.raises(UsageError, match=r"run.json: not valid JSON .*; rerunning the same command rebuilds it"):
        cli_merge(runs=shards, out=bench["tmp"] / "merged")
    tools.run_bicubic(shard="0/2")  # the rerun rebuilds it and, all shards complete, merges
    assert json.loads((shards[0] / "run.json").read_text())["status"] == "complete"
