"""The built-in default source: real photographs shipped in Debian packages.

The packages come from Debian's archive through ``apt-get download`` (no root needed) into
``<downloads>/debian/``; only the listed files are unpacked (``dpkg-deb --fsys-tarfile`` streamed through
``tarfile``). Each package's ``copyright`` file is parsed (DEP-5) and must agree with the licence written in the
catalogue below, so a package update that changes a licence stops the build instead of mislabelling images.

The catalogue is an explicit, hand-checked list of *photographs*: renders, vector art, logos and small tiling
textures in the same packages are left out (see datasets/README.md for what was excluded and why).
"""

from __future__ import annotations

import fnmatch
import json
import logging
import shutil
import subprocess
import tarfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

from op4ksr_bench.atomic import atomic_write_bytes, atomic_write_text, sha256_file
from op4ksr_bench.data.eet import largest_jpeg_stream
from op4ksr_bench.data.sources import Source, SourceImage, header_size, slug
from op4ksr_bench.errors import ManifestError, Op4ksrError, UsageError
from op4ksr_bench.paths import downloads_dir

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Photo:
    """One catalogued photograph: ``member`` is its path inside the package; ``licence`` must match copyright."""

    member: str
    licence: str
    attribution: str


@dataclass(frozen=True)
class Package:
    """A Debian package and the photographs taken from it; ``id_prefix`` starts every image id."""

    name: str
    id_prefix: str
    photos: tuple[Photo, ...]


def _photos(folder: str, names: list[str], licence: str, attribution: str | dict[str, str]) -> tuple[Photo, ...]:
    photos = []
    for name in names:
        credit = attribution[name] if isinstance(attribution, dict) else attribution
        photos.append(Photo(f"{folder}/{name}", licence, credit))
    return tuple(photos)


_ENLIGHTENMENT = [f"{name}.edj" for name in (
    "Bamboo", "Foggy-Trees", "God-Rays", "Green-Maple", "Lichen-Branches", "Mountain", "Peaks", "Red-Maple",
    "Sea-of-Lanterns", "Snow-Trees", "Spruce-Needles", "Sunset-Clouds", "White-Flower", "Yellow-Flower",
)]  # fmt: skip

_LOMIRI_16 = {
    "Bridge_by_Sander_Klootwijk.jpg": ("CC-BY-SA-4.0", "Sander Klootwijk, 2018"),
    "Dragonfly_by_Bolly.jpg": ("CC-BY-SA-4.0", '"Bolly", 2018'),
    "Picture_0B_by_freespace.jpg": ("CC-BY-4.0", 'Trevor "Freespace", 2018'),
    "Picture_1A_by_freespace.jpg": ("CC-BY-4.0", 'Trevor "Freespace", 2018'),
    "Wine_by_Jakkub_Mede.jpg": ("CC-BY-4.0", "Jakub Mede, 2018"),
    "aitzgorri_by_Aitzol_Berasategi.jpg": ("CC-BY-4.0", "Aitzol Berasategi, 2018"),
    "free_by_Peter_Nerlich.jpg": ("CC-BY-SA-4.0", "Peter Nerlich, 2018"),
    "friends_by_Aitzol_Berasategi.jpg": ("CC-BY-4.0", "Aitzol Berasategi, 2018"),
    "greentock_by_Peter_Nerlich.jpg": ("CC-BY-SA-4.0", "Peter Nerlich, 2018"),
    "life_by_Aitzol_Berasategi.jpg": ("CC-BY-4.0", "Aitzol Berasategi, 2018"),
    "picosdeeuropa_by_Aitzol_Berasategi.jpg": ("CC-BY-4.0", "Aitzol Berasategi, 2018"),
    "seeding_by_Clements_Engelhardt.jpg": ("CC0-1.0", "Clemens Engelhardt, 2018"),
    "sunset_by_Aitzol_Berasategi.jpg": ("CC-BY-4.0", "Aitzol Berasategi, 2018"),
}

