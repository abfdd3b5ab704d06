"""Suite definitions: small YAML files in the repository's ``datasets/`` folder, shipped in the package as
``op4ksr_bench/suites/`` (override: ``$OP4KSR_SUITES``).

A suite YAML holds ``name``, ``version``, ``task`` (``synthetic`` | ``real`` | ``train`` | ``paired``), ``scale``,
``variant`` and sizes, ``count``, ``seed``, ``crop_border``, ``metrics``, ``source`` (image sources and how the
photographs are shared out between suites), ``crop``, ``curation`` and ``degradation``. Sizes are ``[width, height]``
in pixels. ``variant: auto`` (4KSR-Syn) resolves at build time to the first entry of ``variants`` that the sources
can fill; the built ``suite.yaml`` records the resolved variant and sizes.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from op4ksr_bench.errors import UsageError
from op4ksr_bench.registry import Registry

TASKS = ("synthetic", "real", "train", "paired")
DEFAULT_SUITES = ("train", "4ksr-syn", "4ksr-realsquare", "4ksr-realvary")
"""What ``--suite all`` builds (DIV4K-50 is imported from a user's copy, not built)."""

_KNOWN_KEYS = {
    "name", "version", "task", "description", "scale", "variant", "variants", "hr_size", "lr_size", "count",
    "seed", "crop_border", "metrics", "source", "crop", "curation", "degradation",
}  # fmt: skip


def suites_dir() -> Path:
    """``$OP4KSR_SUITES`` if set, else the suite YAMLs shipped in the package, else the checkout's ``datasets/``.

    A built wheel carries ``datasets/*.yaml`` as package data in ``op4ksr_bench/suites/`` (see ``setup.py``);
    a source checkout (``PYTHONPATH`` or an editable install) reads ``datasets/`` beside ``pyproject.toml``.
    """
    if os.environ.get("OP4KSR_SUITES"):
        return Path(os.environ["OP4KSR_SUITES"])
    from importlib import resources

    shipped = resources.files("op4ksr_bench") / "suites"
    if shipped.is_dir():
        return Path(str(shipped))
    checkout = Path(__file__).resolve().parents[2]
    if (checkout / "pyproject.toml").is_file():  # never site-packages/datasets (the Hugging Face library)
        return checkout / "datasets"
    raise UsageError(
        "no suite definitions found: this op4ksr_bench install lacks op4ksr_bench/suites/; reinstall it from a "
        "wheel or the repository, or set $OP4KSR_SUITES to a folder of suite YAML files"
    )


@dataclass(frozen=True)
class SuiteSpec:
    """One suite definition, as read from YAML (``raw`` keeps the mapping for writing ``suite.yaml``).

    Attributes:
        name: Suite name (``4ksr-syn``).
        version: Bumped by any change that can move a number.
        task: ``synthetic`` (HR + degraded LR), ``real`` (LR only), ``train`` (HR crops) or ``paired``.
        scale: Super-resolution factor (output side / input side).
        variant: ``official``, ``uhd``, ``native`` ... or ``auto`` before a build resolves it.
        hr_size: ``(width, height)`` of every HR image, or None when sizes vary or there is no HR.
        lr_size: ``(width, height)`` of every LR image, or None when sizes vary or there is no LR.
        crop_border: Pixels cropped from each side of outputs before full-reference metrics.
        seed: Suite seed; per-image seeds are ``seed_for(seed, id)``.
        metrics: Default metric names for this suite.
        source: Source specs and the photograph pool (``specs``, ``pool``, ``priority``, ``min_size`` ...).
        degradation: The degradation config mapping (synthetic LR, or the trainer's), or None.
        count: Target number of images (crops for ``train``), or None for "all the pool gives".
    """

    name: str
    version: int
    task: str
    scale: int
    variant: str
    hr_size: tuple[int, int] | None
    lr_size: tuple[int, int] | None
    crop_border: int
    seed: int
    metrics: tuple[str, ...]
    source: dict = field(default_factory=dict)
    degradation: dict | None = None
    count: int | None = None
    crop: dict = field(default_factory=dict)
    curation: dict = field(default_factory=dict)
    variants: dict = field(default_factory=dict)
    description: str = ""
    raw: dict = field(default_factory=dict, compare=False, repr=False)

    @classmethod
    def from_mapping(cls, data: Any, where: str) -> SuiteSpec:
        """Validate a parsed YAML mapping; raise ``UsageError`` naming ``where`` and the bad key."""
        if not isinstance(data, dict):
            raise UsageError(f"{where}: a suite file must be a YAML mapping")
        unknown = sorted(set(data) - _KNOWN_KEYS)
        if unknown:
            raise UsageError(f"{where}: unknown keys {unknown}; known: {sorted(_KNOWN_KEYS)}")
        for key in ("name", "version", "task", "scale", "seed", "metrics"):
            if key not in data:
                raise UsageError(f"{where}: missing required key {key!r}")
        if data["task"] not in TASKS:
            raise UsageError(f"{where}: task must be one of {list(TASKS)}, got {data['task']!r}")
        for key in ("version", "scale", "seed"):
            if not isinstance(data[key], int) or isinstance(data[key], bool):
                raise UsageError(f"{where}: {key} must be an integer, got {data[key]!r}")
        if not isinstance(data["metrics"], list) or not all(isinstance(m, str) for m in data["metrics"]):
            raise UsageError(f"{where}: metrics must be a list of metric names")
        return cls(
            name=str(data["name"]),
            version=int(data["version"]),
            task=str(data["task"]),
            scale=int(data["scale"]),
            variant=str(data.get("variant", "native")),
            hr_size=_size(data.get("hr_size"), f"{where}: hr_size"),
            lr_size=_size(data.get("lr_size"), f"{where}: lr_size"),
            crop_border=int(data.get("crop_border", 0)),
            seed=int(data["seed"]),
            metrics=tuple(data["metrics"]),
            source=dict(data.get("source") or {}),
            degradation=data.get("degradation"),
            count=data.get("count"),
            crop=dict(data.get("crop") or {}),
            curation=dict(data.get("curation") or {}),
            variants=dict(data.get("variants") or {}),
            description=str(data.get("description", "")),
            raw=data,
        )

    def with_overrides(self, **changes: Any) -> SuiteSpec:
        """A copy with top-level YAML keys replaced (``seed``, ``variant``, ``hr_size`` ...), re-validated."""
        raw = dict(self.raw)
        raw.update(changes)
        return SuiteSpec.from_mapping(raw, f"suite {self.name}")

    def to_yaml(self) -> str:
        """Canonical YAML (sorted keys, block style): the bytes hashed into the suite hash."""
        return yaml.safe_dump(self.raw, sort_keys=True, default_flow_style=False, allow_unicode=True)

    def resolved_variants(self) -> list[tuple[str, tuple[int, int]]]:
        """``[(variant, hr_size)]`` in preference order for ``variant: auto`` suites."""
        return [
            (name, _size(item.get("hr_size"), f"{self.name}: variants.{name}")) for name, item in self.variants.items()
        ]


def _size(value: Any, where: str) -> tuple[int, int] | None:
    if value is None:
        return None
    if not isinstance(value, list | tuple) or len(value) != 2 or not all(isinstance(v, int) and v > 0 for v in value):
        raise UsageError(f"{where} must be [width, height] in pixels, got {value!r}")
    return int(value[0]), int(value[1])


def suite_registry() -> Registry[Path]:
    """The suites defined in :func:`suites_dir` now (name -> YAML file), sorted by name; read on every call, since
    the folder is chosen by the environment."""
    registry: Registry[Path] = Registry("suite")
    folder = suites_dir()
    for path in sorted(folder.glob("*.yaml"), key=lambda path: path.stem) if folder.is_dir() else []:
        registry.register(path.stem, path)
    return registry


def suite_names() -> list[str]:
    """Names of the suites defined in :func:`suites_dir`, sorted."""
    return suite_registry().names()


def load_suite_spec(name: str) -> SuiteSpec:
    """Read ``<suites_dir>/<name>.yaml``.

    Raises:
        UsageError: unknown suite (with the closest names and the known ones) or an invalid file.
    """
    return load_suite_file(suite_registry().get(name))


def load_suite_file(path: Path) -> SuiteSpec:
    """Read and validate one suite YAML file."""
    try:
        data = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    except yaml.YAMLError as error:
        raise UsageError(f"{path}: not valid YAML ({error})") from error
    spec = SuiteSpec.from_mapping(data, str(path))
    if spec.name != Path(path).stem:
        raise UsageError(f"{path}: name {spec.name!r} does not match the file name")
    return spec


def expand_suite_argument(suite: str) -> list[str]:
    """``all`` -> :data:`DEFAULT_SUITES`; otherwise a comma-separated list of names, each checked."""
    names = list(DEFAULT_SUITES) if suite == "all" else [item.strip() for item in suite.split(",") if item.strip()]
    for name in names:
        load_suite_spec(name)
    return names
