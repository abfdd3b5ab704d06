"""The Debian source: EET (.edj) JPEG streams, DEP-5 copyright parsing, a tiny real .deb, and the real packages."""

from __future__ import annotations

import io
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from op4ksr_bench.data.debian import CATALOGUE, DebianSource, Package, Photo, licence_for, parse_copyright
from op4ksr_bench.data.eet import find_jpeg_streams, largest_jpeg_stream
from op4ksr_bench.errors import ImageError, ManifestError
from op4ksr_bench.imageio import decode_image_bytes


def _jpeg(width: int, height: int, seed: int) -> bytes:
    image = np.random.default_rng(seed).integers(0, 256, (height, width, 3), dtype=np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, format="JPEG", quality=99)
    return buffer.getvalue()


def eet_like(streams: list[bytes]) -> bytes:
    """An EET-shaped container: magic, a fake directory, junk (with a stray SOI), and the JPEG streams."""
    rng = np.random.default_rng(0)
    parts = [b"\x1e\xe7\x0e\x0e", b"\x00\x00\x00\x0d", rng.bytes(200), b"\xff\xd8\xff\x00broken"]
    for stream in streams:
        parts += [stream, rng.bytes(37)]
    return b"".join(parts)


def test_largest_jpeg_stream_is_found_and_decoded():
    small, large, medium = _jpeg(64, 32, 1), _jpeg(256, 128, 2), _jpeg(128, 64, 3)
    container = eet_like([small, large, medium])
    streams = find_jpeg_streams(container)
    assert [(s.width, s.height) for s in streams] == [(64, 32), (256, 128), (128, 64)]
    best = largest_jpeg_stream(container, "test.edj")
    assert best == large
    assert decode_image_bytes(best, "test.edj").shape == (128, 256, 3)
    with pytest.raises(ImageError, match="no JPEG stream"):
        largest_jpeg_stream(b"\x1e\xe7\x0e\x0e" + b"\x00" * 100, "empty.edj")
    with pytest.raises(ImageError, match="no JPEG stream"):
        largest_jpeg_stream(eet_like([large[: len(large) // 2]]), "truncated.edj")


COPYRIGHT = """Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/
Upstream-Name: fake

Files: *
Copyright: 2020 Someone
License: BSD-2-clause

Files: 16.04/Bridge_by_Someone.jpg
       16.04/Other.jpg
Copyright: 2018 Someone
License: CC-BY-SA-4.0

Files: data/fonts/*
Copyright: fonts
License: GPL-FE

License: BSD-2-clause
 text
"""


def test_dep5_parsing_matches_installed_paths():
    stanzas = parse_copyright(COPYRIGHT)
    assert [licence for _, licence in stanzas] == ["BSD-2-clause", "CC-BY-SA-4.0", "GPL-FE"]
    assert licence_for(stanzas, "usr/share/backgrounds/Bridge_by_Someone.jpg") == "CC-BY-SA-4.0"
    assert licence_for(stanzas, "usr/share/backgrounds/Other.jpg") == "CC-BY-SA-4.0"
    assert licence_for(stanzas, "usr/share/enlightenment/data/backgrounds/Bamboo.edj") == "BSD-2-clause"
    assert licence_for(stanzas, "usr/share/enlightenment/data/fonts/x.ttf") == "GPL-FE"


def _fake_deb(folder: Path, version: str = "1.0-1") -> Path:
    root = folder / "pkg"
    (root / "DEBIAN").mkdir(parents=True)
    (root / "DEBIAN" / "control").write_text(
        f"Package: fake-wallpapers\nVersion: {version}\nArchitecture: all\nMaintainer: t <t@t>\nDescription: test\n"
    )
    (root / "usr/share/doc/fake-wallpapers").mkdir(parents=True)
    (root / "usr/share/doc/fake-wallpapers/copyright").write_text(COPYRIGHT)
    (root / "usr/share/backgrounds").mkdir(parents=True)
    (root / "usr/share/backgrounds/Bamboo.edj").write_bytes(eet_like([_jpeg(96, 48, 4), _jpeg(320, 180, 5)]))
    Image.fromarray(np.full((40, 60, 3), 90, np.uint8)).save(root / "usr/share/backgrounds/Bridge_by_Someone.jpg")
    (root / "usr/share/backgrounds/Render.png").write_bytes(b"not listed, never unpacked")
    debs = folder / "debs"
    debs.mkdir()
    deb = debs / f"fake-wallpapers_{version}_all.deb"
    subprocess.run(["dpkg-deb", "--build", "--root-owner-group", str(root), str(deb)], check=True, capture_output=True)
    return debs


FAKE = (
    Package(
        "fake-wallpapers",
        "fake",
        (
            Photo("usr/share/backgrounds/Bamboo.edj", "BSD-2-clause", "Someone"),
            Photo("usr/share/backgrounds/Bridge_by_Someone.jpg", "CC-BY-SA-4.0", "Someone, 2018"),
        ),
    ),
)


@pytest.mark.skipif(shutil.which("dpkg-deb") is None, reason="dpkg-deb is part of Debian; this test needs it")
def test_debian_source_unpacks_only_listed_files_and_checks_licences(tmp_path):
    debs = _fake_deb(tmp_path)
    source = DebianSource(catalogue=FAKE, folder=debs)
    items = source.list_images()
    assert [item.id for item in items] == ["fake-bamboo", "fake-bridge"]
    bamboo = items[0]
    assert (bamboo.width, bamboo.height) == (320, 180) and bamboo.path.endswith("Bamboo.edj.jpg")
    assert bamboo.source == "debian:fake-wallpapers=1.0-1" and bamboo.licence == "BSD-2-clause"
    info = source.info()["packages"][0]
    assert info["version"] == "1.0-1" and len(info["deb_sha256"]) == 64
    extracted = Path(bamboo.path).parents[3]
    assert not list(extracted.rglob("Render.png"))
    again = DebianSource(catalogue=FAKE, folder=debs).list_images()  # reuses the unpacked files
    assert again == items
    wrong = (Package("fake-wallpapers", "fake", (Photo(FAKE[0].photos[1].member, "CC0-1.0", "x"),)),)
    with pytest.raises(ManifestError, match="copyright file gives 'CC-BY-SA-4.0'"):
        DebianSource(catalogue=wrong, folder=debs).list_images()
    missing = (Package("fake-wallpapers", "fake", (Photo("usr/share/backgrounds/Gone.jpg", "BSD-2-clause", "x"),)),)
    with pytest.raises(ManifestError, match="not in the package"):
        DebianSource(catalogue=missing, folder=debs).list_images()


def test_catalogue_ids_are_unique_and_licences_named():
    ids = [f"{package.id_prefix}:{photo.member}" for package in CATALOGUE for photo in package.photos]
    assert len(ids) == len(set(ids)) == 59
    assert all(photo.licence and photo.attribution for package in CATALOGUE for photo in package.photos)


@pytest.mark.slow
def test_real_packages_build_a_limited_suite(tmp_path, capsys):
    """Downloads (apt-get) or reuses the real packages, then builds every default suite with --limit 2."""
    from op4ksr_bench.data.commands import build_dataset, validate
    from op4ksr_bench.data.manifest import BuiltSuite

    data = tmp_path / "data"
    build_dataset(suite="all", sources=[], data=data, limit=2, seed=None, workers=1, force=False, div4k=None)
    syn = BuiltSuite.open(data, "4ksr-syn")
    assert syn.info["variant"] == "uhd" and syn.info["count"] == 2
    assert all(entry["source"].startswith("debian:") for entry in syn.entries)
    assert {entry["hr_width"] for entry in syn.entries} == {3840}
    for name in ("train", "4ksr-realsquare", "4ksr-realvary"):
        assert BuiltSuite.open(data, name).info["count"] == 2
    validate(suite="all", data=data)
