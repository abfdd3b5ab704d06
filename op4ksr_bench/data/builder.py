"""``build-dataset``: curate, share out, crop, degrade and write checksummed suites, resumably.

A suite is produced in ``<data>/.staging/<suite>/`` and renamed to ``<data>/<suite>/`` only when complete, so a
reader never sees a half-built suite. Every finished image is appended (fsync'd) to the staging folder's
``progress.jsonl``; after a kill, a rerun with the same plan reuses every image whose files still hash as
recorded. Images are produced photo by photo, in worker processes when ``workers > 1``; every output depends
only on the photograph, the spec and the seed, and the manifest is sorted by id, so any number of workers gives
byte-identical suites.
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import os
import shutil
import time
from collections.abc import Iterable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from multiprocessing import get_context
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from op4ksr_bench import __version__
from op4ksr_bench.atomic import append_line, atomic_write_bytes, atomic_write_text, sha256_file
from op4ksr_bench.data import parse_source
from op4ksr_bench.data.curation import MEASURE_VERSION, PhotoMeasurement, estimate_jpeg_quality, measure
from op4ksr_bench.data.manifest import manifest_bytes, manifest_line, suite_hash
from op4ksr_bench.data.partition import PlanItem, SuitePlan, partition
from op4ksr_bench.data.sources import SourceImage, load_source_image
from op4ksr_bench.data.suites import SuiteSpec
from op4ksr_bench.errors import ImageError, ManifestError
from op4ksr_bench.safepaths import check_image_id

logger = logging.getLogger(__name__)

BUILD_FORMAT = 1
"""Bump when the bytes a build writes change for the same spec (invalidates resumable staging folders)."""


class Progress(Protocol):
    """What the builder reports to (the CLI shows it with rich progress bars)."""

    def start(self, description: str, total: int | None) -> Any: ...

    def advance(self, task: Any, amount: int = 1) -> None: ...

    def log(self, text: str) -> None: ...


@dataclass(frozen=True)
class BuildResult:
    """Outcome of one suite: ``status`` is ``built``, ``skipped`` (already built) or ``imported``."""

    name: str
    status: str
    count: int
    seconds: float
    root: Path
    reused: int = 0


# ------------------------------------------------------------------------------------------------ measurements


class MeasurementCache:
    """Measurements keyed by the photograph's sha256, kept in ``<data>/.cache/measurements/`` and in memory."""

    def __init__(self, folder: Path, nr_iqa_metrics: Iterable[str] = ()) -> None:
        self.folder = Path(folder)
        self.nr_iqa_metrics = tuple(sorted(set(nr_iqa_metrics)))
        self.nr_iqa_notes: list[str] = []
        self._memory: dict[str, PhotoMeasurement] = {}
        self._digests: dict[str, str] = {}

    def digest(self, photo: SourceImage) -> str:
        if photo.path not in self._digests:
            self._digests[photo.path] = sha256_file(Path(photo.path))
        return self._digests[photo.path]

    def path_for(self, photo: SourceImage) -> Path:
        extra = "-" + "-".join(self.nr_iqa_metrics) if self.nr_iqa_metrics else ""
        return self.folder / f"{self.digest(photo)}-v{MEASURE_VERSION}{extra}.npz"

    def __call__(self, photo: SourceImage) -> PhotoMeasurement:
        key = photo.path
        if key in self._memory:
            return self._memory[key]
        path = self.path_for(photo)
        measurement = load_measurement(path) if path.is_file() else None
        if measurement is None:
            measurement = compute_measurement(photo, self.nr_iqa_metrics, self.nr_iqa_notes)
            save_measurement(path, measurement)
        for metric in self.nr_iqa_metrics:
            if metric not in measurement.nr_iqa:
                note = f"NR-IQA filter {metric} not applied: no score (metric or its weights unavailable)"
                if note not in self.nr_iqa_notes:
                    self.nr_iqa_notes.append(note)
        self._memory[key] = measurement
        return measurement


