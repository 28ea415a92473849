"""The Knet paper's benchmark table, measured on this machine: seconds to train each of the five
example models with knetapi (numpy backend; torch backend) and, where installed, PyTorch eager,
JAX (a jitted training step) and HIPS autograd.

    python examples/benchmark.py            # quick: fewer steps, the paper's times extrapolated
    python examples/benchmark.py --full     # the paper's settings, every step run
    python examples/benchmark.py --smoke    # a few steps per cell, knetapi only (the tests)

Every framework runs the same model from the same initial weights (drawn once with numpy), over the
same batches in the same order (no shuffling), with the same learning rate and plain SGD, in
float32; the final loss (and test accuracy) of each run is printed to show they did the same work.
Timing excludes data loading and conversion, and follows one untimed warm-up step (JAX compiles
there). Every framework gets the same number of threads (--threads, default 1). Writes
benchmark.json, benchmark.md and benchmark.png (with matplotlib) to --out.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.metadata
import json
import os
import platform
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

import knetapi as kn
from knetapi.tape import Trace

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE), str(HERE / "peers")]

import charlm, lenet, linreg, mlp, softmax   # noqa: E402  (the examples, beside this file)

EXAMPLES = {"linreg": linreg, "softmax": softmax, "mlp": mlp, "lenet": lenet, "charlm": charlm}
TITLES = {"linreg": "LinReg", "softmax": "Softmax", "mlp": "MLP", "lenet": "LeNet", "charlm": "CharLM"}
# model: (the paper's epochs, batch size, learning rate (the example's default), quick-mode steps)
SETTINGS = {"linreg": (10_000, 506, 0.1, 2000), "softmax": (10, 100, 0.1, 1200),
            "mlp": (10, 100, 0.1, 1200), "lenet": (1, 100, 0.1, 30), "charlm": (1, 128, 4.0, 3)}
SMOKE_STEPS = 2
MNIST_MODELS = ("softmax", "mlp", "lenet")
PEERS = {"torch": "torch_models", "jax": "jax_models", "autograd": "autograd_models"}
FRAMEWORKS = ("knetapi-numpy", "knetapi-torch", *PEERS)
THREAD_VARIABLES = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")


class Knetapi:
    """The examples' own ``train`` and ``lossgradient``, with parameters and data on a backend."""

    def __init__(self, backend: str):
        self.NAME = f"knetapi ({backend})"
        self.backend = backend
        kn.registry.get_backend(backend)      # ValueError when the backend's library is missing

    def asarrays(self, tree):
        return kn.convert(tree, self.backend)

    def tonumpy(self, tree):
        return kn.convert(tree, "numpy")

    def train(self, model, w, data, lr):
        if model == "charlm":
            data = [sequences for (sequences,) in data]
        return EXAMPLES[model].train(w, data, lr)

    def forward(self, model, w, batch, record):
        """The loss, on raw arrays, or recorded on a tape as grad does before its backward walk."""
        if not record:
            return EXAMPLES[model].loss(w, *batch)
        trace = Trace(kn.backend_of(w[0]))
        try:
            return EXAMPLES[model].loss([trace.leaf(wi) for wi in w], *batch)
        finally:
            trace.close()

    def gradient(self, model, w, batch):
        return EXAMPLES[model].lossgradient(w, *batch)


@dataclass
class Cell:
    """One framework's run of one model."""
    model: str
    framework: str
    status: str = "ok"                  # or why it did not run
    steps: int = 0                      # steps timed
    full_steps: int = 0                 # steps in the paper's setting
    seconds: float = 0.0                # measured, for `steps`
    seconds_full: float = 0.0           # for `full_steps`: measured, or extrapolated from `seconds`
    warmup_seconds: float = 0.0         # the untimed first step (JAX compiles there)
    first_step_loss: float | None = None  # on the first batch, after that one step
    loss: float | None = None           # after training; on the evaluation data (see evaluate)
    accuracy: float | None = None       # test accuracy (MNIST models)

    @property
    def extrapolated(self) -> bool:
        return self.steps < self.full_steps


