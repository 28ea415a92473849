"""Derivative rules of convolution and pooling (the public functions are in knetapi.nn.conv).

Images are NCHW; every geometry parameter is a pair ``(rows, columns)`` of ints (the public
functions normalise them). Each VJP calls primitives of this table, so higher order works::

    conv4(w, x)           w (O, C, kh, kw), x (N, C, H, W) -> y (N, O, Ho, Wo), cross-correlation
        d/dw = conv4_w(x, g)            d/dx = deconv4(w, g, size=(H, W))
    deconv4(w, x, size)   w (O, C, kh, kw), x (N, O, Ho, Wo) -> (N, C, *size), conv4(w, .)'s transpose
        d/dw = conv4_w(g, x)            d/dx = conv4(w, g)
    conv4_w(x, dy, kernel)  x (N, C, H, W), dy (N, O, Ho, Wo) -> (O, C, *kernel), conv4's d/dw
        d/dx = deconv4(g, dy)           d/ddy = conv4(g, x)
    pool(x, mode)         x (N, C, H, W) -> (N, C, Ho, Wo), the max or the mean of each window
        max: g goes to each window's first maximum: unpool_max(g, x, y) without padding (one
        boolean mask per window offset), else a sparse index cotangent (the index_add that
        densifies it is a primitive too)               avg: d/dx = unpool(g, size=(H, W)) / area
    unpool_max(g, x, y)   g (N, C, Ho, Wo) -> (N, C, H, W), at the first maxima; its transpose is
        pool_max_take(d, x, y), d (N, C, H, W) -> (N, C, Ho, Wo); each is the other's d/dg
    unpool(x, size)       x (N, C, Ho, Wo) -> (N, C, *size), the transpose of sum pooling
        d/dx = pool(g, mode="avg") * area

with Ho = (H + 2 * padding - dilation * (k - 1) - 1) // stride + 1 (dilation 1 for pooling).
Ties in max pooling: the window's first maximum in row-major order gets all the gradient (as
torch); padding counts as -inf there, and as zeros in the mean, whose divisor is always the
window's area (torch's count_include_pad=True).

An empty batch (N = 0) gives empty results and gradients (every reshape names its sizes, since
-1 cannot be inferred from an empty array).

Standard functions only: im2col stacks one strided slice of the padded image per kernel element
(a loop over the kh * kw kernel offsets, never over pixels or the batch) and multiplies by the
weights with one (batched) matmul; col2im adds each offset's slice back into a zero image. On
numpy these are as fast as the numpy-specific variants we measured, so no backend overrides them.
"""

from __future__ import annotations

from ..cotangent import IndexedCotangent
from ..registry import backend_of
from ..traced import strip
from .table import PRIMITIVES as P, rule

NO_DILATION = (1, 1)


def out_size(size, kernel, padding, stride, dilation=NO_DILATION) -> tuple[int, int]:
    """The spatial size of the output: one position per window that fits in the padded input."""
    return tuple((n + 2 * p - d * (k - 1) - 1) // s + 1
                 for n, k, p, s, d in zip(size, kernel, padding, stride, dilation))


def _pad(ns, x, padding, value):
    """x (N, C, H, W) with ``padding`` rows / columns of ``value`` on each side."""
    (ph, pw), (n, c, h, w) = padding, x.shape
    if ph:
        edge = ns.full((n, c, ph, w), value, dtype=x.dtype, device=x.device)
        x = ns.concat([edge, x, edge], axis=2)
    if pw:
        edge = ns.full((n, c, h + 2 * ph, pw), value, dtype=x.dtype, device=x.device)
        x = ns.concat([edge, x, edge], axis=3)
    return x


def _slices(kernel, stride, dilation, out):
    """For each kernel element (row-major), the key of the (N, C, Ho, Wo) slice of the padded image
    that it meets in every window."""
    (sh, sw), (dh, dw), (ho, wo) = stride, dilation, out
    return [(slice(None), slice(None), slice(a * dh, a * dh + sh * (ho - 1) + 1, sh),
             slice(b * dw, b * dw + sw * (wo - 1) + 1, sw))
            for a in range(kernel[0]) for b in range(kernel[1])]


def _im2col(ns, x, kernel, padding, stride, dilation):
    """x (N, C, H, W) -> its columns (N, C * kh * kw, Ho * Wo), ordered like w's (C, kh, kw)
    axes, and (Ho, Wo)."""
    out = out_size(x.shape[2:], kernel, padding, stride, dilation)
    padded = _pad(ns, x, padding, 0)
    keys = _slices(kernel, stride, dilation, out)
    cols = ns.stack([padded[key] for key in keys], axis=2)
    return ns.reshape(cols, (x.shape[0], x.shape[1] * len(keys), out[0] * out[1])), out


