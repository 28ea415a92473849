"""The tape's cost per recorded op, beside PyTorch eager and HIPS autograd, measured in one run.

A chain of N ``sin`` ops over 4-element float64 arrays (so the arithmetic itself is a small part):
``f(x) = sum(sin(sin(...sin(x))))``. Per op, in microseconds, medians of interleaved repeats:

- ``raw``: the numpy forward pass alone (``np.sin`` N times), the floor;
- ``record``: knetapi's forward pass with recording (the parameters boxed, every op on the tape,
  no backward walk);
- ``grad``: ``kn.grad(f)(x)``, forward with recording and the backward walk;
- ``grad, kn.debug(nan=True)``: the same with the NaN/Inf checks on (off costs one attribute check
  per op, which is inside ``grad``);
- ``torch eager``: ``torch.autograd.grad`` of the same chain on a tensor that requires grad;
- ``HIPS autograd``: ``autograd.grad`` of the same chain over ``autograd.numpy``.

Usage: ``python benchmarks/perop.py [--ops 1000] [--repeats 15] [--threads 1] [--json PATH]``.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "examples"))
from benchmark import machine, set_threads  # noqa: E402  (the main benchmark's machine report)


def candidates(ops: int) -> dict:
    """name -> a function of no arguments that runs one measured call."""
    import knetapi as kn
    from knetapi.tape import Trace

    x = np.full(4, 0.5)

    def chain(x, sin):
        for _ in range(ops):
            x = sin(x)
        return x

    def record():
        trace = Trace(kn.backend_of(x))
        try:
            chain(trace.leaf(x), kn.sin)
        finally:
            trace.close()

    gradient = kn.grad(lambda x: kn.sum(chain(x, kn.sin)))

    def debugged():
        with kn.debug(nan=True):
            gradient(x)

    found = {"raw": lambda: chain(x, np.sin), "record": record, "grad": lambda: gradient(x),
             "grad, kn.debug(nan=True)": debugged}
    try:
        import torch
        t = torch.full((4,), 0.5, dtype=torch.float64, requires_grad=True)
        found["torch eager"] = lambda: torch.autograd.grad(chain(t, torch.sin).sum(), t)
    except ImportError:
        pass
    try:
        import autograd
        import autograd.numpy as anp
        hips = autograd.grad(lambda x: anp.sum(chain(x, anp.sin)))
        found["HIPS autograd"] = lambda: hips(x)
    except ImportError:
        pass
    return found


def measure(runs: dict, repeats: int, ops: int) -> dict:
    """Microseconds per op: the median over ``repeats`` rounds, each round timing every candidate
    once in turn (interleaved, so a busy moment of a shared machine hits all of them)."""
    for run in runs.values():
        run()                                            # warm-up
    times: dict[str, list[float]] = {name: [] for name in runs}
    for _ in range(repeats):
        for name, run in runs.items():
            start = time.perf_counter()
            run()
            times[name].append(time.perf_counter() - start)
    return {name: statistics.median(t) / (ops + 1) * 1e6 for name, t in times.items()}


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--ops", type=int, default=1000)
    parser.add_argument("--repeats", type=int, default=15)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--json", type=Path, default=Path("build/benchmarks/perop.json"))
    args = parser.parse_args(argv)
    info = machine(set_threads(args.threads))
    per_op = measure(candidates(args.ops), args.repeats, args.ops)
    print(f"{args.ops} sin ops on 4-element float64 arrays, {args.threads} thread(s), "
          f"median of {args.repeats}; {info['cpu']}, {info['cores']} cores, load {info['load average']:.1f}")
    print(f"| {'':26} | us per op | / grad |")
    print(f"|{'-' * 28}|-----------|--------|")
    for name, us in per_op.items():
        print(f"| {name:26} | {us:9.2f} | {us / per_op['grad']:6.2f} |")
    result = {"ops": args.ops, "repeats": args.repeats, "us_per_op": per_op, "machine": info}
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(result, indent=2, default=str))
    return result


if __name__ == "__main__":
    main()
