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
    """A wheel built from a copy of the sources (a build writes build/ and egg-info beside them)."""
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
    build = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q",
                            "--no-build-isolation", "--disable-pip-version-check",
                            "-w", str(tmp / "dist"), str(src)], capture_output=True, text=True)
    assert build.returncode == 0, f"pip wheel failed:\n{build.stdout}{build.stderr}"
    (found,) = (tmp / "dist").glob("knetapi-*.whl")
    return found


def test_wheel_holds_every_module_the_backends_and_the_data(wheel):
    names = set(zipfile.ZipFile(wheel).namelist())
    modules = {p.relative_to(ROOT).as_posix() for p in (ROOT / "knetapi").rglob("*.py")}
    backends = {p.relative_to(ROOT).as_posix() for p in (ROOT / "backends").rglob("*.py")}
    missing = sorted((modules | {f"knetapi/{b}" for b in backends}) - names)
    assert not missing, f"not in the wheel (a package missing from pyproject.toml?): {missing}"
    for needed in ("knetapi/backends/numpy.py", "knetapi/data/housing.data",
                   "knetapi/data/hiawatha.txt", "knetapi/data/README.md"):
        assert needed in names, f"{needed} is missing from {wheel.name}"
    assert not any(n.startswith(("backends/", "tests/", "examples/")) for n in names)


def test_installed_wheel_imports_backends_and_loads_data(wheel, tmp_path):
    target = tmp_path / "site"
    install = subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "-q",
                              "--disable-pip-version-check", "--target", str(target), str(wheel)],
                             capture_output=True, text=True)
    assert install.returncode == 0, f"pip install failed:\n{install.stdout}{install.stderr}"
    script = ("import knetapi, knetapi.backends.numpy\n"
              "from knetapi.data import housing, hiawatha\n"
              "x, y = housing()\n"
              "text, vocab, codes = hiawatha()\n"
              "print(knetapi.__file__, knetapi.backends.numpy.NAME, x.shape, y.shape, len(text))\n")
    env = {**os.environ, "PYTHONPATH": str(target)}
    run = subprocess.run([sys.executable, "-c", script], cwd=tmp_path, env=env,
                         capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    out = run.stdout
    assert out.startswith(str(target)), f"imported knetapi from elsewhere: {out}"
    assert out.split()[1:] == ["numpy", "(506,", "13)", "(506,", "1)", "184138"]
