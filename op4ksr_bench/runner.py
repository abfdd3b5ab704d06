"""The run engine: infer, save the 8-bit PNG, score the saved file, record; resumable and sharded.

Per image: read the LR (:mod:`op4ksr_bench.imageio`), seed torch/numpy/random with a seed derived from
``--seed`` and the image id (so results do not depend on order or sharding), call the method with the device
synchronised before and after (warm-up excluded: one untimed call on a 64x64 crop of the first image), check
the output (shape ``[1, 3, h*s, w*s]``, finite, within ``[0, 1]``), save it as an 8-bit PNG
(``round(x * 255)``), and score that saved file through :func:`op4ksr_bench.metrics.scoring.score_files`, the
code path of ``op4ksr-bench score``. A failure of any step fails that image with its reason; the run goes on.

Resume: the run folder's name is a hash of everything that can change a number (suite hash, method spec and
options in effect, metric settings, seed, dtype, device type, package version, and the sha256 of the files the
method reads: :mod:`op4ksr_bench.identity`), so a rerun finds the same folder and skips images whose row is
``ok`` with the same input hash and an intact output file; changed outputs, weights or cards give a new folder
(with a warning naming the older run), and ``--fresh`` deletes the folder first. ``--ids`` picks images by id
or glob; while one image runs longer than :data:`HEARTBEAT_SECONDS`, a heartbeat line says so. Rows are
appended and fsynced one by one; a rerun first rewrites ``samples.jsonl`` without a torn tail and without the
rows it will redo.

Sharding: ``--shard I/N`` (or ``RANK``/``WORLD_SIZE`` from ``torchrun`` / ``accelerate launch``) runs the images
whose manifest index is ``I`` modulo ``N`` into ``<run-id>-shardIofN``; the shard that completes last merges
all shards into ``<run-id>`` (also available as ``op4ksr-bench merge``).

The commands that drive it (``run``, ``merge``) are :mod:`op4ksr_bench.run_commands`; the API is
:mod:`op4ksr_bench.api`.
"""

from __future__ import annotations

import hashlib
import logging
import math
import random
import shutil
import threading
import time
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from fnmatch import fnmatchcase
from pathlib import Path
from typing import Any

from op4ksr_bench.atomic import append_line, atomic_write_bytes, sha256_file
from op4ksr_bench.console import throughput
from op4ksr_bench.data.custom import built_suite_names, is_built_here
from op4ksr_bench.data.manifest import BuiltSuite
from op4ksr_bench.data.suites import load_suite_spec, suite_names
from op4ksr_bench.errors import ManifestError, Op4ksrError
from op4ksr_bench.identity import older_runs_with_other_content, run_identity
from op4ksr_bench.identity import run_id as make_run_id
from op4ksr_bench.methods.base import check_output
from op4ksr_bench.methods.factory import method_slug
from op4ksr_bench.methods.profiling import PeakMemory, synchronize
from op4ksr_bench.metrics import METRICS
from op4ksr_bench.results import (
    RunRecord,
    SampleRow,
    environment_record,
    merge_when_complete,
    previous_run_facts,
    process_record,
    read_samples,
    run_folder,
    scan_samples,
    shard_folder_name,
    write_samples,
)
from op4ksr_bench.safepaths import UnsafePathError, check_image_id, resolve_inside
from op4ksr_bench.seeds import image_seed

logger = logging.getLogger(__name__)

WARMUP_SIZE = 64
"""Side (LR pixels) of the top-left crop of the first image used for the untimed warm-up call."""
OUTPUT_PNG_LEVEL = 1
"""zlib level of saved outputs: lossless like any level, and the fastest to write (see imageio.encode_png)."""
HEARTBEAT_SECONDS = 20.0
"""While one image (or an external batch) runs longer than this, a line saying so is printed this often."""
WARMUP_RULE = f"one untimed call on the top-left {WARMUP_SIZE}x{WARMUP_SIZE} LR crop of the first image"
SEED_RULE = "per image: first 32 bits of sha256('<seed>:<image id>') seeds torch, numpy and random"


@dataclass(frozen=True)
class ImageJob:
    """What every image of one suite's run shares: the method, the created metrics, device, seed, run folder."""

    method: Any
    metrics: tuple
    device: str
    seed: int
    folder: Path


@dataclass
class SuiteOutcome:
    """What one suite's run did (for the summary line and the exit code)."""

    suite: str
    folder: Path
    selected: int = 0
    resumed: int = 0
    ok: int = 0
    failed: int = 0
    failures: list[tuple[str, str]] = field(default_factory=list)
    summary: dict[str, Any] = field(default_factory=dict)


