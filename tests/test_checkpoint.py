"""kn.save and kn.load: round trips of pytrees on every backend, and files that must be refused
without running anything (pickles, truncated, corrupt, hostile and inconsistent files)."""

import collections
import json
import os
import pickle

import numpy as np
import pytest

import knetapi as kn
from knetapi.training.checkpoint import CheckpointError

pytest.importorskip("safetensors")
from safetensors.numpy import save_file  # noqa: E402


def _assert_same(a, b):
    assert type(a) is type(b), (a, b)
    if isinstance(a, dict):
        assert list(a) == list(b)
        for k in a:
            _assert_same(a[k], b[k])
    elif isinstance(a, (list, tuple)):
        assert len(a) == len(b)
        for x, y in zip(a, b):
            _assert_same(x, y)
    elif isinstance(a, np.ndarray):
        assert a.dtype == b.dtype and a.shape == b.shape
        np.testing.assert_array_equal(a, b)
    else:
        assert a == b or (a != a and b != b)


def test_numpy_nested_pytree_round_trip(tmp_path):
    rng = np.random.default_rng(0)
    params = {
        "layers": [(rng.standard_normal((3, 2)).astype(np.float32), np.zeros(2, np.float32)),
                   (rng.standard_normal((2, 1)), np.ones(1))],
        "scalars": [0.1, 3, True, None, float("nan"), -float("inf"), 1e-300],
        "empty": {"list": [], "tuple": (), "dict": {}},
        "odd shapes": [np.array(2.5), np.zeros((0, 4), np.float32)],
        "ints": np.arange(5, dtype=np.int64), "mask": np.array([True, False]),
        "half": np.linspace(0, 1, 4, dtype=np.float16),
        "strided": np.arange(12.0).reshape(3, 4)[:, ::2],
    }
    path = tmp_path / "params.safetensors"
    kn.save(path, params)
    loaded = kn.load(path)
    _assert_same(params, loaded)
    kn.save(str(path), [1.0])                 # str paths too, and overwriting
    assert kn.load(str(path)) == [1.0]


def test_a_single_array_and_a_named_tuple_round_trip(tmp_path):
    kn.save(tmp_path / "w", np.arange(3.0))
    np.testing.assert_array_equal(kn.load(tmp_path / "w"), np.arange(3.0))
    Layer = collections.namedtuple("Layer", ["w", "b"])
    kn.save(tmp_path / "l", Layer(np.ones(2, np.float32), 0.5))
    loaded = kn.load(tmp_path / "l")
    assert type(loaded).__name__ == "Layer" and loaded._fields == ("w", "b") and loaded.b == 0.5
    np.testing.assert_array_equal(loaded.w, np.ones(2, np.float32))


def test_numpy_scalars_come_back_as_0d_arrays_of_their_dtype(tmp_path):
    kn.save(tmp_path / "s", [np.float32(1.5), np.float64(2.5), np.int64(3)])
    loaded = kn.load(tmp_path / "s")
    assert [(type(a), a.dtype, a.shape) for a in loaded] == [
        (np.ndarray, np.float32, ()), (np.ndarray, np.float64, ()), (np.ndarray, np.int64, ())]
    assert [a.item() for a in loaded] == [1.5, 2.5, 3]


def test_torch_tensors_keep_their_backend_and_dtype(tmp_path):
    torch = pytest.importorskip("torch")
    params = {"w": torch.randn(3, 2), "b": torch.zeros(2, dtype=torch.float64), "n": np.ones(2)}
    kn.save(tmp_path / "t", params)
    loaded = kn.load(tmp_path / "t")
    assert isinstance(loaded["w"], torch.Tensor) and loaded["w"].dtype == torch.float32
    assert loaded["b"].dtype == torch.float64 and isinstance(loaded["n"], np.ndarray)
    torch.testing.assert_close(loaded["w"], params["w"])
    as_numpy = kn.load(tmp_path / "t", backend="numpy")
    assert as_numpy["w"].dtype == np.float32
    np.testing.assert_array_equal(as_numpy["w"], params["w"].numpy())
    as_torch = kn.load(tmp_path / "t", backend="torch")
    assert isinstance(as_torch["n"], torch.Tensor) and as_torch["n"].dtype == torch.float64


