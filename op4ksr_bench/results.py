"""The run record: ``run.json`` (:class:`RunRecord`) and ``samples.jsonl`` (:class:`SampleRow`), written, read,
validated, summarised and merged here; the environment record (:func:`environment_record`) is made here too.

Layout: ``<results>/<suite>@v<version>/<method-slug>/<run-id>/`` holding

* ``run.json``: suite (name, variant, version, hash, scale), method (spec, card, options in effect), metrics
  (metadata and settings of each), environment (package version, git sha, torch/CUDA, device name, dtype),
  seed, shard, start time, wall time, counts and a per-metric summary (mean/median/std/count and ``ci95``, the
  seeded 95 % bootstrap interval of the mean, see :mod:`op4ksr_bench.stats`; the mode for a dominant period);
* ``samples.jsonl``: one object per image: ``id``, ``index`` (position in the suite manifest), ``status``
  (``ok``/``failed``), ``reason`` (why it failed, else null), ``metrics`` (every value; null where a metric
  gave none), ``seconds`` (inference, warm-up excluded, device synchronised; null when unknown),
  ``timing`` (``measured``/``amortised``/``none``), ``peak_memory_bytes`` (``torch.cuda.max_memory_allocated``
  on GPU, peak RSS increase on CPU; null when not measured), ``score_seconds``, ``wall_seconds`` (the whole
  image: read, infer, save, score), ``lr_sha256``, ``hr_sha256``, ``output`` (the saved 8-bit PNG, relative to
  the run folder) and ``output_sha256``.

Shard runs live beside the run they belong to, as ``<run-id>-shard<I>of<N>``; :func:`merge_samples` joins
them and the merge writes ``<run-id>`` itself, so a merged run sits where the unsharded run would.

Results are never overwritten: a rerun of the same configuration resumes the same run folder.
``samples.jsonl`` is append-only while a run works (each line fsynced); a resumed run first rewrites it
atomically without the torn tail a kill may leave and without the rows it will redo, so the file never holds
two rows for one image.
"""

from __future__ import annotations

import json
import logging
import math
import os
import platform
import socket
import statistics
import subprocess
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from op4ksr_bench.atomic import atomic_write_text, sha256_file
from op4ksr_bench.safepaths import check_image_id, copy_verified, resolve_inside
from op4ksr_bench.stats import bootstrap_ci, finite, mode

logger = logging.getLogger(__name__)

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


@dataclass(frozen=True)
class SampleRow:
    """One line of ``samples.jsonl`` (the fields are described in the module docstring).

    A row starts ``failed`` with no reason; the runner replaces fields as the image gets through each step.
    """

    id: str
    index: int
    timing: str
    lr_sha256: str | None = None
    hr_sha256: str | None = None
    status: str = "failed"
    reason: str | None = None
    metrics: dict[str, float | None] = field(default_factory=dict)
    seconds: float | None = None
    peak_memory_bytes: int | None = None
    score_seconds: float | None = None
    wall_seconds: float | None = None
    output: str | None = None
    output_sha256: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """The JSON object of this row (every field, nulls included)."""
        return {item.name: getattr(self, item.name) for item in fields(self)}

    def to_line(self) -> str:
        """The row as one ``samples.jsonl`` line (sorted keys, no NaN), without the newline."""
        return json.dumps(self.to_dict(), sort_keys=True, allow_nan=False)