def compute_measurement(photo: SourceImage, nr_iqa_metrics: tuple[str, ...] = (), notes: list | None = None):
    """Decode and measure one photograph (raises ``ImageError`` for unreadable files)."""
    image = load_source_image(photo)
    try:
        quality = estimate_jpeg_quality(Path(photo.path))
    except OSError as error:
        raise ImageError(f"{photo.path}: cannot read the JPEG header ({error})") from error
    result = measure(image, quality)
    if nr_iqa_metrics:
        import cv2

        from op4ksr_bench.data.curation import nr_iqa_scores

        factor = min(1.0, 1024.0 / max(image.shape[:2]))
        small = cv2.resize(
            image, (round(image.shape[1] * factor), round(image.shape[0] * factor)), interpolation=cv2.INTER_AREA
        )
        for metric in nr_iqa_metrics:
            scores, skipped = nr_iqa_scores({"photo": small}, metric)
            if skipped and notes is not None and skipped not in notes:
                notes.append(skipped)
            if "photo" in scores:
                result.nr_iqa[metric] = scores["photo"]
    return result


def save_measurement(path: Path, measurement: PhotoMeasurement) -> None:
    buffer = io.BytesIO()
    np.savez(
        buffer,
        scalars=np.frombuffer(json.dumps(measurement.scalars()).encode(), dtype=np.uint8),
        detail=measurement.detail_map,
        std=measurement.std_map,
    )
    atomic_write_bytes(path, buffer.getvalue())


def load_measurement(path: Path) -> PhotoMeasurement | None:
    try:
        with np.load(path) as data:
            scalars = json.loads(bytes(data["scalars"]).decode())
            return PhotoMeasurement(**scalars, detail_map=data["detail"], std_map=data["std"])
    except (OSError, ValueError, KeyError, TypeError):
        return None  # a damaged cache entry is recomputed


def _measure_worker(photo: SourceImage, folder: str, nr_iqa_metrics: tuple[str, ...]) -> str | None:
    cache = MeasurementCache(Path(folder), nr_iqa_metrics)
    try:
        cache(photo)
    except ImageError as error:
        return str(error)
    return None


# -------------------------------------------------------------------------------------------------- production


def _encode(path: Path, image: np.ndarray) -> tuple[str, int, int]:
    from op4ksr_bench.imageio import encode_png

    data = encode_png(image)
    atomic_write_bytes(path, data)
    return hashlib.sha256(data).hexdigest(), int(image.shape[1]), int(image.shape[0])


def produce_photo(items: list[PlanItem], task: str, scale: int, degradation: dict | None, staging: str) -> list[dict]:
    """Decode one photograph once and write every planned crop of it; returns their manifest entries."""
    from op4ksr_bench.data.degradations import DegradationConfig, degrade

    image = load_source_image(items[0].photo)
    source_digest = sha256_file(Path(items[0].photo.path))
    config = DegradationConfig.from_dict(degradation) if task == "synthetic" else None
    entries = []
    for item in items:
        box = item.crop
        crop = np.ascontiguousarray(image[box["y"] : box["y"] + box["h"], box["x"] : box["x"] + box["w"]])
        if crop.shape[:2] != (box["h"], box["w"]):
            raise ImageError(f"{item.photo.path}: crop {box} falls outside the {image.shape[1]}x{image.shape[0]} image")
        entry: dict[str, Any] = {
            "id": item.id, "lr": None, "hr": None, "lr_sha256": None, "hr_sha256": None, "lr_width": None,
            "lr_height": None, "hr_width": None, "hr_height": None, "source": item.photo.source,
            "original_path": item.photo.original_path, "license": item.photo.licence,
            "attribution": item.photo.attribution, "crop": dict(box), "degradation": None,
            "source_sha256": source_digest,
        }  # fmt: skip
        if task in ("synthetic", "train"):
            entry["hr"] = f"hr/{item.id}.png"
            entry["hr_sha256"], entry["hr_width"], entry["hr_height"] = _encode(Path(staging) / entry["hr"], crop)
        if task == "synthetic":
            lr, entry["degradation"] = degrade(crop, scale, config, item.seed)
        elif task == "real":
            lr = crop
        else:
            lr = None
        if lr is not None:
            entry["lr"] = f"lr/{item.id}.png"
            entry["lr_sha256"], entry["lr_width"], entry["lr_height"] = _encode(Path(staging) / entry["lr"], lr)
        entries.append(json.loads(manifest_line(entry)))  # normalise floats / tuples exactly as written
    return entries


def _reusable(staging: Path, entry: dict) -> bool:
    for key in ("lr", "hr"):
        if entry.get(key) is None:
            continue
        path = staging / entry[key]
        if not path.is_file() or sha256_file(path) != entry[f"{key}_sha256"]:
            return False
    return True