def select_entries(entries: list[dict[str, Any]], patterns: list[str] | None) -> list[tuple[int, dict[str, Any]]]:
    """``(manifest index, entry)`` of the entries whose id matches any of ``patterns`` (all when None)."""
    indexed = list(enumerate(entries))
    if not patterns:
        return indexed
    return [(index, entry) for index, entry in indexed if any(fnmatchcase(entry["id"], p) for p in patterns)]


def without_ground_truth(built, names) -> list[str]:
    """The full-reference metrics among ``names`` when the suite has no ground truth (no entry has an HR)."""
    if any(entry.get("hr") for entry in built.entries):
        return []
    return [name for name in names if METRICS.get(name).kind == "FR"]


def _duration(seconds: float) -> str:
    minutes, rest = divmod(int(seconds), 60)
    return f"{minutes}m{rest:02d}s" if minutes else f"{rest}s"


class Heartbeat:
    """A background thread that prints ``<label>: still running after 1m20s (tile 3 of 12)`` every ``interval``
    seconds until the ``with`` block ends; the tile count comes from ``progress()`` when the method knows it."""

    def __init__(self, echo, label: str, interval: float = HEARTBEAT_SECONDS, progress=None) -> None:
        self.echo, self.label, self.interval, self.progress = echo, label, interval, progress
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._beat, name="op4ksr-heartbeat", daemon=True)

    def _beat(self) -> None:
        start = time.perf_counter()
        while not self._stop.wait(self.interval):
            where = self.progress() if self.progress else None
            detail = f" ({where})" if where else ""
            self.echo(f"{self.label}: still running after {_duration(time.perf_counter() - start)}{detail}")

    def __enter__(self) -> Heartbeat:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()


def method_progress(method) -> str | None:
    """``tile k of n`` while a tiled method is inside its tile loop, else None."""
    progress = getattr(method, "progress", None)
    if not progress:
        return None
    done, total = progress
    return f"tile {min(done + 1, total)} of {total}"


def seed_everything(seed: int) -> None:
    """Seed torch (all devices), numpy and random."""
    import numpy as np
    import torch

    torch.manual_seed(seed)
    np.random.seed(seed)
    random.seed(seed)


def resolve_suites(suite: str, data_dir: Path, echo) -> list:
    """Built suites for ``--suite``: ``all`` = every built evaluation suite (others skipped with a warning).

    Raises:
        ManifestError: a named suite is not built, or ``all`` finds none built.
    """
    if suite != "all":
        names = [name.strip() for name in suite.split(",") if name.strip()]
        for name in names:
            if not is_built_here(data_dir, name):  # a custom suite is defined by its data folder's suite.yaml
                load_suite_spec(name)  # unknown names fail with "did you mean"
        return [BuiltSuite.open(data_dir, name) for name in names]
    built = []
    defined = suite_names()
    for name in [*defined, *(name for name in built_suite_names(data_dir) if name not in defined)]:
        if load_suite_spec(name).task == "train":
            continue
        try:
            built.append(BuiltSuite.open(data_dir, name))
        except ManifestError as error:
            echo(f"warning: skipping {name}: {error}")
    if not built:
        raise ManifestError(f"no evaluation suite is built in {data_dir}; run `op4ksr-bench build-dataset --suite all`")
    return built


def _one_line(error: BaseException, limit: int = 400) -> str:
    text = " ".join(str(error).split()) or repr(error)
    return f"{type(error).__name__}: {text[:limit]}"


def _metric_values(values: dict[str, Any]) -> dict[str, float | None]:
    clean: dict[str, float | None] = {}
    for key, value in values.items():
        number = None if value is None else float(value)
        clean[key] = number if number is not None and math.isfinite(number) else None
    return clean


