"""Reading the photographs inside Enlightenment ``.edj`` (EET) containers without the Enlightenment toolchain.

An EET file stores each image of a theme at many sizes; the photographic backgrounds of ``enlightenment-data``
keep them as plain baseline JPEG streams. We find every stream by its SOI marker (``FF D8 FF``), walk its
marker segments to read the frame size from the SOF header, and end it at the first EOI (``FF D9``) after the
start-of-scan segment (inside entropy-coded data ``FF`` is always followed by ``00`` or a restart marker, so the
first ``FF D9`` is the true end). The largest frame is the full-resolution photograph.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from op4ksr_bench.errors import ImageError

_SOF_MARKERS = {0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF}


@dataclass(frozen=True)
class JpegStream:
    """One JPEG stream inside a container: ``data[start:end]`` decodes to a ``width x height`` image."""

    start: int
    end: int
    width: int
    height: int


def _parse_stream(data: bytes, start: int) -> JpegStream | None:
    position = start + 2
    width = height = 0
    while position + 4 <= len(data):
        if data[position] != 0xFF:
            return None
        marker = data[position + 1]
        if marker == 0xFF:  # fill byte
            position += 1
            continue
        if marker in (0x01,) or 0xD0 <= marker <= 0xD7:  # markers without a length
            position += 2
            continue
        length = int.from_bytes(data[position + 2 : position + 4], "big")
        if length < 2:
            return None
        if marker in _SOF_MARKERS and position + 9 <= len(data):
            height = int.from_bytes(data[position + 5 : position + 7], "big")
            width = int.from_bytes(data[position + 7 : position + 9], "big")
        if marker == 0xDA:  # start of scan: entropy-coded data follows, ended by EOI
            end = data.find(b"\xff\xd9", position + 2 + length)
            if end < 0 or width == 0 or height == 0:
                return None
            return JpegStream(start=start, end=end + 2, width=width, height=height)
        position += 2 + length
    return None


def find_jpeg_streams(data: bytes) -> list[JpegStream]:
    """Every complete JPEG stream in ``data`` with a readable frame header, in file order."""
    streams = []
    for match in re.finditer(b"\xff\xd8\xff", data):
        stream = _parse_stream(data, match.start())
        if stream is not None:
            streams.append(stream)
    return streams


def largest_jpeg_stream(data: bytes, name: str) -> bytes:
    """Bytes of the largest (by pixel count; first on ties) JPEG stream in a container.

    Raises:
        ImageError: the container holds no complete JPEG stream.
    """
    streams = find_jpeg_streams(data)
    if not streams:
        raise ImageError(f"{name}: no JPEG stream found in the container (not an image .edj, or truncated)")
    best = max(streams, key=lambda stream: (stream.width * stream.height, -stream.start))
    return data[best.start : best.end]
