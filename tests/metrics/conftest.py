"""Fixtures of the metric tests: real photographs from the data catalogue's Debian packages."""

from __future__ import annotations

import numpy as np
import pytest


def debian_photos(*members: tuple[str, str]) -> list[np.ndarray]:
    """Photographs named by ``(package, file name)`` from the catalogue's Debian packages (downloaded once into
    the shared download cache), as ``uint8`` RGB arrays."""
    from op4ksr_bench.data.debian import CATALOGUE, DebianSource, Package
    from op4ksr_bench.imageio import read_image

    packages = []
    for package_name, file_name in members:
        package = next(package for package in CATALOGUE if package.name == package_name)
        photo = next(photo for photo in package.photos if photo.member.rsplit("/", 1)[-1] == file_name)
        packages.append(Package(package.name, package.id_prefix, (photo,)))
    items = {item.original_path.rsplit("/", 1)[-1]: item for item in DebianSource(tuple(packages)).list_images()}
    return [read_image(items[file_name].path) for _, file_name in members]


@pytest.fixture
def load_debian_photos():
    """:func:`debian_photos` as a fixture."""
    return debian_photos