def run_suite(
    built,
    method,
    *,
    spec: str,
    user_options: dict[str, Any],
    metric_names: list[str] | None,
    results_root: Path,
    device: str,
    dtype: str,
    seed: int,
    limit: int | None = None,
    shard: tuple[int, int] | None = None,
    echo=print,
    fresh: bool = False,
    ids: list[str] | None = None,
    heartbeat_seconds: float = HEARTBEAT_SECONDS,
) -> SuiteOutcome:
    """Run ``method`` on one built suite (see the module docstring); returns what happened."""
    from op4ksr_bench.metrics.scoring import create_metrics, declared_tile_stride, metric_record

    suite_spec = built.spec
    built.check_hash()  # a suite edited after its build never runs under the build's hash
    periods = tuple(method.periods())
    no_truth = without_ground_truth(built, metric_names if metric_names is not None else suite_spec.metrics)
    for name in no_truth:
        echo(f"warning: skipping {name} on {suite_spec.name}: no ground truth (a full-reference metric)")
    metric_objects, warnings = create_metrics(
        None if metric_names is None else [name for name in metric_names if name not in no_truth],
        default_names=tuple(name for name in suite_spec.metrics if name not in no_truth),
        crop_border=int(suite_spec.crop_border), extra_periods=periods, tile_stride=declared_tile_stride(method),
        device=device,
    )  # fmt: skip
    for warning in warnings:
        echo(f"warning: {warning}")
    created = {metric.name for metric in metric_objects}
    skipped = {
        name: "no ground truth" if name in no_truth else next((w for w in warnings if name in w), "not available")
        for name in (metric_names or suite_spec.metrics)
        if name not in created
    }
    records = {metric.name: metric_record(metric) for metric in metric_objects}
    options = method.options()
    identity = run_identity(suite_hash=built.hash, method=method, metric_records=records, device=device, seed=seed)
    run_id = make_run_id(identity)
    slug = method_slug(method)
    base = run_folder(results_root, suite_spec.name, suite_spec.version, slug, run_id)
    folder = base.parent / shard_folder_name(run_id, *shard) if shard else base
    outcome = SuiteOutcome(suite=suite_spec.name, folder=folder)
    _check_run_folder(results_root, folder)
    for other, changed in older_runs_with_other_content(base.parent, run_id, spec, identity, user_options):
        inputs = f"on different inputs ({changed} changed)" if changed else "before its inputs were hashed"
        echo(f"warning: {base.parent / other} ran {spec} with the same settings {inputs}; its numbers stay "
             f"there and this is a new run, {run_id}")  # fmt: skip
    if fresh and folder.exists():
        echo(f"[{suite_spec.name}] --fresh: starting {folder} over")
        shutil.rmtree(folder)

    indexed = select_entries(built.entries, ids)[: limit or None]
    selected = [(index, entry) for index, entry in indexed if not shard or index % shard[1] == shard[0]]
    outcome.selected = len(selected)
    kept = _resume(folder, {entry["id"]: entry for _, entry in selected}, echo)
    done = {row["id"] for row in kept}
    outcome.resumed = len(done)
    pending = [(index, entry) for index, entry in selected if entry["id"] not in done]

    memory_kind = PeakMemory(device).kind
    run_path = folder / "run.json"
    previous = previous_run_facts(run_path, echo)
    started = datetime.now(UTC).isoformat(timespec="seconds")
    run = RunRecord(
        run_id=run_id,
        identity=identity,
        suite={
            "name": suite_spec.name, "variant": built.info.get("variant", suite_spec.variant),
            "version": suite_spec.version, "hash": built.hash, "scale": int(suite_spec.scale),
            "task": suite_spec.task, "count": len(built.entries),
        },
        method={"spec": spec, "slug": slug, "card": method.card.to_dict(), "options": options,
                "user_options": user_options, "timing": method.timing, "periods": list(periods)},
        metrics=records,
        skipped_metrics=skipped,
        environment=environment_record(device, dtype, memory_kind, warmup=WARMUP_RULE),
        seed=seed,
        seed_rule=SEED_RULE,
        outputs={"format": "PNG, 8-bit RGB", "quantisation": "round(clamp(x, 0, 1) * 255)",
                 "compress_level": OUTPUT_PNG_LEVEL, "folder": "images/"},
        shard={"index": shard[0], "count": shard[1]} if shard else None,
        selection={"limit": limit, "shard": f"{shard[0]}/{shard[1]}" if shard else None, "ids": ids},
        process=process_record(),  # a "running" run whose process is gone shows as interrupted
        started_at=previous.get("started_at", started),
        sessions=[*previous.get("sessions", []), {"started_at": started, "images": len(pending)}],
        wall_seconds=float(previous.get("wall_seconds", 0.0)),
    )  # fmt: skip
    folder.mkdir(parents=True, exist_ok=True)
    selected_ids = [entry["id"] for _, entry in selected]
    run = _finish(run, folder, outcome, selected_ids, settle=False)

    session_start = time.perf_counter()
    with Heartbeat(echo, f"[{suite_spec.name}] {method.card.name} batch of {len(pending)}", heartbeat_seconds):
        method.prepare([(entry["id"], built.lr_path(entry)) for _, entry in pending], folder / "work")
    if pending and method.timing == "measured":
        _warm_up(method, built.lr_path(pending[0][1]), pending[0][1]["id"], device, echo)
    job = ImageJob(method=method, metrics=tuple(metric_objects), device=device, seed=seed, folder=folder)
    for number, (index, entry) in enumerate(pending, start=1):
        label = f"[{suite_spec.name}] {outcome.resumed + number}/{len(selected)} {entry['id']}"
        with Heartbeat(echo, label, heartbeat_seconds, progress=lambda: method_progress(method)):
            row = _process(built, index, entry, job)
        append_line(folder / "samples.jsonl", row.to_line())
        took = f"{row.seconds:.2f}s" if isinstance(row.seconds, float) else "-"
        status = row.status if row.status == "ok" else f"FAILED ({row.reason})"
        echo(f"[{suite_spec.name}] {outcome.resumed + number}/{len(selected)} {entry['id']} {status} {took} "
             f"| {throughput(number, len(pending), time.perf_counter() - session_start)}")  # fmt: skip
    session_seconds = time.perf_counter() - session_start
    run = replace(
        run,
        wall_seconds=run.wall_seconds + session_seconds,
        sessions=[*run.sessions[:-1], {**run.sessions[-1], "wall_seconds": round(session_seconds, 3)}],
    )
    _finish(run, folder, outcome, selected_ids, settle=True)
    if shard and outcome.selected == outcome.ok + outcome.failed:
        try:
            merged = merge_when_complete(base, shard[1])
        except ValueError as error:  # a shard's files are damaged or hostile: the shards stay as they are
            merged = None
            echo(f"warning: shards not merged: {error}; fix or rerun that shard, then `op4ksr-bench merge`")
        if merged:
            echo(f"[{suite_spec.name}] all {shard[1]} shards complete: merged into {merged}")
    return outcome


