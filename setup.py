"""Build hook: ship the suite definitions kept in ``datasets/`` inside the package as ``op4ksr_bench/suites/``.

``datasets/*.yaml`` stays the one source (visible at the top of the repository, and without an ``__init__.py``,
which would shadow the Hugging Face ``datasets`` library); built wheels carry a copy that
:func:`op4ksr_bench.data.suites.suites_dir` reads through ``importlib.resources``. Everything else is in
``pyproject.toml``.
"""

from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

SUITES_SOURCE = Path(__file__).resolve().parent / "datasets"


class BuildPyWithSuites(build_py):
    """``build_py`` that also copies ``datasets/*.yaml`` to ``<build>/op4ksr_bench/suites/``."""

    def run(self) -> None:
        super().run()
        if self.editable_mode:  # an editable install reads datasets/ in the checkout directly
            return
        target = Path(self.build_lib) / "op4ksr_bench" / "suites"
        self.mkpath(str(target))
        for path in sorted(SUITES_SOURCE.glob("*.yaml")):
            self.copy_file(str(path), str(target / path.name))

    def get_outputs(self, include_bytecode: bool = True) -> list[str]:
        outputs = super().get_outputs(include_bytecode)
        if not self.editable_mode:
            target = Path(self.build_lib) / "op4ksr_bench" / "suites"
            outputs += [str(target / path.name) for path in sorted(SUITES_SOURCE.glob("*.yaml"))]
        return outputs


setup(cmdclass={"build_py": BuildPyWithSuites})
