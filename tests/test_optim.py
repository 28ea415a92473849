"""kn.optim: each optimizer against torch.optim for 20 steps (float64, 1e-6 relative), with gradient
clipping and weight decay; the same numbers on numpy float32, array-api-strict and torch tensors;
in-place and functional updates; bad input."""

import math

import array_api_strict as xs
import numpy as np
import pytest
import torch
from hypothesis import given, settings, strategies as st

import knetapi as kn
from knetapi import optim
from knetapi.convert import convert
from knetapi.pytree import leaves, tree_map

STEPS = 20
OPTIMIZERS = ("SGD", "Momentum", "Nesterov", "Adagrad", "Adadelta", "RMSprop", "Adam")

# Non-default hyperparameters, large enough that every term of each rule matters in 20 steps.
HYPER = {
    "SGD": dict(lr=0.05),
    "Momentum": dict(lr=0.02, gamma=0.8),
    "Nesterov": dict(lr=0.02, gamma=0.8),
    "Adagrad": dict(lr=0.1, eps=1e-3),
    "Adadelta": dict(lr=0.9, rho=0.8, eps=1e-4),
    "RMSprop": dict(lr=0.01, rho=0.8, eps=0.0),   # eps = 0: see torch_optimizer
    "Adam": dict(lr=0.05, beta1=0.8, beta2=0.95, eps=1e-6),
}
VARIANTS = {"plain": {}, "weight_decay": {"weight_decay": 0.1}, "gclip": {"gclip": "median"},
            "gclip+weight_decay": {"gclip": "median", "weight_decay": 0.1}}


def torch_optimizer(name, params, hp):
    """The torch.optim optimizer computing the same steps as ``optim.<name>(**hp)``."""
    lr, wd = hp["lr"], hp.get("weight_decay", 0.0)
    if name == "SGD":
        return torch.optim.SGD(params, lr=lr, weight_decay=wd)
    if name == "Momentum":
        # Knet: v = gamma v + lr g, w -= v.  torch: b = gamma b + g, w -= lr b.  With a constant lr,
        # v = lr b at every step (both start from v = lr g, b = g), so the weights are the same.
        return torch.optim.SGD(params, lr=lr, momentum=hp["gamma"], dampening=0, weight_decay=wd)
    if name == "Nesterov":
        # Knet: v = gamma v + lr g, w -= gamma v + lr g.  torch: b = gamma b + g, w -= lr (g + gamma b):
        # the same with v = lr b.
        return torch.optim.SGD(params, lr=lr, momentum=hp["gamma"], dampening=0, nesterov=True,
                               weight_decay=wd)
    if name == "Adagrad":
        # Knet divides by sqrt(G + eps), torch by sqrt(G) + eps: starting torch's sum of squares at
        # eps and giving it eps = 0 makes its denominator sqrt(eps + sum g^2), Knet's.
        return torch.optim.Adagrad(params, lr=lr, eps=0.0, initial_accumulator_value=hp["eps"],
                                   weight_decay=wd)
    if name == "Adadelta":
        return torch.optim.Adadelta(params, lr=lr, rho=hp["rho"], eps=hp["eps"], weight_decay=wd)
    if name == "RMSprop":
        # Knet divides by sqrt(G + eps), torch by sqrt(G) + eps, and no torch setting moves eps
        # (G is a decaying average, so a start value does not stay added): the two agree at
        # eps = 0, used here; test_eps_inside_the_square_root checks Knet's placement.
        assert hp["eps"] == 0.0
        return torch.optim.RMSprop(params, lr=lr, alpha=hp["rho"], eps=0.0, weight_decay=wd)
    if name == "Adam":
        return torch.optim.Adam(params, lr=lr, betas=(hp["beta1"], hp["beta2"]), eps=hp["eps"],
                                weight_decay=wd)
    raise AssertionError(name)


def global_norm(tree):
    return math.sqrt(sum(float(np.sum(np.asarray(g, dtype=np.float64) ** 2)) for g in leaves(tree)))


def problem(seed, shapes, dtype=np.float64):
    """Parameters in a nested tree and 20 gradient trees, norms spread over two decades."""
    rng = np.random.default_rng(seed)

    def tree(draw):
        arrays = [np.asarray(draw(s), dtype=dtype) for s in shapes]
        return {"layers": arrays[:-1], "out": (arrays[-1],)}

    params = tree(rng.standard_normal)
    grads = [tree(lambda s, k=10 ** rng.uniform(-1, 1): k * rng.standard_normal(s)) for _ in range(STEPS)]
    return params, grads


