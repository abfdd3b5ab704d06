"""The run record's dataclasses read and write the published ``run.json`` / ``samples.jsonl`` byte for byte."""

from __future__ import annotations

import json
from dataclasses import fields, replace
from pathlib import Path

import pytest

from op4ksr_bench.results import RunRecord, SampleRow, tally, write_json, write_samples

PUBLISHED = Path(__file__).resolve().parents[1] / "leaderboard" / "results"
RUNS = sorted(PUBLISHED.glob("*/*/*/run.json"))


@pytest.mark.parametrize("path", RUNS, ids=lambda path: "/".join(path.parts[-4:-1]))
def test_published_records_round_trip_exactly(path, tmp_path):
    record = RunRecord.from_dict(json.loads(path.read_text(encoding="utf-8")))
    record.write(tmp_path)
    assert (tmp_path / "run.json").read_bytes() == path.read_bytes()
    samples = path.parent / "samples.jsonl"
    rows = [json.loads(line) for line in samples.read_text(encoding="utf-8").splitlines()]
    write_samples(tmp_path / "samples.jsonl", [SampleRow(**row).to_dict() for row in rows])
    assert (tmp_path / "samples.jsonl").read_bytes() == samples.read_bytes()
    ok = [row for row in rows if row["status"] == "ok"]
    assert tally(rows, record.counts["total"])["counts"] == record.counts
    assert len(ok) == record.counts["ok"]


def test_published_runs_exist():
    assert RUNS, "leaderboard/results holds no run.json"


def test_unknown_fields_are_kept_and_merged_from_only_when_set(tmp_path):
    base = RunRecord(
        run_id="run-0", suite={}, method={}, metrics={}, environment={}, seed=0, started_at="t", wall_seconds=0.0
    )
    assert "merged_from" not in base.to_dict() and base.to_dict()["schema"] == "op4ksr-bench/run@1"
    older = {**base.to_dict(), "from_a_later_version": [1, 2]}
    again = RunRecord.from_dict(older)
    assert again.extra == {"from_a_later_version": [1, 2]} and again.to_dict() == older
    merged = replace(base, merged_from=["a", "b"]).to_dict()
    assert merged["merged_from"] == ["a", "b"]
    write_json(tmp_path / "run.json", merged)
    assert RunRecord.from_dict(json.loads((tmp_path / "run.json").read_text())).merged_from == ["a", "b"]


def test_a_sample_row_has_every_documented_field():
    row = SampleRow(id="a", index=0, timing="measured").to_dict()
    assert set(row) == {item.name for item in fields(SampleRow)}
    assert row["status"] == "failed" and row["reason"] is None and row["metrics"] == {}
