"""Image sources behind one interface: ``folder:PATH`` and ``hf:DATASET[:SPLIT]`` here, ``debian`` in
:mod:`op4ksr_bench.data.debian`; :data:`op4ksr_bench.data.SOURCES` registers them and
:func:`op4ksr_bench.data.parse_source` turns a spec into one (this module knows none of the families but its own).

A source lists :class:`SourceImage` records (stable id, origin, licence, attribution, and where the pixels are);
:func:`load_source_image` decodes one through :mod:`op4ksr_bench.imageio`. Every record is a plain, picklable
value so worker processes can load images themselves.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from op4ksr_bench.errors import ImageError, UsageError
from op4ksr_bench.imagefiles import is_image_file


@dataclass(frozen=True)
class SourceImage:
    """One photograph a source offers.

    Attributes:
        id: Stable, file-name-safe identifier (lowercase letters, digits, ``-``).
        source: The source spec and part (``debian:lomiri-wallpapers-16.04``, ``folder:/photos``, ``hf:NAME``).
        original_path: Path inside the package, folder or dataset.
        licence: SPDX-like licence string (the manifest's ``license`` field).
        attribution: Author / copyright line.
        path: Local file holding the image (for ``.edj`` photographs: the JPEG stream cut from the container).
        width: Width in pixels read from the header (before EXIF rotation), or 0 if unknown.
        height: Height in pixels, or 0 if unknown.
    """

    id: str
    source: str
    original_path: str
    licence: str
    attribution: str
    path: str
    width: int = 0
    height: int = 0


def declared_licence(source: dict) -> str:
    """The licence a suite's ``source`` section declares: ``licence``, or ``license`` (older suite files)."""
    return str(source.get("licence", source.get("license", "unknown")))


def slug(text: str) -> str:
    """``"Foggy Trees/IMG_01.JPG"`` -> ``"foggy-trees-img-01-jpg"``."""
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-") or "image"


def header_size(path: Path) -> tuple[int, int]:
    """``(width, height)`` from the file header without decoding pixels, or ``(0, 0)`` if unreadable."""
    from PIL import Image

    try:
        with Image.open(path) as image:
            return image.size
    except Exception:  # noqa: BLE001 - any unreadable file is reported later, when it is decoded
        return 0, 0


def load_source_image(item: SourceImage) -> np.ndarray:
    """Decode ``item`` as ``uint8`` ``H x W x 3`` RGB (policy of :mod:`op4ksr_bench.imageio`)."""
    from op4ksr_bench.imageio import read_image

    return read_image(Path(item.path))


def unique_ids(items: list[SourceImage]) -> list[SourceImage]:
    """Make ids unique by appending a short hash of the original path to colliding ids (order kept)."""
    import dataclasses

    counts: dict[str, int] = {}
    for item in items:
        counts[item.id] = counts.get(item.id, 0) + 1
    result = []
    for item in items:
        if counts[item.id] > 1:
            suffix = hashlib.sha256(item.original_path.encode()).hexdigest()[:6]
            item = dataclasses.replace(item, id=f"{item.id}-{suffix}")
        result.append(item)
    return result


class Source:
    """Base class: ``spec`` is the string the user gave; ``list_images`` returns records sorted by id.

    A family registered in :data:`op4ksr_bench.data.SOURCES` declares how it is spelled (``usage``) and builds
    itself from the text after ``FAMILY:`` (:meth:`from_argument`).
    """

    spec: str
    usage: ClassVar[str]
    """How the family is spelled on the command line (``folder:PATH``)."""

    @classmethod
    def from_argument(cls, argument: str | None, cache_dir: Path) -> Source:
        """Build the source from the text after ``FAMILY:`` (None: no colon); a bad argument is a UsageError."""
        raise NotImplementedError

    def list_images(self) -> list[SourceImage]:
        raise NotImplementedError

    def info(self) -> dict[str, Any]:
        """Provenance recorded in ``suite.json`` (package versions and hashes, folder path, dataset id)."""
        return {"spec": self.spec}


class FolderSource(Source):
    """Every image file below a folder (recursive, sorted); licence ``unknown`` unless a LICENSE file says more."""

    usage: ClassVar[str] = "folder:PATH"

    @classmethod
    def from_argument(cls, argument: str | None, cache_dir: Path) -> FolderSource:
        if not argument:
            raise UsageError(f"--source folder{':' if argument is not None else ''}: write {cls.usage}")
        return cls(Path(argument))

    def __init__(self, folder: Path) -> None:
        self.folder = Path(folder).expanduser()
        self.spec = f"folder:{self.folder}"
        if not self.folder.is_dir():
            raise UsageError(f"source {self.spec}: {self.folder} is not a folder")

    def _licence(self) -> str:
        for name in ("LICENSE", "LICENSE.txt", "LICENCE", "license.txt"):
            path = self.folder / name
            if path.is_file():
                first = path.read_text(encoding="utf-8", errors="replace").strip().splitlines()
                return f"see {name}: {first[0][:120]}" if first else f"see {name}"
        return "unknown (folder source without a LICENSE file)"

    def list_images(self) -> list[SourceImage]:
        licence = self._licence()
        items = []
        for path in sorted(self.folder.rglob("*")):
            if not is_image_file(path):
                continue
            relative = path.relative_to(self.folder).as_posix()
            width, height = header_size(path)
            items.append(
                SourceImage(
                    id=slug(Path(relative).with_suffix("").as_posix()),
                    source=self.spec,
                    original_path=relative,
                    licence=licence,
                    attribution="",
                    path=str(path),
                    width=width,
                    height=height,
                )
            )
        return sorted(unique_ids(items), key=lambda item: item.id)


class HuggingFaceSource(Source):
    """Images of a ``datasets`` dataset: a hub id (online), or a local imagefolder, parquet or ``save_to_disk`` folder.

    The encoded image bytes are written once to ``cache_dir`` so workers read plain files.
    """

    usage: ClassVar[str] = "hf:DATASET[:SPLIT]"

    @classmethod
    def from_argument(cls, argument: str | None, cache_dir: Path) -> HuggingFaceSource:
        """``DATASET[:SPLIT]``; the split defaults to ``train``."""
        if not argument:
            raise UsageError(f"--source hf{':' if argument is not None else ''}: write {cls.usage}")
        dataset, _, split = argument.rpartition(":") if argument.count(":") >= 1 else ("", "", "")
        if not dataset:
            dataset, split = argument, "train"
        return cls(dataset, split or "train", cache_dir)

    def __init__(self, dataset: str, split: str, cache_dir: Path) -> None:
        self.dataset, self.split = dataset, split
        self.spec = f"hf:{dataset}:{split}"
        self.cache_dir = (
            Path(cache_dir) / "hf" / f"{slug(dataset)[-40:]}-{hashlib.sha256(self.spec.encode()).hexdigest()[:8]}"
        )
        self._meta: dict[str, Any] = {}

    def _load(self):
        import datasets

        local = Path(self.dataset).expanduser()
        try:
            if local.is_dir() and ((local / "dataset_info.json").is_file() or (local / "dataset_dict.json").is_file()):
                loaded = datasets.load_from_disk(str(local))
                if isinstance(loaded, datasets.DatasetDict):
                    if self.split not in loaded:
                        raise UsageError(f"source {self.spec}: no split {self.split!r}; splits: {list(loaded)}")
                    loaded = loaded[self.split]
                return loaded
            if local.is_dir():
                return datasets.load_dataset(str(local), split=self.split)
            return datasets.load_dataset(self.dataset, split=self.split)
        except UsageError:
            raise
        except Exception as error:  # noqa: BLE001 - datasets raises many types; the user needs one line
            raise UsageError(
                f"source {self.spec}: cannot load the dataset ({type(error).__name__}: {error})"
            ) from error

    def list_images(self) -> list[SourceImage]:
        import datasets
        from op4ksr_bench.atomic import atomic_write_bytes

        dataset = self._load()
        columns = [name for name, feature in dataset.features.items() if isinstance(feature, datasets.Image)]
        if not columns:
            raise UsageError(
                f"source {self.spec}: the dataset has no image column (features: {list(dataset.features)})"
            )
        column = columns[0]
        dataset = dataset.cast_column(column, datasets.Image(decode=False))
        info = dataset.info
        licence = (info.license or "").strip() or "unknown (dataset card states no licence)"
        attribution = (info.citation or info.homepage or "").strip().splitlines()
        self._meta = {"column": column, "rows": len(dataset), "fingerprint": getattr(dataset, "_fingerprint", None)}
        items = []
        for index, row in enumerate(dataset):
            value = row[column]
            if value is None:
                continue
            data = value.get("bytes")
            if data is None and value.get("path"):
                data = Path(value["path"]).read_bytes()
            if not data:
                raise ImageError(f"source {self.spec}: row {index} has an empty image")
            suffix = Path(value.get("path") or "x.png").suffix.lower() or ".png"
            target = self.cache_dir / f"{index:07d}{suffix}"
            if not target.is_file() or target.stat().st_size != len(data):
                atomic_write_bytes(target, data)
            width, height = header_size(target)
            items.append(
                SourceImage(
                    id=f"{slug(Path(self.dataset).name or self.dataset)[:40]}-{index:06d}",
                    source=self.spec,
                    original_path=str(value.get("path") or f"{self.split}[{index}]"),
                    licence=licence,
                    attribution=attribution[0][:200] if attribution else "",
                    path=str(target),
                    width=width,
                    height=height,
                )
            )
        return items

    def info(self) -> dict[str, Any]:
        return {"spec": self.spec, **self._meta}
