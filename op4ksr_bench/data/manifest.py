"""Built suites on disk: ``<data>/<suite>/{suite.yaml, suite.json, manifest.jsonl, lr/, hr/, rejected.jsonl}``.

``manifest.jsonl`` holds one JSON object per image, sorted by ``id``: ``id``, ``lr``, ``hr`` (paths relative to the
suite folder, or null), ``lr_sha256``, ``hr_sha256``, ``lr_width``, ``lr_height``, ``hr_width``, ``hr_height``,
``source``, ``original_path``, ``license`` (the licence; spelt so on disk because the key is part of every
suite hash), ``attribution``, ``crop`` (``x, y, w, h`` in source pixels) and
``degradation`` (the drawn parameters, or null). The suite hash is ``sha256(suite.yaml bytes + manifest bytes)``.
Paths in a manifest are relative and may not leave the suite folder.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

import yaml

from op4ksr_bench.atomic import sha256_file
from op4ksr_bench.data.suites import SuiteSpec
from op4ksr_bench.errors import ManifestError
from op4ksr_bench.safepaths import image_id_problem

MANIFEST_KEYS = (
    "id", "lr", "hr", "lr_sha256", "hr_sha256", "lr_width", "lr_height", "hr_width", "hr_height", "source",
    "original_path", "license", "attribution", "crop", "degradation",
)  # fmt: skip


def manifest_line(entry: dict[str, Any]) -> str:
    """Canonical JSON for one manifest entry (sorted keys, no spaces, ASCII)."""
    return json.dumps(entry, sort_keys=True, separators=(",", ":"), ensure_ascii=True)


def manifest_bytes(entries: list[dict[str, Any]]) -> bytes:
    """The exact ``manifest.jsonl`` bytes for ``entries`` (sorted by id, one line each).

    Raises:
        ManifestError: an id is not a plain name, or two entries share one (a build never writes such a manifest).
    """
    seen: set[str] = set()
    for entry in entries:
        image_id = entry["id"]
        problem = image_id_problem(image_id) or (f"image id {image_id!r} repeats" if image_id in seen else None)
        if problem:
            raise ManifestError(f"building the manifest: {problem} (two source files give the same id?)")
        seen.add(image_id)
    ordered = sorted(entries, key=lambda entry: entry["id"])
    return "".join(manifest_line(entry) + "\n" for entry in ordered).encode("ascii")


def suite_hash(yaml_bytes: bytes, manifest: bytes) -> str:
    """``sha256(canonical suite YAML + manifest bytes)`` as hex."""
    return hashlib.sha256(yaml_bytes + manifest).hexdigest()


def safe_relative(root: Path, relative: str, where: str) -> Path:
    """``root / relative`` after checking that ``relative`` is a relative POSIX path staying inside ``root``."""
    pure = PurePosixPath(relative)
    if pure.is_absolute() or ".." in pure.parts or "\\" in relative or not relative:
        raise ManifestError(f"{where}: path {relative!r} must be relative and stay inside {root}")
    path = root / Path(*pure.parts)
    try:
        path.resolve().relative_to(root.resolve())
    except ValueError as error:
        raise ManifestError(f"{where}: path {relative!r} escapes {root} (through a link?)") from error
    return path


@dataclass
class BuiltSuite:
    """A suite folder that ``build-dataset`` finished.

    Attributes:
        root: The suite folder ``<data>/<name>``.
        spec: The exact spec used to build (from ``suite.yaml``, variant resolved).
        info: ``suite.json`` (name, version, variant, task, scale, hr_size, lr_size, count, hash, built_with, ...).
        hash: The suite hash recorded in ``suite.json``.
        entries: Manifest entries, sorted by id.
    """

    root: Path
    spec: SuiteSpec
    info: dict[str, Any]
    hash: str
    entries: list[dict[str, Any]]

    @classmethod
    def open(cls, data_dir: Path, name: str) -> BuiltSuite:
        """Open ``<data_dir>/<name>``.

        Raises:
            ManifestError: the suite is not built there, or its files are malformed.
        """
        root = Path(data_dir) / name
        if not (root / "suite.json").is_file() or not (root / "manifest.jsonl").is_file():
            raise ManifestError(
                f"suite {name} is not built in {data_dir}; run `op4ksr-bench build-dataset --suite {name}`"
            )
        try:
            info = json.loads((root / "suite.json").read_text(encoding="utf-8"))
            raw = yaml.safe_load((root / "suite.yaml").read_text(encoding="utf-8"))
        except (OSError, ValueError, yaml.YAMLError) as error:
            raise ManifestError(
                f"{root}: unreadable suite.json or suite.yaml ({error}); rebuild with --force"
            ) from error
        spec = SuiteSpec.from_mapping(raw, str(root / "suite.yaml"))
        entries = read_manifest(root / "manifest.jsonl")
        for entry in entries:
            for key in ("lr", "hr"):
                if entry.get(key) is not None:
                    safe_relative(root, entry[key], f"{root / 'manifest.jsonl'} id {entry['id']}")
        return cls(root=root, spec=spec, info=info, hash=str(info.get("hash", "")), entries=entries)

    def check_hash(self) -> None:
        """Recompute the suite hash from ``suite.yaml`` + ``manifest.jsonl`` and compare it with the build's.

        Raises:
            ManifestError: either file changed since the build (results would carry the clean suite's hash).
        """
        actual = suite_hash((self.root / "suite.yaml").read_bytes(), (self.root / "manifest.jsonl").read_bytes())
        if actual != self.hash:
            raise ManifestError(
                f"{self.root}: suite.yaml or manifest.jsonl changed since the build (hash {actual[:12]}, built "
                f"{self.hash[:12]}); run `op4ksr-bench validate --suite {self.spec.name}` and rebuild with --force"
            )

    def lr_path(self, entry: dict[str, Any]) -> Path:
        """Absolute path of the entry's LR image (raises ``ManifestError`` for a suite without LR, i.e. ``train``)."""
        if entry.get("lr") is None:
            raise ManifestError(f"suite {self.spec.name}: image {entry['id']} has no LR file (task {self.spec.task})")
        return safe_relative(self.root, entry["lr"], f"suite {self.spec.name} id {entry['id']}")

    def hr_path(self, entry: dict[str, Any]) -> Path | None:
        """Absolute path of the entry's HR image, or None when the suite has no ground truth."""
        if entry.get("hr") is None:
            return None
        return safe_relative(self.root, entry["hr"], f"suite {self.spec.name} id {entry['id']}")

    def entry(self, image_id: str) -> dict[str, Any]:
        """The manifest entry with ``id == image_id``."""
        for entry in self.entries:
            if entry["id"] == image_id:
                return entry
        raise ManifestError(f"suite {self.spec.name} has no image {image_id!r}")


def read_manifest(path: Path) -> list[dict[str, Any]]:
    """Parse ``manifest.jsonl``; every line must be a JSON object with the manifest keys, a plain image id
    (:func:`op4ksr_bench.safepaths.check_image_id`), and an id no other line has."""
    entries = []
    seen: dict[str, int] = {}
    for number, line in enumerate(Path(path).read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            entry = json.loads(line)
        except ValueError as error:
            raise ManifestError(f"{path}:{number}: not JSON ({error}); rebuild the suite with --force") from error
        if not isinstance(entry, dict):
            kind = type(entry).__name__
            raise ManifestError(f"{path}:{number}: a {kind}, not a JSON object; rebuild the suite with --force")
        missing = [key for key in MANIFEST_KEYS if key not in entry]
        if missing:
            raise ManifestError(f"{path}:{number}: missing keys {missing}; rebuild the suite with --force")
        problem = image_id_problem(entry["id"])
        if problem:
            raise ManifestError(f"{path}:{number}: {problem}; rebuild the suite with --force")
        if entry["id"] in seen:
            raise ManifestError(
                f"{path}:{number}: image id {entry['id']!r} repeats line {seen[entry['id']]}; "
                "rebuild the suite with --force"
            )
        seen[entry["id"]] = number
        entries.append(entry)
    return entries


def validate_suite(data_dir: Path, name: str) -> list[str]:
    """Re-hash every file of a built suite.

    Returns:
        One line per problem (missing or altered file, altered manifest or YAML); empty when the suite is intact.
    """
    suite = BuiltSuite.open(data_dir, name)
    problems = []
    yaml_bytes = (suite.root / "suite.yaml").read_bytes()
    manifest = (suite.root / "manifest.jsonl").read_bytes()
    if suite_hash(yaml_bytes, manifest) != suite.hash:
        problems.append(f"{suite.root / 'manifest.jsonl'}: suite.yaml or manifest.jsonl altered (suite hash mismatch)")
    if suite.info.get("count") != len(suite.entries):
        problems.append(f"{suite.root / 'suite.json'}: count {suite.info.get('count')} != {len(suite.entries)} entries")
    for entry in suite.entries:
        for key in ("lr", "hr"):
            if entry.get(key) is None:
                continue
            path = safe_relative(suite.root, entry[key], f"suite {name} id {entry['id']}")
            if not path.is_file():
                problems.append(f"{path}: missing")
            elif sha256_file(path) != entry[f"{key}_sha256"]:
                problems.append(f"{path}: altered (sha256 differs from the manifest)")
    return problems