_MATE_NATURE = {
    "Aqua.jpg": "Charles Barbin, 2008",
    "Blinds.jpg": "Lennart Poettering, Andrea Cimitan, 2008",
    "Dune.jpg": "Marco Cogoni 2007, Hylke Bons 2008",
    "FreshFlower.jpg": "Jens Ansorg, 2005",
    "Garden.jpg": "Charles Barbin, 2008",
    "GreenMeadow.jpg": "Timothy Schellhase 2005, Lapo Calamandrei 2008",
    "LadyBird.jpg": "Charles Barbin, 2008",
    "RainDrops.jpg": '"blackcombwhistler07", 2008',
    "Storm.jpg": "Sergey Nazarov, 2008",
    "TwoWings.jpg": "Charles Barbin, Hylke Bons, 2008",
    "Wood.jpg": "Jean-Francois Fortin Tam, 2008",
    "YellowFlower.jpg": "Charles Barbin, 2008",
}

_PLASMA = (
    "BytheWater", "ColdRipple", "ColorfulCups", "DarkestHour", "EveningGlow", "FallenLeaf", "Grey", "Kite",
    "OneStandsOut", "Path", "summer_1am",
)  # fmt: skip

_LXQT = (
    "after-the-rain.jpg", "appleflower.png", "beam.png", "butterfly.png", "drop.png", "flowers.png", "fog.jpg",
    "this-is-not-windows.jpg",
)  # fmt: skip

CATALOGUE: tuple[Package, ...] = (
    Package(
        "enlightenment-data",
        "enl",
        _photos(
            "usr/share/enlightenment/data/backgrounds",
            _ENLIGHTENMENT,
            "BSD-2-clause",
            "Carsten Haitzler and contributors (Enlightenment), 2000-2020",
        ),
    ),
    Package(
        "lomiri-wallpapers-16.04",
        "lomiri",
        tuple(Photo(f"usr/share/backgrounds/{name}", lic, credit) for name, (lic, credit) in _LOMIRI_16.items()),
    ),
    Package(
        "lomiri-wallpapers-20.04",
        "lomiri",
        (Photo("usr/share/backgrounds/Kleiber_by_Lukas_Baubkus.jpg", "CC-BY-SA-3.0", "Lukas Baubkus, 2021"),),
    ),
    Package(
        "lxqt-themes",
        "lxqt",
        _photos(
            "usr/share/lxqt/wallpapers",
            list(_LXQT),
            "LGPL-2.1+",
            "stefonarch (LXQt Project Team); upstream wallpapers/License also states CC-BY-SA-3.0",
        ),
    ),
    Package(
        "mate-backgrounds",
        "mate",
        _photos("usr/share/backgrounds/mate/nature", list(_MATE_NATURE), "GPL-2+", _MATE_NATURE),
    ),
    Package(
        "plasma-workspace-wallpapers",
        "plasma",
        tuple(
            Photo(
                f"usr/share/wallpapers/{name}/contents/images/2560x1600.jpg", "GPL-2+", "KDE Visual Design Group, 2014"
            )
            for name in _PLASMA
        ),
    ),
)


def photo_id(package: Package, photo: Photo) -> str:
    """``enl-bamboo``, ``lomiri-bridge``, ``plasma-colorfulcups`` ..."""
    parts = Path(photo.member).parts
    stem = parts[-4] if package.name == "plasma-workspace-wallpapers" else Path(photo.member).stem
    return f"{package.id_prefix}-{slug(stem.split('_by_')[0])}"


# ------------------------------------------------------------------------------------------ copyright (DEP-5)


