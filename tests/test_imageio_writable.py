"""Every array the image reader returns is writable and C-contiguous, whatever the file's mode or path taken."""

from __future__ import annotations

import io
import warnings

import cv2
import numpy as np
import pytest
from PIL import Image

from op4ksr_bench.imageio import decode_image_bytes, read_image, to_tensor


def _image(mode: str) -> Image.Image:
    rgb = np.random.default_rng(7).integers(0, 256, (20, 28, 3), dtype=np.uint8)
    if mode == "RGB":
        return Image.fromarray(rgb)
    if mode == "RGBA":
        return Image.fromarray(np.dstack([rgb, np.full(rgb.shape[:2], 255, np.uint8)]))
    if mode == "L":
        return Image.fromarray(rgb[:, :, 0])
    if mode == "I;16":
        return Image.fromarray(rgb[:, :, 0].astype(np.uint16) * 257)
    if mode == "P":
        return Image.fromarray(rgb).convert("P")
    if mode == "CMYK":
        return Image.fromarray(rgb).convert("CMYK")
    raise ValueError(mode)


def _assert_owned(array: np.ndarray) -> None:
    assert array.dtype == np.uint8 and array.ndim == 3 and array.shape[2] == 3
    assert array.flags.writeable, "read-only array returned"
    assert array.flags.c_contiguous
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # torch warns on non-writable numpy arrays
        to_tensor(array)
    array[0, 0, 0] ^= 1  # really writable


@pytest.mark.parametrize(
    ("mode", "fmt"),
    [("RGB", "PNG"), ("RGB", "JPEG"), ("RGBA", "PNG"), ("L", "PNG"), ("I;16", "PNG"), ("P", "PNG"), ("CMYK", "JPEG")],
)
def test_read_image_returns_writable_contiguous_arrays(tmp_path, mode, fmt):
    path = tmp_path / f"image.{fmt.lower()}"
    _image(mode).save(path, format=fmt)
    _assert_owned(read_image(path))
    _assert_owned(decode_image_bytes(path.read_bytes(), path.name))


def test_48_bit_png_path_returns_a_writable_array(tmp_path):
    path = tmp_path / "deep.png"
    deep = np.random.default_rng(8).integers(0, 65536, (12, 16, 3), dtype=np.uint16)
    assert cv2.imwrite(str(path), deep)
    _assert_owned(read_image(path))


def test_decoded_bytes_do_not_alias_the_input_buffer():
    buffer = io.BytesIO()
    _image("RGB").save(buffer, format="PNG")
    first = decode_image_bytes(buffer.getvalue(), "a.png")
    second = decode_image_bytes(buffer.getvalue(), "a.png")
    first[:] = 0
    assert second.any()
