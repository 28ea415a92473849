"""A built wheel holds what an installed knetapi needs: the backends (from backends/, through the
package-dir mapping) and the shipped data, and imports from anywhere without the source tree."""

import importlib.metadata
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SOURCES = ("knetapi", "backends", "pyproject.toml", "README.md")


def _setuptools_major() -> int:
    try:
        return int(importlib.metadata.version("setuptools").split(".")[0])
    except importlib.metadata.PackageNotFoundError:
        return 0


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    """A wheel built from a copy of the sources (the build writes build/ and egg-info beside them)."""
    if _setuptools_major() < 77:
        pytest.skip("building the wheel needs setuptools >= 77 in this environment "
                    "(the [test] extra installs it; ./run test uses that)")
    tmp = tmp_path_factory.mktemp("wheel")
    src = tmp / "src"
    for name in SOURCES:
        if (ROOT / name).is_dir():
            shutil.copytree(ROOT / name, src / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy2(ROOT / name, src / name)
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation",
                    "--disable-pip-version-check", "-q", "-w", str(tmp / "dist"), str(src)],
                   check=True, capture_output=True, text=True)
    (found,) = (tmp / "dist").glob("knetapi-*.whl")
    return found


def test_wheel_holds_the_backends_and_the_data(wheel):
    names = set(zipfile.ZipFile(wheel).namelist())
    for needed in ("knetapi/__init__.py", "knetapi/backends/numpy.py", "knetapi/data/housing.data",
                   "knetapi/data/README.md"):
        assert needed in names, f"{needed} is missing from {wheel.name}"
    assert not any(n.startswith(("backends/", "tests/", "examples/")) for n in names)


def test_installed_wheel_imports_backends_and_loads_data(wheel, tmp_path):
    target = tmp_path / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "--disable-pip-version-check",
                    "-q", "--target", str(target), str(wheel)], check=True, capture_output=True)
    script = ("import knetapi, knetapi.backends.numpy\n"
              "from knetapi.datasets import housing\n"
              "x, y = housing()\n"
              "print(knetapi.__file__, knetapi.backends.numpy.NAME, x.shape, y.shape)\n")
    env = {**os.environ, "PYTHONPATH": str(target)}
    out = subprocess.run([sys.executable, "-c", script], cwd=tmp_path, env=env, check=True,
                         capture_output=True, text=True).stdout
    assert out.startswith(str(target)), f"imported knetapi from elsewhere: {out}"
    assert out.split()[1:] == ["numpy", "(506,", "13)", "(506,", "1)"]
