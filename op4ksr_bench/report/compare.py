"""Visual comparisons: the same crop of one benchmark image from every method, beside the LR and the HR.

Crops are chosen deterministically (:func:`select_windows`, on the HR when the suite has one, else on the LR):
``detail``, the square of highest gradient energy, and ``smooth``, the mid-tone square of lowest gradient
energy, where grid and seam artifacts show most; users add their own with ``--crop ID:X,Y,SIZE`` (output
pixels, top-left corner).

Only small cropped PNGs are written into the site (never the full 4K outputs), and ``crops.json`` records,
for every crop file, the sha256 of the image it was cut from. When a later regeneration cannot see the data
folder or a run's output images (e.g. a clean clone holding only the committed result files), a crop whose
source hash still matches is reused from that record; anything else shows ``-`` with the reason.
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from op4ksr_bench.atomic import atomic_write_bytes, sha256_file
from op4ksr_bench.errors import Op4ksrError, UsageError
from op4ksr_bench.imageio import encode_png, read_image
from op4ksr_bench.report.aggregate import SuiteTable, format_value
from op4ksr_bench.report.runs import LoadedRun, slugify
from op4ksr_bench.report.sources import SuiteImages, output_image
from op4ksr_bench.safepaths import UnsafePathError, resolve_inside

logger = logging.getLogger(__name__)

CROPS_SCHEMA = "op4ksr-bench/crops@1"
SITE_FILE_MODE = 0o644
THUMBNAIL_SIDE = 320
AUTOMATIC = {
    "detail": "highest gradient energy of the {source} image",
    "smooth": "lowest gradient energy among mid-tone squares of the {source} image",
}
"""The automatic crops, in page order, and how each is chosen."""


@dataclass(frozen=True)
class CropRequest:
    """A user-given crop: image id (optionally ``SUITE/ID``), top-left corner and side in output pixels."""

    image_id: str
    x: int
    y: int
    size: int

    @classmethod
    def parse(cls, text: str) -> CropRequest:
        """Parse ``ID:X,Y,SIZE`` (e.g. ``0007:1024,512,256``)."""
        image_id, _, numbers = text.rpartition(":")
        parts = numbers.split(",")
        if not image_id or len(parts) != 3 or not all(p.strip().isdigit() for p in parts):
            raise UsageError(f"--crop {text!r}: expected ID:X,Y,SIZE with whole numbers, e.g. 0007:1024,512,256")
        x, y, size = (int(p) for p in parts)
        if size <= 0:
            raise UsageError(f"--crop {text!r}: SIZE must be positive")
        return cls(image_id=image_id, x=x, y=y, size=size)

    def matches(self, suite_name: str, image_id: str) -> bool:
        return self.image_id in (image_id, f"{suite_name}/{image_id}")


def _window_sums(values: np.ndarray, window: int, step: int) -> np.ndarray:
    """Sums of ``values`` over every ``window x window`` square whose corner lies on the ``step`` grid."""
    integral = np.zeros((values.shape[0] + 1, values.shape[1] + 1))
    integral[1:, 1:] = values.cumsum(axis=0).cumsum(axis=1)
    sums = (
        integral[window:, window:]
        - integral[:-window, window:]
        - integral[window:, :-window]
        + integral[:-window, :-window]
    )
    return sums[::step, ::step]


def select_windows(image: np.ndarray, window: int, step: int = 1) -> dict[str, tuple[int, int]]:
    """Corners ``(x, y)`` of the automatic crops: the most detailed square, and the smoothest mid-tone one.

    ``detail`` maximises the gradient energy (sum of squared horizontal and vertical luminance differences);
    ``smooth`` minimises it among squares of mean luminance in [0.15, 0.85] (any square if none is), where
    grid and tiling artifacts show most. Searched exhaustively; ties go to the first square in row-major order.

    Args:
        image: ``uint8`` ``H x W x 3`` RGB.
        window: Side of the square in pixels (clamped to the image).
        step: Corners lie on multiples of ``step`` pixels (the scale, so crops line up with LR pixels).

    Returns:
        ``{"detail": (x, y), "smooth": (x, y)}`` in pixels.
    """
    luminance = image.astype(np.float64) @ np.array([0.299, 0.587, 0.114]) / 255.0
    energy = np.zeros_like(luminance)
    energy[:, 1:] += np.diff(luminance, axis=1) ** 2
    energy[1:, :] += np.diff(luminance, axis=0) ** 2
    window = min(window, *luminance.shape)
    step = max(step, 1)
    sums = _window_sums(energy, window, step)
    means = _window_sums(luminance, window, step) / window**2
    detail = np.unravel_index(int(np.argmax(sums)), sums.shape)
    mid_tone = (means >= 0.15) & (means <= 0.85)
    smooth = np.unravel_index(int(np.argmin(np.where(mid_tone, sums, np.inf) if mid_tone.any() else sums)), sums.shape)
    return {
        "detail": (int(detail[1]) * step, int(detail[0]) * step),
        "smooth": (int(smooth[1]) * step, int(smooth[0]) * step),
    }


def _write(out: Path, relative: str, data: bytes, written: set[str]) -> dict[str, str]:
    path = out / relative
    if not path.exists() or path.read_bytes() != data:
        atomic_write_bytes(path, data)
        path.chmod(SITE_FILE_MODE)  # atomic writes create 0600 temporaries; a site is for reading
    written.add(relative)
    return {"file": relative, "sha256": hashlib.sha256(data).hexdigest()}


def _reuse(out: Path, previous: dict[str, Any] | None, written: set[str]) -> dict[str, str] | None:
    """A previously written file record, if the file is still there with the recorded bytes."""
    if not previous or not isinstance(previous.get("file"), str) or not previous["file"].startswith("crops/"):
        return None
    try:  # crops.json may be edited: a reused file must be one of ours, inside the site
        path = resolve_inside(out, previous["file"], f"{out / 'crops.json'}")
    except UnsafePathError:
        return None
    if path.is_file() and sha256_file(path) == previous.get("sha256"):
        written.add(previous["file"])
        return {"file": previous["file"], "sha256": previous["sha256"]}
    return None


def _thumbnail(image: np.ndarray) -> bytes:
    from PIL import Image

    picture = Image.fromarray(image, mode="RGB")
    picture.thumbnail((THUMBNAIL_SIDE, THUMBNAIL_SIDE), Image.Resampling.LANCZOS)
    buffer = io.BytesIO()
    picture.save(buffer, format="JPEG", quality=85, optimize=False)
    return buffer.getvalue()


def _check_box(request: CropRequest, scale: int, width: int, height: int) -> None:
    if request.x % scale or request.y % scale or request.size % scale:
        raise UsageError(
            f"--crop {request.image_id}:{request.x},{request.y},{request.size}: X, Y and SIZE must be multiples of "
            f"the suite scale {scale} so the LR crop lines up"
        )
    if request.x + request.size > width or request.y + request.size > height:
        raise UsageError(
            f"--crop {request.image_id}:{request.x},{request.y},{request.size}: outside the {width}x{height} output"
        )


@dataclass
class _ImageWork:
    """What is known about one image while its crops are made."""

    record: dict[str, Any]
    lr: np.ndarray | None = None
    hr: np.ndarray | None = None


def _image_record(
    table: SuiteTable,
    image_id: str,
    images: SuiteImages | None,
    previous: dict[str, Any],
    requests: list[CropRequest],
    crop_size: int,
    out: Path,
    written: set[str],
) -> dict[str, Any] | None:
    """Build the ``crops.json`` record of one image, making or reusing every crop file."""
    scale = table.scale
    folder = f"crops/{table.key}/{slugify(image_id)}"
    work = _ImageWork(record={})
    entry = images.entry(image_id) if images else None
    if entry is not None:
        work.lr = read_image(images.lr_path(entry))
        hr_path = images.hr_path(entry)
        work.hr = read_image(hr_path) if hr_path else None
        lr_height, lr_width = work.lr.shape[:2]
        record = {
            "lr_width": lr_width,
            "lr_height": lr_height,
            "width": lr_width * scale,
            "height": lr_height * scale,
            "lr_sha256": entry.get("lr_sha256"),
            "hr_sha256": entry.get("hr_sha256") if work.hr is not None else None,
            "has_hr": work.hr is not None,
            "thumbnail": _write(out, f"{folder}/thumbnail.jpg", _thumbnail(work.lr), written),
        }
    elif previous:
        keys = ("lr_width", "lr_height", "width", "height", "lr_sha256", "hr_sha256", "has_hr")
        record = {key: previous.get(key) for key in keys}
        record["thumbnail"] = _reuse(out, previous.get("thumbnail"), written)
    else:
        return None
    work.record = record
    boxes = []
    if work.lr is not None:
        # choose on the HR when there is one (the detail that SR should restore), else on the LR
        source, factor = ("HR", 1) if work.hr is not None else ("LR", scale)
        reference = work.hr if work.hr is not None else work.lr
        window = max(crop_size // factor, 1)
        side = min(window, *reference.shape[:2]) * factor
        side = max(side - side % scale, scale)
        corners = select_windows(reference, side // factor, step=scale // factor)
        for name, how in AUTOMATIC.items():
            x, y = corners[name]
            box = {"name": name, "x": x * factor, "y": y * factor, "size": side, "how": how.format(source=source)}
            boxes.append(box)
    else:
        reused = [c for c in previous.get("crops", []) if c["name"] in AUTOMATIC and c.get("requested") == crop_size]
        boxes = [{k: c[k] for k in ("name", "x", "y", "size", "how")} for c in reused]
    for request in requests:
        if request.matches(table.name, image_id):
            _check_box(request, scale, record["width"], record["height"])
            name = f"x{request.x}-y{request.y}-s{request.size}"
            boxes.append({"name": name, "x": request.x, "y": request.y, "size": request.size, "how": "given by --crop"})
    previous_crops = {c["name"]: c for c in previous.get("crops", [])}
    crops = []
    for box in boxes:
        if box["name"] in AUTOMATIC:
            box["requested"] = crop_size
        old_files = previous_crops.get(box["name"], {}).get("files", {})
        same_box = all(previous_crops.get(box["name"], {}).get(k) == box[k] for k in ("x", "y", "size"))
        files = _crop_files(table, image_id, box, work, old_files if same_box else {}, folder, out, written)
        crops.append({**box, "files": files})
    record["crops"] = crops
    return record


def _crop_files(
    table: SuiteTable,
    image_id: str,
    box: dict[str, Any],
    work: _ImageWork,
    old_files: dict[str, Any],
    folder: str,
    out: Path,
    written: set[str],
) -> dict[str, Any]:
    """Crop every source (LR, HR, each run's output) of one box; reuse old files where a source is unavailable."""
    scale = table.scale
    x, y, size = box["x"], box["y"], box["size"]
    base = f"{folder}/{box['name']}"
    files: dict[str, Any] = {}
    sources: list[tuple[str, np.ndarray | None, str | None, int]] = [
        ("lr", work.lr, work.record.get("lr_sha256"), scale),
        ("hr", work.hr, work.record.get("hr_sha256"), 1),
    ]
    for row in table.rows:
        sample = _sample(row.run, image_id)
        if sample is None or sample.get("status") != "ok":
            continue
        path, source_hash = output_image(row.run, sample)
        array = None
        if path is not None and path.is_file():
            try:
                array = read_image(path)
            except Op4ksrError as error:
                logger.warning("cannot read %s: %s", path, error)
        sources.append((row.run.path, array, source_hash, 1))
    for source, array, source_hash, divisor in sources:
        name = source if source in ("lr", "hr") else slugify(source.replace("@", "-").replace("/", "--"), 120)
        if array is not None:
            piece = array[y // divisor : (y + size) // divisor, x // divisor : (x + size) // divisor]
            record = _write(out, f"{base}/{name}.png", encode_png(np.ascontiguousarray(piece)), written)
            files[source] = {**record, "source_sha256": source_hash}
            continue
        old = old_files.get(source)
        if old and (source in ("lr", "hr") or old.get("source_sha256") == source_hash):
            reused = _reuse(out, old, written)
            if reused:
                files[source] = {**reused, "source_sha256": old.get("source_sha256")}
    return files


def _sample(run: LoadedRun, image_id: str) -> dict[str, Any] | None:
    for sample in run.samples:
        if sample["id"] == image_id:
            return sample
    return None


def load_previous(out: Path) -> dict[str, Any]:
    """The ``crops.json`` of an earlier generation in ``out`` (empty if none or unreadable)."""
    path = Path(out) / "crops.json"
    try:
        previous = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        return {}
    return previous if previous.get("schema") == CROPS_SCHEMA else {}


def build_crops(
    tables: list[SuiteTable],
    data_dir: Path,
    out: Path,
    requests: list[CropRequest],
    crop_size: int,
    written: set[str],
) -> tuple[dict[str, Any], dict[str, str]]:
    """Make (or reuse) every comparison crop; return the ``crops.json`` object and per-suite data problems.

    Args:
        tables: Suite tables from :func:`op4ksr_bench.report.aggregate.build_tables`.
        data_dir: The data folder holding built suites (LR and HR images).
        out: The site folder; crop files go to ``out/crops/<suite>/<image>/<crop>/<source>.png``.
        requests: User-given crops.
        crop_size: Side of the automatic crop in output pixels.
        written: Collects the site-relative paths of files written or kept.
    """
    previous = load_previous(out)
    suites: dict[str, Any] = {}
    problems: dict[str, str] = {}
    matched: set[CropRequest] = set()
    for table in tables:
        images = SuiteImages.open(data_dir, table.name, table.hash)
        if images.problem:
            logger.debug("%s: %s", table.key, images.problem)
        old_suite = previous.get("suites", {}).get(table.key, {})
        old_images = old_suite.get("images", {}) if old_suite.get("hash") == table.hash else {}
        image_ids = sorted({sample["id"] for row in table.rows for sample in row.run.samples})
        records = {}
        for image_id in image_ids:
            wanted = [r for r in requests if r.matches(table.name, image_id)]
            matched.update(wanted)
            record = _image_record(
                table, image_id, images if not images.problem else None, old_images.get(image_id, {}), wanted,
                crop_size, out, written,
            )  # fmt: skip
            if record is not None:
                records[image_id] = record
        suites[table.key] = {"hash": table.hash, "scale": table.scale, "images": records}
        if images.problem:
            problems[table.key] = images.problem
    unknown = [r.image_id for r in requests if r not in matched]
    if unknown:
        raise UsageError(f"--crop: no image {', '.join(sorted(unknown))} in the results; use an id from samples.jsonl")
    return {"schema": CROPS_SCHEMA, "crop_size": crop_size, "suites": suites}, problems


def per_image_note(run: LoadedRun, image_id: str, table: SuiteTable) -> str:
    """Per-image values of the table's metrics for one run (``psnr 24.31 · ssim 0.7123``)."""
    sample = _sample(run, image_id)
    if sample is None:
        return "not in this run"
    if sample.get("status") != "ok":
        return f"failed: {sample.get('reason') or '?'}"
    parts = [
        f"{column.name} {format_value(sample['metrics'].get(column.name))}"
        for column in table.columns
        if column.name in sample["metrics"]
    ]
    return " \u00b7 ".join(parts)


def tile_reason(run: LoadedRun | None, image_id: str, source: str, suite_record: dict[str, Any]) -> str:
    """Why a tile has no image (shown in its place)."""
    if source == "hr":
        return "no ground truth in this suite" if suite_record.get("has_hr") is False else "suite data not available"
    if source == "lr":
        return "suite data not available"
    sample = _sample(run, image_id) if run else None
    if sample is None:
        return "not in this run"
    if sample.get("status") != "ok":
        return f"failed: {sample.get('reason') or '?'}"
    return "output image not available (not saved, or the run folder holds only its result files)"


def recorded_requests(crops: dict[str, Any]) -> tuple[int, list[CropRequest]]:
    """The automatic crop size and the user crops a ``crops.json`` was made with, to regenerate it exactly."""
    requests = []
    for suite in crops.get("suites", {}).values():
        for image_id, record in suite.get("images", {}).items():
            for crop in record.get("crops", []):
                if crop["name"] not in AUTOMATIC:
                    requests.append(CropRequest(image_id=image_id, x=crop["x"], y=crop["y"], size=crop["size"]))
    return int(crops.get("crop_size", 0)), sorted(set(requests), key=lambda r: (r.image_id, r.x, r.y, r.size))
