"""Convolution and pooling with Knet's names, for NCHW images (batch, channels, rows, columns).

``padding``, ``stride``, ``dilation`` and ``window`` are an int (both spatial axes) or a pair
``(rows, columns)``. Along each spatial axis of size H, padded with ``padding`` zeros on both
sides, a kernel of size k covers ``dilation * (k - 1) + 1`` elements and the output has
``Ho = (H + 2 * padding - dilation * (k - 1) - 1) // stride + 1`` positions (windows that do not
fit are dropped, as in torch and Knet). Everything here is differentiable to any order on every
backend: the forward functions and their gradients are primitives (knetapi.rules.conv).
"""

from __future__ import annotations

from numbers import Integral

from ..rules import PRIMITIVES

CONVOLUTION, CROSS_CORRELATION = 0, 1
POOL_MODES = ("max", "avg")


def _pair(op: str, name: str, value, minimum: int) -> tuple[int, int]:
    pair = tuple(value) if isinstance(value, (tuple, list)) else (value, value)
    if len(pair) != 2 or not all(isinstance(v, Integral) and not isinstance(v, bool) and v >= minimum
                                 for v in pair):
        raise ValueError(f"{op}: {name} must be an int >= {minimum} or a pair of them (rows, columns), "
                         f"got {value!r}")
    return int(pair[0]), int(pair[1])


def _check_4d(op: str, name: str, a, what: str) -> tuple:
    shape = tuple(getattr(a, "shape", ()))
    if len(shape) != 4:
        raise ValueError(f"{op}: {name} must be a 4-d array {what}, got shape {shape}")
    return shape


def _check_fits(op: str, size, kernel, padding, dilation, detail: str) -> None:
    for n, k, p, d, axis in zip(size, kernel, padding, dilation, ("rows", "columns")):
        span = d * (k - 1) + 1
        if span > n + 2 * p:
            raise ValueError(f"{op}: the window spans {span} {axis}, more than the {n + 2 * p} of the "
                             f"padded input ({detail})")


def _geometry(op: str, padding, stride, dilation) -> dict:
    return dict(padding=_pair(op, "padding", padding, 0), stride=_pair(op, "stride", stride, 1),
                dilation=_pair(op, "dilation", dilation, 1))


def _oriented(op: str, w, mode: int):
    if mode == CROSS_CORRELATION:
        return w
    if mode == CONVOLUTION:
        return PRIMITIVES["flip"](w, axis=(2, 3))
    raise ValueError(f"{op}: mode must be 0 (convolution: the kernel is flipped) or 1 (cross-correlation), "
                     f"got {mode!r}")


def conv4(w, x, *, padding=0, stride=1, dilation=1, mode=CROSS_CORRELATION):
    """2-d convolution of a batch of images: x (N, C, H, W) with w (O, C, kh, kw) -> (N, O, Ho, Wo).

    ``y[n, o, i, j] = sum over c, a, b of w[o, c, a, b] * xp[n, c, i*stride + a*dilation,
    j*stride + b*dilation]`` with xp the zero-padded x: a cross-correlation, as
    torch.nn.functional.conv2d (same weight layout, no bias). ``mode`` uses Knet's numbering:
    1 (the default here, cross-correlation) or 0 (true convolution: the kernel is flipped along
    both spatial axes). Knet's own default is 0; the default here makes weights match torch's.
    """
    xs = _check_4d("conv4", "x", x, "(N, C, H, W)")
    ws = _check_4d("conv4", "w", w, "(O, C, kh, kw)")
    if ws[1] != xs[1]:
        raise ValueError(f"conv4: w of shape {ws} has {ws[1]} input channels (axis 1) but x of shape "
                         f"{xs} has {xs[1]} channels (axis 1)")
    geometry = _geometry("conv4", padding, stride, dilation)
    _check_fits("conv4", xs[2:], ws[2:], geometry["padding"], geometry["dilation"],
                f"w of shape {ws}, dilation {geometry['dilation']}, x of shape {xs}, "
                f"padding {geometry['padding']}")
    return PRIMITIVES["conv4"](_oriented("conv4", w, mode), x, **geometry)