def hyperparameters(name, variant, grads):
    hp = {**HYPER[name], **VARIANTS[variant]}
    if hp.get("gclip") == "median":   # some steps are clipped, some are not
        hp["gclip"] = float(np.median([global_norm(g) for g in grads]))
    return hp


def run_knet(name, hp, params, grads):
    opt = getattr(optim, name)(**hp)
    for g in grads:
        params = opt.update(params, g)
    return params


def run_torch(name, hp, params, grads):
    tensors = [torch.tensor(p) for p in leaves(params)]
    opt = torch_optimizer(name, tensors, hp)
    for g in grads:
        for t, gi in zip(tensors, leaves(g)):
            t.grad = torch.tensor(gi)
        if hp.get("gclip"):
            # torch scales by max_norm / (norm + 1e-6); Knet by gclip / norm. This max_norm makes
            # torch's factor gclip / norm exactly, and torch's clamp at 1 then means "no clipping
            # when norm <= gclip", Knet's condition.
            norm = global_norm(g)
            torch.nn.utils.clip_grad_norm_(tensors, hp["gclip"] * (norm + 1e-6) / norm)
        opt.step()
    return [t.numpy() for t in tensors]


shapes = st.lists(st.lists(st.integers(1, 4), max_size=3).map(tuple), min_size=1, max_size=3)


@pytest.mark.parametrize("variant", VARIANTS)
@pytest.mark.parametrize("name", OPTIMIZERS)
@settings(max_examples=10)   # 28 cases x 10 examples x 20 steps of both: ~4 s
@given(seed=st.integers(0, 2**32 - 1), shapes=shapes)
def test_matches_torch_for_20_steps(name, variant, seed, shapes):
    params, grads = problem(seed, shapes)
    hp = hyperparameters(name, variant, grads)
    start = [np.copy(p) for p in leaves(params)]
    expected = run_torch(name, hp, params, grads)
    got = leaves(run_knet(name, hp, params, grads))
    for g, e, s in zip(got, expected, start):
        np.testing.assert_allclose(g, e, rtol=1e-6, atol=1e-12)
        assert np.all(g != s)


def test_gclip_variant_clips_some_steps_and_not_others():
    _, grads = problem(0, [(3, 4), (4,)])
    gclip = hyperparameters("SGD", "gclip", grads)["gclip"]
    norms = [global_norm(g) for g in grads]
    assert any(n > gclip for n in norms) and any(n < gclip for n in norms)


def to_backend(tree, backend):
    return convert(tree, backend) if backend != "numpy" else tree_map(np.copy, tree)


@pytest.mark.parametrize("backend", ["strict", "torch"])
@pytest.mark.parametrize("name", OPTIMIZERS)
def test_float32_on_every_backend_gives_numpys_numbers(name, backend):
    params, grads = problem(1, [(3, 4), (4,), ()], dtype=np.float32)
    hp = hyperparameters(name, "gclip+weight_decay", grads)
    expected = leaves(run_knet(name, hp, to_backend(params, "numpy"), grads))
    opt = getattr(optim, name)(**hp)
    p = to_backend(params, backend)
    for g in grads:
        p = opt.update(p, to_backend(g, backend))
    got = leaves(convert(p, "numpy"))
    for g, e in zip(got, expected):
        assert g.dtype == np.float32
        np.testing.assert_allclose(g, e, rtol=2e-6, atol=1e-7)
    assert all(str(a.dtype).endswith("float32") for s in opt.state.values() for a in s.values()
               if not isinstance(a, int))


@pytest.mark.parametrize("name", OPTIMIZERS)
def test_numpy_and_torch_update_in_place(name):
    for backend in ("numpy", "torch"):
        params, grads = problem(2, [(2, 3), (3,)], dtype=np.float32)
        p = to_backend(params, backend)
        before = [np.array(convert(x, "numpy")) for x in leaves(p)]
        out = getattr(optim, name)().update(p, to_backend(grads[0], backend))
        for x, y, b in zip(leaves(p), leaves(out), before):
            assert y is x
            assert not np.array_equal(np.asarray(convert(x, "numpy")), b)


@pytest.mark.parametrize("name", OPTIMIZERS)
def test_array_api_strict_updates_functionally(name):
    params, grads = problem(3, [(2, 3), (3,)], dtype=np.float32)
    p = convert(params, "strict")
    before = leaves(convert(p, "numpy"))
    out = getattr(optim, name)().update(p, convert(grads[0], "strict"))
    assert not optim.updates_in_place(kn.registry.get_backend("strict"))
    for x, y, b in zip(leaves(p), leaves(out), before):
        assert y is not x
        np.testing.assert_array_equal(np.asarray(convert(x, "numpy")), b)   # inputs untouched
        assert not np.array_equal(np.asarray(convert(y, "numpy")), b)