def _check_run_folder(results_root: Path, folder: Path) -> None:
    """Refuse a run folder reached through a link, or holding links where the run writes (results may be shared).

    Raises:
        UnsafePathError: one line naming the link.
    """
    resolve_inside(Path(results_root), Path(folder).relative_to(results_root).as_posix(), "results folder")
    for name in ("samples.jsonl", "run.json", "images", "work"):
        resolve_inside(Path(folder), name, f"run folder {folder}")


def _output_path(folder: Path, row: dict[str, Any]) -> Path | None:
    """The row's output file inside ``folder`` (None when the row names none, or a path outside or via a link)."""
    if not row.get("output"):
        return None
    try:
        return resolve_inside(folder, row["output"], f"{folder / 'samples.jsonl'} image {row['id']!r}")
    except UnsafePathError as error:
        logger.warning("%s; the image is redone", error)
        return None


def _resume(folder: Path, selected: dict[str, dict[str, Any]], echo=None) -> list[dict[str, Any]]:
    """Keep the ``ok`` rows that still hold (same input hash, intact output); rewrite the file without the rest.

    Torn or damaged lines anywhere in ``samples.jsonl`` and rows holding NaN/Infinity are dropped (named through
    ``echo``), so their images are redone.
    """
    path = folder / "samples.jsonl"
    scan = scan_samples(path)
    for problem in scan.problems:
        (echo or logger.warning)(f"warning: {folder}/{problem}; the image is redone")
    rows = [row for row in scan.rows if row["id"] not in scan.non_finite]
    if not rows:
        if path.exists() and path.stat().st_size:
            write_samples(path, [])  # only damage: start the file afresh, or the next row is glued onto it
        return []
    kept = []
    for row in rows:
        entry = selected.get(row["id"])
        output = _output_path(folder, row)
        if (
            row.get("status") == "ok"
            and (entry is None or row.get("lr_sha256") == entry.get("lr_sha256"))
            and output is not None
            and output.is_file()
            and sha256_file(output) == row.get("output_sha256")
        ):
            kept.append(row)
    kept.sort(key=lambda r: (r.get("index", 0) if isinstance(r.get("index"), int) else 0, r["id"]))
    if len(kept) != len(rows) or not scan.clean or path.read_bytes().count(b"\n") != len(rows):
        write_samples(path, kept)
    return [row for row in kept if row["id"] in selected]


def _warm_up(method, lr_path: Path, image_id: str, device: str, echo) -> None:
    from op4ksr_bench.imageio import read_image, to_tensor

    try:
        array = read_image(lr_path)[:WARMUP_SIZE, :WARMUP_SIZE]
        method.upscale_sample(image_id, to_tensor(array.copy()).to(device))
        synchronize(device)
    except Exception as error:  # the timed call will fail the same way and record it
        logger.debug("warm-up failed: %s", _one_line(error))