def _col2im(ns, parts, like, size, kernel, padding, stride, dilation):
    """Add each kernel element's (N, C, Ho, Wo) part back where it came from in a padded zero
    image of spatial size ``size`` (the transpose of taking the slices); the image, unpadded."""
    (ph, pw), (n, c, ho, wo) = padding, like.shape
    image = ns.zeros((n, c, size[0] + 2 * ph, size[1] + 2 * pw), dtype=like.dtype, device=like.device)
    for key, part in zip(_slices(kernel, stride, dilation, (ho, wo)), parts):
        image[key] = image[key] + part
    return image[:, :, ph:ph + size[0], pw:pw + size[1]]


def _conv4(ns, w, x, *, padding, stride, dilation):
    cols, out = _im2col(ns, x, tuple(w.shape[2:]), padding, stride, dilation)
    y = ns.reshape(w, (w.shape[0], -1)) @ cols
    return ns.reshape(y, (x.shape[0], w.shape[0]) + out)


def _conv4_w(ns, x, g, *, kernel, padding, stride, dilation):
    cols, _ = _im2col(ns, x, kernel, padding, stride, dilation)
    g = ns.reshape(g, (g.shape[0], g.shape[1], g.shape[2] * g.shape[3]))
    dw = ns.sum(g @ ns.matrix_transpose(cols), axis=0)         # (O, C * kh * kw)
    return ns.reshape(dw, (g.shape[1], x.shape[1]) + kernel)


def _deconv4(ns, w, x, *, size, padding, stride, dilation):
    (o, c, kh, kw), (n, _, h, wd) = w.shape, x.shape
    cols = ns.matrix_transpose(ns.reshape(w, (o, -1))) @ ns.reshape(x, (n, o, h * wd))
    cols = ns.reshape(cols, (n, c, kh * kw, h, wd))
    parts = [cols[:, :, k, :, :] for k in range(kh * kw)]
    return _col2im(ns, parts, parts[0], size, (kh, kw), padding, stride, dilation)


def _pool(ns, x, *, window, padding, stride, mode):
    out = out_size(x.shape[2:], window, padding, stride)
    padded = _pad(ns, x, padding, -ns.inf if mode == "max" else 0)
    parts = [padded[key] for key in _slices(window, stride, NO_DILATION, out)]
    y = parts[0]
    for part in parts[1:]:
        y = ns.maximum(y, part) if mode == "max" else y + part
    return y if mode == "max" else y / (window[0] * window[1])


def _unpool(ns, x, *, size, window, padding, stride):
    return _col2im(ns, [x] * (window[0] * window[1]), x, size, window, padding, stride, NO_DILATION)


def first_maximum_key(x, y, window, padding, stride):
    """The integer-array key, an index of ``x``, of each window's first maximum (row-major), given
    the raw input ``x`` and its max pooling ``y``: a scan of the kernel offsets from the last to
    the first, keeping the earliest offset whose element equals the window's maximum. A window
    whose maximum is -inf points at its first element inside the image (as torch)."""
    ns = backend_of(x).ns
    (n, c, h, w), (_, kw), (ph, pw), (sh, sw), out = x.shape, window, padding, stride, y.shape[2:]
    padded = _pad(ns, x, padding, -ns.inf)
    keys = _slices(window, stride, NO_DILATION, out)
    k = ns.zeros(y.shape, dtype=ns.int64, device=x.device)
    for i in range(len(keys) - 1, -1, -1):
        k = ns.where(padded[keys[i]] == y, i, k)
    rows = k // kw + ns.reshape(ns.arange(out[0], device=x.device) * sh - ph, (out[0], 1))
    cols = k % kw + ns.reshape(ns.arange(out[1], device=x.device) * sw - pw, (1, out[1]))
    return (ns.reshape(ns.arange(n, device=x.device), (n, 1, 1, 1)),
            ns.reshape(ns.arange(c, device=x.device), (1, c, 1, 1)),
            ns.clip(rows, 0, h - 1), ns.clip(cols, 0, w - 1))


def _first_maxima(ns, x, y, window, stride):
    """For each window offset (row-major), the key of its (N, C, Ho, Wo) slice of the unpadded
    ``x`` and the mask of the windows whose first maximum it holds: boolean masks only, no
    integer index arrays (an offset is taken where it equals the maximum and no earlier one did)."""
    keys = _slices(window, stride, NO_DILATION, y.shape[2:])
    masks, taken = [], None
    for key in keys:
        hit = x[key] == y
        masks.append(hit if taken is None else hit & ~taken)
        taken = hit if taken is None else taken | hit
    return keys, masks