def set_threads(n: int) -> dict:
    """The same thread count for every framework: the environment (read by libraries loaded later:
    torch's OpenMP, JAX's XLA), numpy's BLAS now (threadpoolctl), and torch's pools."""
    os.environ.update({v: str(n) for v in THREAD_VARIABLES})
    os.environ["XLA_FLAGS"] = (f"--xla_cpu_multi_thread_eigen={'true' if n > 1 else 'false'} "
                               f"intra_op_parallelism_threads={n}")
    settings = {v: str(n) for v in THREAD_VARIABLES}
    settings["XLA_FLAGS"] = os.environ["XLA_FLAGS"]
    try:
        from threadpoolctl import threadpool_limits
        threadpool_limits(n)
        settings["threadpoolctl"] = f"threadpool_limits({n})"
    except ImportError:
        settings["threadpoolctl"] = "not installed: numpy's BLAS keeps its own thread count"
    try:
        import torch
        torch.set_num_threads(n)
        settings["torch.get_num_threads()"] = torch.get_num_threads()
    except ImportError:
        pass
    return settings


def machine(threads: dict) -> dict:
    """What the numbers were measured on."""
    cpu = next((line.split(":", 1)[1].strip() for line in _lines("/proc/cpuinfo")
                if line.startswith("model name")), platform.processor() or platform.machine())
    info = {"cpu": cpu, "cores": os.cpu_count(), "python": platform.python_version(),
            "platform": platform.platform(), "numpy": np.__version__, "threads": threads,
            "load average": os.getloadavg()[0]}
    blas = np.show_config(mode="dicts")["Build Dependencies"]["blas"]
    info["numpy BLAS"] = f"{blas.get('name')} {blas.get('version')}"
    try:
        from threadpoolctl import threadpool_info
        info["thread pools"] = [f"{p['internal_api']} {p.get('version') or ''}".strip() + " "
                                f"({p.get('architecture') or p['prefix']}): {p['num_threads']} threads"
                                for p in threadpool_info()]
    except ImportError:
        pass
    for library in ("torch", "jax", "autograd"):
        try:
            info[library] = importlib.metadata.version(library)
        except importlib.metadata.PackageNotFoundError:
            info[library] = "not installed"
    return info


def _lines(path: str) -> list[str]:
    try:
        return Path(path).read_text().splitlines()
    except OSError:
        return []


def framework(name: str):
    """The framework called ``name``, or a string saying why it is not available."""
    try:
        if name.startswith("knetapi-"):
            return Knetapi(name.split("-", 1)[1])
        return importlib.import_module(PEERS[name])
    except (ImportError, ValueError) as e:
        return f"not installed ({e})"


def datasets(models, smoke: bool) -> tuple[dict, dict]:
    """For each model: the training batches in order, and the evaluation data; models whose data is
    missing map to the reason instead."""
    data, skipped = {}, {}
    if "linreg" in models:
        x, y = kn.data.housing()
        data["linreg"] = ([(x, y)], (x, y))
    if any(m in models for m in MNIST_MODELS):
        try:
            xtrn, ytrn, xtst, ytst = kn.data.mnist()
        except (FileNotFoundError, ValueError) as e:
            skipped.update({m: f"skipped: no MNIST data ({str(e).splitlines()[0]})"
                            for m in MNIST_MODELS if m in models})
        else:
            batches = list(kn.minibatch(xtrn, ytrn, 100))
            for m in MNIST_MODELS:
                if m in models:
                    data[m] = (batches, (xtst[:1000], ytst[:1000]) if smoke else (xtst, ytst))
    if "charlm" in models:
        text, vocab, codes = kn.data.hiawatha()
        sequences = charlm.sequences(codes, 20 if smoke else charlm.SEQUENCE)
        batches = [(s,) for s in kn.minibatch(sequences, None, 16 if smoke else 128)]
        data["charlm"] = (batches, batches[:2] if smoke else batches)
    return data, skipped


