"""``python -m op4ksr_bench``: the same command line as the ``op4ksr-bench`` console script."""

from op4ksr_bench.cli import main

if __name__ == "__main__":
    main()