@dataclass(frozen=True)
class RunRecord:
    """``run.json``: what was run (suite, method, metrics, seed, selection), where and how, and what came out.

    ``suite``, ``method``, ``metrics``, ``environment`` and the like are the JSON objects described in the
    module docstring; :meth:`tallied` fills ``counts``, ``summary`` and ``timing`` from the rows. ``merged_from``
    is written only by a merge; ``extra`` holds the fields of a record this version does not declare, written
    back as they were, and ``absent`` the declared fields an older record lacked: they stay unwritten while they
    hold their default, so reading and writing a record changes no byte of it.
    """

    run_id: str
    suite: dict[str, Any]
    method: dict[str, Any]
    metrics: dict[str, dict[str, Any]]
    environment: dict[str, Any]
    seed: int
    started_at: str
    wall_seconds: float
    identity: dict[str, Any] = field(default_factory=dict)
    status: str = "running"
    skipped_metrics: dict[str, str] = field(default_factory=dict)
    seed_rule: str = ""
    outputs: dict[str, Any] = field(default_factory=dict)
    shard: dict[str, int] | None = None
    selection: dict[str, Any] = field(default_factory=dict)
    process: dict[str, Any] | None = None
    sessions: list[dict[str, Any]] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=dict)
    summary: dict[str, dict[str, Any]] = field(default_factory=dict)
    timing: dict[str, dict[str, Any]] = field(default_factory=dict)
    merged_from: list[str] | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    absent: frozenset[str] = field(default=frozenset(), compare=False, repr=False)
    schema: str = RUN_SCHEMA

    def to_dict(self) -> dict[str, Any]:
        """The JSON object of ``run.json``."""
        record = dict(self.extra)
        for item in fields(self):
            value = getattr(self, item.name)
            if item.name in ("extra", "absent") or (item.name == "merged_from" and value is None):
                continue
            if item.name in self.absent and value == _default(item):
                continue
            record[item.name] = value
        return record

    @classmethod
    def from_dict(cls, record: dict[str, Any]) -> RunRecord:
        """A record read from a (validated, see :func:`validate_run`) ``run.json`` object, copied deeply."""
        record = json.loads(json.dumps(record))
        declared = {item.name for item in fields(cls)} - {"extra", "absent"}
        return cls(
            **{key: value for key, value in record.items() if key in declared},
            extra={key: value for key, value in record.items() if key not in declared},
            absent=frozenset(declared - set(record)),
        )

    def tallied(self, samples: list[dict[str, Any]], total: int, *, settle: bool) -> RunRecord:
        """This record with counts, summaries and timing of ``samples`` (see :func:`tally`); with ``settle``,
        ``status`` becomes ``complete`` when nothing is pending, else ``incomplete``."""
        tallies = tally(samples, total)
        if settle:
            tallies["status"] = "complete" if tallies["counts"]["pending"] == 0 else "incomplete"
        return replace(self, **tallies)

    def write(self, folder: Path) -> None:
        """Write ``<folder>/run.json`` atomically."""
        write_json(Path(folder) / "run.json", self.to_dict())


def _default(item: Any) -> Any:
    """The default value of dataclass field ``item`` (a fresh one for a default factory)."""
    return item.default_factory() if callable(item.default_factory) else item.default


def previous_run_facts(path: Path, warn) -> dict[str, Any]:
    """What a resumed run keeps of the ``run.json`` it extends: ``sessions``, and ``started_at`` and
    ``wall_seconds`` when they are sound; ``{}`` (the record is rebuilt from the samples) when it is unreadable,
    which ``warn`` is told in one line."""
    path = Path(path)
    if not path.is_file():
        return {}
    try:
        previous = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        text = " ".join(str(error).split())[:120]
        warn(f"warning: {path} is unreadable ({type(error).__name__}: {text}); rebuilt from samples.jsonl")
        return {}
    if not isinstance(previous, dict):
        warn(f"warning: {path} is not a JSON object; rebuilt from samples.jsonl")
        return {}
    sessions, started, wall = previous.get("sessions"), previous.get("started_at"), previous.get("wall_seconds")
    return {
        "sessions": sessions if isinstance(sessions, list) else [],
        **({"started_at": started} if isinstance(started, str) else {}),
        **({"wall_seconds": wall} if isinstance(wall, int | float) and math.isfinite(wall) else {}),
    }


@dataclass
class SampleScan:
    """What :func:`scan_samples` found in a ``samples.jsonl``.

    Attributes:
        rows: The usable rows (JSON objects with a string ``id``), the last row per id winning.
        problems: One line per dropped line (torn, not JSON, not an object, no id) and per row holding a
            non-finite number (NaN, Infinity), with its line number.
        non_finite: Ids of rows holding a non-finite number anywhere.
        clean: The file is exactly one valid, finite row per line, ending in a newline (nothing to repair).
    """

    rows: list[dict[str, Any]] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    non_finite: set[str] = field(default_factory=set)
    clean: bool = True


