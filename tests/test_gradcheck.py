"""kn.gradcheck: reports that pass for correct gradients and fail for wrong ones, on every backend;
knetapi.testing.check_grads asserts on the same check, at every order it is asked for.

A checker that accepts everything keeps every other test green, so each of its comparisons is
shown here to reject a wrong rule: a VJP wrong at first order, one right at first order but wrong
at second (or third), and gradients of the right values but the wrong shape, dtype or type."""

import functools
import re

import numpy as np
import pytest

import knetapi as kn
from knetapi.testing import GradcheckReport, gradient_check
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


def _assert_agrees(report, dtype):
    """A passing report whose numbers agree, at the precision of ``dtype``."""
    assert report and report.passed and report.problems == () and report.dtype == dtype
    assert report.error <= report.tolerance and abs(report.numeric) > 0.01
    assert report.analytic == pytest.approx(report.numeric, rel=1e-6 if dtype == "float64" else 1e-3)


def test_gradcheck_on_torch_tensors():
    torch = pytest.importorskip("torch")
    w = torch.linspace(-1, 1, 6, dtype=torch.float64).reshape(2, 3)
    x = torch.ones(3, 4, dtype=torch.float64)
    _assert_agrees(kn.gradcheck(lambda w, x: kn.sum(kn.tanh(w @ x)), w, x), "float64")
    report = kn.gradcheck(lambda w: kn.sum(wrong_cube(w)), w)
    assert not report and report.analytic == pytest.approx(2 / 3 * report.numeric, rel=1e-6)
    _assert_agrees(kn.gradcheck(lambda w: kn.sin(w), w.to(torch.float32)), "float32")


def test_gradcheck_on_array_api_strict_arrays():
    xp = pytest.importorskip("array_api_strict")
    x = xp.asarray([0.5, 1.5, -2.0])
    _assert_agrees(kn.gradcheck(lambda x: kn.sum(kn.exp(x) * x), x), "float64")
    _assert_agrees(kn.gradcheck(lambda x: kn.sin(x), xp.astype(x, xp.float32)), "float32")
    report = kn.gradcheck(lambda x: kn.sum(wrong_cube(x)), x)
    assert not report and report.analytic == pytest.approx(2 / 3 * report.numeric, rel=1e-6)
    # on a second device (array-api-strict refuses to mix devices): the weights of a non-scalar
    # function and the direction are made on the arguments' device, at every order
    on_device1 = xp.asarray([0.5, 1.5, -2.0], device=xp.Device("device1"))
    _assert_agrees(kn.gradcheck(lambda x: kn.sin(x) * x, on_device1), "float64")
    check_grads(lambda x: kn.sin(x) * x, (on_device1,), order=2)


def test_check_grads_of_second_order():
    check_grads(lambda x: kn.sum(kn.sin(x) * x), (np.linspace(-1, 1, 4),), order=2)


# --- higher order: a rule right at first order and wrong above it is rejected -------------------

@primitive
def frozen_cube(x):
    return x * x * x


# Right values at first order, but kn.value(x) is a constant to an outer grad: the recorded VJP
# does not depend on x, so the second derivative comes out 0 instead of 6 x.
defvjp(frozen_cube, lambda dy, y, x: 3 * kn.value(x) ** 2 * dy)


@primitive
def frozen_square(x):
    return x * x


defvjp(frozen_square, lambda dy, y, x: 2 * kn.value(x) * dy)   # right at first order only


@primitive
def cube_through_square(x):
    return x * x * x


# 3 x^2 through frozen_square: the first and second derivatives are right, the third is 0, not 6.
defvjp(cube_through_square, lambda dy, y, x: 3 * frozen_square(x) * dy)

POINTS = np.array([0.5, -1.0, 2.0])


@pytest.mark.filterwarnings("ignore::knetapi.IndependentOutputWarning")
def test_second_order_rejects_a_vjp_that_is_right_only_at_first_order():
    f = lambda x: kn.sum(frozen_cube(x))   # noqa: E731
    check_grads(f, (POINTS,), order=1)
    assert kn.gradcheck(f, POINTS)
    with pytest.raises(AssertionError, match=r"gradcheck of directional .*FAILED.*directional "
                                             r"derivative is 0,"):
        check_grads(f, (POINTS,), order=2)


@pytest.mark.filterwarnings("ignore::knetapi.IndependentOutputWarning")
def test_third_order_rejects_a_vjp_that_is_right_only_up_to_second_order():
    f = lambda x: kn.sum(cube_through_square(x))   # noqa: E731
    check_grads(f, (POINTS,), order=2)
    with pytest.raises(AssertionError, match="FAILED"):
        check_grads(f, (POINTS,), order=3)


