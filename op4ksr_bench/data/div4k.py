"""Importer for a user's local copy of DIV4K-50 (50 pairs, LR 256x256, HR 4096x4096, x16).

Expected layout: one folder for LR images and one for HR images below the given folder (names such as ``LR``,
``LQ``, ``input`` and ``HR``, ``GT``, ``target``, case-insensitive, possibly one level down), paired by file stem
(a trailing ``_lr``/``_hr``/``x16`` style tag is ignored). Every pair is decoded and its size checked against the
suite (``div4k-50.yaml``: count, lr_size, hr_size); every problem is listed before anything is written. PNG files
are copied byte for byte; other formats are converted to PNG through :mod:`op4ksr_bench.imageio`.
"""

from __future__ import annotations

import re
import shutil
import time
from pathlib import Path

from op4ksr_bench.atomic import atomic_write_bytes, sha256_file
from op4ksr_bench.data.sources import declared_licence, slug
from op4ksr_bench.data.suites import SuiteSpec
from op4ksr_bench.errors import ImageError, ManifestError, UsageError
from op4ksr_bench.imagefiles import is_image_file
from op4ksr_bench.imageio import encode_png, read_image

LR_NAMES = ("lr", "lq", "input", "inputs", "low", "lr_x16", "lrx16")
HR_NAMES = ("hr", "gt", "target", "targets", "high", "ground_truth")
_TAG = re.compile(r"([_-]?(lr|hr|lq|gt|x16|sr))+$", re.IGNORECASE)


def _find(folder: Path, names: tuple[str, ...]) -> Path | None:
    candidates = [folder] + sorted(path for path in folder.iterdir() if path.is_dir())
    for base in candidates:
        for child in sorted(path for path in base.iterdir() if path.is_dir()):
            if child.name.lower() in names:
                return child
    return None


def _images(folder: Path) -> dict[str, Path]:
    found: dict[str, Path] = {}
    for path in sorted(folder.iterdir()):
        if is_image_file(path):
            found[_TAG.sub("", path.stem) or path.stem] = path
    return found


def check_div4k(folder: Path, spec: SuiteSpec) -> tuple[list[tuple[str, Path, Path]], list[str]]:
    """Pairs ``(stem, lr, hr)`` and every structural problem (wrong count, unpaired, unreadable, wrong size)."""
    if not folder.is_dir():
        raise UsageError(f"--div4k {folder}: not a folder")
    lr_dir, hr_dir = _find(folder, LR_NAMES), _find(folder, HR_NAMES)
    if lr_dir is None or hr_dir is None:
        raise ManifestError(
            f"{folder}: expected an LR folder ({'/'.join(LR_NAMES[:3])}) and an HR folder ({'/'.join(HR_NAMES[:3])})"
        )
    lr_images, hr_images = _images(lr_dir), _images(hr_dir)
    problems = [
        f"{lr_dir}: no HR image pairs with {path.name}" for stem, path in lr_images.items() if stem not in hr_images
    ]
    problems += [
        f"{hr_dir}: no LR image pairs with {path.name}" for stem, path in hr_images.items() if stem not in lr_images
    ]
    pairs = [(stem, lr_images[stem], hr_images[stem]) for stem in sorted(lr_images) if stem in hr_images]
    if spec.count is not None and len(pairs) != spec.count:
        problems.append(f"{folder}: {len(pairs)} pairs, expected {spec.count}")
    for _, lr_path, hr_path in pairs:
        for path, size in ((lr_path, spec.lr_size), (hr_path, spec.hr_size)):
            try:
                image = read_image(path)
            except ImageError as error:
                problems.append(str(error))
                continue
            if size and (image.shape[1], image.shape[0]) != tuple(size):
                problems.append(f"{path}: {image.shape[1]}x{image.shape[0]}, expected {size[0]}x{size[1]}")
    return pairs, problems


def _copy_png(source: Path, target: Path) -> tuple[str, int, int]:
    image = read_image(source)
    if source.suffix.lower() == ".png":
        atomic_write_bytes(target, source.read_bytes())
    else:
        atomic_write_bytes(target, encode_png(image))
    return sha256_file(target), int(image.shape[1]), int(image.shape[0])


def import_div4k(folder: Path, data_dir: Path, spec: SuiteSpec, force: bool, progress):
    """Verify ``folder`` and write suite ``div4k-50`` into ``data_dir`` (raises ``ManifestError`` listing problems)."""
    from op4ksr_bench.data.builder import BuildResult, finalize_suite, is_built

    started = time.monotonic()
    if is_built(data_dir, spec.name) and not force:
        progress.log(f"{spec.name}: already built in {data_dir}; pass --force to re-import it")
        return BuildResult(spec.name, "skipped", 0, 0.0, data_dir / spec.name)
    pairs, problems = check_div4k(Path(folder), spec)
    if problems:
        shown = "; ".join(problems[:5]) + (f"; ... ({len(problems)} problems)" if len(problems) > 5 else "")
        raise ManifestError(f"DIV4K-50 copy in {folder} does not match the expected structure: {shown}")
    staging = data_dir / ".staging" / spec.name
    if staging.exists():
        shutil.rmtree(staging)
    task = progress.start(f"{spec.name}: importing", len(pairs))
    licence = declared_licence(spec.source)
    attribution = str(spec.source.get("attribution", ""))
    entries = []
    for stem, lr_path, hr_path in pairs:
        image_id = slug(stem)
        entry = {"id": image_id, "lr": f"lr/{image_id}.png", "hr": f"hr/{image_id}.png"}
        entry["lr_sha256"], entry["lr_width"], entry["lr_height"] = _copy_png(lr_path, staging / entry["lr"])
        entry["hr_sha256"], entry["hr_width"], entry["hr_height"] = _copy_png(hr_path, staging / entry["hr"])
        entry.update(
            source="div4k-50 (local copy)",
            original_path=f"{lr_path.relative_to(folder).as_posix()} | {hr_path.relative_to(folder).as_posix()}",
            license=licence,  # the manifest's key (see op4ksr_bench.data.manifest)
            attribution=attribution,
            crop=None,
            degradation=None,
            source_sha256=None,
        )
        entries.append(entry)
        progress.advance(task)
    root = finalize_suite(spec, entries, [], {"sources": [{"spec": "div4k", "pairs": len(pairs)}]}, data_dir, staging)
    return BuildResult(spec.name, "imported", len(entries), time.monotonic() - started, root)
