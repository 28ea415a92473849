"""The examples (examples/*.py, the paper's five models) learn, end to end, on small slices of their
data; the benchmark's peer models compute the same losses and gradients as the examples; the
benchmark runs in its smoke mode and writes its table and JSON."""

import gzip
import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import knetapi as kn

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples"
FASHION_MNIST = Path("/usr/share/datasets/fashion-mnist")


def load(name, folder=EXAMPLES):
    """An example (or peer) module, imported from its file with examples/ on the path (they import
    ``common``)."""
    if str(EXAMPLES) not in sys.path:
        sys.path.insert(0, str(EXAMPLES))
    spec = importlib.util.spec_from_file_location(name, folder / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def linreg():
    return load("linreg")


def write_idx(path, array, magic):
    header = magic.to_bytes(4, "big") + b"".join(n.to_bytes(4, "big") for n in array.shape)
    with gzip.open(path, "wb") as f:
        f.write(header + array.astype(np.uint8).tobytes())


def synthetic_mnist(folder, train=600, test=200, seed=0):
    """MNIST-format files of a learnable toy problem: class k is a bright 6x6 square at one of ten
    places, on noise."""
    rng = np.random.default_rng(seed)
    for prefix, n in (("train", train), ("t10k", test)):
        labels = rng.integers(0, 10, n)
        images = rng.integers(0, 60, (n, 28, 28))
        for image, k in zip(images, labels):
            r, c = 2 + 12 * (k // 5), 2 + 5 * (k % 5)
            image[r:r + 6, c:c + 6] += 180
        write_idx(folder / f"{prefix}-images-idx3-ubyte.gz", images, 0x803)
        write_idx(folder / f"{prefix}-labels-idx1-ubyte.gz", labels, 0x801)
    return folder


@pytest.fixture(scope="module")
def toy_mnist(tmp_path_factory):
    return synthetic_mnist(tmp_path_factory.mktemp("mnist"))


@pytest.fixture(scope="module")
def mnist_slice(toy_mnist):
    """A few hundred training images: Fashion-MNIST's when installed, else the toy problem's."""
    xtrn, ytrn, _, _ = kn.data.mnist(FASHION_MNIST if FASHION_MNIST.is_dir() else toy_mnist)
    return xtrn[:500], ytrn[:500]


# LinReg

def test_linreg_loss_falls_and_beats_the_mean_predictor_on_held_out_houses(linreg):
    xtrn, ytrn, xtst, ytst = kn.data.split(*kn.data.housing(), rng=0)
    w = linreg.init(xtrn.shape[1], seed=0)
    data = [(xtrn, ytrn)]
    losses = [float(linreg.loss(w, *data[0]))]
    for _ in range(5):
        w = linreg.train(w, data, lr=0.1, epochs=10)
        losses.append(float(linreg.loss(w, *data[0])))
    assert all(later < earlier for earlier, later in zip(losses, losses[1:])), losses
    assert [wi.shape for wi in w] == [(13, 1), (1,)]
    assert all(wi.dtype == np.float32 for wi in w)
    mean_predictor = float(np.sqrt(np.mean((ytst - ytrn.mean()) ** 2)))
    assert linreg.rmse(w, xtst, ytst) < 0.7 * mean_predictor


def final_numbers(out):
    """The numbers of the last line of an example's output."""
    return [float(word) for word in out.strip().splitlines()[-1].replace(";", " ").split()
            if word.replace(".", "", 1).isdigit()]


def test_linreg_main_prints_the_loss_and_the_test_rmse(linreg, capsys):
    linreg.main(["--epochs", "20", "--lr", "0.1", "--seed", "1"])
    out = capsys.readouterr().out
    losses = [float(line.split()[-1]) for line in out.splitlines() if line.startswith("epoch")]
    assert len(losses) == 11 and losses[-1] < losses[0]
    test_rmse, mean_rmse = final_numbers(out)[-2:]
    assert "test RMSE" in out and test_rmse < 0.7 * mean_rmse


def test_linreg_on_the_torch_backend_prints_what_numpy_prints(linreg, capsys):
    pytest.importorskip("torch")
    linreg.main(["--epochs", "20", "--backend", "numpy"])
    on_numpy = final_numbers(capsys.readouterr().out)
    linreg.main(["--epochs", "20", "--backend", "torch"])
    out = capsys.readouterr().out
    assert "backend torch" in out
    np.testing.assert_allclose(final_numbers(out), on_numpy, rtol=1e-4)


def test_the_cupy_backend_is_reported_as_not_available_yet(linreg):
    if "cupy" in kn.registry.backends():
        pytest.skip("cupy is registered here")
    with pytest.raises(SystemExit, match="cupy backend is not available yet"):
        linreg.main(["--backend", "cupy", "--epochs", "1"])


# Softmax, MLP, LeNet

@pytest.mark.parametrize("name, steps", [("softmax", 20), ("mlp", 20), ("lenet", 15)])
def test_classifier_loss_falls_on_a_slice(name, steps, mnist_slice):
    example = load(name)
    x, y = mnist_slice
    w = example.init(seed=0)
    batches = list(kn.minibatch(x, y, 50))
    data = [batches[i % len(batches)] for i in range(steps)]
    before = float(example.loss(w, x, y))
    w = example.train(w, data, lr=0.1)
    after = float(example.loss(w, x, y))
    assert after < 0.9 * before, (before, after)
    assert all(wi.dtype == np.float32 for wi in w)


@pytest.mark.parametrize("name, epochs, accuracy", [("softmax", 3, 0.9), ("mlp", 3, 0.9),
                                                     ("lenet", 2, 0.5)])
def test_classifier_main_learns_the_toy_problem(name, epochs, accuracy, toy_mnist, monkeypatch, capsys):
    monkeypatch.setenv("KNETAPI_DATA", str(toy_mnist))
    load(name).main(["--epochs", str(epochs), "--batch", "20", "--seed", "1"])
    lines = [line.split() for line in capsys.readouterr().out.splitlines() if line.startswith("epoch")]
    losses = [float(words[words.index("loss") + 1]) for words in lines]
    assert len(losses) == epochs and losses[-1] < losses[0]
    assert float(lines[-1][-1]) > accuracy


def test_mlp_main_on_the_torch_backend(toy_mnist, monkeypatch, capsys):
    pytest.importorskip("torch")
    monkeypatch.setenv("KNETAPI_DATA", str(toy_mnist))
    load("mlp").main(["--epochs", "2", "--batch", "20", "--backend", "torch"])
    assert float(capsys.readouterr().out.split()[-1]) > 0.9


# CharLM

@pytest.fixture(scope="module")
def charlm():
    return load("charlm")


def test_charlm_loss_falls_on_a_piece_of_the_poem(charlm):
    text, vocab, codes = kn.data.hiawatha()
    sequences = charlm.sequences(codes[:20_000], 20)
    batches = list(kn.minibatch(sequences, None, 32))
    w = charlm.init(len(vocab), seed=0)
    assert abs(float(charlm.loss(w, sequences[:100])) - np.log(len(vocab))) < 0.1
    losses = []
    for batch in batches[:12]:
        losses.append(float(charlm.loss(w, batch)))
        w = charlm.train(w, [batch])
    assert np.mean(losses[-3:]) < np.mean(losses[:3]) - 0.5, losses
    assert sorted(w) == ["bias", "embedding", "softmax_b", "softmax_w", "weight"]
    assert w["weight"].shape == (512, 1024) and w["weight"].dtype == np.float32
    sample = charlm.generate(w, vocab, 50)
    assert len(sample) == 50 and set(sample) <= set(vocab)


def test_charlm_main_on_the_poems_first_lines(charlm, monkeypatch, capsys):
    text, vocab, codes = kn.data.hiawatha()
    monkeypatch.setattr(kn.data, "hiawatha", lambda: (text[:6000], vocab, codes[:6000]))
    charlm.main(["--epochs", "3", "--batch", "16"])
    out = capsys.readouterr().out
    losses = [float(line.split()[5]) for line in out.splitlines() if line.startswith("epoch")]
    assert len(losses) == 3 and losses[-1] < losses[0] < np.log(len(vocab)), losses
    sample = out.split("sample:\n", 1)[1]
    assert len(sample.rstrip("\n")) >= 250


def test_charlm_lstm_is_the_papers(charlm):
    """Gates sliced from one matrix product, in the order forget, input, output, change."""
    rng = np.random.default_rng(0)
    h, x = rng.standard_normal((2, 3)), rng.standard_normal((2, 4))
    weight, bias, cell = rng.standard_normal((7, 12)), rng.standard_normal(12), rng.standard_normal((2, 3))
    gates = np.concatenate([x, h], axis=1) @ weight + bias
    sigm = lambda z: 1 / (1 + np.exp(-z))   # noqa: E731
    expected_cell = cell * sigm(gates[:, :3]) + sigm(gates[:, 3:6]) * np.tanh(gates[:, 9:])
    hidden, new_cell = charlm.lstm(weight, bias, h, cell, x)
    np.testing.assert_allclose(new_cell, expected_cell, rtol=1e-12)
    np.testing.assert_allclose(hidden, sigm(gates[:, 6:9]) * np.tanh(expected_cell), rtol=1e-12)


# The benchmark's peers compute what the examples compute

PEER_MODULES = [("torch_models", "torch"), ("jax_models", "jax"), ("autograd_models", "autograd")]


@pytest.fixture(scope="module")
def small_cases():
    rng = np.random.default_rng(1)
    x, y = rng.random((6, 1, 28, 28), dtype=np.float32), rng.integers(0, 10, 6)
    x[:, :, :, :12] = 0          # a zero background, as Fashion-MNIST's: relu's kink is met exactly
    xh, yh = rng.standard_normal((6, 13)).astype(np.float32), rng.standard_normal((6, 1)).astype(np.float32)
    _, vocab, codes = kn.data.hiawatha()
    sequences = load("charlm").sequences(codes[:1000], 6)[:4]
    return {"linreg": (load("linreg").init(13, 0), (xh, yh)), "softmax": (load("softmax").init(0), (x, y)),
            "mlp": (load("mlp").init(0), (x, y)), "lenet": (load("lenet").init(0), (x, y)),
            "charlm": (load("charlm").init(len(vocab), 0), (sequences,))}


@pytest.mark.parametrize("module, library", PEER_MODULES)
def test_peer_models_match_the_examples(module, library, small_cases):
    pytest.importorskip(library)
    peer = load(module, EXAMPLES / "peers")
    for model, (w, batch) in small_cases.items():
        example = load(model)
        expected_loss, expected = float(example.loss(w, *batch)), example.lossgradient(w, *batch)
        pw, pbatch = peer.asarrays(w), peer.asarrays(batch)
        assert float(peer.forward(model, pw, pbatch, False)) == pytest.approx(expected_loss, rel=1e-5)
        got = peer.tonumpy(peer.gradient(model, pw, pbatch))
        keys = sorted(w) if isinstance(w, dict) else range(len(w))
        for k in keys:
            assert got[k].dtype == np.float32, (model, k)
            np.testing.assert_allclose(got[k], expected[k], rtol=1e-4, atol=1e-6, err_msg=f"{model} {k}")


# The benchmark

def run_benchmark(tmp_path, data_folder, *args):
    env = {**os.environ, "KNETAPI_DATA": str(data_folder)}
    done = subprocess.run([sys.executable, str(EXAMPLES / "benchmark.py"), "--smoke", "--out",
                           str(tmp_path), *args], capture_output=True, text=True, env=env, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout, json.loads((tmp_path / "benchmark.json").read_text())


def test_benchmark_smoke_writes_its_table_and_json(tmp_path, toy_mnist):
    out, results = run_benchmark(tmp_path, toy_mnist)
    assert results["mode"] == "smoke"
    cells = results["cells"]
    assert {(c["model"], c["framework"]) for c in cells} == {
        (m, f) for m in ("linreg", "softmax", "mlp", "lenet", "charlm")
        for f in ("knetapi (numpy)", "knetapi (torch)")}
    assert all(c["status"] == "ok" and c["steps"] == 2 and c["seconds"] > 0 for c in cells), cells
    for model in ("linreg", "softmax", "mlp", "lenet", "charlm"):
        numpy_cell, torch_cell = (c for c in cells if c["model"] == model)
        assert torch_cell["first_step_loss"] == pytest.approx(numpy_cell["first_step_loss"], rel=1e-5)
    assert results["machine"]["threads"]["OMP_NUM_THREADS"] == "1"
    assert set(results["mlp_phases"]["frameworks"]["knetapi (numpy)"]) == {
        "forward", "+ recording", "+ backprop"}
    table = (tmp_path / "benchmark.md").read_text()
    assert "| LeNet |" in table and "## Machine" in table and table in out


def test_benchmark_reports_missing_data_and_frameworks(tmp_path):
    empty = tmp_path / "no-data"
    empty.mkdir()
    out, results = run_benchmark(tmp_path, empty, "--models", "linreg", "softmax",
                                 "--frameworks", "knetapi-numpy", "jax")
    by = {(c["model"], c["framework"].split()[0]): c for c in results["cells"]}
    assert by["linreg", "knetapi"]["status"] == "ok"
    assert by["softmax", "knetapi"]["status"].startswith("skipped: no MNIST data")
    if importlib.util.find_spec("jax") is None:
        assert by["linreg", "jax"]["status"] == "not installed" and "jax: not installed" in out
    else:
        # JAX ran LinReg from the same weights on the same batch as knetapi, and skipped softmax
        assert by["linreg", "JAX"]["framework"] == "JAX (jit)" and by["linreg", "JAX"]["status"] == "ok"
        assert by["linreg", "JAX"]["steps"] == 2 and by["linreg", "JAX"]["seconds"] > 0
        assert by["linreg", "JAX"]["first_step_loss"] == pytest.approx(
            by["linreg", "knetapi"]["first_step_loss"], rel=1e-5)
        assert by["softmax", "JAX"]["status"].startswith("skipped: no MNIST data")