def parse_copyright(text: str) -> list[tuple[list[str], str]]:
    """DEP-5 ``Files:`` stanzas as ``[(patterns, licence short name)]`` in file order."""
    stanzas = []
    for block in text.split("\n\n"):
        patterns: list[str] = []
        licence = None
        current = None
        for line in block.splitlines():
            if line.startswith("Files:"):
                patterns = line[len("Files:") :].split()
                current = "files"
            elif line.startswith("License:"):
                licence = line[len("License:") :].strip()
                current = "license"
            elif line[:1] in (" ", "\t") and current == "files":
                patterns.extend(line.split())
            elif line and not line[:1].isspace():
                current = None
        if patterns and licence:
            stanzas.append((patterns, licence))
    return stanzas


def licence_for(stanzas: list[tuple[list[str], str]], member: str) -> str | None:
    """Licence of the last stanza whose pattern matches ``member`` (DEP-5: later stanzas win).

    Patterns are matched against the member path and its trailing components, because copyright files name
    source-tree paths (``16.04/Bridge.jpg``) while packages install elsewhere (``usr/share/backgrounds/Bridge.jpg``).
    """
    parts = Path(member).parts
    tails = ["/".join(parts[index:]) for index in range(len(parts))]
    found = None
    for patterns, licence in stanzas:
        for pattern in patterns:
            basename = pattern.rsplit("/", 1)[-1]
            literal_name = "/" in pattern and not any(char in basename for char in "*?[")
            if any(fnmatch.fnmatchcase(tail, pattern) for tail in tails) or (literal_name and basename == parts[-1]):
                found = licence
    return found


# --------------------------------------------------------------------------------------------------- packages


def _run(command: list[str], cwd: Path | None = None) -> str:
    try:
        result = subprocess.run(command, cwd=cwd, capture_output=True, text=True, check=False)
    except FileNotFoundError as error:
        raise Op4ksrError(f"`{command[0]}` is not installed; the debian source needs apt and dpkg") from error
    if result.returncode != 0:
        message = (result.stderr or result.stdout).strip().splitlines()
        raise Op4ksrError(f"`{' '.join(command)}` failed: {message[-1] if message else result.returncode}")
    return result.stdout


def locate_deb(package: str, folder: Path) -> Path:
    """The package's ``.deb`` in ``folder``, downloaded with ``apt-get download`` when absent."""
    folder.mkdir(parents=True, exist_ok=True)
    found = sorted(folder.glob(f"{package}_*.deb"))
    if not found:
        logger.info("downloading %s with apt-get into %s", package, folder)
        try:
            _run(["apt-get", "download", package], cwd=folder)
        except Op4ksrError as error:
            raise Op4ksrError(
                f"{error}; run `apt-get update` (or copy {package}_*.deb into {folder}) and try again"
            ) from error
        found = sorted(folder.glob(f"{package}_*.deb"))
        if not found:
            raise Op4ksrError(f"apt-get download {package} left no .deb in {folder}")
    return found[-1]


def deb_sha256(deb: Path) -> str:
    """sha256 of a ``.deb``, cached beside it (keyed by size and modification time)."""
    stat = deb.stat()
    cache = deb.with_name(deb.name + ".sha256.json")
    key = {"size": stat.st_size, "mtime_ns": stat.st_mtime_ns}
    if cache.is_file():
        try:
            data = json.loads(cache.read_text())
            if data.get("key") == key:
                return str(data["sha256"])
        except (ValueError, KeyError):
            pass
    digest = sha256_file(deb)
    atomic_write_text(cache, json.dumps({"key": key, "sha256": digest}))
    return digest