def read_progress(path: Path) -> dict[str, dict]:
    """Entries already produced (a torn last line from a kill is skipped)."""
    done: dict[str, dict] = {}
    if not path.is_file():
        return done
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        try:
            entry = json.loads(line)
        except ValueError:
            continue
        if isinstance(entry, dict) and "id" in entry:
            done[entry["id"]] = entry
    return done


def plan_key(plan: SuitePlan) -> str:
    """Hash of everything that decides the suite's bytes (spec, planned crops, photo files, build format)."""
    items = [[item.id, item.photo.path, item.photo.id, item.crop, item.seed] for item in plan.items]
    text = json.dumps([BUILD_FORMAT, __version__, plan.spec.to_yaml(), items], sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()


def produce_suite(plan: SuitePlan, data_dir: Path, workers: int, progress: Progress) -> tuple[list[dict], int]:
    """Produce every planned image into the staging folder; returns (entries, number reused from a killed run)."""
    spec = plan.spec
    for item in plan.items:  # ids become file names (lr/<id>.png): checked before anything is written
        check_image_id(item.id, f"suite {spec.name}: source {item.photo.path}", ManifestError)
    staging = data_dir / ".staging" / spec.name
    key = plan_key(plan)
    key_file = staging / "plan-key.txt"
    if staging.exists() and (not key_file.is_file() or key_file.read_text().strip() != key):
        shutil.rmtree(staging)
    staging.mkdir(parents=True, exist_ok=True)
    atomic_write_text(key_file, key)
    progress_file = staging / "progress.jsonl"
    done = {image_id: entry for image_id, entry in read_progress(progress_file).items() if _reusable(staging, entry)}
    planned_ids = {item.id for item in plan.items}
    done = {image_id: entry for image_id, entry in done.items() if image_id in planned_ids}
    groups: dict[str, list[PlanItem]] = {}
    for item in plan.items:
        if item.id not in done:
            groups.setdefault(item.photo.id, []).append(item)
    task = progress.start(f"{spec.name}: images", len(plan.items))
    progress.advance(task, len(done))
    entries = list(done.values())
    arguments = [(items, spec.task, spec.scale, spec.degradation, str(staging)) for _, items in sorted(groups.items())]
    for produced in _map(produce_photo, arguments, workers):
        for entry in produced:
            append_line(progress_file, manifest_line(entry))
        entries.extend(produced)
        progress.advance(task, len(produced))
    return entries, len(done)


def _map(function, arguments: list[tuple], workers: int):
    if workers <= 1 or len(arguments) <= 1:
        for argument in arguments:
            yield function(*argument)
        return
    with ProcessPoolExecutor(max_workers=workers, mp_context=get_context("spawn")) as pool:
        futures = [pool.submit(function, *argument) for argument in arguments]
        for future in futures:
            yield future.result()


# ------------------------------------------------------------------------------------------------ finalisation


def finalize_suite(
    spec: SuiteSpec,
    entries: list[dict],
    rejected: list[dict],
    extra_info: dict[str, Any],
    data_dir: Path,
    staging: Path,
) -> Path:
    """Write suite.yaml / manifest.jsonl / suite.json / rejected.jsonl and move the staging folder into place."""
    yaml_bytes = spec.to_yaml().encode("utf-8")
    manifest = manifest_bytes(entries)
    info = {
        "name": spec.name, "version": spec.version, "variant": spec.variant, "task": spec.task,
        "scale": spec.scale, "hr_size": list(spec.hr_size) if spec.hr_size else None,
        "lr_size": list(spec.lr_size) if spec.lr_size else None, "count": len(entries),
        "hash": suite_hash(yaml_bytes, manifest), "built_with": f"op4ksr-bench {__version__}",
        "crop_border": spec.crop_border, "metrics": list(spec.metrics), **extra_info,
    }  # fmt: skip
    atomic_write_bytes(staging / "suite.yaml", yaml_bytes)
    atomic_write_bytes(staging / "manifest.jsonl", manifest)
    rejected_text = "".join(manifest_line(record) + "\n" for record in sorted(rejected, key=lambda r: r["id"]))
    atomic_write_text(staging / "rejected.jsonl", rejected_text)
    atomic_write_text(staging / "suite.json", json.dumps(info, indent=2, sort_keys=True) + "\n")
    for name in ("progress.jsonl", "plan-key.txt"):
        (staging / name).unlink(missing_ok=True)
    for stray in staging.rglob(".tmp-*"):
        stray.unlink()
    final = data_dir / spec.name
    trash = None
    if final.exists():
        trash = data_dir / ".trash" / f"{spec.name}-{os.getpid()}-{time.monotonic_ns()}"
        trash.parent.mkdir(parents=True, exist_ok=True)
        os.replace(final, trash)
    os.replace(staging, final)
    if trash is not None:
        shutil.rmtree(trash, ignore_errors=True)
    return final


def is_built(data_dir: Path, name: str) -> bool:
    return (Path(data_dir) / name / "suite.json").is_file()


def rejection_summary(rejected: list[dict]) -> str:
    """``resolution x3 (e.g. photo1: 256x256 below 320x192), ...``: each rejection kind with its count and the
    full reason (measured value and threshold) of its first photograph."""
    kinds: dict[str, list[dict]] = {}
    for record in rejected:
        kinds.setdefault(record["reason"].split(":")[0], []).append(record)
    parts = []
    for kind, records in sorted(kinds.items()):
        first = records[0]
        detail = first["reason"].partition(":")[2].strip()
        parts.append(f"{kind} x{len(records)} (e.g. {first['id']}: {detail})" if detail else f"{kind} x{len(records)}")
    return ", ".join(parts)


def build_pool(
    specs: list[SuiteSpec],
    wanted: list[str],
    source_specs: list[str],
    data_dir: Path,
    limit: int | None,
    workers: int,
    progress: Progress,
) -> list[BuildResult]:
    """Partition one pool's photographs between ``specs`` and build the suites named in ``wanted``."""
    started = time.monotonic()
    cache_dir = data_dir / ".cache"
    sources = [parse_source(spec, cache_dir) for spec in source_specs]
    photos: list[SourceImage] = []
    listing = progress.start("listing sources", len(sources))
    for source in sources:
        photos.extend(source.list_images())
        progress.advance(listing)
    if not photos:
        raise ManifestError(f"sources {source_specs} gave no images")
    ids = [photo.id for photo in photos]
    if len(set(ids)) != len(ids):
        raise ManifestError("two sources gave images with the same id; use one source per folder or dataset")
    nr_metrics = sorted({spec.curation["nr_iqa"]["metric"] for spec in specs if (spec.curation.get("nr_iqa") or {})})
    cache = MeasurementCache(cache_dir / "measurements", nr_metrics)
    _premeasure(photos, cache, workers, limit, progress)
    pool_seed = int(min(specs, key=lambda s: int(s.source.get("priority", 100))).source.get("pool_seed", 0))
    plans = partition(specs, photos, cache, pool_seed, limit)
    source_info = [source.info() for source in sources]
    results = []
    for name in wanted:
        plan = plans[name]
        if not plan.items:
            raise ManifestError(
                f"suite {name}: no photograph of {source_specs} passed its curation and crop rules "
                f"(rejections: {rejection_summary(plan.rejected) or 'all photographs went to other suites'}); "
                "add photographs"
            )
        suite_started = time.monotonic()
        entries, reused = produce_suite(plan, data_dir, workers, progress)
        extra = {
            "sources": source_info,
            "pool": {"name": plan.spec.source.get("pool", plan.spec.name), "seed": pool_seed,
                     "suites": sorted(plans), "photos": len(photos)},
            "photos": sorted({item.photo.id for item in plan.items}),
            "rejected_count": len(plan.rejected),
            "nr_iqa": cache.nr_iqa_notes or None,
        }  # fmt: skip
        root = finalize_suite(plan.spec, entries, plan.rejected, extra, data_dir, data_dir / ".staging" / name)
        # the first suite also carries the shared listing and measuring time
        elapsed = time.monotonic() - (started if not results else suite_started)
        results.append(BuildResult(name, "built", len(entries), elapsed, root, reused))
        progress.log(f"{name}: {len(entries)} images from {len(extra['photos'])} photographs -> {root}")
    return results


def _premeasure(photos, cache: MeasurementCache, workers: int, limit: int | None, progress: Progress) -> None:
    """Measure every photograph up front (in parallel) unless ``--limit`` makes lazy measuring cheaper."""
    if limit is not None:
        return
    missing = [photo for photo in photos if not cache.path_for(photo).is_file()]
    task = progress.start("measuring photographs", len(photos))
    progress.advance(task, len(photos) - len(missing))
    arguments = [(photo, str(cache.folder), cache.nr_iqa_metrics) for photo in missing]
    for _ in _map(_measure_worker, arguments, workers):
        progress.advance(task)