def test_python_floats_and_numpy_scalars_are_returned_as_new_values():
    opt = optim.SGD(lr=0.5)
    out = opt.update({"a": 1.0, "b": np.float32(1.0), "c": np.float64(1.0)},
                     {"a": 2.0, "b": np.float32(2.0), "c": np.float64(2.0)})
    assert out == {"a": 0.0, "b": 0.0, "c": 0.0}
    assert type(out["a"]) is float and type(out["b"]) is np.float32 and type(out["c"]) is np.float64


@pytest.mark.parametrize("name", OPTIMIZERS)
def test_trains_a_model_with_grad(name):
    """kn.grad's gradients go straight into update: a linear model with a Python float bias."""
    rng = np.random.default_rng(0)
    x = rng.standard_normal((32, 3)).astype(np.float32)
    y = x @ np.array([1.0, -2.0, 0.5], dtype=np.float32) + 0.3

    def loss(w):
        return kn.mean((x @ w["w"] + w["b"] - y) ** 2)

    opt = getattr(optim, name)(lr={"Adadelta": 1.0, "Adagrad": 0.1, "SGD": 0.1}.get(name, 0.01))
    w = {"w": np.zeros(3, dtype=np.float32), "b": 0.0}
    first = float(loss(w))
    for _ in range(30):
        w = opt.update(w, kn.grad(loss)(w))
    assert float(loss(w)) < 0.9 * first
    assert w["w"].dtype == np.float32 and type(w["b"]) is float
    assert set(opt.state) == {"params['w']", "params['b']"}


def test_gclip_scales_the_global_norm_down_to_gclip():
    g = {"a": np.array([3.0, 0.0]), "b": [np.array([[4.0]])]}   # global norm 5
    for gclip, norm in ((2.0, 2.0), (5.0, 5.0), (10.0, 5.0)):
        w = {"a": np.zeros(2), "b": [np.zeros((1, 1))]}
        w = optim.SGD(lr=1.0, gclip=gclip).update(w, g)
        assert global_norm(w) == pytest.approx(norm, rel=1e-12)
        np.testing.assert_allclose(w["a"] / w["b"][0][0, 0], [0.75, 0.0])   # direction kept


def test_eps_inside_the_square_root():
    """Knet's Adagrad and RMSprop divide by sqrt(G + eps) (first step: G = g^2, (1 - rho) g^2)."""
    g = np.array([1e-3, 0.5, -2.0])
    lr, eps, rho = 0.1, 1e-4, 0.9
    w = optim.Adagrad(lr=lr, eps=eps).update(np.zeros(3), g)
    np.testing.assert_allclose(w, -lr * g / np.sqrt(g**2 + eps), rtol=1e-14)
    w = optim.RMSprop(lr=lr, rho=rho, eps=eps).update(np.zeros(3), g)
    np.testing.assert_allclose(w, -lr * g / np.sqrt((1 - rho) * g**2 + eps), rtol=1e-14)


def test_momentum_keeps_the_old_learning_rate_in_its_velocity():
    """Knet's convention (v = gamma v + lr g): after lr changes, the velocity still holds old steps."""
    opt = optim.Momentum(lr=1.0, gamma=0.5)
    w = opt.update(np.zeros(1), np.ones(1))        # v = 1
    opt.lr = 0.1
    w = opt.update(w, np.ones(1))                  # v = 0.5 + 0.1; torch would step 0.1 * 1.5
    np.testing.assert_allclose(w, [-1.6])


def test_defaults_are_knets():
    assert optim.SGD().lr == 0.1
    assert (optim.Momentum().lr, optim.Momentum().gamma) == (0.001, 0.9)
    assert (optim.Nesterov().lr, optim.Nesterov().gamma) == (0.001, 0.9)
    assert (optim.Adagrad().lr, optim.Adagrad().eps) == (0.1, 1e-6)
    assert (optim.Adadelta().lr, optim.Adadelta().rho, optim.Adadelta().eps) == (1.0, 0.9, 1e-6)
    assert (optim.RMSprop().lr, optim.RMSprop().rho, optim.RMSprop().eps) == (0.001, 0.9, 1e-6)
    a = optim.Adam()
    assert (a.lr, a.beta1, a.beta2, a.eps, a.gclip, a.weight_decay) == (0.001, 0.9, 0.999, 1e-8, 0.0, 0.0)
    assert repr(a) == "Adam(lr=0.001, beta1=0.9, beta2=0.999, eps=1e-08, gclip=0.0, weight_decay=0.0)"
    assert kn.optim is optim and kn.optim.Adam is optim.Adam