def extract_members(deb: Path, members: list[str], target: Path) -> None:
    """Unpack ``members`` (paths without ``./``) of ``deb`` into ``target``; ``.edj`` members become ``.edj.jpg``.

    Streams ``dpkg-deb --fsys-tarfile`` so nothing else of the package touches the disk.
    """
    wanted = set(members)
    process = subprocess.Popen(["dpkg-deb", "--fsys-tarfile", str(deb)], stdout=subprocess.PIPE)
    found = set()
    try:
        with tarfile.open(fileobj=process.stdout, mode="r|") as archive:
            for member in archive:
                name = member.name[2:] if member.name.startswith("./") else member.name
                if name not in wanted or not member.isfile():
                    continue
                handle = archive.extractfile(member)
                data = handle.read() if handle else b""
                if name.endswith(".edj"):
                    atomic_write_bytes(target / (name + ".jpg"), largest_jpeg_stream(data, f"{deb.name}:{name}"))
                else:
                    atomic_write_bytes(target / name, data)
                found.add(name)
    finally:
        if process.stdout:
            process.stdout.close()
        process.wait()
    missing = sorted(wanted - found)
    if missing:
        raise ManifestError(f"{deb.name}: files listed in the catalogue are not in the package: {missing}")


class DebianSource(Source):
    """Photographs from Debian packages (:data:`CATALOGUE`), downloaded and unpacked on first use.

    Args:
        catalogue: Packages and photographs to take (tests pass a small one).
        folder: Where ``.deb`` files are kept (default ``<downloads>/debian``).
    """

    spec = "debian"
    usage: ClassVar[str] = "debian"

    @classmethod
    def from_argument(cls, argument: str | None, cache_dir: Path) -> DebianSource:
        if argument is not None:
            raise UsageError(f"--source debian:{argument}: the Debian catalogue takes no argument; write debian")
        return cls()

    def __init__(self, catalogue: tuple[Package, ...] = CATALOGUE, folder: Path | None = None) -> None:
        self.catalogue = catalogue
        self.folder = Path(folder) if folder else downloads_dir() / "debian"
        self._packages: list[dict[str, Any]] = []

    def _prepare(self, package: Package) -> tuple[Path, dict[str, Any], list[tuple[list[str], str]]]:
        deb = locate_deb(package.name, self.folder)
        version = _run(["dpkg-deb", "--field", str(deb), "Version"]).strip()
        digest = deb_sha256(deb)
        target = self.folder / "extracted" / f"{package.name}_{version.replace(':', '%3a')}"
        copyright_member = f"usr/share/doc/{package.name}/copyright"
        members = [copyright_member] + [photo.member for photo in package.photos]
        marker = target / ".complete.json"
        expected = {"deb_sha256": digest, "members": members}
        if not marker.is_file() or json.loads(marker.read_text()) != expected:
            if target.exists():
                shutil.rmtree(target)
            extract_members(deb, members, target)
            atomic_write_text(marker, json.dumps(expected))
        stanzas = parse_copyright((target / copyright_member).read_text(encoding="utf-8", errors="replace"))
        info = {"package": package.name, "version": version, "deb": deb.name, "deb_sha256": digest}
        return target, info, stanzas

    def list_images(self) -> list[SourceImage]:
        items = []
        self._packages = []
        for package in self.catalogue:
            target, info, stanzas = self._prepare(package)
            self._packages.append(info)
            for photo in package.photos:
                declared = licence_for(stanzas, photo.member)
                if declared != photo.licence:
                    raise ManifestError(
                        f"{package.name}: copyright file gives {declared!r} for {photo.member}, the catalogue says "
                        f"{photo.licence!r}; check the package's licence and update op4ksr_bench/data/debian.py"
                    )
                path = target / (photo.member + ".jpg" if photo.member.endswith(".edj") else photo.member)
                width, height = header_size(path)
                items.append(
                    SourceImage(
                        id=photo_id(package, photo),
                        source=f"debian:{package.name}={info['version']}",
                        original_path=photo.member,
                        licence=photo.licence,
                        attribution=photo.attribution,
                        path=str(path),
                        width=width,
                        height=height,
                    )
                )
        ids = [item.id for item in items]
        duplicates = sorted({item for item in ids if ids.count(item) > 1})
        if duplicates:
            raise ManifestError(f"debian catalogue: duplicate image ids {duplicates}")
        return sorted(items, key=lambda item: item.id)

    def info(self) -> dict[str, Any]:
        return {"spec": self.spec, "packages": list(self._packages)}
