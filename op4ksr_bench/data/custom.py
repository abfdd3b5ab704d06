"""Custom named suites: a user's own benchmark under its own name, found from its data folder.

Three ways to make one (``build-dataset``):

* ``--name my-syn --source folder:PHOTOS`` builds the recipe of ``--suite`` (default ``4ksr-syn``: curation,
  crops, degradation) from the user's photographs, under the name ``my-syn`` and its own photograph pool;
* ``--name my-pairs --source pairs:LR_DIR,HR_DIR`` imports the user's own LR/HR pairs as they are
  (:func:`import_pairs`; task ``paired``, scale read from the pairs);
* ``--spec my.yaml`` builds the suite a YAML file defines (the keys of ``datasets/*.yaml``; a ``paired`` suite
  whose ``source.specs`` is ``[pairs:LR_DIR,HR_DIR]`` is imported).

The built folder ``<data>/<name>/`` holds ``suite.yaml`` like every built suite, so ``run --data DIR --suite
my-syn``, ``validate`` and ``ls suites --data DIR`` find the suite there without it being defined in
``datasets/``.
"""

from __future__ import annotations

import re
import shutil
import time
from pathlib import Path
from typing import Any

from op4ksr_bench.data.sources import declared_licence
from op4ksr_bench.data.suites import SuiteSpec
from op4ksr_bench.errors import ImageError, ManifestError, UsageError
from op4ksr_bench.imagefiles import is_image_file

NAME = re.compile(r"^[a-z0-9][a-z0-9._-]{0,63}$")
PAIRS_PREFIX = "pairs:"
PAIRED_METRICS = [
    "psnr", "ssim", "psnr-y", "ssim-y", "ms-ssim", "lpips-alex", "dists", "niqe", "musiq", "maniqa", "clipiqa",
    "topiq-nr", "pas", "dpas", "seam", "glcm", "compression-ratio",
]  # fmt: skip
"""Default metrics of an imported paired suite: those of 4KSR-Syn (full-reference and no-reference)."""
_TAG = re.compile(r"([_-]?(lr|hr|lq|gt|sr|x\d+))+$", re.IGNORECASE)


def check_name(name: str) -> str:
    """A suite name: lower-case letters, digits, ``.``, ``_``, ``-`` (it names a folder and a leaderboard table).

    Raises:
        UsageError: any other name.
    """
    if not NAME.match(name):
        raise UsageError(f"--name {name!r}: use 1-64 lower-case letters, digits, '.', '_' or '-' (e.g. my-syn)")
    return name


def built_suite_names(data_dir: Path) -> list[str]:
    """Names of the suites built in ``data_dir`` (folders holding ``suite.json`` and ``suite.yaml``), sorted."""
    if not Path(data_dir).is_dir():
        return []
    return sorted(
        path.name
        for path in Path(data_dir).iterdir()
        if path.is_dir() and (path / "suite.json").is_file() and (path / "suite.yaml").is_file()
    )


def is_built_here(data_dir: Path, name: str) -> bool:
    """True when ``<data_dir>/<name>/suite.yaml`` exists (the suite is defined by its data folder)."""
    return bool(NAME.match(name)) and (Path(data_dir) / name / "suite.yaml").is_file()


def parse_pairs(spec: str) -> tuple[Path, Path]:
    """``pairs:LR_DIR,HR_DIR`` -> the two folders.

    Raises:
        UsageError: not two folders.
    """
    body = spec[len(PAIRS_PREFIX) :]
    parts = [part.strip() for part in body.split(",")]
    if len(parts) != 2 or not all(parts):
        raise UsageError(f"--source {spec!r}: write pairs:LR_DIR,HR_DIR (two folders, comma-separated)")
    lr_dir, hr_dir = (Path(part).expanduser() for part in parts)
    for folder in (lr_dir, hr_dir):
        if not folder.is_dir():
            raise UsageError(f"--source {spec!r}: {folder} is not a folder")
    return lr_dir, hr_dir