def _process(built, index: int, entry: dict[str, Any], job: ImageJob) -> SampleRow:
    """Infer, check, save and score one image; every failure becomes the row's reason."""
    start = time.perf_counter()
    row = SampleRow(
        id=entry["id"], index=index, timing=job.method.timing, lr_sha256=entry.get("lr_sha256"),
        hr_sha256=entry.get("hr_sha256"),
    )  # fmt: skip
    row = _attempt(built, entry, row, job)
    return replace(row, wall_seconds=time.perf_counter() - start)


def _attempt(built, entry: dict[str, Any], row: SampleRow, job: ImageJob) -> SampleRow:
    """The steps of :func:`_process`; returns ``row`` with what they found (``ok`` only if all succeeded)."""
    from op4ksr_bench.imageio import encode_png, from_tensor, read_image, to_tensor
    from op4ksr_bench.metrics.scoring import score_files

    method, device, folder, image_id = job.method, job.device, job.folder, row.id
    try:
        check_image_id(image_id, f"suite {built.spec.name}", ManifestError)  # it names the output file
        lr_path = built.lr_path(entry)
        _check_input(lr_path, entry.get("lr_sha256"))
        lr = to_tensor(read_image(lr_path)).to(device)
    except Op4ksrError as error:
        return replace(row, reason=f"input: {error}")
    seed_everything(image_seed(job.seed, image_id))
    try:
        with PeakMemory(device) as memory:
            synchronize(device)
            begin = time.perf_counter()
            output = method.upscale_sample(image_id, lr)
            synchronize(device)
            seconds = time.perf_counter() - begin
    except Exception as error:
        _release(device)
        return replace(row, reason=f"crash: {_one_line(error)}")
    if method.timing == "measured":
        row = replace(row, seconds=seconds, peak_memory_bytes=memory.bytes)
    elif method.timing == "amortised":
        row = replace(row, seconds=method.amortised_seconds)
    problem = check_output(output, tuple(lr.shape), method.scale)
    if problem:
        return replace(row, reason=problem)
    data = encode_png(from_tensor(output), compress_level=OUTPUT_PNG_LEVEL)
    relative = f"images/{image_id}.png"
    atomic_write_bytes(folder / relative, data)
    row = replace(row, output=relative, output_sha256=hashlib.sha256(data).hexdigest())
    del output
    begin = time.perf_counter()
    try:
        hr_path = built.hr_path(entry)
        if hr_path is not None:
            _check_input(hr_path, entry.get("hr_sha256"))
    except Op4ksrError as error:
        return replace(row, reason=f"input: {error}")
    try:
        values = score_files(list(job.metrics), folder / relative, hr_path)
    except Exception as error:
        return replace(row, reason=f"scoring: {_one_line(error)}")
    return replace(row, status="ok", metrics=_metric_values(values), score_seconds=time.perf_counter() - begin)


def _check_input(path: Path, expected: str | None) -> None:
    """Hash a suite file as it is read and compare it with the manifest.

    Raises:
        ManifestError: the bytes differ from the build (one line naming the file and what to do).
    """
    try:
        actual = sha256_file(path)
    except OSError as error:
        raise ManifestError(f"{path}: unreadable ({error.strerror}); run `op4ksr-bench validate`") from None
    if actual != expected:
        raise ManifestError(
            f"{path}: altered since the build (sha256 {actual[:12]}..., manifest {str(expected)[:12]}...); "
            "run `op4ksr-bench validate` and rebuild the suite with --force"
        )


def _release(device: str) -> None:
    if device.startswith("cuda"):
        import torch

        torch.cuda.empty_cache()


def _finish(run: RunRecord, folder: Path, outcome: SuiteOutcome, selected_ids: list[str], *, settle: bool) -> RunRecord:
    """Recompute counts and summaries from ``samples.jsonl``, write ``run.json`` atomically, return the record.

    With ``settle`` (the session is over) the status becomes complete or incomplete and ``outcome`` is filled.
    """
    wanted = set(selected_ids)
    rows = [row for row in read_samples(folder / "samples.jsonl") if row["id"] in wanted]
    run = run.tallied(rows, len(selected_ids), settle=settle)
    if settle:
        failed = [row for row in rows if row["status"] == "failed"]
        outcome.ok, outcome.failed = run.counts["ok"], len(failed)
        outcome.failures = [(row["id"], str(row["reason"])) for row in failed]
        outcome.summary = run.summary
    run.write(folder)
    return run
