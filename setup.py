"""Metadata lives in setup.cfg; this file adds one build step: the checkout's top-level protocols/,
configs/ and third_party/ (the source of truth) are copied whole into the built package as
harness/_shipped/, so `pip install .` ships them and `zeg-eval run small_targets` works from any
folder (harness.shipped reads them). Whole folders, not file lists: a new protocol ships as it is.
An editable install reads them in the checkout instead, so nothing is copied there."""
import shutil
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

HERE = Path(__file__).resolve().parent
SHIPPED = ("protocols", "configs", "third_party")  # = harness.shipped.FOLDERS


class build_py_with_defaults(build_py):
    def run(self):
        super().run()
        if self.editable_mode:
            return
        target = Path(self.build_lib) / "harness" / "_shipped"
        for folder in SHIPPED:
            if not (HERE / folder).is_dir():
                raise SystemExit(f"setup.py: {HERE / folder} is missing; build from a checkout or an sdist")
            shutil.rmtree(target / folder, ignore_errors=True)
            shutil.copytree(HERE / folder, target / folder,
                            ignore=shutil.ignore_patterns("__pycache__", "*.pyc", ".*"))


setup(cmdclass={"build_py": build_py_with_defaults})