def test_each_order_makes_one_more_comparison(monkeypatch):
    """order=n compares n directional derivatives with finite differences: f's, then that of
    <grad f, v> (a Hessian-vector product), and so on, each one nonzero here and within tolerance."""
    seen = []
    original = gradient_check.GradcheckReport

    def spy(**fields):
        seen.append(original(**fields))
        return seen[-1]
    monkeypatch.setattr(gradient_check, "GradcheckReport", spy)
    check_grads(lambda x: kn.sum(x ** 4), (POINTS,), order=3)
    assert [r.function for r in seen] == ["<lambda>", "directional", "directional"]
    for report in seen:
        assert report and abs(report.analytic) > 0.1
        assert report.analytic == pytest.approx(report.numeric, rel=1e-5)


# --- gradients of the right values but the wrong shape, dtype or type are rejected --------------

def _grad_returning(transform):
    """A stand-in for the checker's ``grad`` that applies ``transform`` to each gradient leaf."""
    real = gradient_check.grad

    def fake(f, argnums=0):
        g = real(f, argnums)
        return lambda *args: tuple(transform(leaf) for leaf in g(*args))
    return fake


@pytest.mark.parametrize("transform, problem", [
    (lambda g: g[None], r"the gradient of args\[0\] has shape \(1, 3\), its parameter \(3,\)"),
    (lambda g: g.astype(np.float32),
     r"the gradient of args\[0\] has dtype float32, its parameter float64"),
], ids=["shape", "dtype"])
def test_a_gradient_of_the_wrong_shape_or_dtype_fails_though_its_values_are_right(
        monkeypatch, transform, problem):
    f = lambda x: kn.sum(kn.sin(x))   # noqa: E731
    monkeypatch.setattr(gradient_check, "grad", _grad_returning(transform))
    report = kn.gradcheck(f, POINTS)
    assert report.error <= report.tolerance        # the numbers alone would pass
    assert not report and not report.passed
    assert len(report.problems) == 1 and "FAILED" in str(report)
    assert re.fullmatch(problem, report.problems[0]), report.problems
    with pytest.raises(AssertionError, match=problem):
        check_grads(f, (POINTS,))


def test_the_gradient_of_a_float_parameter_must_be_a_float(monkeypatch):
    monkeypatch.setattr(gradient_check, "grad", _grad_returning(lambda g: np.asarray(g)))
    report = kn.gradcheck(lambda s: s * s, 1.5)
    assert report.error <= report.tolerance and not report
    assert report.problems == ("the gradient of the float args[0] is a numpy.ndarray",)


def test_problems_are_found_in_every_leaf_of_a_tree_and_named_by_path(monkeypatch):
    params = {"w": np.ones((2, 2)), "b": [np.zeros(2), np.ones(3, np.float32)]}

    def wrong(tree):
        return {"w": tree["w"].T[:1], "b": [tree["b"][0], tree["b"][1].astype(np.float64)]}
    real = gradient_check.grad
    monkeypatch.setattr(gradient_check, "grad",
                        lambda f, argnums=0: lambda *a: tuple(wrong(g) for g in real(f, argnums)(*a)))
    report = kn.gradcheck(lambda p: kn.sum(p["w"]) + kn.sum(p["b"][0]) + kn.sum(p["b"][1] ** 2),
                          params)
    assert not report
    assert report.problems[:2] == (
        "the gradient of args[0]['w'] has shape (1, 2), its parameter (2, 2)",
        "the gradient of args[0]['b'][1] has dtype float64, its parameter float32")


def test_bad_input_names_the_argument():
    x = np.ones(3)
    with pytest.raises(TypeError, match="f must be a function"):
        kn.gradcheck(3, x)
    with pytest.raises(ValueError, match="argnums includes 2, but 1 argument"):
        kn.gradcheck(lambda x: kn.sum(x), x, argnums=2)
    with pytest.raises(ValueError, match="eps must be a positive number"):
        kn.gradcheck(lambda x: kn.sum(x), x, eps=0.0)


# --- the report's numbers, each from its definition ------------------------------------------------

def _directions(monkeypatch):
    """The random directions that gradcheck draws, as it draws them."""
    drawn = []
    real = gradient_check.random_like

    def spy(rng, tree):
        drawn.append(real(rng, tree))
        return drawn[-1]
    monkeypatch.setattr(gradient_check, "random_like", spy)
    return drawn


