"""kn.minibatch, kn.progress and kn.train: batches, the progress bar's quiet mode, the training loop."""

import io
import tracemalloc

import numpy as np
import pytest

import knetapi as kn
from knetapi.optim import SGD


def _data(n=10, features=3):
    x = np.arange(n * features, dtype=np.float64).reshape(n, features)
    return x, np.arange(n)


# --- minibatch ---------------------------------------------------------------------------------
@pytest.mark.parametrize("n, size, partial, sizes", [
    (10, 3, False, [3, 3, 3]),
    (10, 3, True, [3, 3, 3, 1]),
    (9, 3, True, [3, 3, 3]),
    (2, 3, False, []),
    (2, 3, True, [2]),
    (0, 3, True, []),
])
def test_minibatch_counts_and_shapes(n, size, partial, sizes):
    x, y = _data(n)
    data = kn.minibatch(x, y, size, partial=partial)
    assert len(data) == len(sizes)
    batches = list(data)
    assert [xb.shape for xb, _ in batches] == [(s, 3) for s in sizes]
    assert [yb.shape for _, yb in batches] == [(s,) for s in sizes]


def test_minibatch_in_order_batches_are_views_of_consecutive_rows():
    x, y = _data(10)
    for i, (xb, yb) in enumerate(kn.minibatch(x, y, 4)):
        assert np.shares_memory(xb, x) and np.shares_memory(yb, y)
        np.testing.assert_array_equal(xb, x[4 * i:4 * i + 4])
        np.testing.assert_array_equal(yb, y[4 * i:4 * i + 4])


def test_minibatch_shuffle_covers_every_row_once_per_epoch_and_keeps_pairs():
    x, y = _data(11)
    data = kn.minibatch(x, y, 3, shuffle=True, partial=True, rng=0)
    epochs = []
    for _ in range(3):
        rows = []
        for xb, yb in data:
            np.testing.assert_array_equal(xb, x[yb])      # x and y rows stay paired
            rows.extend(yb.tolist())
        assert sorted(rows) == list(range(11))
        epochs.append(rows)
    assert epochs[0] != epochs[1] != epochs[2]          # a new order each epoch
    assert epochs[0] != list(range(11))


def test_minibatch_shuffle_is_deterministic_with_a_seed_or_generator():
    x, y = _data(20)

    def orders(rng):
        data = kn.minibatch(x, y, 4, shuffle=True, rng=rng)
        return [[yb.tolist() for _, yb in data] for _ in range(2)]
    assert orders(7) == orders(7)
    assert orders(np.random.default_rng(7)) == orders(7)
    assert orders(7) != orders(8)


def test_minibatch_without_partial_skips_different_rows_when_shuffled():
    x, y = _data(10)
    data = kn.minibatch(x, y, 3, shuffle=True, rng=1)
    seen = [{int(v) for _, yb in data for v in yb} for _ in range(5)]
    assert all(len(s) == 9 for s in seen)
    assert len(set().union(*seen)) == 10


def test_minibatch_without_y_yields_x_batches():
    x, _ = _data(6)
    batches = list(kn.minibatch(x, None, 4, partial=True))
    assert [b.shape for b in batches] == [(4, 3), (2, 3)]


def test_minibatch_never_copies_the_whole_dataset():
    x = np.random.default_rng(0).standard_normal((20_000, 50))     # 8 MB
    y = np.arange(20_000)
    data = kn.minibatch(x, y, 100, shuffle=True, rng=0)
    tracemalloc.start()
    try:
        for _ in data:
            pass
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < x.nbytes / 10, f"peak {peak} bytes while iterating over {x.nbytes} bytes"


def test_minibatch_on_torch_keeps_backend_and_device():
    torch = pytest.importorskip("torch")
    x = torch.arange(12.0).reshape(6, 2)
    y = torch.arange(6)
    for xb, yb in kn.minibatch(x, y, 4, shuffle=True, partial=True, rng=0):
        assert isinstance(xb, torch.Tensor) and xb.device == x.device
        torch.testing.assert_close(xb, x[yb])


def test_minibatch_on_array_api_strict():
    xp = pytest.importorskip("array_api_strict")
    x = xp.reshape(xp.arange(12.0), (6, 2))
    y = xp.arange(6)
    batches = list(kn.minibatch(x, y, 4, shuffle=True, partial=True, rng=0))
    assert [tuple(b.shape) for b, _ in batches] == [(4, 2), (2, 2)]
    rows = sorted(int(v) for _, yb in batches for v in np.asarray(yb))
    assert rows == list(range(6))
    assert [tuple(b.shape) for b, _ in kn.minibatch(x, y, 4)] == [(4, 2)]


@pytest.mark.parametrize("size, error, match", [
    (0, ValueError, "batchsize must be a positive int, got 0"),
    (-2, ValueError, "batchsize must be a positive int, got -2"),
    (2.5, TypeError, "batchsize must be a positive int"),
    (True, TypeError, "batchsize must be a positive int"),
])
def test_minibatch_refuses_a_bad_batchsize(size, error, match):
    x, y = _data()
    with pytest.raises(error, match=match):
        kn.minibatch(x, y, size)