def _unpool_max(ns, g, x, y, *, window, stride):
    dx = ns.zeros(x.shape, dtype=g.dtype, device=g.device)
    zero = ns.zeros((), dtype=g.dtype, device=g.device)
    overlapping = any(s < k for s, k in zip(stride, window))   # else each offset writes its own
    for key, mask in zip(*_first_maxima(ns, x, y, window, stride)):
        part = ns.where(mask, g, zero)
        dx[key] = dx[key] + part if overlapping else part
    return dx


def _pool_max_take(ns, d, x, y, *, window, stride):
    zero = ns.zeros((), dtype=d.dtype, device=d.device)
    out = ns.zeros(y.shape, dtype=d.dtype, device=d.device)
    for key, mask in zip(*_first_maxima(ns, x, y, window, stride)):
        out = out + ns.where(mask, d[key], zero)
    return out


def _pool_vjp(xp, g, y, x, *, window, padding, stride, mode):
    if mode == "max" and padding == (0, 0):
        # Fast path without padding: a dense gradient from one boolean mask per window offset,
        # instead of an index array of the first maxima and a scatter-add (3x faster on LeNet's
        # pooling); padded windows, where the first maximum may be padding, take the general path.
        return P["unpool_max"](g, x, y, window=window, stride=stride)
    if mode == "max":
        return IndexedCotangent(first_maximum_key(strip(x), strip(y), window, padding, stride), g)
    return P["unpool"](g, size=tuple(x.shape[2:]), window=window, padding=padding,
                       stride=stride) / (window[0] * window[1])


rule("conv4",
     lambda xp, g, y, w, x, **geometry: P["conv4_w"](x, g, kernel=tuple(w.shape[2:]), **geometry),
     lambda xp, g, y, w, x, **geometry: P["deconv4"](w, g, size=tuple(x.shape[2:]), **geometry),
     impl=_conv4,
     doc="conv4(w, x, /, *, padding, stride, dilation): cross-correlation of x (N, C, H, W) with "
         "w (O, C, kh, kw) -> (N, O, Ho, Wo); geometry as pairs (see knetapi.nn.conv.conv4).")
rule("deconv4",
     lambda xp, g, y, w, x, *, size, **geometry: P["conv4_w"](g, x, kernel=tuple(w.shape[2:]), **geometry),
     lambda xp, g, y, w, x, *, size, **geometry: P["conv4"](w, g, **geometry),
     impl=_deconv4,
     doc="deconv4(w, x, /, *, size, padding, stride, dilation): the transpose of conv4(w, .) "
         "applied to x (N, O, Ho, Wo) -> (N, C, *size).")
rule("conv4_w",
     lambda xp, g, y, x, dy, *, kernel, **geometry: P["deconv4"](g, dy, size=tuple(x.shape[2:]), **geometry),
     lambda xp, g, y, x, dy, *, kernel, **geometry: P["conv4"](g, x, **geometry),
     impl=_conv4_w,
     doc="conv4_w(x, dy, /, *, kernel, padding, stride, dilation): the gradient of conv4(w, x) "
         "w.r.t. w (O, C, *kernel) for the output cotangent dy (N, O, Ho, Wo).")
rule("pool", _pool_vjp, impl=_pool,
     doc="pool(x, /, *, window, padding, stride, mode): max or average pooling of x (N, C, H, W) "
         "-> (N, C, Ho, Wo); geometry as pairs (see knetapi.nn.conv.pool).")
rule("unpool_max", lambda xp, g, y, d, x, m, *, window, stride:
     P["pool_max_take"](g, x, m, window=window, stride=stride), None, None,
     impl=_unpool_max,
     doc="unpool_max(g, x, y, /, *, window, stride): max pooling's gradient without padding: g "
         "(N, C, Ho, Wo) placed at each window's first maximum of x (N, C, H, W), y = pool(x).")
rule("pool_max_take", lambda xp, g, y, d, x, m, *, window, stride:
     P["unpool_max"](g, x, m, window=window, stride=stride), None, None,
     impl=_pool_max_take,
     doc="pool_max_take(d, x, y, /, *, window, stride): d (N, C, H, W) read at each window's first "
         "maximum of x, y = pool(x): the transpose of unpool_max.")
rule("unpool",
     lambda xp, g, y, x, *, size, window, padding, stride:
     P["pool"](g, window=window, padding=padding, stride=stride, mode="avg") * (window[0] * window[1]),
     impl=_unpool,
     doc="unpool(x, /, *, size, window, padding, stride): the transpose of sum pooling, x "
         "(N, C, Ho, Wo) -> (N, C, *size): each value added to every element of its window.")