@pytest.mark.parametrize("tolerances", [{}, dict(rtol=0.25, atol=0.5)], ids=["default", "given"])
def test_the_numbers_of_a_report(monkeypatch, tolerances):
    """analytic = <grad f, d>; tolerance = atol + rtol * max(sum |grad f| |d|, |numeric|);
    relative error = error / that scale. grad f = 2 (x - 1) has both signs here, so the scale is
    larger than |<grad f, d>|."""
    x = np.array([0.0, 2.0, -1.0, 3.0])
    directions = _directions(monkeypatch)
    report = kn.gradcheck(lambda x: kn.sum((x - 1) ** 2), x, **tolerances)
    d = directions[0]
    g = 2 * (x - 1)
    rtol, atol = tolerances.get("rtol", 1e-5), tolerances.get("atol", 1e-7)
    assert d.shape == x.shape and (report.rtol, report.atol) == (rtol, atol)
    assert report.analytic == pytest.approx(np.sum(g * d), rel=1e-12)
    assert report.numeric == pytest.approx(np.sum(g * d), rel=1e-6)
    scale = max(np.sum(np.abs(g) * np.abs(d)), abs(report.numeric))
    assert scale > abs(report.analytic) * 1.01
    assert report.tolerance == pytest.approx(atol + rtol * scale, rel=1e-12)
    assert report.error == abs(report.analytic - report.numeric)
    assert report.relative_error == pytest.approx(report.error / scale, rel=1e-12)


def test_a_zero_gradient_has_zero_relative_error():
    report = kn.gradcheck(lambda x: kn.sum(x ** 2), np.zeros(3))
    assert report and (report.analytic, report.numeric, report.error, report.relative_error) == (0, 0, 0, 0)


def test_the_direction_has_each_parameters_shape_and_floats_get_floats(monkeypatch):
    directions = _directions(monkeypatch)
    kn.gradcheck(lambda p: p["s"] * kn.sum(p["w"] ** 2), {"s": 1.5, "w": np.ones((2, 3))})
    d = directions[0]
    assert isinstance(d["s"], float) and d["w"].shape == (2, 3)


def test_tolerances_by_dtype_and_given_tolerances_are_used():
    f = lambda x: kn.sum(kn.sin(x))   # noqa: E731
    x = np.linspace(-1, 1, 3)
    assert (kn.gradcheck(f, x).rtol, kn.gradcheck(f, x).atol) == (1e-5, 1e-7)
    for dtype in (np.float32, np.float16):
        report = kn.gradcheck(f, x.astype(dtype))
        assert report.dtype == np.dtype(dtype).name and (report.rtol, report.atol) == (2e-2, 2e-3)
    # a wrong rule (2/3 of the gradient) passes only under tolerances loose enough for it
    wrong = lambda x: kn.sum(wrong_cube(x))   # noqa: E731
    assert not kn.gradcheck(wrong, POINTS) and kn.gradcheck(wrong, POINTS, rtol=0.5)
    assert kn.gradcheck(wrong, POINTS, atol=100.0)


def test_bfloat16_is_checked_with_single_precision_tolerances():
    torch = pytest.importorskip("torch")
    report = kn.gradcheck(lambda x: kn.sum(x * x), torch.tensor([0.5, 1.0], dtype=torch.bfloat16))
    assert report.dtype == "bfloat16" and (report.rtol, report.atol) == (2e-2, 2e-3)


def test_the_default_seed_is_zero_and_the_seed_decides():
    f = lambda x: kn.sum(kn.exp(x))   # noqa: E731
    x = np.linspace(-1, 1, 5)
    assert kn.gradcheck(f, x) == kn.gradcheck(f, x, seed=0) != kn.gradcheck(f, x, seed=1)


def test_a_function_without_a_name_is_named_by_its_repr():
    f = functools.partial(lambda x, y: kn.sum(x * y), y=2.0)
    assert kn.gradcheck(f, np.ones(2)).function == repr(f)


def test_a_non_scalar_function_is_reduced_with_one_random_weight_per_element():
    """With one weight for all elements, f = [s(x), -s(x)] would sum to 0 and hide s's wrong
    rule."""
    f = lambda x: kn.stack([kn.sum(wrong_cube(x)), -kn.sum(wrong_cube(x))])   # noqa: E731
    assert not kn.gradcheck(f, POINTS)


def test_dot_is_the_sum_of_products_leaf_by_leaf():
    tree, direction = [np.array([1.0, 2.0]), 3.0], [np.array([4.0, -1.0]), 2.0]
    assert gradient_check.dot(tree, direction) == 1 * 4 + 2 * -1 + 3 * 2


