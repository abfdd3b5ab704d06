"""Peak memory and CPU time of one ncnn CPU inference of a converted method's original model, by ncnn option.

Usage (from the repository root; the method's weights fetched)::

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/measure_ncnn_memory.py --method realsr-df2k-x4 --size 128
    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/measure_ncnn_memory.py --method realsr-df2k-x4 --size 128 \\
        --no-winograd --no-sgemm

fp32 (no fp16/bf16 storage), one thread by default, a seeded random ``--size`` square input. Memory is the rise of
the process's peak RSS over the inference (model loading excluded, ``ru_maxrss``); run one configuration per
process. Prints one JSON object.
"""

from __future__ import annotations

import argparse
import json
import resource
import time

import numpy as np


def main() -> None:
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from measure_cpu_speed import sources

    from op4ksr_bench.methods.ncnn_weights import download_archive, load_ncnn_net, read_model_files

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--method", default="realsr-df2k-x4", choices=sorted(sources()))
    parser.add_argument("--size", type=int, default=128)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--no-winograd", action="store_true", help="opt.use_winograd_convolution = False")
    parser.add_argument("--no-sgemm", action="store_true", help="opt.use_sgemm_convolution = False")
    parser.add_argument("--heavy", action="store_true", help="extractor light mode off (keep every blob)")
    parser.add_argument("--size-compare-ratio", type=float, default=None, help="own pool allocators with this ratio")
    args = parser.parse_args()
    source = sources()[args.method]
    param_text, bin_data = read_model_files(source, download_archive(source))
    options = {"use_winograd_convolution": not args.no_winograd, "use_sgemm_convolution": not args.no_sgemm}
    net = load_ncnn_net(param_text, bin_data, args.threads, options)
    import ncnn

    image = np.random.default_rng(0).random((3, args.size, args.size), dtype=np.float32)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    start = time.process_time()
    extractor = net.create_extractor()
    extractor.set_light_mode(not args.heavy)
    allocators = []
    if args.size_compare_ratio is not None:
        allocators = [ncnn.UnlockedPoolAllocator(), ncnn.UnlockedPoolAllocator()]
        for allocator in allocators:
            allocator.set_size_compare_ratio(args.size_compare_ratio)
        extractor.set_blob_allocator(allocators[0])
        extractor.set_workspace_allocator(allocators[1])
    extractor.input("data", ncnn.Mat(image))
    status, output = extractor.extract("output")
    result = np.array(output)
    seconds = time.process_time() - start
    rise = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before
    print(
        json.dumps(
            {
                "method": args.method,
                "input": f"{args.size}x{args.size}",
                "status": status,
                "output": list(result.shape),
                "options": {**options, "light_mode": not args.heavy, "size_compare_ratio": args.size_compare_ratio},
                "threads": args.threads,
                "cpu_seconds": round(seconds, 2),
                "peak_rss_rise_mb": round(rise / 1024),
                "peak_rss_rise_gb_per_input_megapixel": round(rise / 1024**2 / (args.size**2 / 1e6), 1),
            }
        )
    )


if __name__ == "__main__":
    main()