def deconv4(w, x, *, padding=0, stride=1, dilation=1, mode=CROSS_CORRELATION):
    """Transposed convolution: the transpose (the gradient w.r.t. its input) of ``conv4(w, .)``.

    w (O, C, kh, kw) and x (N, O, H, W) -> (N, C, Hd, Wd), with
    ``Hd = (H - 1) * stride - 2 * padding + dilation * (kh - 1) + 1``: the smallest input size
    whose conv4 output has H rows. The same as torch.nn.functional.conv_transpose2d(x, w) (whose
    weight is (in_channels, out_channels, kh, kw): the same array) and Knet's deconv4.
    ``mode`` as in :func:`conv4`.
    """
    xs = _check_4d("deconv4", "x", x, "(N, O, H, W)")
    ws = _check_4d("deconv4", "w", w, "(O, C, kh, kw)")
    if ws[0] != xs[1]:
        raise ValueError(f"deconv4: w of shape {ws} has {ws[0]} output channels (axis 0) but x of "
                         f"shape {xs} has {xs[1]} channels (axis 1)")
    geometry = _geometry("deconv4", padding, stride, dilation)
    size = tuple((n - 1) * s - 2 * p + d * (k - 1) + 1 for n, k, p, s, d in
                 zip(xs[2:], ws[2:], geometry["padding"], geometry["stride"], geometry["dilation"]))
    if min(size) < 1:
        raise ValueError(f"deconv4: the output would have spatial size {size} (w of shape {ws}, x of "
                         f"shape {xs}, padding {geometry['padding']}); use less padding")
    return PRIMITIVES["deconv4"](_oriented("deconv4", w, mode), x, size=size, **geometry)


def _pool_geometry(op: str, x, window, padding, stride) -> tuple[tuple, dict]:
    xs = _check_4d(op, "x", x, "(N, C, H, W)")
    window = _pair(op, "window", window, 1)
    geometry = dict(window=window, padding=_pair(op, "padding", padding, 0),
                    stride=window if stride is None else _pair(op, "stride", stride, 1))
    if any(2 * p > k for p, k in zip(geometry["padding"], window)):
        raise ValueError(f"{op}: padding {geometry['padding']} must be at most half the window "
                         f"{window} (a window may not lie entirely in the padding)")
    return xs, geometry


def pool(x, *, window=2, padding=0, stride=None, mode="max"):
    """Pooling of x (N, C, H, W) over ``window``-sized windows -> (N, C, Ho, Wo).

    ``stride`` defaults to ``window`` (non-overlapping windows); ``padding`` may be at most half
    the window. ``mode="max"``: the maximum of each window, padding counting as -inf; its gradient
    goes to the first maximum of the window in row-major order (ties: the first one only, as
    torch.nn.functional.max_pool2d). ``mode="avg"``: the mean of each window, padding counting as
    zeros in the sum and in the divisor, which is always the window's area (torch's
    avg_pool2d with count_include_pad=True, Knet's mode=1).
    """
    if mode not in POOL_MODES:
        raise ValueError(f"pool: mode must be 'max' or 'avg', got {mode!r}")
    xs, geometry = _pool_geometry("pool", x, window, padding, stride)
    _check_fits("pool", xs[2:], geometry["window"], geometry["padding"], (1, 1),
                f"window {geometry['window']}, x of shape {xs}, padding {geometry['padding']}")
    return PRIMITIVES["pool"](x, mode=mode, **geometry)


def unpool(x, *, window=2, padding=0, stride=None):
    """Knet's unpooling, the reverse of average pooling: x (N, C, H, W) -> (N, C, Hu, Wu), with
    ``Hu = (H - 1) * stride + window - 2 * padding``.

    Each value is copied to every element of its window (nearest-neighbour upsampling when
    ``stride == window``, the default), so ``pool(unpool(x), mode="avg") == x`` for
    non-overlapping windows without padding. In general it is the transpose of sum pooling
    (``window area`` times the gradient of average pooling, which is how Knet defines it):
    where windows overlap their values add up, and what falls in the padding is dropped.
    """
    xs, geometry = _pool_geometry("unpool", x, window, padding, stride)
    size = tuple((n - 1) * s + k - 2 * p for n, k, p, s in
                 zip(xs[2:], geometry["window"], geometry["padding"], geometry["stride"]))
    if min(size) < 1:
        raise ValueError(f"unpool: the output would have spatial size {size} (x of shape {xs}, window "
                         f"{geometry['window']}, padding {geometry['padding']}); use less padding")
    return PRIMITIVES["unpool"](x, size=size, **geometry)