def _stems(folder: Path) -> tuple[dict[str, Path], list[str]]:
    found: dict[str, Path] = {}
    problems = []
    for path in sorted(folder.iterdir()):
        if is_image_file(path):
            stem = _TAG.sub("", path.stem) or path.stem
            if stem in found:
                problems.append(f"{folder}: {found[stem].name} and {path.name} both pair as {stem!r}")
            found[stem] = path
    return found, problems


def check_pairs(lr_dir: Path, hr_dir: Path, scale: int | None = None) -> tuple[list[tuple[str, Path, Path]], int, list]:
    """Pair ``lr_dir`` and ``hr_dir`` by file stem and check every pair.

    A trailing ``_lr``/``_hr``/``x4``-style tag is ignored when pairing. Every image must decode, and every HR
    must be exactly ``scale`` times its LR on both sides (``scale`` read from the first pair when not given).

    Returns:
        ``(pairs, scale, problems)``: ``(stem, lr, hr)`` pairs, the scale, and every problem found.
    """
    from op4ksr_bench.data.sources import header_size

    lr_images, lr_problems = _stems(lr_dir)
    hr_images, hr_problems = _stems(hr_dir)
    problems = lr_problems + hr_problems
    if not lr_images:
        problems.append(f"{lr_dir}: no images")
    problems += [
        f"{path}: no HR image in {hr_dir} pairs with it" for s, path in lr_images.items() if s not in hr_images
    ]
    problems += [
        f"{path}: no LR image in {lr_dir} pairs with it" for s, path in hr_images.items() if s not in lr_images
    ]
    pairs = [(stem, lr_images[stem], hr_images[stem]) for stem in sorted(lr_images) if stem in hr_images]
    for stem, lr_path, hr_path in pairs:
        (lr_w, lr_h), (hr_w, hr_h) = header_size(lr_path), header_size(hr_path)
        unreadable = [path.name for path, width in ((lr_path, lr_w), (hr_path, hr_w)) if not width]
        if unreadable:
            problems.append(f"{stem}: unreadable image {', '.join(unreadable)}")
            continue
        if scale is None:
            if hr_w % lr_w or hr_w // lr_w < 1:
                problems.append(f"{stem}: HR width {hr_w} is not a whole multiple of LR width {lr_w}")
                continue
            scale = hr_w // lr_w
        if (hr_w, hr_h) != (lr_w * scale, lr_h * scale):
            problems.append(
                f"{stem}: HR {hr_w}x{hr_h} is not x{scale} of LR {lr_w}x{lr_h} (expected {lr_w * scale}x{lr_h * scale})"
            )
    return pairs, int(scale or 0), problems


def pairs_spec(name: str, lr_dir: Path, hr_dir: Path, scale: int) -> SuiteSpec:
    """The spec of a suite imported from LR/HR pairs (task ``paired``, crop border = scale)."""
    raw = {
        "name": name, "version": 1, "task": "paired", "scale": scale, "variant": "native", "seed": 0,
        "crop_border": scale, "metrics": list(PAIRED_METRICS),
        "description": f"{name}: LR/HR pairs imported from the user's folders {lr_dir.name}/ and {hr_dir.name}/",
        "source": {"specs": [f"{PAIRS_PREFIX}{lr_dir},{hr_dir}"], "license": "the user's own images",
                   "attribution": "imported by the user"},
    }  # fmt: skip
    return SuiteSpec.from_mapping(raw, f"suite {name}")