def test_bad_arguments_are_named():
    x = np.ones(3)
    f = lambda x: kn.sum(x)   # noqa: E731
    with pytest.raises(TypeError, match=r"^gradcheck: f must be a function, got int$"):
        kn.gradcheck(3, x)
    assert kn.gradcheck(f, x, argnums=-1)                       # -len(args) is a valid argnum
    for bad in (1, -2):
        with pytest.raises(ValueError, match=f"argnums includes {bad}, but 1 argument"):
            kn.gradcheck(f, x, argnums=bad)
    for eps in (True, -1e-6, "1e-6"):
        with pytest.raises(ValueError, match="eps must be a positive number"):
            kn.gradcheck(f, x, eps=eps)


# --- check_grads: every order gets the caller's arguments ------------------------------------------

def _reports(monkeypatch):
    seen = []
    original = gradient_check.GradcheckReport

    def spy(**fields):
        seen.append(original(**fields))
        return seen[-1]
    monkeypatch.setattr(gradient_check, "GradcheckReport", spy)
    return seen


def test_check_grads_checks_first_order_by_default_with_gradchecks_seed(monkeypatch):
    f = lambda x: kn.sum(frozen_cube(x))   # noqa: E731  (wrong at second order only)
    expected = [kn.gradcheck(f, POINTS), kn.gradcheck(f, POINTS, seed=3)]
    seen = _reports(monkeypatch)
    check_grads(f, (POINTS,))
    check_grads(f, (POINTS,), seed=3)
    assert seen == expected


@pytest.mark.filterwarnings("ignore::knetapi.IndependentOutputWarning")
def test_check_grads_passes_its_arguments_to_every_order(monkeypatch):
    """argnums, eps, rtol and atol reach the second order's check, and each run draws the same."""
    f = lambda a, x: kn.sum(a * frozen_cube(x))   # noqa: E731  (x's second derivative is 0: wrong)
    args = (np.array(2.0), POINTS)
    seen = _reports(monkeypatch)
    with pytest.raises(AssertionError, match="FAILED"):
        check_grads(f, args, argnums=1, order=2)
    check_grads(f, args, argnums=1, order=2, rtol=1.5)           # 100% off at second order
    check_grads(f, args, argnums=1, order=2, atol=1e3)
    seen.clear()
    for _ in range(2):
        check_grads(f, args, argnums=1, order=2, eps=1e-4, rtol=1.5, atol=1e-3)
    assert seen[:2] == seen[2:]
    assert [(r.argnums, r.eps, r.rtol, r.atol) for r in seen[:2]] == [((1,), 1e-4, 1.5, 1e-3)] * 2


# --- the report's text ------------------------------------------------------------------------------

def _report(**fields):
    defaults = dict(function="f", argnums=(0, 2), analytic=1.5, numeric=1.25, error=0.25, tolerance=0.25,
                    relative_error=0.2, dtype="float64", eps=1e-6, rtol=1e-5, atol=1e-7)
    return GradcheckReport(**{**defaults, **fields})


def test_the_text_of_a_report():
    assert str(_report()) == (
        "gradcheck of f with respect to argument(s) 0, 2 (float64): passed. knetapi's directional "
        "derivative is 1.5, the central finite difference (eps 1e-06, in float64) 1.25: error 0.25, "
        "relative error 0.2, within the tolerance 0.25 (atol 1e-07, rtol 1e-05).")
    failed = str(_report(error=0.5, problems=("one", "two")))
    assert failed.startswith("gradcheck of f with respect to argument(s) 0, 2 (float64): FAILED. ")
    assert "error 0.5, relative error 0.2, above the tolerance 0.25" in failed
    assert failed.endswith("(atol 1e-07, rtol 1e-05). Problems: one; two.")


@primitive
def nan_beside_one(x):
    return np.where(x == 1.0, 0.0, np.nan)


defvjp(nan_beside_one, lambda dy, y, x: dy * 0.0)


def test_a_function_that_is_nan_beside_the_point_fails_with_an_infinite_relative_error():
    """The gradient is 0 there, so the scale is 0, but the difference quotient is NaN: the report
    fails, and its relative error says so (inf), rather than a 0 that reads as agreement."""
    report = kn.gradcheck(lambda x: kn.sum(nan_beside_one(x)), np.ones(2))
    assert not report and report.analytic == 0.0 and np.isnan(report.numeric)
    assert report.relative_error == float("inf")