# ---- bad input -----------------------------------------------------------------------------------

def test_structure_mismatch_names_the_path_and_both_structures():
    w = {"a": [np.zeros(2), np.zeros(3)], "b": np.zeros(1)}
    with pytest.raises(ValueError, match=r"params\['a'\]: params has a list of length 2, grads has "
                                         r"a list of length 1"):
        optim.SGD().update(w, {"a": [np.zeros(2)], "b": np.zeros(1)})
    with pytest.raises(ValueError, match=r"at params: params has a dict with keys \['a', 'b'\], "
                                         r"grads has a dict with keys \['a'\]"):
        optim.SGD().update(w, {"a": [np.zeros(2), np.zeros(3)]})
    with pytest.raises(ValueError, match=r"params\['b'\]: params has a leaf \(numpy.ndarray\), grads "
                                         r"has a list of length 1"):
        optim.SGD().update(w, {"a": [np.zeros(2), np.zeros(3)], "b": [np.zeros(1)]})


def test_shape_mismatch_names_the_path_and_both_shapes_and_changes_nothing():
    w = {"a": [np.zeros(2), np.zeros((2, 3))]}
    with pytest.raises(ValueError, match=r"params\['a'\]\[1\] has shape \(3, 2\) but the parameter "
                                         r"has shape \(2, 3\)"):
        optim.SGD().update(w, {"a": [np.ones(2), np.ones((3, 2))]})
    np.testing.assert_array_equal(w["a"][0], np.zeros(2))


@pytest.mark.parametrize("name", OPTIMIZERS)
def test_negative_or_invalid_hyperparameters(name):
    cls = getattr(optim, name)
    for bad in (-0.1, math.nan, math.inf):
        with pytest.raises(ValueError, match=f"{name}: lr must be >= 0"):
            cls(lr=bad)
        with pytest.raises(ValueError, match="gclip must be >= 0"):
            cls(gclip=bad)
    with pytest.raises(TypeError, match="lr must be a real number"):
        cls(lr="0.1")
    if "eps" in HYPER[name]:
        with pytest.raises(ValueError, match=f"{name}: eps must be >= 0"):
            cls(eps=-1e-8)


def test_out_of_range_decay_rates():
    with pytest.raises(ValueError, match=r"beta1 must be >= 0 and < 1, got 1.0"):
        optim.Adam(beta1=1.0)
    with pytest.raises(ValueError, match=r"rho must be >= 0 and <= 1"):
        optim.RMSprop(rho=1.5)
    with pytest.raises(TypeError, match="gamma must be a real number, got bool"):
        optim.Momentum(gamma=True)


def test_mismatched_leaves():
    with pytest.raises(TypeError, match=r"params\[0\] has dtype float32 but the parameter has dtype float64"):
        optim.SGD().update([np.zeros(2)], [np.zeros(2, dtype=np.float32)])
    with pytest.raises(TypeError, match=r"params\[0\] is a numpy array but its gradient is a torch.Tensor"):
        optim.SGD().update([np.zeros(2)], [torch.zeros(2, dtype=torch.float64)])
    with pytest.raises(TypeError, match=r"params\[0\] has dtype int64; only real floating"):
        optim.SGD().update([np.zeros(2, dtype=np.int64)], [np.zeros(2, dtype=np.int64)])
    with pytest.raises(TypeError, match=r"params\[0\] is a str"):
        optim.SGD().update(["w"], ["g"])
    with pytest.raises(TypeError, match=r"params\[0\] is a Python float but its gradient is a numpy.ndarray"):
        optim.SGD().update([1.0], [np.zeros(2)])


def test_a_parameter_that_changes_layout_is_refused():
    opt = optim.Adam()
    opt.update([np.zeros(2)], [np.ones(2)])
    with pytest.raises(ValueError, match=r"params\[0\] was a numpy array of shape \(2,\) and dtype "
                                         r"float64 in earlier updates and is now a numpy array of "
                                         r"shape \(3,\)"):
        opt.update([np.zeros(3)], [np.ones(3)])
    with pytest.raises(ValueError, match="now a strict array"):
        opt.update([xs.zeros(2, dtype=xs.float64)], [xs.ones(2, dtype=xs.float64)])


def test_traced_parameters_are_refused():
    def loss(w):
        optim.SGD().update([w], [w])
        return kn.sum(w)

    with pytest.raises(TypeError, match="traced value; call update outside grad"):
        kn.grad(loss)(np.ones(2))