def import_pairs(spec: SuiteSpec, data_dir: Path, force: bool, progress):
    """Check and write the paired suite ``spec`` (``source.specs == [pairs:LR_DIR,HR_DIR]``) into ``data_dir``.

    Every image is decoded (``unreadable`` otherwise); all problems are listed before anything is written.

    Raises:
        ManifestError: unpaired names, unreadable images, sizes inconsistent with the scale.
    """
    from op4ksr_bench.data.builder import BuildResult, finalize_suite, is_built
    from op4ksr_bench.data.div4k import _copy_png
    from op4ksr_bench.data.sources import slug

    started = time.monotonic()
    if is_built(data_dir, spec.name) and not force:
        progress.log(f"{spec.name}: already built in {data_dir}; pass --force to re-import it")
        return BuildResult(spec.name, "skipped", 0, 0.0, data_dir / spec.name)
    specs = list(spec.source.get("specs") or [])
    if len(specs) != 1 or not str(specs[0]).startswith(PAIRS_PREFIX):
        raise UsageError(f"suite {spec.name}: a paired suite's source.specs is one entry, pairs:LR_DIR,HR_DIR")
    lr_dir, hr_dir = parse_pairs(str(specs[0]))
    pairs, _, problems = check_pairs(lr_dir, hr_dir, spec.scale)
    if spec.count is not None and len(pairs) != spec.count:
        problems.append(f"{len(pairs)} pairs, the suite expects count {spec.count}")
    if problems:
        shown = "; ".join(problems[:5]) + (f"; ... ({len(problems)} problems)" if len(problems) > 5 else "")
        raise ManifestError(f"pairs {lr_dir} + {hr_dir}: {shown}")
    ids = [slug(stem) for stem, _, _ in pairs]
    if len(set(ids)) != len(ids):
        raise ManifestError(f"pairs {lr_dir} + {hr_dir}: two file names give the same image id; rename one")
    staging = data_dir / ".staging" / spec.name
    if staging.exists():
        shutil.rmtree(staging)
    task = progress.start(f"{spec.name}: importing", len(pairs))
    entries = []
    for image_id, (_, lr_path, hr_path) in zip(ids, pairs, strict=True):
        entry: dict[str, Any] = {"id": image_id, "lr": f"lr/{image_id}.png", "hr": f"hr/{image_id}.png"}
        try:
            entry["lr_sha256"], entry["lr_width"], entry["lr_height"] = _copy_png(lr_path, staging / entry["lr"])
            entry["hr_sha256"], entry["hr_width"], entry["hr_height"] = _copy_png(hr_path, staging / entry["hr"])
        except ImageError as error:
            shutil.rmtree(staging, ignore_errors=True)
            raise ManifestError(f"pairs: {image_id} unreadable ({error})") from error
        entry.update(
            source="pairs (user's LR/HR folders)", original_path=f"{lr_path.name} | {hr_path.name}",
            license=declared_licence(spec.source), attribution=str(spec.source.get("attribution", "")),
            crop=None, degradation=None, source_sha256=None,
        )  # fmt: skip
        entries.append(entry)
        progress.advance(task)
    extra = {"sources": [{"spec": "pairs", "lr_folder": lr_dir.name, "hr_folder": hr_dir.name, "pairs": len(pairs)}]}
    # the built suite.yaml (hashed into the suite hash) names the folders, not their machine-local paths
    written = spec.with_overrides(source={**spec.source, "specs": [f"{PAIRS_PREFIX}{lr_dir.name},{hr_dir.name}"]})
    root = finalize_suite(written, entries, [], extra, data_dir, staging)
    return BuildResult(spec.name, "imported", len(entries), time.monotonic() - started, root)


def named_spec(template: SuiteSpec, name: str, sources: list[str]) -> SuiteSpec:
    """``template``'s recipe under ``name``, in a pool of its own, from ``sources`` (else the template's)."""
    source = dict(template.source)
    source["pool"] = name
    source.pop("priority", None)
    if sources:
        source["specs"] = list(sources)
    description = f"{name}: the {template.name} recipe built from {', '.join(source.get('specs') or ['debian'])}"
    raw = {**template.raw, "name": name, "source": source, "description": description}
    return SuiteSpec.from_mapping(raw, f"suite {name}")


def load_spec_file(path: Path) -> SuiteSpec:
    """A user's suite YAML (``--spec``): the keys of ``datasets/*.yaml``; its ``name`` is the suite's name."""
    import yaml

    try:
        data = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as error:
        raise UsageError(f"--spec {path}: cannot read the suite file ({error})") from error
    spec = SuiteSpec.from_mapping(data, str(path))
    check_name(spec.name)
    return spec
