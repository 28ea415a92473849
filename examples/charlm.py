"""The Knet paper's character-level language model: a one-layer LSTM trained on Longfellow's
"The Song of Hiawatha", then sampled to write new text.

    python examples/charlm.py [--backend numpy|torch|cupy] [--epochs 10] [--batch 128] [--lr 4.0] [--seed 0]

The poem is cut into sequences of 101 characters: the model reads the first 100 and predicts each
next one (backpropagation through time over 100 steps, each sequence starting from a zero state).
Characters are embedded (63 -> 256), run through the LSTM (hidden size 256) and scored over the
vocabulary. The LSTM is the paper's, on row vectors: one weight matrix for the four gates,
``gates = concat(input, hidden) @ weight + bias``, sliced into forget, input, output and change.
"""

from __future__ import annotations

import numpy as np

import knetapi as kn
from common import arguments, on

EMBEDDING, HIDDEN, SEQUENCE = 256, 256, 100


def lstm(weight, bias, hidden, cell, input):
    """One LSTM step for a batch of rows: ``(hidden, cell)`` after reading ``input``."""
    gates = kn.concat([input, hidden], axis=1) @ weight + bias
    h = hidden.shape[1]
    forget = kn.sigm(gates[:, 0:h])
    ingate = kn.sigm(gates[:, h:2 * h])
    outgate = kn.sigm(gates[:, 2 * h:3 * h])
    change = kn.tanh(gates[:, 3 * h:4 * h])
    cell = cell * forget + ingate * change
    hidden = outgate * kn.tanh(cell)
    return hidden, cell


def predict(w, hidden, cell, chars):
    """Read one character per row (``chars``, (B,) codes): scores for the next ones, (B, vocab),
    and the new state."""
    hidden, cell = lstm(w["weight"], w["bias"], hidden, cell, w["embedding"][chars])
    return hidden @ w["softmax_w"] + w["softmax_b"], hidden, cell


def zeros(w, batch):
    """A zero state row per sequence, on the parameters' backend."""
    xp = kn.array_namespace(w["weight"])
    return xp.zeros((batch, HIDDEN), dtype=w["weight"].dtype, device=w["weight"].device)


def loss(w, sequences):
    """Mean negative log likelihood per character of ``sequences`` (B, T + 1), each character
    predicted from the ones before it."""
    hidden = cell = zeros(w, sequences.shape[0])
    total = 0.0
    steps = sequences.shape[1] - 1
    for t in range(steps):
        scores, hidden, cell = predict(w, hidden, cell, sequences[:, t])
        total = total + kn.nll(scores, sequences[:, t + 1])
    return total / steps


lossgradient = kn.grad(loss)


def train(w, data, lr=4.0, epochs=1):
    """SGD over the minibatches of sequences in ``data``."""
    for _ in range(epochs):
        for sequences in data:
            g = lossgradient(w, sequences)
            w = {k: w[k] - lr * g[k] for k in w}
    return w


def init(vocab, seed):
    """Xavier matrices and zero biases in a dict, as in the paper."""
    rng = np.random.default_rng(seed)
    return {"embedding": kn.init.xavier((vocab, EMBEDDING), rng=rng),
            "weight": kn.init.xavier((EMBEDDING + HIDDEN, 4 * HIDDEN), rng=rng),
            "bias": kn.init.zeros(4 * HIDDEN),
            "softmax_w": kn.init.xavier((HIDDEN, vocab), rng=rng),
            "softmax_b": kn.init.zeros(vocab)}


def sequences(codes, length=SEQUENCE):
    """The text's codes cut into rows of ``length + 1`` characters (inputs and their next ones)."""
    rows = len(codes) // (length + 1)
    return codes[:rows * (length + 1)].reshape(rows, length + 1)


def generate(w, vocab, n, seed=0):
    """``n`` characters sampled from the model, one at a time, starting after a line break."""
    rng = np.random.default_rng(seed)
    xp = kn.array_namespace(w["weight"])
    hidden = cell = zeros(w, 1)
    char, text = vocab.index("\n"), []
    for _ in range(n):
        scores, hidden, cell = predict(w, hidden, cell, xp.asarray([char], device=w["weight"].device))
        p = kn.convert(kn.softmax(scores), "numpy")[0].astype(np.float64)
        char = int(rng.choice(len(vocab), p=p / p.sum()))
        text.append(vocab[char])
    return "".join(text)


def main(argv=None):
    args = arguments(__doc__, argv, epochs=10, batch=128, lr=4.0)
    text, vocab, codes = kn.data.hiawatha()
    data = on(args.backend, sequences(codes))
    w = on(args.backend, init(len(vocab), args.seed))
    batches = kn.progress(kn.minibatch(data, None, args.batch, shuffle=True, rng=args.seed))
    whole = kn.minibatch(data, None, args.batch, partial=True)
    print(f"{len(text)} characters, {len(vocab)} distinct (ln {len(vocab)} = {np.log(len(vocab)):.3f}); "
          f"{len(batches)} batches of {args.batch} sequences of {SEQUENCE}; backend {args.backend}")
    for epoch in range(1, args.epochs + 1):
        w = train(w, batches, args.lr)
        mean = np.mean([float(loss(w, s)) for s in whole])
        print(f"epoch {epoch}  loss per character {mean:.4f} (nats)")
    print("sample:\n" + generate(w, vocab, 300, args.seed))


if __name__ == "__main__":
    main()
