"""The image I/O policy: every kind of bad or unusual file is converted or rejected with one line, never a traceback."""

from __future__ import annotations

import io
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from op4ksr_bench.errors import ImageError
from op4ksr_bench.imageio import (
    MAX_PIXELS,
    decode_image_bytes,
    encode_png,
    from_tensor,
    read_image,
    to_tensor,
    write_png,
)


def _rgb(height=24, width=32, seed=0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (height, width, 3), dtype=np.uint8)


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def test_rgb_png_round_trip_is_exact_and_deterministic(tmp_path):
    image = _rgb()
    write_png(tmp_path / "a.png", image)
    write_png(tmp_path / "b.png", image)
    assert (tmp_path / "a.png").read_bytes() == (tmp_path / "b.png").read_bytes() == encode_png(image)
    assert np.array_equal(read_image(tmp_path / "a.png"), image)
    assert not list(tmp_path.glob(".tmp-*"))


def test_zero_byte_missing_corrupt_and_truncated_files_are_rejected(tmp_path):
    empty = tmp_path / "empty.png"
    empty.write_bytes(b"")
    with pytest.raises(ImageError, match=r"empty \(0 bytes\)"):
        read_image(empty)
    with pytest.raises(ImageError, match="file not found"):
        read_image(tmp_path / "nope.png")
    garbage = tmp_path / "garbage.jpg"
    garbage.write_bytes(b"this is not an image at all" * 10)
    with pytest.raises(ImageError, match="not a readable image"):
        read_image(garbage)
    buffer = io.BytesIO()
    Image.fromarray(_rgb(64, 64)).save(buffer, format="JPEG", quality=90)
    truncated = tmp_path / "truncated.jpg"
    truncated.write_bytes(buffer.getvalue()[: len(buffer.getvalue()) // 2])
    with pytest.raises(ImageError, match="corrupt or truncated"):
        read_image(truncated)
    png = encode_png(_rgb(64, 64))
    cut = tmp_path / "cut.png"
    cut.write_bytes(png[: len(png) - 40])
    with pytest.raises(ImageError, match=str(cut.name)):
        read_image(cut)
    with pytest.raises(ImageError, match="empty"):
        decode_image_bytes(b"", "stream")


def test_decompression_bomb_is_rejected_before_decoding(tmp_path):
    side = 20000  # 400 Mpx claimed by a ~100-byte file
    header = b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", struct.pack(">IIBBBBB", side, side, 8, 2, 0, 0, 0))
    bomb = header + _png_chunk(b"IDAT", zlib.compress(b"\x00" * 64)) + _png_chunk(b"IEND", b"")
    path = tmp_path / "bomb.png"
    path.write_bytes(bomb)
    assert side * side > MAX_PIXELS
    with pytest.raises(ImageError, match="decompression-bomb guard"):
        read_image(path)
    with pytest.raises(ImageError, match="decompression-bomb guard"):
        decode_image_bytes(bomb, "bomb stream")
    write_png(tmp_path / "small.png", _rgb(20, 20))
    with pytest.raises(ImageError, match="over the 100 limit"):
        read_image(tmp_path / "small.png", max_pixels=100)


def test_greyscale_8_and_16_bit_are_replicated_to_rgb(tmp_path):
    grey = np.arange(256, dtype=np.uint8).reshape(16, 16)
    Image.fromarray(grey, mode="L").save(tmp_path / "grey.png")
    result = read_image(tmp_path / "grey.png")
    assert result.shape == (16, 16, 3) and np.array_equal(result[:, :, 1], grey)
    sixteen = grey.astype(np.uint16) * 257
    Image.fromarray(sixteen).save(tmp_path / "grey16.png")
    assert np.array_equal(read_image(tmp_path / "grey16.png")[:, :, 0], grey)


def test_48_bit_rgb_png_is_scaled_exactly(tmp_path):
    import cv2

    image = _rgb(8, 8)
    bgr16 = image[:, :, ::-1].astype(np.uint16) * 257
    cv2.imwrite(str(tmp_path / "rgb48.png"), bgr16)
    assert np.array_equal(read_image(tmp_path / "rgb48.png"), image)


def test_palette_rgba_and_cmyk(tmp_path):
    image = Image.fromarray(_rgb(16, 16)).convert("P", palette=Image.Palette.ADAPTIVE, colors=16)
    image.save(tmp_path / "palette.png")
    assert read_image(tmp_path / "palette.png").shape == (16, 16, 3)
    indices = np.zeros((8, 8), np.uint8)
    indices[4:] = 1
    transparent = Image.fromarray(indices, mode="P")
    transparent.putpalette([0, 0, 0, 255, 0, 0] + [0] * 762)
    transparent.save(tmp_path / "palette_t.png", transparency=0)
    with pytest.raises(ImageError, match="transparent pixels"):
        read_image(tmp_path / "palette_t.png")
    rgba = np.dstack([_rgb(8, 8), np.full((8, 8), 255, np.uint8)])
    Image.fromarray(rgba, mode="RGBA").save(tmp_path / "opaque.png")
    assert np.array_equal(read_image(tmp_path / "opaque.png"), rgba[:, :, :3])
    rgba[0, 0, 3] = 10
    Image.fromarray(rgba, mode="RGBA").save(tmp_path / "alpha.png")
    with pytest.raises(ImageError, match="flatten it onto a background"):
        read_image(tmp_path / "alpha.png")
    Image.fromarray(_rgb(16, 16)).convert("CMYK").save(tmp_path / "cmyk.jpg", quality=95)
    assert read_image(tmp_path / "cmyk.jpg").shape == (16, 16, 3)


def test_exif_orientation_is_applied(tmp_path):
    image = np.zeros((10, 20, 3), np.uint8)
    image[:, :10] = 255  # left half white
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise to display
    Image.fromarray(image).save(tmp_path / "rotated.jpg", exif=exif.tobytes(), quality=100)
    upright = read_image(tmp_path / "rotated.jpg")
    assert upright.shape == (20, 10, 3)
    assert upright[:5].mean() > 200 and upright[-5:].mean() < 50  # the white half is now on top


def test_bilevel_and_float_modes(tmp_path):
    Image.fromarray(np.eye(8, dtype=bool)).save(tmp_path / "bilevel.png")
    assert set(np.unique(read_image(tmp_path / "bilevel.png"))) == {0, 255}
    Image.fromarray(np.ones((4, 4), np.float32)).save(tmp_path / "float.tif")
    with pytest.raises(ImageError, match="floating-point"):
        read_image(tmp_path / "float.tif")


def test_tensor_round_trip_and_shape_checks():
    image = _rgb()
    tensor = to_tensor(image)
    assert tuple(tensor.shape) == (1, 3, 24, 32) and float(tensor.max()) <= 1.0
    assert np.array_equal(from_tensor(tensor), image)
    with pytest.raises(ImageError, match="expected uint8 HxWx3"):
        encode_png(image.astype(np.float32))
    with pytest.raises(ImageError, match=r"\[1, 3, H, W\]"):
        from_tensor(tensor[0])


def test_cli_never_shows_a_traceback_for_bad_images(tmp_path, capsys):
    from op4ksr_bench.data.sources import FolderSource, load_source_image

    folder = tmp_path / "bad"
    folder.mkdir()
    (folder / "zero.png").write_bytes(b"")
    item = FolderSource(folder).list_images()[0]
    with pytest.raises(ImageError) as raised:
        load_source_image(item)
    assert "\n" not in str(raised.value) and "zero.png" in str(raised.value)


def test_paths_are_accepted_as_strings(tmp_path):
    write_png(str(tmp_path / "s.png"), _rgb())
    assert read_image(str(tmp_path / "s.png")).shape == (24, 32, 3)
    assert Path(tmp_path / "s.png").is_file()
