"""Item 1: every path read from a file stays in its folder (image ids, sample outputs, merges, external work)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
import typer

from op4ksr_bench.data.manifest import BuiltSuite, read_manifest
from op4ksr_bench.errors import ManifestError, Op4ksrError, UsageError
from op4ksr_bench.results import merge_runs, merge_when_complete, read_samples, write_samples
from op4ksr_bench.safepaths import UnsafePathError, check_image_id, resolve_inside


@pytest.mark.parametrize(
    "image_id", ["../../../../../ESCAPED", "a/b", "a\\b", ".hidden", "..", "x..y", "", "/abs", "a\x00b", 7, None]
)
def test_unsafe_image_ids_are_refused(image_id):
    with pytest.raises(UnsafePathError, match="not a plain name|not a string"):
        check_image_id(image_id, "test")


@pytest.mark.parametrize("image_id", ["img000", "0001", "enl-foggy-trees-00", "DIV4K_0801.x4", "a_b-c.d"])
def test_plain_image_ids_pass(image_id):
    assert check_image_id(image_id, "test") == image_id


def test_manifest_id_escaping_is_refused_at_load_and_run_writes_nothing(bench, tools):
    def hostile(entries):
        entries[0]["id"] = "../../../../../ESCAPED"

    bench["suite"](hook=hostile)
    before = tools.files_under(bench["tmp"])
    with pytest.raises(ManifestError, match=r"manifest.jsonl:1: image id '\.\./.*' is not a plain name"):
        BuiltSuite.open(bench["data"], "tiny")
    with pytest.raises(ManifestError, match="not a plain name"):
        tools.run_bicubic()
    assert tools.files_under(bench["tmp"]) == before  # nothing written anywhere, ESCAPED.png included
    assert not list(Path("/").glob("ESCAPED*")) and not list(bench["tmp"].parent.glob("ESCAPED*"))


def test_run_time_check_fails_an_image_whose_id_is_not_plain(bench, tools):
    """A suite object built without ``BuiltSuite.open`` (the Python API) still never writes outside the run."""
    from op4ksr_bench.methods.interpolation import BicubicMethod
    from op4ksr_bench.runner import run_suite

    bench["suite"]()
    built = BuiltSuite.open(bench["data"], "tiny")
    built.entries[0] = {**built.entries[0], "id": "../../../ESCAPED"}
    outcome = run_suite(
        built, BicubicMethod(scale=4), spec="bicubic", user_options={}, metric_names=["psnr"],
        results_root=bench["results"], device="cpu", dtype="float32", seed=0, echo=lambda line: None,
    )  # fmt: skip
    assert outcome.failed == 1 and "not a plain name" in outcome.failures[0][1]
    assert not list(bench["tmp"].rglob("ESCAPED*"))


def test_build_refuses_a_planned_id_that_is_not_plain(tmp_path):
    from op4ksr_bench.data.builder import produce_suite
    from op4ksr_bench.data.partition import PlanItem, SuitePlan
    from op4ksr_bench.data.sources import SourceImage
    from op4ksr_bench.data.suites import SuiteSpec

    spec = SuiteSpec.from_mapping(
        {"name": "x", "version": 1, "task": "synthetic", "scale": 4, "seed": 0, "metrics": ["psnr"]}, "test"
    )
    photo = SourceImage(id="p", source="folder:x", original_path="p.png", licence="CC0-1.0", attribution="-",
                        path=str(tmp_path / "p.png"), width=64, height=64)  # fmt: skip
    plan = SuitePlan(spec=spec, items=[PlanItem(id="../../ESCAPED", suite="x", photo=photo, crop={}, seed=0)])
    with pytest.raises(ManifestError, match="not a plain name"):
        produce_suite(plan, tmp_path / "data", workers=1, progress=None)
    assert not (tmp_path / "data").exists()


@pytest.mark.parametrize("line", ["42", "null", "[1, 2]", '"text"'])
def test_manifest_lines_that_are_json_but_not_objects_give_one_line(tmp_path, line):
    path = tmp_path / "manifest.jsonl"
    path.write_text(line + "\n")
    with pytest.raises(ManifestError, match=r"manifest.jsonl:1: a \w+, not a JSON object; rebuild"):
        read_manifest(path)


def test_manifest_paths_and_links_escaping_the_suite_are_refused(bench, tools):
    """Held before: a manifest path with ``..``, an absolute one, or a link out of the suite folder."""
    for bad in ("../../victim.txt", "/etc/passwd"):
        bench["suite"](name="tiny", hook=lambda entries, bad=bad: entries[0].update(lr=bad))
        with pytest.raises(ManifestError, match="must be relative and stay inside"):
            BuiltSuite.open(bench["data"], "tiny")
    bench["suite"]()
    link = bench["data"] / "tiny" / "lr" / "img000.png"
    link.unlink()
    link.symlink_to(bench["victim"])
    with pytest.raises(ManifestError, match="escapes"):
        BuiltSuite.open(bench["data"], "tiny")


def test_resolve_inside_never_follows_a_link(tmp_path):
    root = tmp_path / "run"
    (root / "images").mkdir(parents=True)
    (root / "inner").symlink_to(root / "images")  # even a link back inside is refused
    (root / "out").symlink_to(tmp_path)
    for relative in ("inner/x.png", "out/victim.txt", "../x", "/x", "~/x", "a\\b"):
        with pytest.raises(UnsafePathError):
            resolve_inside(root, relative, "test")
    assert resolve_inside(root, "images/x.png", "test") == root / "images" / "x.png"


def _sharded(bench, tools):
    bench["suite"](count=2)
    for index in range(2):
        tools.run_bicubic(shard=f"{index}/2")
    base = bench["results"] / "tiny@v1" / "bicubic"
    shards = sorted(base.glob("run-*-shard*of2"))
    merged = base / shards[0].name.split("-shard")[0]
    assert len(shards) == 2 and merged.is_dir()
    return shards, merged


@pytest.mark.parametrize("hostile", ["../../../../victim.txt", "ABSOLUTE", "link/victim.txt"])
def test_merge_never_deletes_or_links_a_file_a_row_names(bench, tools, hostile):
    import shutil

    shards, merged = _sharded(bench, tools)
    shutil.rmtree(merged)
    if hostile == "ABSOLUTE":
        hostile = str(bench["victim"])
    if hostile.startswith("link/"):
        (shards[0] / "link").symlink_to(bench["victim"].parent)
    rows = read_samples(shards[0] / "samples.jsonl")
    rows[0]["output"] = hostile
    write_samples(shards[0] / "samples.jsonl", rows)
    victim_stat = os.stat(bench["victim"])
    with pytest.raises(UnsafePathError, match="must be relative|symbolic link"):
        merge_runs(shards)
    with pytest.raises(UsageError, match="must be relative|symbolic link"):
        from op4ksr_bench.run_commands import cli_merge

        cli_merge(runs=shards, out=None)
    # the automatic merge of the last shard reports and leaves everything as it was
    with pytest.raises(UnsafePathError):
        merge_when_complete(merged, 2)
    assert bench["victim"].read_text() == "precious\n"
    assert os.stat(bench["victim"]).st_ino == victim_stat.st_ino and os.stat(bench["victim"]).st_nlink == 1


def test_merge_copies_verified_outputs_and_never_hard_links(bench, tools):
    import shutil

    shards, merged = _sharded(bench, tools)
    shutil.rmtree(merged)
    out = merge_runs(shards)
    for row in read_samples(out / "samples.jsonl"):
        assert os.stat(out / row["output"]).st_nlink == 1
    # an output altered after the shard wrote it is refused, and the merged copy is left alone
    shutil.rmtree(out)
    row = read_samples(shards[1] / "samples.jsonl")[0]
    (shards[1] / row["output"]).write_bytes(b"altered")
    with pytest.raises(UnsafePathError, match="was altered: rerun that image"):
        merge_runs(shards)


def test_merge_never_writes_through_a_link_in_the_merged_folder(bench, tools):
    import shutil

    shards, merged = _sharded(bench, tools)
    shutil.rmtree(merged / "images")
    (merged / "images").symlink_to(bench["victim"].parent)
    with pytest.raises(UnsafePathError, match="symbolic link"):
        merge_runs(shards, merged)
    assert bench["victim"].read_text() == "precious\n"


def test_merge_refuses_a_run_id_that_is_not_a_folder_name(bench, tools):
    import shutil

    shards, merged = _sharded(bench, tools)
    shutil.rmtree(merged)
    for shard in shards:
        record = json.loads((shard / "run.json").read_text())
        record["run_id"] = "../../escaped"
        (shard / "run.json").write_text(json.dumps(record))
    with pytest.raises(UnsafePathError, match="run_id"):
        merge_runs(shards)
    assert not list(bench["tmp"].rglob("escaped"))


def test_last_shard_reports_a_hostile_shard_in_one_line_instead_of_a_traceback(bench, tools, capsys):
    import shutil

    shards, merged = _sharded(bench, tools)
    shutil.rmtree(merged)
    rows = read_samples(shards[0] / "samples.jsonl")
    rows[0]["output"] = "../../../victim.txt"
    write_samples(shards[0] / "samples.jsonl", rows)
    record = json.loads((shards[1] / "run.json").read_text())
    record["status"] = "incomplete"  # rerun the last shard: it finds all complete and merges
    (shards[1] / "run.json").write_text(json.dumps(record))
    tools.run_bicubic(shard="1/2")
    assert "warning: shards not merged:" in capsys.readouterr().err
    assert not merged.exists() and bench["victim"].read_text() == "precious\n"


def test_resume_never_trusts_an_output_outside_the_run(bench, tools):
    bench["suite"]()
    tools.run_bicubic()
    folder = tools.run_folder(bench["results"])
    rows = read_samples(folder / "samples.jsonl")
    rows[0]["output"] = "../../../../victim.txt"
    write_samples(folder / "samples.jsonl", rows)
    tools.run_bicubic()
    rows = {row["id"]: row for row in read_samples(folder / "samples.jsonl")}
    assert rows["img000"]["output"] == "images/img000.png" and len(rows) == 3
    assert bench["victim"].read_text() == "precious\n"


def test_external_work_folder_refuses_ids_that_are_not_plain(tmp_path):
    from op4ksr_bench.methods.external import ExternalMethod

    card = tmp_path / "card.yaml"
    card.write_text(
        "name: t\ndisplay_name: t\nrepository: x\nlicence: MIT\nbackbone: none\nfamily: regression\nsteps: 1\n"
        f"command: '{{python}} -c pass'\noutput: '{{id}}.png'\nworkdir: '{tmp_path}'\n"
    )
    method = ExternalMethod(card=str(card), python="python3")
    lr = tmp_path / "lr.png"
    lr.write_bytes(b"x")
    with pytest.raises(UsageError, match="not a plain name"):
        method.prepare([("../../ESCAPED", lr)], tmp_path / "run" / "work")
    assert not list(tmp_path.rglob("ESCAPED*"))
    (tmp_path / "run2").mkdir()
    (tmp_path / "run2" / "work").symlink_to(tmp_path / "elsewhere")
    with pytest.raises(UsageError, match="symbolic link"):
        method.prepare([("img", lr)], tmp_path / "run2" / "work")


def test_cli_run_with_an_escaping_id_exits_with_one_line(bench):
    """The probe as a user meets it: ``op4ksr-bench run`` prints one line and exits non-zero, writing nothing."""
    import subprocess
    import sys

    bench["suite"](hook=lambda entries: entries[0].update(id="../../../../../ESCAPED"))
    result = subprocess.run(
        [sys.executable, "-m", "op4ksr_bench.cli", "run", "--method", "bicubic", "--suite", "tiny", "--metrics",
         "psnr"], capture_output=True, text=True, timeout=300, env=os.environ.copy(),
    )  # fmt: skip
    assert result.returncode != 0 and "Traceback" not in result.stderr
    assert "not a plain name" in result.stderr and len(result.stderr.strip().splitlines()) == 1
    assert not list(bench["tmp"].rglob("ESCAPED*")) and not bench["results"].exists()


def test_op4ksr_errors_are_one_line():
    assert issubclass(UnsafePathError, Op4ksrError) and issubclass(UnsafePathError, ValueError)
    assert typer  # the CLI turns Op4ksrError into one line (see test_cli_run_with_an_escaping_id_exits_with_one_line)


@pytest.mark.parametrize("name", ["samples.jsonl", "run.json", "images", "work"])
def test_a_shared_run_folder_with_links_where_the_run_writes_is_refused(bench, tools, name):
    bench["suite"]()
    tools.run_bicubic()
    folder = tools.run_folder(bench["results"])
    target = bench["victim"] if name.endswith(("jsonl", "json")) else bench["victim"].parent
    path = folder / name
    if path.is_dir():
        import shutil

        shutil.rmtree(path)
    else:
        path.unlink(missing_ok=True)
    path.symlink_to(target)
    rows = (bench["victim"].read_text(), sorted(p.name for p in bench["victim"].parent.iterdir()))
    with pytest.raises(UnsafePathError, match="symbolic link"):
        tools.run_bicubic()
    assert (bench["victim"].read_text(), sorted(p.name for p in bench["victim"].parent.iterdir())) == rows


def test_a_run_folder_reached_through_a_link_is_refused(bench, tools):
    bench["suite"]()
    tools.run_bicubic()
    suite_folder = bench["results"] / "tiny@v1"
    suite_folder.rename(bench["tmp"] / "elsewhere")
    suite_folder.symlink_to(bench["tmp"] / "elsewhere")
    with pytest.raises(UnsafePathError, match="results folder"):
        tools.run_bicubic()


def test_merge_explains_a_shard_with_damaged_or_non_finite_rows(bench, tools):
    import shutil

    shards, merged = _sharded(bench, tools)
    shutil.rmtree(merged)
    text = (shards[0] / "samples.jsonl").read_text()
    (shards[0] / "samples.jsonl").write_text(text.replace('"psnr": ', '"psnr": NaN, "was": ', 1))
    with pytest.raises(ValueError, match=r"samples.jsonl:1: image img000 holds NaN; rerun that shard"):
        merge_runs(shards)
    (shards[0] / "samples.jsonl").write_text("{torn\n" + text)
    with pytest.raises(ValueError, match=r"samples.jsonl:1: not valid JSON .*; rerun that shard"):
        merge_runs(shards)
    assert not merged.exists()


@pytest.mark.parametrize("ids", [["a", "a"], ["a", "../b"]])
def test_no_builder_can_write_a_manifest_with_repeated_or_unsafe_ids(ids):
    from op4ksr_bench.data.manifest import manifest_bytes

    with pytest.raises(ManifestError, match="building the manifest: image id .*(repeats|not a plain name)"):
        manifest_bytes([{"id": image_id} for image_id in ids])