def initial_weights(model: str, seed: int):
    if model == "linreg":
        return linreg.init(13, seed)
    if model == "charlm":
        return charlm.init(63, seed)
    return EXAMPLES[model].init(seed)


def evaluate(model: str, w, evaluation) -> tuple[float, float | None]:
    """The loss and test accuracy of numpy parameters ``w``, computed by the knetapi example
    (the same code for every framework's result): LinReg's training MSE over all 506 houses,
    the MNIST models' test loss and accuracy, CharLM's loss per character over the whole poem."""
    example = EXAMPLES[model]
    if model == "linreg":
        return float(example.loss(w, *evaluation)), None
    if model == "charlm":
        return float(np.mean([float(example.loss(w, s)) for (s,) in evaluation])), None
    from common import evaluate as classify
    return classify(example.predict, example.loss, w, kn.minibatch(*evaluation, 500, partial=True))


def run_cell(model, fw, batches, evaluation, steps, full_steps, seed) -> Cell:
    """Time ``steps`` SGD steps over ``batches`` (in order, cycling: LinReg has one batch) after one
    untimed warm-up step; evaluate the warm-up's and the run's parameters."""
    lr = SETTINGS[model][2]
    cell = Cell(model, fw.NAME, steps=steps, full_steps=full_steps)
    w0 = initial_weights(model, seed)
    converted = [fw.asarrays(batch) for batch in batches[:steps]]
    data = [converted[i % len(converted)] for i in range(steps)]
    start = time.perf_counter()
    w1 = fw.train(model, fw.asarrays(w0), data[:1], lr)
    cell.warmup_seconds = time.perf_counter() - start
    cell.first_step_loss = float(EXAMPLES[model].loss(fw.tonumpy(w1), *batches[0]))
    w = fw.asarrays(w0)
    start = time.perf_counter()
    w = fw.train(model, w, data, lr)
    cell.seconds = time.perf_counter() - start
    cell.seconds_full = cell.seconds * full_steps / steps
    cell.loss, cell.accuracy = evaluate(model, fw.tonumpy(w), evaluation)
    return cell


def phases(fw, batches, repeats: int) -> dict:
    """The paper's Section 3.1 for the MLP: seconds for ``len(batches)`` forward passes without
    recording, with recording, and with recording and backprop (the gradient)."""
    w = fw.asarrays(initial_weights("mlp", 0))
    data = [fw.asarrays(batch) for batch in batches]
    timings = {}
    for phase, step in (("forward", lambda b: fw.forward("mlp", w, b, False)),
                        ("+ recording", lambda b: fw.forward("mlp", w, b, True)),
                        ("+ backprop", lambda b: fw.gradient("mlp", w, b))):
        step(data[0])
        best = float("inf")
        for _ in range(repeats):
            start = time.perf_counter()
            for batch in data:
                step(batch)
            best = min(best, time.perf_counter() - start)
        timings[phase] = best
    return timings


def fmt_seconds(cell: Cell) -> str:
    if cell.status != "ok":
        return cell.status
    return f"{cell.seconds_full:.3g}{'*' if cell.extrapolated else ''}"


def fmt_result(cell: Cell) -> str:
    if cell.status != "ok":
        return "—"
    text = f"{cell.first_step_loss:.6f} → {cell.loss:.4f}"
    return text + (f" (acc {cell.accuracy:.4f})" if cell.accuracy is not None else "")


def setting_text(model: str, mode: str) -> str:
    epochs, batch, lr, _ = SETTINGS[model]
    what = f"{epochs} epoch{'s' if epochs > 1 else ''}, batch {batch}"
    if model == "charlm":
        what += ", sequence 20" if mode == "smoke" else ", sequence 100"
        if mode == "smoke":
            what = what.replace("batch 128", "batch 16")
    return f"{what}, lr {lr}"


