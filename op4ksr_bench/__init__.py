"""op4ksr-bench: benchmark, evaluation suite and reference implementation for one-step 4K super-resolution."""

__version__ = "0.1.0"
