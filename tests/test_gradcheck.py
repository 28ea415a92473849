"""kn.gradcheck: reports that pass for correct gradients and fail for wrong ones, on every backend;
knetapi.testing.check_grads asserts on the same check."""

import numpy as np
import pytest

import knetapi as kn
from knetapi.testing import GradcheckReport
from knetapi.primitives import defvjp, primitive
from knetapi.testing import check_grads


@primitive
def cube(x):
    return x * x * x


defvjp(cube, lambda dy, y, x: 3 * x ** 2 * dy)


@primitive
def wrong_cube(x):
    return x * x * x


defvjp(wrong_cube, lambda dy, y, x: 2 * x ** 2 * dy)     # deliberately wrong: should be 3 x^2


def _mlp(w, x):
    return kn.sum(kn.tanh(x @ w["w1"] + w["b1"]) @ w["w2"])


def _mlp_params(dtype=np.float64):
    rng = np.random.default_rng(0)
    return {"w1": rng.standard_normal((3, 4)).astype(dtype), "b1": np.zeros(4, dtype),
            "w2": rng.standard_normal((4, 2)).astype(dtype)}


def test_a_correct_gradient_passes_with_a_readable_report():
    x = np.random.default_rng(1).standard_normal((5, 3))
    report = kn.gradcheck(_mlp, _mlp_params(), x)
    assert isinstance(report, GradcheckReport) and report and report.passed
    assert report.dtype == "float64" and report.argnums == (0,) and report.problems == ()
    assert report.error <= report.tolerance and report.relative_error < 1e-6
    assert report.analytic == pytest.approx(report.numeric, rel=1e-6)
    text = str(report)
    assert text.startswith("gradcheck of _mlp with respect to argument(s) 0 (float64): passed.")
    assert "\n" not in text and "tolerance" in text


def test_float32_parameters_use_single_precision_tolerances():
    x = np.random.default_rng(1).standard_normal((5, 3)).astype(np.float32)
    report = kn.gradcheck(_mlp, _mlp_params(np.float32), x)
    assert report and report.dtype == "float32" and (report.rtol, report.atol) == (2e-2, 2e-3)


def test_a_wrong_user_vjp_fails():
    x = np.array([0.5, -1.0, 2.0])
    assert kn.gradcheck(lambda x: kn.sum(cube(x)), x)
    report = kn.gradcheck(lambda x: kn.sum(wrong_cube(x)), x)
    assert not report and not report.passed
    assert report.analytic == pytest.approx(2 / 3 * report.numeric, rel=1e-6)
    assert "FAILED" in str(report) and "above the tolerance" in str(report)
    with pytest.raises(AssertionError, match="FAILED"):
        check_grads(lambda x: kn.sum(wrong_cube(x)), (x,))


def test_non_scalar_functions_several_argnums_and_float_parameters():
    a, b = np.linspace(-1, 1, 4), np.linspace(0.5, 2, 4)
    assert kn.gradcheck(lambda a, b: kn.sin(a) * b, a, b, argnums=(0, 1))
    assert kn.gradcheck(lambda s, a: s * kn.sum(a ** 2), 1.5, a)
    assert kn.gradcheck(lambda w: w[0] * kn.sum(w[1]), [2.0, b], seed=3)


def test_the_seed_picks_the_direction():
    x = np.linspace(-1, 1, 5)
    r0, r0_again, r1 = (kn.gradcheck(lambda x: kn.sum(kn.exp(x)), x, seed=s) for s in (0, 0, 1))
    assert r0.analytic == r0_again.analytic != r1.analytic


def test_a_report_with_problems_fails_even_within_tolerance():
    report = GradcheckReport(function="f", argnums=(0,), analytic=1.0, numeric=1.0, error=0.0,
                             tolerance=1e-7, relative_error=0.0, dtype="float32", eps=1e-6,
                             rtol=2e-2, atol=2e-3, problems=("the gradient of args[0] has dtype "
                                                             "float64, its parameter float32",))
    assert not report
    assert str(report).endswith("Problems: the gradient of args[0] has dtype float64, its "
                                "parameter float32.")


def test_gradcheck_on_torch_tensors():
    torch = pytest.importorskip("torch")
    w = torch.linspace(-1, 1, 6, dtype=torch.float64).reshape(2, 3)
    x = torch.ones(3, 4, dtype=torch.float64)
    assert kn.gradcheck(lambda w, x: kn.sum(kn.tanh(w @ x)), w, x)
    assert not kn.gradcheck(lambda w: kn.sum(wrong_cube(w)), w)
    assert kn.gradcheck(lambda w: kn.sin(w), w.to(torch.float32)).dtype == "float32"


def test_gradcheck_on_array_api_strict_arrays():
    xp = pytest.importorskip("array_api_strict")
    x = xp.asarray([0.5, 1.5, -2.0])
    assert kn.gradcheck(lambda x: kn.sum(kn.exp(x) * x), x)
    assert kn.gradcheck(lambda x: kn.sin(x), xp.astype(x, xp.float32))


def test_check_grads_of_second_order():
    check_grads(lambda x: kn.sum(kn.sin(x) * x), (np.linspace(-1, 1, 4),), order=2)


def test_bad_input_names_the_argument():
    x = np.ones(3)
    with pytest.raises(TypeError, match="f must be a function"):
        kn.gradcheck(3, x)
    with pytest.raises(ValueError, match="argnums includes 2, but 1 argument"):
        kn.gradcheck(lambda x: kn.sum(x), x, argnums=2)
    with pytest.raises(ValueError, match="eps must be a positive number"):
        kn.gradcheck(lambda x: kn.sum(x), x, eps=0.0)
