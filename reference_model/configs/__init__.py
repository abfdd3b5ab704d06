"""Named YAML configs for the reference model and its trainer (``<name>.yaml`` in this folder).

A config file has trainer fields at the top level (see ``reference_model/train.py: TrainConfig``) and a
``model:`` section (see ``reference_model/model.py: ModelConfig``). ``--config`` accepts a name from this folder
or a path to a YAML file.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

CONFIG_DIR = Path(__file__).resolve().parent


def config_names() -> list[str]:
    """Names of the shipped configs."""
    return sorted(path.stem for path in CONFIG_DIR.glob("*.yaml"))


def load_config_file(name_or_path: str) -> dict[str, Any]:
    """Read a config by name (``nano``) or path; one-line error if it does not exist."""
    import yaml

    from op4ksr_bench.errors import UsageError

    path = Path(name_or_path)
    if not path.suffix:
        path = CONFIG_DIR / f"{name_or_path}.yaml"
    if not path.is_file():
        raise UsageError(f"config {name_or_path!r} not found; use a path or one of: {', '.join(config_names())}")
    values = yaml.safe_load(path.read_text()) or {}
    if not isinstance(values, dict):
        raise UsageError(f"config {path} must be a YAML mapping")
    return values
