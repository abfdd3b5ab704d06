"""Export a built suite as a Hugging Face dataset (``datasets.load_from_disk``-loadable): images + manifest data."""

from __future__ import annotations

import json
from pathlib import Path

from op4ksr_bench.atomic import atomic_write_text
from op4ksr_bench.data.manifest import BuiltSuite
from op4ksr_bench.errors import UsageError


def export_suite(data_dir: Path, name: str, out: Path) -> Path:
    """Write ``out`` with columns ``id, lr, hr`` (images, PNG bytes embedded) and the manifest's metadata.

    ``crop`` and ``degradation`` are JSON strings; ``op4ksr_suite.json`` beside the dataset is the suite's
    ``suite.json`` (name, version, hash ...). ``out`` must not exist yet (nothing is overwritten).
    """
    import datasets

    suite = BuiltSuite.open(data_dir, name)
    out = Path(out)
    if out.exists() and any(out.iterdir()):
        raise UsageError(f"--out {out} already exists and is not empty; choose a new folder")

    def image(entry: dict, key: str) -> dict | None:
        if entry.get(key) is None:
            return None
        path = suite.hr_path(entry) if key == "hr" else suite.lr_path(entry)
        return {"bytes": path.read_bytes(), "path": f"{entry['id']}.png"}

    columns: dict[str, list] = {
        "id": [], "lr": [], "hr": [], "source": [], "original_path": [], "license": [], "attribution": [],
        "lr_sha256": [], "hr_sha256": [], "crop": [], "degradation": [],
    }  # fmt: skip
    for entry in suite.entries:
        columns["id"].append(entry["id"])
        columns["lr"].append(image(entry, "lr"))
        columns["hr"].append(image(entry, "hr"))
        for key in ("source", "original_path", "license", "attribution", "lr_sha256", "hr_sha256"):
            columns[key].append(entry.get(key))
        columns["crop"].append(json.dumps(entry.get("crop"), sort_keys=True))
        columns["degradation"].append(json.dumps(entry.get("degradation"), sort_keys=True))
    features = datasets.Features(
        {
            "id": datasets.Value("string"), "lr": datasets.Image(), "hr": datasets.Image(),
            **{key: datasets.Value("string") for key in columns if key not in ("id", "lr", "hr")},
        }
    )  # fmt: skip
    info = datasets.DatasetInfo(
        description=f"{suite.spec.name} v{suite.spec.version} ({suite.info.get('variant')}): {suite.spec.description}",
        license=", ".join(sorted({str(entry["license"]) for entry in suite.entries})),
        features=features,
    )
    dataset = datasets.Dataset.from_dict(columns, features=features, info=info)
    dataset.save_to_disk(str(out))
    atomic_write_text(out / "op4ksr_suite.json", json.dumps(suite.info, indent=2, sort_keys=True) + "\n")
    return out