def report(cells, names, mlp_phases, info, mode) -> str:
    """The markdown tables."""
    models = list(dict.fromkeys(c.model for c in cells))
    by = {(c.model, c.framework): c for c in cells}
    header = "| model | setting | " + " | ".join(names) + " |\n|---|---|" + "---|" * len(names)
    lines = ["## Seconds to train (the paper's Table 2, on this machine)", "", header]
    lines += [f"| {TITLES[m]} | {setting_text(m, mode)} | "
              + " | ".join(fmt_seconds(by[m, n]) for n in names) + " |" for m in models]
    extrapolated = [c for c in cells if c.status == "ok" and c.extrapolated]
    if extrapolated:
        counts = sorted({f"{TITLES[c.model]} {c.steps} of {c.full_steps}" for c in extrapolated},
                        key=lambda s: list(TITLES.values()).index(s.split()[0]))
        lines += ["", "\\* extrapolated from the steps run (" + "; ".join(counts)
                  + " steps); `--full` runs them all."]
    lines += ["", "## What each run ended with (same work: the numbers should agree)", "",
              "| model | " + " | ".join(names) + " |\n|---|" + "---|" * len(names)]
    lines += [f"| {TITLES[m]} | " + " | ".join(fmt_result(by[m, n]) for n in names) + " |"
              for m in models]
    lines += ["", "Each cell: the loss on the first batch after one step (the warm-up step: every "
              "framework from the same weights on the same batch), then after the steps timed above: "
              "LinReg's training MSE over the 506 houses, the MNIST models' test loss (and test "
              "accuracy), CharLM's loss per character over the poem. All are computed by the knetapi "
              "examples' `loss` on the parameters each framework returned. After one step the runs "
              "agree to float32 rounding; LeNet's (and a little the MLP's) then drift apart, as "
              "float32 rounding decides near-ties in max pooling and values near relu's kink "
              "differently in each framework and SGD amplifies the differences, but they end in "
              "the same place (see docs/benchmark.md)."]
    if mlp_phases:
        lines += ["", f"## MLP: forward, + recording, + backprop (the paper's Section 3.1), seconds "
                  f"per {mlp_phases['batches']} batches of 100", "",
                  "| framework | forward | + recording | + backprop |\n|---|---|---|---|"]
        for name, t in mlp_phases["frameworks"].items():
            base = t["forward"]
            lines.append(f"| {name} | {base:.3g} | " + " | ".join(
                f"{t[p]:.3g} ({t[p] / base:.2f}x)" for p in ("+ recording", "+ backprop")) + " |")
        lines += ["", "JAX compiles the whole function, so it records nothing at run time: its "
                  "'+ recording' is its compiled forward pass again."]
    threads = info["threads"]
    lines += ["", "## Machine", "",
              f"- CPU: {info['cpu']}, {info['cores']} cores; Python {info['python']}, {info['platform']}",
              f"- load average at the start: {info['load average']:.2f} (other processes' share of the cores)",
              f"- threads: {threads[THREAD_VARIABLES[0]]} for every framework "
              f"({', '.join(f'{k}={v}' for k, v in threads.items())})",
              f"- numpy {info['numpy']}, BLAS {info['numpy BLAS']}"]
    lines += [f"- thread pool: {p}" for p in info.get("thread pools", [])]
    lines += [f"- {lib}: {info[lib]}" for lib in ("torch", "jax", "autograd")]
    return "\n".join(lines) + "\n"


def plot(cells, names, path: Path) -> str:
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return "no plot: matplotlib is not installed (pip install matplotlib)"
    models = list(dict.fromkeys(c.model for c in cells))
    by = {(c.model, c.framework): c for c in cells}
    fig, ax = plt.subplots(figsize=(9, 4.5))
    width = 0.8 / len(names)
    for i, name in enumerate(names):
        cells_here = [by[m, name] for m in models]
        bars = ax.bar(np.arange(len(models)) + i * width,
                      [c.seconds_full if c.status == "ok" else 0 for c in cells_here], width, label=name)
        for bar, cell in zip(bars, cells_here):
            bar.set_hatch("//" if cell.extrapolated else "")
    ax.set_xticks(np.arange(len(models)) + width * (len(names) - 1) / 2)
    ax.set_xticklabels([TITLES[m] for m in models])
    ax.set_yscale("log")
    ax.set_ylabel("seconds (the paper's settings)")
    ax.set_title("Training time per model and framework (log scale; hatched: extrapolated)")
    ax.legend(fontsize="small")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return f"plot: {path}"


