"""What the examples share: their command line and the move of arrays to the chosen backend."""

from __future__ import annotations

import argparse
import sys

import numpy as np

import knetapi as kn

BACKENDS = ("numpy", "torch", "cupy")


def arguments(doc: str, argv, *, epochs: int, batch: int | None, lr: float) -> argparse.Namespace:
    """The examples' flags, with this example's defaults: --backend --epochs --batch --lr --seed."""
    parser = argparse.ArgumentParser(description=" ".join(doc.split("\n\n")[0].split()))
    parser.add_argument("--backend", choices=BACKENDS, default="numpy",
                        help="the array library that holds the parameters and data (default numpy)")
    parser.add_argument("--epochs", type=int, default=epochs, help=f"passes over the data (default {epochs})")
    parser.add_argument("--batch", type=int, default=batch,
                        help=f"minibatch size (default {batch or 'all rows: one batch'})")
    parser.add_argument("--lr", type=float, default=lr, help=f"learning rate (default {lr})")
    parser.add_argument("--seed", type=int, default=0,
                        help="seed of the initial weights and of the data order (default 0)")
    return parser.parse_args(argv)


def on(backend: str, tree):
    """``tree``'s arrays on ``backend`` (the paper's ``KnetArray(w)``); exits with a message when
    that backend cannot be used here."""
    try:
        return kn.convert(tree, backend)
    except ValueError as e:
        if backend == "cupy":
            sys.exit("the cupy backend is not available yet (a later issue adds it); "
                     "use --backend numpy or --backend torch")
        sys.exit(f"--backend {backend}: {e}")


def evaluate(predict, loss, w, data):
    """``(mean loss, accuracy)`` of a classifier over the minibatches ``(x, y)`` of ``data``."""
    results = [(float(loss(w, x, y)), kn.accuracy(predict(w, x), y)) for x, y in data]
    return tuple(float(np.mean(column)) for column in zip(*results))
