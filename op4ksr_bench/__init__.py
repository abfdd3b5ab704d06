"""op4ksr-bench: benchmark, evaluation suite and reference implementation for one-step 4K super-resolution.

The Python API (:mod:`op4ksr_bench.api`) is exported here and imported on first use, so that importing the
package (and ``op4ksr-bench --help`` / ``ls``) stays free of torch::

    import op4ksr_bench as ob

    ob.list_suites()
    frame = ob.evaluate("bicubic", "4ksr-syn", metrics=["psnr"], limit=2)
"""

__version__ = "0.1.0"

_API = (
    "create_metric",
    "evaluate",
    "list_methods",
    "list_metrics",
    "list_suites",
    "load_results",
    "load_suite",
)

__all__ = ["__version__", *_API]


def __getattr__(name: str):
    if name in _API:
        from op4ksr_bench import api

        return getattr(api, name)
    raise AttributeError(f"module 'op4ksr_bench' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted({*globals(), *_API})
