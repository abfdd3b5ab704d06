"""Share the photographs of one pool between its suites: every photograph goes to at most one suite.

Suites that name the same ``source.pool`` in their YAML (the four default suites: ``pool: default``) draw from
one list of photographs. Suites are served in ``source.priority`` order; each walks the photographs in a seeded
order (``seed_for(pool_seed, id)``), measures them (cached), applies its own curation thresholds and crop rule,
and takes what passes until it has ``count`` images (``train``: crops). A photograph is only accepted if its
perceptual hash is more than ``phash_distance`` bits away from every photograph accepted before it, in any suite,
so no benchmark image is a near-duplicate of a training image (nor of another benchmark image).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from op4ksr_bench.data.curation import (
    BLOCK,
    CropChoice,
    CurationConfig,
    PhotoMeasurement,
    crop_candidates,
    hamming,
    photo_rejection,
    select_crop,
    select_tiles,
)
from op4ksr_bench.data.sources import SourceImage
from op4ksr_bench.data.suites import SuiteSpec
from op4ksr_bench.errors import ImageError, UsageError
from op4ksr_bench.seeds import seed_for


@dataclass(frozen=True)
class PlanItem:
    """One image to produce: ``crop`` of ``photo`` (source pixels), degraded with ``seed`` when synthetic."""

    id: str
    suite: str
    photo: SourceImage
    crop: dict[str, int]
    seed: int


@dataclass
class SuitePlan:
    """What a suite will contain, the photographs it turned down (with reasons), and its resolved spec."""

    spec: SuiteSpec
    items: list[PlanItem] = field(default_factory=list)
    rejected: list[dict[str, Any]] = field(default_factory=list)


def resolve_variant(spec: SuiteSpec, photos: list[SourceImage], target: int | None) -> SuiteSpec:
    """For ``variant: auto``: the first variant whose HR size at least ``target`` photographs reach (by header)."""
    if spec.variant != "auto":
        return spec
    variants = spec.resolved_variants()
    if not variants:
        raise UsageError(f"suite {spec.name}: variant auto needs a `variants:` mapping")
    for name, size in variants:
        fitting = sum(1 for photo in photos if photo.width >= size[0] and photo.height >= size[1])
        if fitting >= (target or 1) or name == variants[-1][0]:
            lr_size = [size[0] // spec.scale, size[1] // spec.scale]
            return spec.with_overrides(variant=name, hr_size=list(size), lr_size=lr_size)
    raise AssertionError("unreachable")  # pragma: no cover


def _vary_size(spec: SuiteSpec, photo: SourceImage, measurement: PhotoMeasurement) -> tuple[int, int]:
    """Seeded crop size for ``crop.mode: vary``: aspect in ``aspect_range``, long side in ``long_side_range``."""
    crop = spec.crop
    low_aspect, high_aspect = crop.get("aspect_range", [0.5, 2.0])
    low_long, high_long = crop.get("long_side_range", [768, 1280])
    rng = np.random.Generator(np.random.PCG64(seed_for(spec.seed, photo.id)))
    aspect = math.exp(rng.uniform(math.log(low_aspect), math.log(high_aspect)))
    long_side = rng.uniform(low_long, high_long)
    width, height = (long_side, long_side / aspect) if aspect >= 1 else (long_side * aspect, long_side)
    fit = min(1.0, measurement.width / width, measurement.height / height)
    width = max(BLOCK, int(width * fit // BLOCK) * BLOCK)
    height = max(BLOCK, int(height * fit // BLOCK) * BLOCK)
    while width / height > high_aspect and width > BLOCK:  # rounding to the grid may push the aspect out
        width -= BLOCK
    while width / height < low_aspect and height > BLOCK:
        height -= BLOCK
    return width, height


def choose_crops(spec: SuiteSpec, photo: SourceImage, measurement: PhotoMeasurement, curation: CurationConfig):
    """Crops of ``photo`` for ``spec`` (list of :class:`CropChoice`) or a rejection reason string."""
    mode = spec.crop.get("mode")
    if mode == "tiles":
        size = int(spec.crop.get("size", 1024))
        tiles = select_tiles(
            measurement, size, int(spec.crop.get("max_per_image", 6)), curation.max_flat_fraction,
            float(spec.crop.get("max_overlap", 0.25)),
        )  # fmt: skip
        return sorted(tiles, key=lambda tile: (tile.y, tile.x)) or f"crop: no {size}px tile with detail"
    if mode == "vary":
        width, height = _vary_size(spec, photo, measurement)
    elif mode == "fixed":
        width, height = spec.hr_size or spec.lr_size or (0, 0)
    else:
        raise UsageError(f"suite {spec.name}: crop.mode must be fixed, vary or tiles, got {mode!r}")
    if width > measurement.width or height > measurement.height:
        return f"crop: {width}x{height} does not fit {measurement.width}x{measurement.height}"
    choice = select_crop(measurement, width, height, curation.max_flat_fraction)
    if choice is None:
        candidates = crop_candidates(measurement, width, height)
        least = min((candidate.flat_fraction for candidate in candidates), default=1.0)
        return (
            f"flat: every {width}x{height} crop has over {curation.max_flat_fraction:.0%} flat blocks "
            f"(the least flat has {least:.0%})"
        )
    return [choice]


def partition(
    specs: list[SuiteSpec],
    photos: list[SourceImage],
    measure: Callable[[SourceImage], PhotoMeasurement],
    pool_seed: int,
    limit: int | None = None,
) -> dict[str, SuitePlan]:
    """Assign photographs to suites and plan every crop (see the module docstring).

    Args:
        specs: The suites of one pool (any order; served by ``source.priority``).
        photos: The pool's photographs.
        measure: Measurement function (cached by the caller); may raise ``ImageError`` for unreadable files.
        pool_seed: Seed of the photograph order.
        limit: Cap on images per suite (crops for ``train``), applied while assigning.
    """
    ordered_specs = sorted(specs, key=lambda spec: (int(spec.source.get("priority", 100)), spec.name))
    order = sorted(photos, key=lambda photo: (seed_for(pool_seed, photo.id), photo.id))
    accepted: list[tuple[str, str]] = []
    assigned: dict[str, str] = {}
    unusable: dict[str, str] = {}
    plans: dict[str, SuitePlan] = {}
    for spec in ordered_specs:
        target = spec.count if spec.count is not None else None
        if limit is not None:
            target = limit if target is None else min(target, limit)
        spec = resolve_variant(spec, photos, target)
        curation = CurationConfig.from_dict(spec.curation)
        plan = SuitePlan(spec=spec)
        plans[spec.name] = plan
        for photo in order:
            if target is not None and len(plan.items) >= target:
                break
            if photo.id in assigned or photo.id in unusable:
                continue
            reason = _check_photo(spec, photo, measure, curation, accepted)
            if isinstance(reason, str):
                plan.rejected.append({"id": photo.id, "reason": reason})
                if reason.startswith(("unreadable", "near-duplicate")):
                    unusable[photo.id] = reason
                continue
            measurement, crops = reason
            assigned[photo.id] = spec.name
            accepted.append((photo.id, measurement.phash))
            for index, crop in enumerate(crops):
                if target is not None and len(plan.items) >= target:
                    break
                image_id = f"{photo.id}-{index:02d}" if spec.crop.get("mode") == "tiles" else photo.id
                plan.items.append(PlanItem(image_id, spec.name, photo, crop.box(), seed_for(spec.seed, image_id)))
    for plan in plans.values():
        for record in plan.rejected:
            record["assigned_to"] = assigned.get(record["id"])
    return plans


def _check_photo(spec, photo, measure, curation, accepted) -> str | tuple[PhotoMeasurement, list[CropChoice]]:
    if photo.width and photo.height:  # cheap header check before decoding
        long_side, short_side = max(photo.width, photo.height), min(photo.width, photo.height)
        if long_side < curation.min_long_side or short_side < curation.min_short_side:
            return (
                f"resolution: {photo.width}x{photo.height} (long side {long_side}, short side {short_side} px) below "
                f"the minimum long side {curation.min_long_side} / short side {curation.min_short_side} px"
            )
        if curation.max_long_side is not None and long_side > curation.max_long_side:
            return (
                f"resolution: {photo.width}x{photo.height} long side {long_side} px above the maximum "
                f"{curation.max_long_side} px"
            )
        if spec.hr_size and spec.crop.get("mode") == "fixed":
            if photo.width < spec.hr_size[0] or photo.height < spec.hr_size[1]:
                return f"crop: {spec.hr_size[0]}x{spec.hr_size[1]} does not fit {photo.width}x{photo.height}"
    try:
        measurement = measure(photo)
    except ImageError as error:
        return f"unreadable: {error}"
    reason = photo_rejection(measurement, curation)
    if reason:
        return reason
    crops = choose_crops(spec, photo, measurement, curation)
    if isinstance(crops, str):
        return crops
    for other_id, other_hash in accepted:
        if hamming(measurement.phash, other_hash) <= curation.phash_distance:
            return f"near-duplicate: pHash within {curation.phash_distance} bits of {other_id}"
    return measurement, crops
