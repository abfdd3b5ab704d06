"""Measure a method untiled and tiled on one image: seconds, seconds per input megapixel, peak memory.

Usage (from the repository root)::

    .venv/bin/python benchmarks/measure_tiling.py --method bicubic --size 1024
    .venv/bin/python benchmarks/measure_tiling.py --method realesrgan-x4plus --size 256 --tile 512 --overlap 32

``--opt KEY=VALUE`` passes method options (e.g. ``--opt backend=ncnn``). ``--image PATH`` uses a real LR image
instead of a seeded random one (``--size`` then crops its top-left corner;
``--size 0`` keeps it whole). Each configuration gets one untimed warm-up call on a 64x64 crop, then one timed
call; peak memory is the process's peak RSS increase over the call (see ``op4ksr_bench.methods.profiling``).
Prints one JSON object per configuration.
"""

from __future__ import annotations

import argparse
import json
import time

import torch

from op4ksr_bench.imageio import read_image, to_tensor
from op4ksr_bench.methods.factory import create_method, parse_options
from op4ksr_bench.methods.profiling import PeakMemory


def measure(spec: str, options: dict, image: torch.Tensor) -> dict:
    method = create_method(spec, options=options)
    method.upscale(image[..., :64, :64])
    with PeakMemory("cpu") as memory:
        start = time.perf_counter()
        output = method.upscale(image)
        seconds = time.perf_counter() - start
    megapixels = image.shape[2] * image.shape[3] / 1e6
    return {
        "method": method.card.name,
        "input": f"{image.shape[3]}x{image.shape[2]}",
        "output": f"{output.shape[3]}x{output.shape[2]}",
        "seconds": round(seconds, 3),
        "seconds_per_input_megapixel": round(seconds / megapixels, 3),
        "peak_rss_increase_bytes": memory.bytes,
        "threads": torch.get_num_threads(),
        "options": {
            key: value for key, value in method.options().items() if key in ("backend", "tile", "overlap", "blend")
        },
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--method", default="bicubic")
    parser.add_argument("--size", type=int, default=1024, help="input side in LR pixels (0 = the whole --image)")
    parser.add_argument("--image", default=None, help="an LR image to use instead of a random one")
    parser.add_argument("--tile", type=int, default=512, help="tile size in output pixels")
    parser.add_argument("--overlap", type=int, default=64, help="tile overlap in output pixels")
    parser.add_argument("--blend", default="gaussian")
    parser.add_argument("--only", choices=["untiled", "tiled"], default=None)
    parser.add_argument("--opt", action="append", default=[], help="method option KEY=VALUE (repeatable)")
    args = parser.parse_args()
    options = parse_options(args.opt)
    if args.image:
        image = to_tensor(read_image(args.image))
        if args.size:
            image = image[..., : args.size, : args.size]
    else:
        image = torch.rand(1, 3, args.size, args.size, generator=torch.Generator().manual_seed(0))
    with torch.inference_mode():
        if args.only != "tiled":
            print(json.dumps(measure(args.method, options, image)), flush=True)
        if args.only != "untiled":
            tiling = {"tile": args.tile, "overlap": args.overlap, "blend": args.blend}
            print(json.dumps(measure(args.method, {**options, **tiling}, image)), flush=True)


if __name__ == "__main__":
    main()
