"""tests/skips.py: every run counts its skips by reason, and under CI a skip for something that
./run test installs (a package of the [test] extra, Fashion-MNIST) fails."""

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from skips import required_by_ci, test_extra_modules

TESTS = Path(__file__).resolve().parent


def test_the_test_extra_is_read_from_pyproject():
    assert {"torch", "array_api_strict", "safetensors", "jax", "autograd", "hypothesis"} <= test_extra_modules()


@pytest.mark.parametrize("reason, required", [
    ("could not import 'torch': No module named 'torch'", True),
    ("could not import 'array_api_strict': No module named 'array_api_strict'", True),
    ("array-api-strict is not installed", True),
    ("could not import 'safetensors.numpy': No module named 'safetensors'", True),
    ("Debian's dataset-fashion-mnist package is not installed (...)", True),
    ("mlp.md reads MNIST-format data, and there is none here: ... apt-get install dataset-fashion-mnist ...",
     True),
    ("could not import 'cupy': No module named 'cupy'", False),
    ("cupy is registered here", False),
    ("no CUDA device", False),
])
def test_which_skips_ci_refuses(reason, required):
    assert required_by_ci(reason, test_extra_modules()) is required


SAMPLE = '''
import pytest

def test_runs():
    pass

def test_without_torch():
    pytest.skip("could not import 'torch': No module named 'torch'")

@pytest.mark.skipif(True, reason="Debian's dataset-fashion-mnist package is not installed")
def test_without_data():
    pass

def test_without_cupy():
    pytest.skip("cupy is registered here")

@pytest.mark.xfail(reason="known", strict=True)
def test_expected_to_fail():
    assert False
'''


def run_sample(tmp_path, ci: str | None):
    (tmp_path / "conftest.py").write_text(textwrap.dedent(f"""
        import sys
        sys.path.insert(0, {str(TESTS)!r})
        from skips import pytest_make_collect_report, pytest_runtest_makereport, pytest_terminal_summary
        """))
    (tmp_path / "test_sample.py").write_text(SAMPLE)
    env = {k: v for k, v in os.environ.items() if k != "CI"}
    if ci is not None:
        env["CI"] = ci
    done = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-rfEs",
                           str(tmp_path)], capture_output=True, text=True, env=env, cwd=tmp_path, timeout=120)
    return done.returncode, done.stdout + done.stderr


def test_outside_ci_skips_are_counted_by_reason(tmp_path):
    code, out = run_sample(tmp_path, "false")
    assert code == 0, out
    assert "1 passed, 3 skipped, 1 xfailed" in out
    assert "3 test(s) or module(s) skipped, by reason" in out
    counted = out.split("by reason", 1)[1]
    for reason in ("could not import 'torch': No module named 'torch'",
                   "Debian's dataset-fashion-mnist package is not installed", "cupy is registered here"):
        assert f"\n    1  {reason}\n" in counted, out
    assert "under CI (CI=true) they fail" in out


def test_under_ci_a_missing_test_dependency_fails(tmp_path):
    code, out = run_sample(tmp_path, "true")
    assert code == 1, out
    assert "1 failed, 1 passed, 1 skipped, 1 xfailed, 1 error" in out, out
    assert "skipped under CI for a missing dependency of ./run test" in out
    assert "cupy is registered here" in out          # an ordinary skip stays a skip