def test_torch_tensor_requiring_grad_and_bfloat16(tmp_path):
    torch = pytest.importorskip("torch")
    kn.save(tmp_path / "g", [torch.ones(2, requires_grad=True)])
    assert not kn.load(tmp_path / "g")[0].requires_grad
    with pytest.raises(TypeError, match=r"params\['w'\].*bfloat16"):
        kn.save(tmp_path / "bf", {"w": torch.ones(2, dtype=torch.bfloat16)})
    assert not (tmp_path / "bf").exists()


def test_array_api_strict_arrays_keep_their_backend(tmp_path):
    xp = pytest.importorskip("array_api_strict")
    params = [xp.asarray([1.0, 2.0], dtype=xp.float32), xp.asarray([[3.0]])]
    kn.save(tmp_path / "s", params)
    loaded = kn.load(tmp_path / "s")
    assert [kn.backend_of(a).name for a in loaded] == ["strict", "strict"]
    assert loaded[0].dtype == xp.float32 and loaded[1].dtype == xp.float64
    np.testing.assert_array_equal(np.from_dlpack(loaded[0]), [1.0, 2.0])


def test_the_file_is_a_standard_safetensors_file_named_by_paths(tmp_path):
    from safetensors import safe_open
    kn.save(tmp_path / "p", {"a": [np.ones(2)], "lr": 0.1})
    with safe_open(tmp_path / "p", framework="numpy") as f:
        assert list(f.keys()) == ["params['a'][0]"]
        assert json.loads(f.metadata()["knetapi"])["dict"]["lr"] == 0.1


def test_a_foreign_safetensors_file_loads_as_a_dict(tmp_path):
    save_file({"weight": np.ones(2, np.float32)}, str(tmp_path / "f"))
    loaded = kn.load(tmp_path / "f")
    assert list(loaded) == ["weight"] and loaded["weight"].dtype == np.float32


def test_save_refuses_bad_leaves_naming_their_path(tmp_path):
    path = tmp_path / "bad"
    with pytest.raises(TypeError, match=r"params\['a'\]\[1\] is a str"):
        kn.save(path, {"a": [np.ones(1), "text"]})
    with pytest.raises(TypeError, match=r"params has the key 1 .* string keys"):
        kn.save(path, {1: np.ones(1)})
    with pytest.raises(TypeError, match=r"params\[0\] has dtype complex128"):
        kn.save(path, [np.ones(1, np.complex128)])
    with pytest.raises(TypeError, match="path must be a str or os.PathLike"):
        kn.save(3, [1.0])
    with pytest.raises(FileNotFoundError, match="does not exist"):
        kn.save(tmp_path / "no" / "such" / "folder", [1.0])
    with pytest.raises(IsADirectoryError):
        kn.save(tmp_path, [1.0])
    assert os.listdir(tmp_path) == []       # nothing left behind, not even temporary files


def test_save_inside_grad_names_the_traced_value(tmp_path):
    def loss(w):
        kn.save(tmp_path / "inside", {"w": w})
        return kn.sum(w)
    with pytest.raises(TypeError, match=r"params\['w'\] is a traced value"):
        kn.grad(loss)(np.ones(2))


def test_load_of_a_missing_file_or_unknown_backend(tmp_path):
    with pytest.raises(FileNotFoundError, match="no such file: .*missing"):
        kn.load(tmp_path / "missing")
    kn.save(tmp_path / "p", [np.ones(1)])
    with pytest.raises(ValueError, match="no backend named 'jax'"):
        kn.load(tmp_path / "p", backend="jax")
    with pytest.raises(IsADirectoryError):
        kn.load(tmp_path)