def scan_samples(path: Path) -> SampleScan:
    """Read ``samples.jsonl`` line by line, dropping (and naming) every line that cannot be a row.

    A kill leaves a torn last line; a later append can glue a whole row onto it; a copy can damage any
    line. None of these stops a reader: the line is dropped, named in ``problems``, and its image is redone
    by a resumed run. ``NaN``/``Infinity`` (which our writer refuses) are reported, not silently averaged.
    """
    path = Path(path)
    scan = SampleScan()
    if not path.exists():
        return scan
    data = path.read_bytes()
    scan.clean = data.endswith(b"\n") or not data
    rows: dict[str, dict[str, Any]] = {}
    for number, raw in enumerate(data.split(b"\n"), start=1):
        if not raw.strip():
            scan.clean = scan.clean and not raw
            continue
        flagged: list[str] = []

        def constant(name: str, flagged: list[str] = flagged) -> float:
            flagged.append(name)
            return float(name.replace("Infinity", "inf"))

        try:
            row = json.loads(raw.decode("utf-8"), parse_constant=constant)
        except (UnicodeDecodeError, json.JSONDecodeError):
            scan.problems.append(f"{path.name}:{number}: not valid JSON (a torn or damaged line); dropped")
            scan.clean = False
            continue
        if not isinstance(row, dict) or not isinstance(row.get("id"), str):
            scan.problems.append(f"{path.name}:{number}: not a sample object with a string id; dropped")
            scan.clean = False
            continue
        if flagged:
            scan.problems.append(f"{path.name}:{number}: image {row['id']} holds {', '.join(sorted(set(flagged)))}")
            scan.non_finite.add(row["id"])
            scan.clean = False
        else:
            scan.non_finite.discard(row["id"])
        if row["id"] in rows:
            scan.clean = False
        rows[row["id"]] = row
    scan.rows = list(rows.values())
    return scan


def read_samples(path: Path) -> list[dict[str, Any]]:
    """Read ``samples.jsonl``: torn or damaged lines are dropped (and logged); the last row per id wins."""
    scan = scan_samples(path)
    for problem in scan.problems:
        logger.warning("%s", problem)
    return scan.rows


CATEGORICAL_SUFFIXES = (".period",)
"""Detail keys whose values are categories (a dominant period in px), summarised by their mode, never a mean."""


def is_categorical(key: str) -> bool:
    """Whether summary key ``key`` holds categories (``pas.period``), not quantities."""
    return key.endswith(CATEGORICAL_SUFFIXES)


def summarize(values: list[float | None]) -> dict[str, Any]:
    """Mean, median, std (population), count and the 95 % bootstrap interval of the mean over the finite values.

    ``ci95`` is ``[low, high]`` from :func:`op4ksr_bench.stats.bootstrap_ci` (seeded; None without a value).
    """
    kept = [float(v) for v in values if v is not None and math.isfinite(v)]
    if not kept:
        return {"mean": None, "median": None, "std": None, "count": 0, "ci95": None}
    return {
        "mean": statistics.fmean(kept),
        "median": statistics.median(kept),
        "std": statistics.pstdev(kept) if len(kept) > 1 else 0.0,
        "count": len(kept),
        "ci95": bootstrap_ci(kept),
    }


def summarize_categories(values: list[float | None]) -> dict[str, Any]:
    """The most frequent value (``mode``), how often it occurs (``mode_count``) and ``count``: never a mean."""
    found = mode(values)
    if found is None:
        return {"mode": None, "mode_count": 0, "count": 0}
    return {"mode": found[0], "mode_count": found[1], "count": len(finite(values))}


