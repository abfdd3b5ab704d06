"""Which files are images: the suffixes every folder scan accepts (sources, custom suites, folder methods, score).

Reading and writing the pixels is :mod:`op4ksr_bench.imageio`; this module stays free of numpy and Pillow so a
folder can be listed without them.
"""

from __future__ import annotations

from pathlib import Path

IMAGE_SUFFIXES: tuple[str, ...] = (".png", ".jpg", ".jpeg", ".webp", ".tif", ".tiff", ".bmp")
"""Lower-case suffixes of the image files a folder scan picks up (the case of a file's suffix is ignored)."""


def is_image_file(path: Path) -> bool:
    """Whether ``path`` is a regular file (links followed) with one of :data:`IMAGE_SUFFIXES`."""
    return Path(path).suffix.lower() in IMAGE_SUFFIXES and Path(path).is_file()
