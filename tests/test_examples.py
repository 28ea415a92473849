"""examples/linreg.py, the paper's linear regression, learns the Boston Housing data."""

import importlib.util
from pathlib import Path

import numpy as np
import pytest

from knetapi.data import housing

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


@pytest.fixture(scope="module")
def linreg():
    spec = importlib.util.spec_from_file_location("linreg", EXAMPLES / "linreg.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_linreg_loss_falls_and_beats_the_mean_predictor_on_held_out_houses(linreg):
    x, y = housing()
    order = np.random.default_rng(0).permutation(x.shape[0])
    train, test = order[:400], order[400:]
    w = linreg.init(x.shape[1], seed=0)
    data = [(x[train], y[train])]
    losses = [float(linreg.loss(w, *data[0]))]
    for _ in range(5):
        w = linreg.train(w, data, lr=0.1, epochs=10)
        losses.append(float(linreg.loss(w, *data[0])))
    assert all(later < earlier for earlier, later in zip(losses, losses[1:])), losses
    assert [wi.shape for wi in w] == [(13, 1), (1,)]
    assert all(wi.dtype == np.float32 for wi in w)
    mean_predictor = float(np.sqrt(np.mean((y[test] - y[train].mean()) ** 2)))
    assert linreg.rmse(w, x[test], y[test]) < 0.7 * mean_predictor


def test_linreg_main_prints_the_loss_and_the_rmse(linreg, capsys):
    linreg.main(["--epochs", "20", "--lr", "0.1", "--seed", "1"])
    out = capsys.readouterr().out
    losses = [float(line.split()[-1]) for line in out.splitlines() if line.startswith("epoch")]
    assert len(losses) == 11 and losses[-1] < losses[0]
    assert "train RMSE" in out and "mean predictor" in out