def test_minibatch_bad_input_names_the_argument():
    x, y = _data(10)
    with pytest.raises(ValueError, match="x and y .* x has 10, y has 9"):
        kn.minibatch(x, y[:9], 2)
    with pytest.raises(TypeError, match="x must be an array .* got list"):
        kn.minibatch([[1.0]], None, 1)
    with pytest.raises(TypeError, match="y must be an array"):
        kn.minibatch(x, list(y), 2)
    with pytest.raises(ValueError, match="x is a 0-dimensional array"):
        kn.minibatch(np.ones(()), None, 1)
    with pytest.raises(ValueError, match="rng is given but shuffle=False"):
        kn.minibatch(x, y, 2, rng=0)
    with pytest.raises(TypeError, match="rng must be a numpy.random.Generator"):
        kn.minibatch(x, y, 2, shuffle=True, rng="seed")
    with pytest.raises(TypeError, match="shuffle must be True or False"):
        kn.minibatch(x, y, 2, shuffle=1)


# --- progress ----------------------------------------------------------------------------------
class _Terminal(io.StringIO):
    def isatty(self):
        return True


def test_progress_is_quiet_when_stderr_is_not_a_terminal(capfd):
    losses = [3.0, 2.0, 1.0]
    bar = kn.progress(losses)
    for loss in bar:
        bar.record(loss)
    assert bar.loss == pytest.approx(np.average(losses, weights=[0.81, 0.9, 1.0]))
    out, err = capfd.readouterr()
    assert out == "" and err == ""


def test_progress_running_loss_is_a_bias_corrected_moving_average():
    bar = kn.progress(range(3))
    assert bar.loss is None
    for _ in bar:
        bar.record(5.0)
    assert bar.loss == pytest.approx(5.0)


def test_progress_items_are_not_taken_for_losses():
    bar = kn.progress(range(1, 4))
    assert list(bar) == [1, 2, 3] and bar.loss is None


def test_progress_draws_loss_and_speed_on_a_terminal(monkeypatch):
    pytest.importorskip("tqdm")
    terminal = _Terminal()
    monkeypatch.setattr("sys.stderr", terminal)
    x, y = _data(8)
    data = kn.progress(kn.minibatch(x, y, 2), every=0.01)
    _, history = kn.train(lambda w, x, y: kn.sum(w * x[:, 0]), 1.0, data, SGD(lr=0.0), epochs=2)
    shown = terminal.getvalue()
    assert "epoch 1" in shown and "epoch 2" in shown
    assert "4/4" in shown and "it/s" in shown and "loss=" in shown
    assert data.steps == len(history) == 8


def test_progress_refuses_bad_input():
    with pytest.raises(TypeError, match="iterable must be iterable"):
        kn.progress(3)
    with pytest.raises(ValueError, match="every must be a positive number"):
        kn.progress([], every=0)


# --- train -------------------------------------------------------------------------------------
def _regression(n=64, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, 3))
    y = x @ np.array([[1.0], [-2.0], [0.5]]) + 0.3
    return x, y


def _loss(w, x, y):
    return kn.mean((x @ w[0] + w[1] - y) ** 2)


def test_train_lowers_a_linear_regression_loss():
    x, y = _regression()
    w = [np.zeros((3, 1)), np.zeros(1)]
    w, history = kn.train(_loss, w, kn.minibatch(x, y, 16, shuffle=True, rng=0), SGD(lr=0.1),
                          epochs=20)
    assert len(history) == 20 * 4
    assert all(isinstance(v, float) for v in history)
    assert history[-1] < 1e-3 * history[0]
    np.testing.assert_allclose(w[0].ravel(), [1.0, -2.0, 0.5], atol=1e-2)
    np.testing.assert_allclose(w[1], [0.3], atol=1e-2)


def test_train_with_a_local_optimizer_and_batches_that_are_not_tuples():
    class Halve:
        def update(self, params, grads):
            return params - 0.5 * grads

    target = np.array([1.0, 2.0])
    w, history = kn.train(lambda w, t: kn.sum((w - t) ** 2), np.zeros(2), [target] * 3, Halve())
    np.testing.assert_allclose(w, target)
    assert history == [5.0, 0.0, 0.0]


def test_train_callback_sees_each_step_and_stops_early():
    x, y = _regression()
    seen = []

    def callback(step, value, params):
        seen.append((step, value))
        return step == 3

    _, history = kn.train(_loss, [np.zeros((3, 1)), np.zeros(1)], kn.minibatch(x, y, 8),
                          SGD(lr=0.1), epochs=5, callback=callback)
    assert len(history) == 3
    assert seen == [(1, history[0]), (2, history[1]), (3, history[2])]


def test_train_zero_epochs_returns_params_unchanged():
    w = np.ones(2)
    w2, history = kn.train(lambda w: kn.sum(w), w, [()], SGD(), epochs=0)
    assert w2 is w and history == []


def test_train_bad_input_names_the_argument():
    w = np.ones(2)
    with pytest.raises(TypeError, match="optimizer must have an update"):
        kn.train(lambda w: kn.sum(w), w, [()], object())
    with pytest.raises(TypeError, match="loss must be a function"):
        kn.train(3, w, [()], SGD())
    with pytest.raises(ValueError, match="epochs must be an int >= 0"):
        kn.train(lambda w: kn.sum(w), w, [()], SGD(), epochs=-1)
    with pytest.raises(TypeError, match="callback must be a function"):
        kn.train(lambda w: kn.sum(w), w, [()], SGD(), callback=1)
    with pytest.raises(TypeError, match="data must be an iterable"):
        kn.train(lambda w: kn.sum(w), w, 5, SGD())
    with pytest.raises(ValueError, match="one-shot iterator"):
        kn.train(lambda w: kn.sum(w), w, iter([()]), SGD(), epochs=2)
