"""Aggregation of run folders into suite tables: directions, best values, missing reasons, skipped runs."""

from __future__ import annotations

import json

import pytest

from op4ksr_bench.licences import card_is_non_commercial, is_non_commercial
from op4ksr_bench.report.aggregate import build_tables, format_bytes, format_value, table_data
from op4ksr_bench.report.runs import load_runs, slugify


def test_tables_group_rows_and_mark_best(results):
    runs, skipped = load_runs(results)
    assert skipped == []
    (table,) = build_tables(runs)
    assert (table.name, table.version, table.variant, table.scale) == ("tiny-syn", "1", "bicubic-x4", 4)
    assert [column.name for column in table.columns] == ["psnr", "lpips-alex", "pas"]
    labels = [row.run.label for row in table.rows]
    assert labels == ["Bicubic", "Lanczos", "Real-ESRGAN x4plus"]
    psnr = {row.run.label: row.metrics["psnr"] for row in table.rows}
    assert psnr["Lanczos"].best and not psnr["Bicubic"].best
    # lpips: lower is better, read from run.json metadata
    lpips = {row.run.label: row.metrics["lpips-alex"] for row in table.rows}
    assert lpips["Lanczos"].best and lpips["Lanczos"].value == pytest.approx(0.30)
    pas = {row.run.label: row.metrics["pas"] for row in table.rows}
    assert pas["Bicubic"].best
    seconds = {row.run.label: row.seconds for row in table.rows}
    assert seconds["Bicubic"].best and not seconds["Real-ESRGAN x4plus"].best


def test_missing_metric_shows_recorded_reason_and_partial_runs_are_flagged(results):
    (table,) = build_tables(load_runs(results)[0])
    esrgan = next(row for row in table.rows if row.run.label == "Real-ESRGAN x4plus")
    cell = esrgan.metrics["lpips-alex"]
    assert cell.value is None and cell.text == "-"
    assert "weights missing: alexnet.pth" in cell.note
    assert esrgan.metrics["psnr"].partial and "CUDA out of memory" in esrgan.metrics["psnr"].note
    assert esrgan.images == "1 of 2" and not esrgan.ranked
    assert esrgan.run.inference == "tiled 512/32"
    assert esrgan.periods == {16: 0.30, 32: 0.30}


def test_metric_not_in_run_has_a_reason(tmp_path, make_run):
    root = tmp_path / "results"
    make_run(root, method="a", values={"x": {"psnr": 20.0, "niqe": 5.0}}, metrics=("psnr", "niqe"))
    make_run(root, method="b", values={"x": {"psnr": 21.0}}, metrics=("psnr",))
    (table,) = build_tables(load_runs(root)[0])
    b_row = next(row for row in table.rows if row.run.label == "b")
    assert b_row.metrics["niqe"].value is None
    assert "not among the metrics of this run" in b_row.metrics["niqe"].note
    a_row = next(row for row in table.rows if row.run.label == "a")
    assert not a_row.metrics["niqe"].best  # one value has nothing to be best against
    assert a_row.metrics["psnr"].value == 20.0


def test_invalid_runs_are_skipped_with_named_reason(results):
    bad = results / "tiny-syn@v1" / "broken" / "r0"
    bad.mkdir(parents=True)
    (bad / "run.json").write_text("{not json", encoding="utf-8")
    wrong = results / "tiny-syn@v1" / "wrong" / "r0"
    wrong.mkdir(parents=True)
    (wrong / "run.json").write_text(json.dumps({"schema": "op4ksr-bench/run@1"}), encoding="utf-8")
    runs, skipped = load_runs(results)
    assert len(runs) == 3
    reasons = {item.path: item.reason for item in skipped}
    assert "not valid JSON" in reasons["tiny-syn@v1/broken/r0"]
    assert "missing field 'run_id'" in reasons["tiny-syn@v1/wrong/r0"]
    assert str(results) not in reasons["tiny-syn@v1/wrong/r0"]  # paths shown relative to the results folder


def test_different_suite_hashes_make_separate_tables(tmp_path, make_run):
    root = tmp_path / "results"
    make_run(root, method="a", values={"x": {"psnr": 20.0}}, metrics=("psnr",), suite_hash="1" * 64)
    make_run(root, method="b", values={"x": {"psnr": 21.0}}, metrics=("psnr",), suite_hash="2" * 64, run_id="r1")
    tables = build_tables(load_runs(root)[0])
    assert [table.key for table in tables] == ["tiny-syn-v1-11111111", "tiny-syn-v1-22222222"]
    assert all("not comparable" in table.warnings[0] for table in tables)


