"""The results schema and its I/O.

Layout: ``<results>/<suite>@v<version>/<method-slug>/<run-id>/`` holding

* ``run.json``: suite (name, variant, version, hash, scale), method (spec, card, options in effect), metrics
  (metadata and settings of each), environment (package version, git sha, torch/CUDA, device name, dtype),
  seed, shard, start time, wall time, counts and a per-metric summary (mean/median/std/count);
* ``samples.jsonl``: one object per image: ``id``, ``status`` (``ok``/``failed``), ``reason``, ``metrics``
  (every value), ``seconds`` (inference), ``peak_memory_bytes``, input/output hashes.

Results are never overwritten: a rerun of the same configuration resumes the same run folder.
``samples.jsonl`` is append-only; a line torn by a kill is ignored on read and rewritten on resume.
"""

from __future__ import annotations

import json
import math
import statistics
from pathlib import Path
from typing import Any

from op4ksr_bench.atomic import atomic_write_text

RUN_SCHEMA = "op4ksr-bench/run@1"
SAMPLE_STATUSES = ("ok", "failed")

_RUN_REQUIRED: dict[str, type | tuple[type, ...]] = {
    "schema": str,
    "run_id": str,
    "suite": dict,
    "method": dict,
    "metrics": dict,
    "environment": dict,
    "seed": int,
    "started_at": str,
    "wall_seconds": (int, float),
    "counts": dict,
    "summary": dict,
}
_SUITE_REQUIRED = {"name": str, "version": (int, str), "hash": str, "scale": int}
_METHOD_REQUIRED = {"spec": str, "card": dict, "options": dict}
_SAMPLE_REQUIRED = {"id": str, "status": str, "metrics": dict}


def _check_fields(obj: Any, required: dict[str, Any], where: str) -> list[str]:
    if not isinstance(obj, dict):
        return [f"{where}: expected an object, got {type(obj).__name__}"]
    errors = []
    for key, kind in required.items():
        if key not in obj:
            errors.append(f"{where}: missing field {key!r}")
        elif not isinstance(obj[key], kind) or (kind is int and isinstance(obj[key], bool)):
            errors.append(f"{where}.{key}: wrong type {type(obj[key]).__name__}")
    return errors


def validate_run(run: Any) -> list[str]:
    """Schema errors of a ``run.json`` object (empty list if valid)."""
    errors = _check_fields(run, _RUN_REQUIRED, "run.json")
    if errors:
        return errors
    if run["schema"] != RUN_SCHEMA:
        errors.append(f"run.json: schema {run['schema']!r} is not {RUN_SCHEMA!r}")
    errors += _check_fields(run["suite"], _SUITE_REQUIRED, "run.json.suite")
    errors += _check_fields(run["method"], _METHOD_REQUIRED, "run.json.method")
    for metric, meta in run["metrics"].items():
        if not isinstance(meta, dict) or not isinstance(meta.get("higher_is_better"), bool):
            errors.append(f"run.json.metrics.{metric}: needs a boolean 'higher_is_better'")
    return errors


def validate_sample(sample: Any) -> list[str]:
    """Schema errors of one ``samples.jsonl`` object."""
    errors = _check_fields(sample, _SAMPLE_REQUIRED, "sample")
    if errors:
        return errors
    if sample["status"] not in SAMPLE_STATUSES:
        errors.append(f"sample {sample['id']}: status {sample['status']!r} not in {SAMPLE_STATUSES}")
    for key, value in sample["metrics"].items():
        if value is not None and not isinstance(value, int | float):
            errors.append(f"sample {sample['id']}: metric {key} is {type(value).__name__}, not a number")
    return errors


def read_samples(path: Path) -> list[dict[str, Any]]:
    """Read ``samples.jsonl``; a torn last line (from a kill) is skipped; the last row per id wins."""
    path = Path(path)
    if not path.exists():
        return []
    rows: dict[str, dict[str, Any]] = {}
    lines = path.read_text(encoding="utf-8").split("\n")
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError:
            if number >= len(lines) - 1:
                continue  # torn tail: the writer was killed mid-line
            raise ValueError(f"{path}:{number}: not valid JSON; remove the line or rerun") from None
        rows[row["id"]] = row
    return list(rows.values())


def summarize(values: list[float | None]) -> dict[str, float | int | None]:
    """Mean, median, std (population) and count over the finite values."""
    finite = [float(v) for v in values if v is not None and math.isfinite(v)]
    if not finite:
        return {"mean": None, "median": None, "std": None, "count": 0}
    return {
        "mean": statistics.fmean(finite),
        "median": statistics.median(finite),
        "std": statistics.pstdev(finite) if len(finite) > 1 else 0.0,
        "count": len(finite),
    }


def summarize_samples(samples: list[dict[str, Any]]) -> dict[str, dict[str, float | int | None]]:
    """Per-metric summary over the ``ok`` samples, for every metric key that appears."""
    ok = [s for s in samples if s.get("status") == "ok"]
    keys: list[str] = []
    for sample in ok:
        for key in sample.get("metrics", {}):
            if key not in keys:
                keys.append(key)
    return {key: summarize([s["metrics"].get(key) for s in ok]) for key in keys}


def write_json(path: Path, obj: Any) -> None:
    """Write ``obj`` as stable, indented JSON, atomically."""
    atomic_write_text(Path(path), json.dumps(obj, indent=2, sort_keys=True, allow_nan=False) + "\n")


def load_run(folder: Path) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Load and validate a run folder.

    Raises:
        ValueError: with the named schema problems.
    """
    folder = Path(folder)
    run_path = folder / "run.json"
    try:
        run = json.loads(run_path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ValueError(f"{run_path}: missing") from None
    except json.JSONDecodeError as error:
        raise ValueError(f"{run_path}: not valid JSON ({error})") from None
    errors = validate_run(run)
    samples = read_samples(folder / "samples.jsonl")
    for sample in samples:
        errors += validate_sample(sample)
    if errors:
        raise ValueError(f"{folder}: " + "; ".join(errors[:5]))
    return run, samples