def main(argv=None):
    parser = argparse.ArgumentParser(description=" ".join(__doc__.split("\n\n")[0].split()))
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--full", action="store_true", help="run every step of the paper's settings")
    mode.add_argument("--smoke", action="store_true",
                      help=f"{SMOKE_STEPS} steps per cell, knetapi only unless --frameworks says "
                           f"otherwise, CharLM on short sequences: a test of the machinery")
    parser.add_argument("--threads", type=int, default=1, help="threads for every framework (default 1)")
    parser.add_argument("--models", nargs="+", choices=list(EXAMPLES), default=list(EXAMPLES))
    parser.add_argument("--frameworks", nargs="+", choices=FRAMEWORKS, default=None,
                        help="default: all (with --smoke: knetapi-numpy knetapi-torch)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the initial weights")
    parser.add_argument("--out", type=Path, default=Path("build/benchmark"),
                        help="folder for benchmark.json, .md and .png (default build/benchmark)")
    args = parser.parse_args(argv)
    run_mode = "full" if args.full else "smoke" if args.smoke else "quick"
    chosen = args.frameworks or (["knetapi-numpy", "knetapi-torch"] if args.smoke else list(FRAMEWORKS))

    info = machine(set_threads(args.threads))
    frameworks = {name: framework(name) for name in chosen}
    names = [fw.NAME if not isinstance(fw, str) else name for name, fw in frameworks.items()]
    print(f"{run_mode} mode; {args.threads} thread(s) per framework; "
          f"{', '.join(n + ('' if not isinstance(fw, str) else ': ' + fw) for n, fw in zip(names, frameworks.values()))}",
          flush=True)
    data, skipped = datasets(args.models, args.smoke)

    cells = []
    for model in args.models:
        epochs = SETTINGS[model][0]
        for name, fw in zip(names, frameworks.values()):
            if model in skipped or isinstance(fw, str):
                cells.append(Cell(model, name, status=skipped.get(model, "not installed")))
                continue
            batches, evaluation = data[model]
            full_steps = epochs * len(batches)
            steps = SMOKE_STEPS if args.smoke else full_steps if args.full else \
                min(SETTINGS[model][3], full_steps)
            try:
                cell = run_cell(model, fw, batches, evaluation, steps, full_steps, args.seed)
            except Exception as e:            # one framework's failure must not hide the others'
                cell = Cell(model, name, status=f"failed: {type(e).__name__}: {e}"[:200])
            cells.append(cell)
            print(f"  {TITLES[model]:8s} {name:18s} {fmt_seconds(cell):>10s} s  "
                  f"(timed {cell.steps} steps in {cell.seconds:.3g} s, warm-up {cell.warmup_seconds:.3g} s)"
                  f"  {fmt_result(cell)}", flush=True)

    mlp_phases = None
    if "mlp" in data:
        batches = data["mlp"][0][:SMOKE_STEPS if args.smoke else 600 if args.full else 200]
        mlp_phases = {"batches": len(batches), "frameworks": {
            name: phases(fw, batches, 1 if args.smoke else 3)
            for name, fw in zip(names, frameworks.values()) if not isinstance(fw, str)}}

    table = report(cells, names, mlp_phases, info, run_mode)
    print("\n" + table)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "benchmark.md").write_text(table)
    (args.out / "benchmark.json").write_text(json.dumps(
        {"mode": run_mode, "machine": info, "settings": {m: setting_text(m, run_mode) for m in args.models},
         "cells": [dict(asdict(c), extrapolated=c.extrapolated) for c in cells],
         "mlp_phases": mlp_phases}, indent=1))
    print(plot(cells, names, args.out / "benchmark.png"))
    print(f"results: {args.out / 'benchmark.json'}, {args.out / 'benchmark.md'}")


if __name__ == "__main__":
    main()