def summarize_samples(samples: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Per-metric summary over the ``ok`` samples, for every metric key that appears (modes for categories)."""
    ok = [s for s in samples if s.get("status") == "ok"]
    keys: list[str] = []
    for sample in ok:
        for key in sample.get("metrics", {}):
            if key not in keys:
                keys.append(key)
    return {
        key: (summarize_categories if is_categorical(key) else summarize)([s["metrics"].get(key) for s in ok])
        for key in keys
    }


SAMPLE_TIMING_FIELDS = ("seconds", "peak_memory_bytes", "score_seconds", "wall_seconds")
"""Per-image fields that depend on the machine and the moment, not on the method's output."""


def shard_folder_name(run_id: str, index: int, count: int) -> str:
    """``<run-id>-shard<I>of<N>``: the folder of shard ``index`` (0-based) of ``count``."""
    return f"{run_id}-shard{index}of{count}"


def run_folder(results: Path, suite: str, version: int | str, method_slug: str, run_id: str) -> Path:
    """``<results>/<suite>@v<version>/<method-slug>/<run-id>``."""
    return Path(results) / f"{suite}@v{version}" / method_slug / run_id


def write_samples(path: Path, samples: list[dict[str, Any]]) -> None:
    """Rewrite ``samples.jsonl`` atomically with exactly ``samples`` (one JSON object per line)."""
    text = "".join(json.dumps(sample, sort_keys=True, allow_nan=False) + "\n" for sample in samples)
    atomic_write_text(Path(path), text)


def merge_samples(parts: list[list[dict[str, Any]]]) -> list[dict[str, Any]]:
    """Join the samples of shard runs, ordered by manifest ``index`` (then id).

    Raises:
        ValueError: two shards hold different rows for the same image.
    """
    merged: dict[str, dict[str, Any]] = {}
    for samples in parts:
        for sample in samples:
            previous = merged.get(sample["id"])
            if previous is not None and _without_timing(previous) != _without_timing(sample):
                raise ValueError(f"image {sample['id']} has different results in two shards")
            merged[sample["id"]] = sample
    return sorted(merged.values(), key=lambda s: (s.get("index", 0), s["id"]))


def _without_timing(sample: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in sample.items() if key not in SAMPLE_TIMING_FIELDS}


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
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise ValueError(
            f"{run_path}: not valid JSON ({error}); rerunning the same command rebuilds it from samples.jsonl"
        ) from None
    except OSError as error:
        raise ValueError(f"{run_path}: unreadable ({error.strerror})") from None
    errors = validate_run(run)
    samples = read_samples(folder / "samples.jsonl")
    for sample in samples:
        errors += validate_sample(sample)
    if errors:
        raise ValueError(f"{folder}: " + "; ".join(errors[:5]))
    return run, samples


def tally(samples: list[dict[str, Any]], total: int) -> dict[str, dict[str, Any]]:
    """``counts`` (total/ok/failed/pending), ``summary`` (per metric) and ``timing`` (per timing field) of ``samples``.

    ``total`` is the number of selected images; the ones without a row are pending.
    """
    ok = [sample for sample in samples if sample.get("status") == "ok"]
    failed = [sample for sample in samples if sample.get("status") == "failed"]
    return {
        "counts": {"total": total, "ok": len(ok), "failed": len(failed), "pending": total - len(samples)},
        "summary": summarize_samples(samples),
        "timing": {key: summarize([sample.get(key) for sample in ok]) for key in SAMPLE_TIMING_FIELDS},
    }


def merge_runs(folders: list[Path], out: Path | None = None) -> Path:
    """Merge the shard runs of one configuration into one run folder (default: ``<parent>/<run-id>``).

    The merged ``samples.jsonl`` holds every shard's rows in manifest order, the images are copied in (each
    ``output`` must lie inside its shard folder, reached without a link, and hash to its ``output_sha256``), and
    ``run.json`` is the first shard's with counts and summaries recomputed over all rows, so a
    merge of complete shards equals a single run of the same configuration except for timing and sessions.

    Raises:
        ValueError: the folders are not shards of one configuration, a shard is missing, or ``out`` holds a run
            that is not a merge.
    """
    loaded = [(Path(folder), *load_run(folder)) for folder in folders]
    if not loaded:
        raise ValueError("no run folders to merge")
    for folder, _, _ in loaded:
        scan = scan_samples(folder / "samples.jsonl")
        if scan.non_finite or not scan.clean:
            problem = next(iter(scan.problems), "rows repeat an image")
            raise ValueError(f"{folder}: {problem}; rerun that shard (it repairs its samples.jsonl), then merge")
    first_folder, first, _ = loaded[0]

    def identity(run: dict[str, Any]) -> tuple:  # the run id hashes the options that can change a number
        return (run["run_id"], run["suite"]["hash"], run["method"]["card"]["name"], sorted(run["metrics"]), run["seed"])

    counts = set()
    indices = []
    for folder, run, _ in loaded:
        if not run.get("shard"):
            raise ValueError(f"{folder}: not a shard run (run.json has no shard)")
        if identity(run) != identity(first):
            raise ValueError(
                f"{folder}: a different configuration than {first_folder} (suite, method, metrics or seed)"
            )
        counts.add(run["shard"]["count"])
        indices.append(run["shard"]["index"])
    if len(counts) != 1:
        raise ValueError(f"the shards disagree on the shard count: {sorted(counts)}")
    count = counts.pop()
    missing = sorted(set(range(count)) - set(indices))
    if missing or len(indices) != len(set(indices)):
        raise ValueError(f"need each of the {count} shards exactly once; missing {missing}, given {sorted(indices)}")
    check_image_id(first["run_id"], f"{first_folder / 'run.json'} run_id")  # a folder name, like an image id
    out = Path(out) if out else first_folder.parent / first["run_id"]
    if (out / "run.json").is_file():
        existing = json.loads((out / "run.json").read_text(encoding="utf-8"))
        if not existing.get("merged_from"):
            raise ValueError(f"{out} holds a run that is not a merge; results are never overwritten, pass --out")
    samples = merge_samples([samples for _, _, samples in loaded])
    owners = {sample["id"]: folder for folder, _, rows in loaded for sample in rows}
    copies = []  # every path is checked before anything is created
    for sample in samples:
        if sample.get("output"):
            owner = owners[sample["id"]]
            where = f"{owner / 'samples.jsonl'} image {sample['id']!r} output"
            source = resolve_inside(owner, sample["output"], where)
            destination = resolve_inside(out, sample["output"], f"{out} image {sample['id']!r} output")
            copies.append((source, destination, sample.get("output_sha256"), where))
    out.mkdir(parents=True, exist_ok=True)
    for source, destination, digest, where in copies:
        if not (destination.is_file() and sha256_file(destination) == digest):
            copy_verified(source, destination, digest, where)
    record = RunRecord.from_dict(first)
    record = replace(
        record,
        shard=None,
        selection={**record.selection, "shard": None},
        merged_from=[folder.name for folder, _, _ in sorted(loaded, key=lambda item: item[1]["shard"]["index"])],
        started_at=min(r["started_at"] for _, r, _ in loaded),
        wall_seconds=sum(float(r["wall_seconds"]) for _, r, _ in loaded),
        sessions=[session for _, r, _ in loaded for session in r.get("sessions", [])],
        environment={
            **record.environment,
            "devices": sorted({r["environment"].get("device", "") for _, r, _ in loaded}),
        },
    )
    total = sum(int(r["counts"].get("total", 0)) for _, r, _ in loaded)
    record = record.tallied(samples, total, settle=True)
    out.mkdir(parents=True, exist_ok=True)
    write_samples(out / "samples.jsonl", samples)
    record.write(out)
    return out


def merge_when_complete(base: Path, count: int) -> Path | None:
    """Merge the ``count`` shards of ``base`` into ``base`` once all are complete (one process does it)."""
    folders = [base.parent / shard_folder_name(base.name, index, count) for index in range(count)]
    for folder in folders:
        try:
            if json.loads((folder / "run.json").read_text(encoding="utf-8")).get("status") != "complete":
                return None
        except (OSError, json.JSONDecodeError):
            return None
    lock = base.parent / f".{base.name}.merge.lock"
    try:
        handle = os.open(lock, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
    except FileExistsError:
        return None  # another shard is merging right now
    try:
        os.close(handle)
        return merge_runs(folders, base)
    finally:
        lock.unlink(missing_ok=True)


def process_start(pid: int) -> str | None:
    """The start time of process ``pid`` (Linux ``/proc/<pid>/stat`` field 22, clock ticks), None if unknown."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text(encoding="ascii")
    except (OSError, UnicodeDecodeError):
        return None
    fields = stat.rsplit(")", 1)[-1].split()
    return fields[19] if len(fields) > 19 else None


def process_record() -> dict[str, Any]:
    """What a running run records about its process (``run.json`` ``process``): pid, host and start time."""
    return {"pid": os.getpid(), "host": socket.gethostname(), "start": process_start(os.getpid())}


def git_sha() -> str | None:
    """The commit of the package's checkout (``+dirty`` if it has changes), or None outside a git checkout."""
    root = Path(__file__).resolve().parent
    if not (root.parent / "pyproject.toml").is_file():  # installed: site-packages may sit in another checkout
        return None
    try:
        sha = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True, timeout=10, check=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"], cwd=root, capture_output=True, text=True,
            timeout=10, check=True,
        ).stdout.strip()  # fmt: skip
    except (OSError, subprocess.SubprocessError):
        return None
    return sha + ("+dirty" if dirty else "")


def environment_record(device: str, dtype: str, memory_kind: str, warmup: str) -> dict[str, Any]:
    """``run.json`` ``environment``: package, git, python, torch/CUDA versions, the device, the dtype, how peak
    memory was measured (``memory_kind``, see :mod:`op4ksr_bench.methods.profiling`) and the warm-up rule."""
    import torch

    import op4ksr_bench

    if device.startswith("cuda"):
        device_name = torch.cuda.get_device_name(device)
    else:
        device_name = platform.processor() or platform.machine()
        try:
            for line in Path("/proc/cpuinfo").read_text().splitlines():
                if line.startswith("model name"):
                    device_name = line.split(":", 1)[1].strip()
                    break
        except OSError:
            pass
    return {
        "package_version": op4ksr_bench.__version__,
        "git_sha": git_sha(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "torch": torch.__version__,
        "cuda": torch.version.cuda,
        "cudnn": torch.backends.cudnn.version() if torch.backends.cudnn.is_available() else None,
        "device": device,
        "device_name": device_name,
        "cpu_threads": torch.get_num_threads(),
        "dtype": dtype,
        "memory_kind": memory_kind,
        "warmup": warmup,
    }