def test_table_data_is_json_and_deterministic(results):
    first = table_data(build_tables(load_runs(results)[0]), [])
    second = table_data(build_tables(load_runs(results)[0]), [])
    assert json.dumps(first, sort_keys=True) == json.dumps(second, sort_keys=True)
    rows = first["suites"][0]["rows"]
    assert rows[2]["missing"]["lpips-alex"].startswith("not scored: weights missing")
    assert first["suites"][0]["metrics"][1] == {"name": "lpips-alex", "higher_is_better": False, "kind": "FR"}


@pytest.mark.parametrize(
    ("licence", "expected"),
    [("CC-BY-NC-4.0", True), ("non-commercial", True), ("Non Commercial research", True), ("BSD-3-Clause", False)],
)
def test_non_commercial_licences(licence, expected):
    assert is_non_commercial(licence) is expected


def test_method_cards_declare_non_commercial_and_old_records_fall_back_to_the_licence():
    assert card_is_non_commercial({"licence": "BSD-3-Clause", "non_commercial": True}) is True
    assert card_is_non_commercial({"licence": "CC-BY-NC-4.0", "non_commercial": False}) is False  # declared
    assert card_is_non_commercial({"licence": "CC-BY-NC-4.0"}) is True  # a run.json written before the flag
    assert card_is_non_commercial({"licence": "MIT"}) is False


def test_formatting_and_slugs():
    assert [format_value(v) for v in (123.456, 24.314, 4.9312, 0.71234, None)] == [
        "123.5",
        "24.31",
        "4.931",
        "0.7123",
        "-",
    ]
    assert format_bytes(3 * 1024**3) == "3.00 GiB" and format_bytes(None) == "-"
    assert slugify("img-001") == "img-001"
    assert slugify("a/b c").startswith("a-b-c-") and slugify("a/b c") != slugify("a b/c")


def test_shard_runs_are_left_out_until_merged(tmp_path, make_run):
    root = tmp_path / "results"
    folder = make_run(root, method="a", values={"x": {"psnr": 20.0}}, metrics=("psnr",), run_id="run-1-shard0of2")
    run = json.loads((folder / "run.json").read_text(encoding="utf-8"))
    run.update(run_id="run-1", shard={"index": 0, "count": 2}, status="complete")
    (folder / "run.json").write_text(json.dumps(run), encoding="utf-8")
    runs, skipped = load_runs(root)
    assert runs == [] and len(skipped) == 1
    assert skipped[0].reason == "shard 0 of 2 of run run-1, not merged yet; run `op4ksr-bench merge`"
    merged = folder.parent / "run-1"
    merged.mkdir()
    run.update(shard=None, status="incomplete", counts={"total": 2, "ok": 1, "failed": 0, "pending": 1})
    (merged / "run.json").write_text(json.dumps(run), encoding="utf-8")
    (merged / "samples.jsonl").write_bytes((folder / "samples.jsonl").read_bytes())
    runs, skipped = load_runs(root)
    assert [r.path for r in runs] == ["tiny-syn@v1/a/run-1"] and skipped == []
    assert runs[0].status == "incomplete: 1 of 2 images pending"


def test_metric_skipped_by_every_run_collapses_into_one_note(tmp_path, make_run):
    root = tmp_path / "results"
    why = {"musiq": "skipping musiq: weights 'musiq-koniq' missing: put musiq.pth in /somewhere"}
    make_run(root, method="a", values={"x": {"psnr": 20.0}}, metrics=("psnr",), skipped_metrics=why)
    make_run(root, method="b", values={"x": {"psnr": 21.0}}, metrics=("psnr",), skipped_metrics=why)
    (table,) = build_tables(load_runs(root)[0])
    assert [column.name for column in table.columns] == ["psnr"]
    assert all("musiq" not in row.metrics for row in table.rows)
    assert table.empty == (
        "No value in any run, so not shown as columns: "
        "musiq (not scored: weights 'musiq-koniq' missing: put musiq.pth in /somewhere)"
    )