class _Exploit:
    """Unpickling this creates the marker file: what a hostile pickle checkpoint does."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (open, (self.marker, "w"))


@pytest.mark.parametrize("protocol", [2, 4, 5])
def test_a_pickle_is_refused_and_never_unpickled(tmp_path, protocol):
    marker = tmp_path / "pwned"
    path = tmp_path / "model.pkl"
    path.write_bytes(pickle.dumps({"w": _Exploit(str(marker))}, protocol=protocol))
    with pytest.raises(CheckpointError, match=r"model\.pkl looks like a Python pickle"):
        kn.load(path)
    assert not marker.exists()


def test_a_pickle_behind_a_plausible_header_is_refused(tmp_path):
    marker = tmp_path / "pwned"
    payload = pickle.dumps(_Exploit(str(marker)))
    path = tmp_path / "p"
    path.write_bytes(len(payload).to_bytes(8, "little") + payload)
    with pytest.raises(CheckpointError, match=r"p is not a safetensors file: its header is not"):
        kn.load(path)
    assert not marker.exists()


def _valid_bytes(tmp_path):
    kn.save(tmp_path / "ok", {"w": np.arange(6.0), "b": np.ones(2, np.float32)})
    return (tmp_path / "ok").read_bytes()


@pytest.mark.parametrize("cut", [0, 5, 8, 20, -1, -8])
def test_a_truncated_file_is_refused(tmp_path, cut):
    data = _valid_bytes(tmp_path)
    path = tmp_path / "cut"
    path.write_bytes(data[:cut])
    with pytest.raises(CheckpointError, match=r"cut.*(truncated|too short|not a valid)"):
        kn.load(path)


def test_a_header_claiming_huge_sizes_is_refused(tmp_path):
    path = tmp_path / "huge"
    path.write_bytes((2 ** 62).to_bytes(8, "little") + b"{}")
    with pytest.raises(CheckpointError, match="header claims 4611686018427387904 bytes"):
        kn.load(path)
    header = json.dumps({"w": {"dtype": "F64", "shape": [2 ** 40], "data_offsets": [0, 2 ** 43]}})
    header = header.encode() + b" " * (-len(header) % 8)
    path.write_bytes(len(header).to_bytes(8, "little") + header + b"\0" * 16)
    with pytest.raises(CheckpointError, match="huge is not a valid safetensors file"):
        kn.load(path)


def test_corrupt_header_bytes_are_refused(tmp_path):
    data = bytearray(_valid_bytes(tmp_path))
    data[10:20] = b"\xff" * 10
    path = tmp_path / "corrupt"
    path.write_bytes(bytes(data))
    with pytest.raises(CheckpointError, match="corrupt is not a valid safetensors file"):
        kn.load(path)


def _with_metadata(tmp_path, structure, tensors=None, fmt="1"):
    path = tmp_path / "meta"
    text = structure if isinstance(structure, str) else json.dumps(structure)
    save_file(tensors if tensors is not None else {"t": np.ones(2)}, str(path),
              metadata={"knetapi": text, "knetapi_format": fmt})
    return path


@pytest.mark.parametrize("structure, match", [
    ({"array": "missing", "backend": "numpy"}, "names the tensor 'missing' .* does not hold"),
    ({"list": []}, "does not use the tensor"),
    ({"list": [{"array": "t", "backend": "numpy"}] * 2}, "appears twice"),
    ({"list": {"a": 1}}, r"malformed metadata at params: 'list' must hold a JSON array"),
    ({"dict": [1]}, "'dict' must hold a JSON object"),
    ({"exec": "import os"}, r"unexpected keys \['exec'\]"),
    ("[1, 2", "not valid JSON"),
    ("[" * 100_000 + "]" * 100_000, "nested too deeply"),
    ({"list": ["text", {"array": "t", "backend": "numpy"}]}, r"at params\[0\]: 'text' is neither"),
    ({"namedtuple": "os.system", "fields": {"t": {"array": "t", "backend": "numpy"}}}, "named tuple"),
    ({"namedtuple": "P", "fields": {"__class__": {"array": "t", "backend": "numpy"}}}, "named tuple"),
    ({"array": 3, "backend": "numpy"}, "must be strings"),
    ({"array": "t", "backend": "nosuch"}, "saved from the nosuch backend, which is not available"),
])
def test_metadata_that_does_not_match_the_tensors_is_refused(tmp_path, structure, match):
    with pytest.raises(CheckpointError, match=match):
        kn.load(_with_metadata(tmp_path, structure))


def test_deeply_nested_valid_json_is_refused(tmp_path):
    text = '{"list": [' * 5000 + '{"array": "t", "backend": "numpy"}' + "]}" * 5000
    with pytest.raises(CheckpointError, match="nested too deeply"):
        kn.load(_with_metadata(tmp_path, text))


def test_an_unknown_format_version_is_refused(tmp_path):
    with pytest.raises(CheckpointError, match="knetapi format '2'"):
        kn.load(_with_metadata(tmp_path, {"array": "t", "backend": "numpy"}, fmt="2"))
