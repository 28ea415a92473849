"""Hostile and malformed input: each case is refused with an error that names the culprit (the
file, the tensor or field, the pytree path, the object's type) and says what to do, runs nothing
from a file, allocates nothing a header merely claims, and leaves the user's arrays unchanged.

Checkpoints (pickles, truncated files, safetensors headers that lie, bad pytree metadata), IDX
files (truncated, huge dimensions, wrong magic or type code, corrupt or bomb-like gzip), NaN
parameters, objects whose ``__array_namespace__`` raises, and cyclic or very deep pytrees."""

import gzip
import io
import json
import os
import pickle
import re
import tracemalloc

import numpy as np
import pytest

import knetapi as kn
from knetapi.data import read_idx
from knetapi.pytree import MAX_DEPTH
from knetapi.testing import check_grads
from knetapi.training.checkpoint import CheckpointError

safetensors_numpy = pytest.importorskip("safetensors.numpy")

MiB = 1 << 20


def _raised_and_peak(fn, *args):
    """The exception ``fn(*args)`` raises and the peak memory traced while it ran."""
    tracemalloc.start()
    try:
        with pytest.raises(Exception) as err:
            fn(*args)
        return err.value, tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


# ---- checkpoints: pickles are refused and never unpickled ---------------------------------------

class _Exploit:
    """Unpickling this makes the folder ``marker``: what a hostile pickle checkpoint does."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return os.mkdir, (self.marker,)


def _pickle(path, marker, protocol):
    path.write_bytes(pickle.dumps({"w": np.ones(2), "x": _Exploit(marker)}, protocol=protocol))
    return lambda: pickle.loads(path.read_bytes())


def _npy(path, marker):
    with open(path, "wb") as f:
        np.save(f, np.array([_Exploit(marker)], dtype=object), allow_pickle=True)
    return lambda: np.load(path, allow_pickle=True)


def _torch_save(path, marker):
    torch = pytest.importorskip("torch")
    torch.save({"w": torch.ones(2), "x": _Exploit(marker)}, path)
    return lambda: torch.load(path, weights_only=False)


@pytest.mark.parametrize("make, match", [
    (lambda p, m: _pickle(p, m, 0), "header claims .* bytes, more than"),   # no \x80 magic
    (lambda p, m: _pickle(p, m, 2), "looks like a Python pickle"),
    (lambda p, m: _pickle(p, m, 5), "looks like a Python pickle"),
    (_npy, "looks like a numpy .npy file"),
    (_torch_save, "looks like a zip archive"),
], ids=["pickle protocol 0", "pickle protocol 2", "pickle protocol 5", "npy of objects",
        "torch.save"])
def test_a_pickled_payload_is_refused_and_never_runs(tmp_path, make, match):
    marker = tmp_path / "pwned"
    path = tmp_path / "model.ckpt"
    unsafe_load = make(path, marker)
    with pytest.raises(CheckpointError, match=match) as err:
        kn.load(path)
    assert str(path) in str(err.value)
    assert not marker.exists()
    unsafe_load()                  # the control: loading it the unsafe way does run the payload
    assert marker.exists()


# ---- checkpoints: truncated files and safetensors headers that lie ------------------------------

def test_a_checkpoint_cut_at_any_byte_is_refused_naming_the_file(tmp_path):
    kn.save(tmp_path / "ok", {"w": np.arange(6.0), "b": [np.ones(2, np.float32), 0.5]})
    data = (tmp_path / "ok").read_bytes()
    path = tmp_path / "cut"
    for cut in range(len(data)):
        path.write_bytes(data[:cut])
        with pytest.raises(CheckpointError) as err:
            kn.load(path)
        assert str(err.value).startswith(f"kn.load: {path}"), (cut, err.value)


def _safetensors_file(path, header, data=b"", length=None):
    """A file with safetensors framing around ``header`` (a dict, or raw bytes) and ``data``."""
    text = header if isinstance(header, bytes) else json.dumps(header).encode()
    text += b" " * (-len(text) % 8)
    length = len(text) if length is None else length
    path.write_bytes(length.to_bytes(8, "little") + text + data)
    return path


def _tensor(dtype, shape, offsets):
    return {"dtype": dtype, "shape": shape, "data_offsets": offsets}


@pytest.mark.parametrize("header, data, match", [
    ({"w": _tensor("F64", [2], [0, 16])}, bytes(8),
     r"tensor 'w' has the data_offsets \[0, 16\], not \[begin, end\] with 0 <= begin <= end <= 8"),
    ({"a": _tensor("F64", [2], [0, 16]), "b": _tensor("F64", [2], [8, 24])}, bytes(24),
     "the data of tensor 'b' overlaps tensor 'a'"),
    ({"a": _tensor("F64", [1], [0, 8]), "b": _tensor("F64", [1], [16, 24])}, bytes(24),
     "tensor 'b' leaves bytes 8 to 16 unused after tensor 'a'"),
    ({"w": _tensor("F64", [3], [0, 16])}, bytes(16),
     r"tensor 'w' has the shape \[3\] of F64, 24 bytes, but its data_offsets \[0, 16\] span 16"),
    ({"w": _tensor("F32", [2], [0, 16])}, bytes(16), "shape .2. of F32, 8 bytes, but .* span 16"),
    ({"w": _tensor("U8", [2 ** 32, 2 ** 32], [0, 0])}, b"",
     "shape .4294967296, 4294967296. of U8, 18446744073709551616 bytes"),    # wraps to 0 in u64
    ({"w": _tensor("F64", [2 ** 40], [0, 2 ** 43])}, bytes(16), "data_offsets .0, 8796093022208."),
    ({"w": _tensor("U8", [-1], [0, 0])}, b"", r"shape \[-1\], not a list of non-negative integers"),
    ({"w": _tensor("U8", [1.5], [0, 1])}, bytes(1), r"shape \[1.5\]"),
    ({"w": _tensor("U8", [1], ["0", "1"])}, bytes(1), r"data_offsets \['0', '1'\]"),
    ({"w": _tensor("U8", [0], [1, 0])}, bytes(1), r"data_offsets \[1, 0\]"),
    ({"w": _tensor("U8", [1], [0, 1])}, bytes(9), "data ends at byte 1, but 9 bytes follow"),
    ({"w": 3}, b"", "the entry of tensor 'w' is not a JSON object"),
    ({"w": _tensor("X99", [1], [0, 1])}, bytes(1), "tensor 'w' has the dtype 'X99'"),
    ({"w": _tensor("BF16", [1], [0, 2])}, bytes(2), "dtype 'BF16'.*safetensors.torch.load_file"),
    ({"__metadata__": {"knetapi": {"list": []}}}, b"", "__metadata__ is not a JSON object of str"),
    ({"__metadata__": ["knetapi"]}, b"", "__metadata__ is not a JSON object of strings"),
    (b'{"w": ' + b"[" * 100_000, b"", "header is nested too deeply"),
    (b'{"w": \xff\xfe}', b"", "header is not valid JSON"),
    (b"[1, 2]", b"", "is not a safetensors file: its header is not a JSON object"),
], ids=["offsets past the end", "overlapping", "a gap", "shape larger than its bytes",
        "dtype smaller than its bytes", "shape overflowing 64 bits", "huge shape and offsets",
        "negative dimension", "fractional dimension", "offsets as strings", "offsets reversed",
        "extra bytes", "entry not an object", "unknown dtype", "bfloat16", "metadata not strings",
        "metadata a list", "header nested deeply", "header not UTF-8", "header a JSON array"])
def test_a_safetensors_header_that_lies_names_the_tensor_and_field(tmp_path, header, data, match):
    path = _safetensors_file(tmp_path / "lying.safetensors", header, data)
    error, peak = _raised_and_peak(kn.load, path)
    assert type(error) is CheckpointError and re.search(match, str(error)), error
    assert str(path) in str(error)
    assert peak < 8 * MiB                   # nothing sized by the header's claims was allocated


@pytest.mark.parametrize("length, match", [
    (2 ** 62, "header claims 4611686018427387904 bytes, more than the 100000000"),
    (10 ** 8 + 8, "more than the 100000000 safetensors allows"),
    (1000, "header claims 1000 bytes but only 8 follow; the file is truncated"),
])
def test_a_header_length_that_lies_is_refused_before_reading(tmp_path, length, match):
    path = _safetensors_file(tmp_path / "f", b"{}", length=length)
    error, peak = _raised_and_peak(kn.load, path)
    assert type(error) is CheckpointError and re.search(match, str(error)), error
    assert peak < MiB


# ---- checkpoints: hostile pytree metadata -------------------------------------------------------

def _with_metadata(path, structure, fmt="1"):
    text = structure if isinstance(structure, str) else json.dumps(structure)
    safetensors_numpy.save_file({"t": np.ones(2)}, str(path),
                                metadata={"knetapi": text, "knetapi_format": fmt})
    return path


T = {"array": "t", "backend": "numpy"}


def _nested(depth, leaf):
    for _ in range(depth):
        leaf = {"list": [leaf]}
    return leaf


@pytest.mark.parametrize("structure, match", [
    ({"list": "t"}, r"at params: 'list' must hold a JSON array; kn.save never writes that"),
    ({"tuple": 3}, "'tuple' must hold a JSON array"),
    ({"dict": [T]}, "'dict' must hold a JSON object"),
    ({"namedtuple": "P", "fields": [T]}, "'fields' must hold a JSON object"),
    ({"namedtuple": 7, "fields": {"t": T}}, "named tuple: .*valid identifiers"),
    ({"namedtuple": "os.system", "fields": {"t": T}}, "named tuple"),
    ({"namedtuple": "P", "fields": {"__init__": T}}, "named tuple: .*underscore"),
    ({"list": [{"array": ["t"], "backend": "numpy"}]}, r"at params\[0\]: an array entry's tensor"),
    ({"list": ["t", T]}, r"at params\[0\]: 't' is neither a container"),
    ({"list": [T], "exec": "import os"}, r"unexpected keys \['exec', 'list'\]"),
    ({"__reduce__": "os.system"}, r"unexpected keys \['__reduce__'\]"),
    ({"dict": {"a": T, "b": {"array": "u", "backend": "numpy"}}},
     r"names the tensor 'u' at params\['b'\], which the file does not hold"),
    ({"list": [T, T]}, r"tensor 't' appears twice .* \(again at params\[1\]\)"),
    ({"list": [1, 2]}, r"does not use the tensor\(s\) 't'"),
    (_nested(MAX_DEPTH + 1, T), r"nested too deeply \(at params(\[0\]){100}; kn.save writes at"),
    ('{"list": [' * 50_000, "nested too deeply"),
    ("[1, 2", "not valid JSON"),
    ({"array": "t", "backend": "pickle"}, "saved from the pickle backend, which is not available"),
], ids=["list of a string", "tuple of a number", "dict of a list", "fields a list",
        "named tuple named by a number", "named tuple named by a path", "named tuple dunder field",
        "tensor name not a string", "a string leaf", "an extra key", "an unknown key",
        "a tensor that is not there", "a tensor used twice", "a tensor not used",
        "nested one level too deep", "nested 50,000 levels", "not JSON", "unknown backend"])
def test_hostile_pytree_metadata_names_the_path_and_field(tmp_path, structure, match):
    path = _with_metadata(tmp_path / "meta", structure)
    with pytest.raises(CheckpointError, match=match) as err:
        kn.load(path)
    assert str(path) in str(err.value)


def test_the_metadata_format_must_be_a_known_string(tmp_path):
    with pytest.raises(CheckpointError, match="knetapi format '1.0'; this version reads format 1"):
        kn.load(_with_metadata(tmp_path / "m", T, fmt="1.0"))


# ---- IDX files -----------------------------------------------------------------------------------

def _idx(code, dims, payload=b""):
    return bytes([0, 0, code, len(dims)]) + b"".join(d.to_bytes(4, "big") for d in dims) + payload


def _write(path, data, gz):
    path.write_bytes(gzip.compress(data) if gz else data)
    return path


VALID = _idx(0x0D, (2, 3), np.arange(6, dtype=">f4").tobytes())


@pytest.mark.parametrize("gz", [False, True], ids=["raw", "gzip"])
def test_an_idx_file_cut_at_any_byte_is_refused_naming_the_file(tmp_path, gz):
    path = tmp_path / "cut.idx"
    for cut in range(len(VALID)):
        _write(path, VALID[:cut], gz)
        with pytest.raises(ValueError, match=r"truncated|too short") as err:
            read_idx(path)
        assert str(err.value).startswith(f"{path}: "), (cut, err.value)


@pytest.mark.parametrize("gz", [False, True], ids=["raw", "gzip"])
@pytest.mark.parametrize("dims", [(2 ** 32 - 1,) * 3, (2 ** 32 - 1,) * 255, (60000, 28, 28)],
                         ids=["3 dimensions of 2**32-1", "255 dimensions of 2**32-1",
                              "MNIST's shape with 100 bytes"])
def test_huge_idx_dimensions_are_refused_before_allocating(tmp_path, gz, dims):
    path = _write(tmp_path / "huge.idx", _idx(0x08, dims, bytes(100)), gz)
    error, peak = _raised_and_peak(read_idx, path)
    assert type(error) is ValueError and str(error).startswith(f"{path}: truncated: "), error
    assert peak < 8 * MiB


def test_a_gzip_bomb_is_counted_not_held(tmp_path):
    """A 300 KB gzip file whose 10-byte IDX content is followed by 64 MiB of zeros."""
    buffer = io.BytesIO()
    with gzip.GzipFile(fileobj=buffer, mode="wb", compresslevel=1) as f:
        f.write(_idx(0x08, (10,), bytes(10)))
        for _ in range(64):
            f.write(bytes(MiB))
    path = tmp_path / "bomb.gz"
    path.write_bytes(buffer.getvalue())
    error, peak = _raised_and_peak(read_idx, path)
    assert str(error).startswith(f"{path}: {64 * MiB} extra bytes: "), error
    assert peak < 8 * MiB                   # the whole stream would take 64 MiB


@pytest.mark.parametrize("content, match", [
    (b"\x12\x34" + VALID[2:], "not an IDX file: magic number 0x12340D02, expected 0x0000TTDD"),
    (b"PK\x03\x04" + VALID[4:], "not an IDX file: magic number 0x504B0304"),
    (_idx(0x0A, (2,), bytes(2)), "unknown IDX type code 0x0A"),
    (_idx(0xFF, (2,), bytes(2)), "unknown IDX type code 0xFF"),
    (VALID + b"\0", "1 extra bytes"),
], ids=["wrong magic", "a zip file", "type code 0x0A", "type code 0xFF", "an extra byte"])
def test_a_wrong_idx_header_names_the_file_and_the_field(tmp_path, content, match):
    path = _write(tmp_path / "bad.idx", content, gz=False)
    with pytest.raises(ValueError, match=match) as err:
        read_idx(path)
    assert str(err.value).startswith(f"{path}: ")


def _flip_crc(data):
    return data[:-8] + bytes([data[-8] ^ 0xFF]) + data[-7:]


@pytest.mark.parametrize("content", [
    b"\x1f\x8b" + bytes(range(40)),
    gzip.compress(VALID)[:-3],
    _flip_crc(gzip.compress(VALID)),
    gzip.compress(VALID) + b"trailing garbage",
], ids=["garbage after the gzip magic", "cut gzip stream", "wrong CRC", "garbage after the stream"])
def test_corrupt_gzip_names_the_file(tmp_path, content):
    path = tmp_path / "bad.idx.gz"
    path.write_bytes(content)
    with pytest.raises(ValueError, match="corrupt gzip data") as err:
        read_idx(path)
    assert str(err.value).startswith(f"{path}: ")


# ---- NaN parameters ------------------------------------------------------------------------------

def _mlp_loss(w, x):
    return kn.sum(kn.tanh(x @ w[0] + w[1]) @ w[2])


def test_nan_parameters_give_the_gradient_torch_gives_and_stay_unchanged():
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(0)
    w = [rng.standard_normal((3, 4)), rng.standard_normal(4), rng.standard_normal((4, 1))]
    w[0][1, 2] = np.nan                     # poisons hidden unit 2, and so the loss
    x = rng.standard_normal((5, 3))
    before = [a.copy() for a in w]
    g = kn.grad(_mlp_loss)(w, x)
    tw = [torch.tensor(a, requires_grad=True) for a in w]
    torch.sum(torch.tanh(torch.tensor(x) @ tw[0] + tw[1]) @ tw[2]).backward()
    for ours, theirs in zip(g, tw):
        np.testing.assert_allclose(ours, theirs.grad.numpy(), rtol=1e-12, equal_nan=True)
    unit2 = np.arange(4) == 2               # NaN exactly where hidden unit 2 enters, nowhere else
    np.testing.assert_array_equal(np.isnan(g[0]), np.broadcast_to(unit2, (3, 4)))
    np.testing.assert_array_equal(np.isnan(g[1]), unit2)
    np.testing.assert_array_equal(np.isnan(g[2]), unit2[:, None])
    for a, b in zip(w, before):
        np.testing.assert_array_equal(a, b)


def test_gradcheck_and_check_grads_report_nan_input_without_crashing():
    w = np.array([1.0, np.nan, 2.0])
    report = kn.gradcheck(lambda w: kn.sum(w * w), w)
    assert not report and "nan" in str(report)
    with pytest.raises(AssertionError, match="FAILED"):
        check_grads(lambda w: kn.sum(w * w), [w])
    np.testing.assert_array_equal(w, [1.0, np.nan, 2.0])


def test_gradcheck_names_the_argument_holding_nan():
    report = kn.gradcheck(lambda w: kn.sum(w * w), np.array([1.0, np.nan]))
    assert re.search(r"args\[0\].*NaN", str(report)), str(report)


def test_nan_survives_a_checkpoint_bit_for_bit(tmp_path):
    bits = [0x7FF8000000000001, 0x7FF0000000000001, 0xFFF8000000000000, 0x3FF0000000000000]
    w = np.array(bits, np.uint64).view(np.float64)        # quiet, signalling, negative NaN, 1.0
    kn.save(tmp_path / "nan", {"w": w})
    assert kn.load(tmp_path / "nan")["w"].tobytes() == w.tobytes()


# ---- objects whose __array_namespace__ raises ----------------------------------------------------

class Hostile:
    """Looks like an array, but asking for its namespace raises."""

    shape, dtype, ndim = (2,), np.float64, 1

    def __array_namespace__(self, api_version=None):
        raise RuntimeError("boom: __array_namespace__ was called")


@pytest.mark.parametrize("use", [
    lambda h, w, folder: kn.grad(lambda p: kn.sum(p[0]))([w, h]),
    lambda h, w, folder: kn.grad(lambda p, x: kn.sum(p * x))(w, h),
    lambda h, w, folder: kn.sum(h),
    lambda h, w, folder: kn.add(w, h),
    lambda h, w, folder: kn.relu(h),
    lambda h, w, folder: kn.array_namespace(w, h),
    lambda h, w, folder: kn.convert({"w": w, "h": h}, "numpy"),
    lambda h, w, folder: kn.save(folder / "ckpt", {"w": w, "h": h}),
    lambda h, w, folder: kn.optim.SGD(0.1).update([w, h], [w, w]),
    lambda h, w, folder: kn.gradcheck(lambda x: kn.sum(x), h),
], ids=["grad parameter", "grad data", "kn.sum", "kn.add", "kn.relu", "kn.array_namespace",
        "kn.convert", "kn.save", "optimizer", "gradcheck"])
def test_an_object_whose_namespace_raises_is_named_by_its_type(tmp_path, use):
    w = np.ones(2)
    with pytest.raises(TypeError, match=r"test_hostile_input\.Hostile") as err:
        use(Hostile(), w, tmp_path)
    assert "boom" not in str(err.value)
    np.testing.assert_array_equal(w, np.ones(2))
    assert os.listdir(tmp_path) == []


def test_a_registered_array_type_is_dispatched_by_type_even_if_its_namespace_raises():
    class Odd(np.ndarray):
        def __array_namespace__(self, api_version=None):
            raise RuntimeError("boom")

    w = np.arange(3.0).view(Odd)
    np.testing.assert_array_equal(kn.grad(lambda w: kn.sum(w * w))(w), [0.0, 2.0, 4.0])


# ---- cyclic and very deep pytrees ----------------------------------------------------------------

def _cyclic_list():
    tree = [np.ones(2)]
    tree.append(tree)
    return tree, r"cyclic: (w|params|tree|)\[1\] is (w|params|tree|the root) itself"


def _cyclic_dict():
    tree = {"w": np.ones(2)}
    tree["self"] = tree
    return tree, r"cyclic: (w|params|tree|)\['self'\] is (w|params|tree|the root) itself"


def _indirect_cycle():
    tree = {"layers": [np.ones(2)]}
    tree["layers"].append((np.ones(1), tree))
    return tree, r"cyclic: (w|params|tree|)\['layers'\]\[1\]\[1\] is"


def _deep_list():
    tree = np.ones(2)
    for _ in range(10_000):
        tree = [tree]
    return tree, rf"too deep: (w|params|tree|)(\[0\]){{{MAX_DEPTH}}} is nested in more than"


def _deep_dict():
    tree = np.ones(2)
    for _ in range(10_000):
        tree = {"a": tree}
    return tree, rf"too deep: (w|params|tree|)(\['a'\]){{{MAX_DEPTH}}} is nested"


TREES = [_cyclic_list, _cyclic_dict, _indirect_cycle, _deep_list, _deep_dict]
USES = {
    "grad": lambda t: kn.grad(lambda w: 1.0)(t),
    "value_and_grad": lambda t: kn.value_and_grad(lambda w: 1.0)(t),
    "convert": lambda t: kn.convert(t, "numpy"),
    "gradcheck": lambda t: kn.gradcheck(lambda w: 1.0, t),
}


@pytest.mark.parametrize("use", list(USES.values()), ids=list(USES))
@pytest.mark.parametrize("make", TREES, ids=lambda m: m.__name__.strip("_"))
def test_a_cyclic_or_deep_pytree_is_a_value_error_naming_the_path(make, use):
    tree, match = make()
    with pytest.raises(ValueError, match=match):
        use(tree)


@pytest.mark.parametrize("make", TREES, ids=lambda m: m.__name__.strip("_"))
def test_save_refuses_a_cyclic_or_deep_pytree_and_keeps_the_old_file(tmp_path, make):
    path = tmp_path / "ckpt"
    kn.save(path, {"w": np.arange(3.0)})
    tree, match = make()
    with pytest.raises(ValueError, match=match):
        kn.save(path, tree)
    assert sorted(os.listdir(tmp_path)) == ["ckpt"]
    np.testing.assert_array_equal(kn.load(path)["w"], np.arange(3.0))


@pytest.mark.parametrize("make", [_cyclic_list, _deep_list], ids=["cyclic", "deep"])
def test_an_optimizer_refuses_a_cyclic_or_deep_pytree(make):
    tree, match = make()
    with pytest.raises(ValueError, match=match):
        kn.optim.SGD(0.1).update(tree, tree)


def test_the_depth_limit_is_the_same_for_grad_save_and_load(tmp_path):
    w = np.ones(2)
    for _ in range(MAX_DEPTH):
        w = [w]
    g = kn.grad(lambda w: kn.sum(_innermost(w)))(w)
    assert _innermost(g).tolist() == [1.0, 1.0]
    kn.save(tmp_path / "deep", w)
    assert _innermost(kn.load(tmp_path / "deep")).tolist() == [1.0, 1.0]
    assert _innermost(kn.convert(w, "numpy")).tolist() == [1.0, 1.0]
    with pytest.raises(ValueError, match="too deep"):
        kn.save(tmp_path / "deeper", [w])


def _innermost(tree):
    while isinstance(tree, list):
        (tree,) = tree
    return tree


def test_a_subtree_shared_by_two_branches_is_not_a_cycle(tmp_path):
    shared = [np.ones(2), np.arange(2.0)]
    params = {"encoder": shared, "decoder": shared}
    g = kn.grad(lambda p: kn.sum(p["encoder"][1] * p["decoder"][1]))(params)
    np.testing.assert_array_equal(g["encoder"][1], [0.0, 1.0])
    kn.save(tmp_path / "shared", params)
    loaded = kn.load(tmp_path / "shared")
    np.testing.assert_array_equal(loaded["decoder"][1], [0.0, 1.0])
    assert kn.convert(params, "numpy")["decoder"][0] is shared[0]
