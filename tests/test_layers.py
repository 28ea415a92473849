"""The architecture as folders: the public names, the layers, and no import cycles.

A folder is one layer. The core (knetapi's own modules) and rules/ are at the bottom; nn/,
training/, testing/ and data/ sit above them and use only the core's public names (CORE_PUBLIC),
so that each could live in its own package.
"""

import ast
import importlib
import importlib.util
import subprocess
import sys
import types
from pathlib import Path

import pytest

import knetapi as kn

PACKAGE = Path(kn.__file__).parent

# Everything a user may reach from `import knetapi as kn` beside the standard's functions.
PUBLIC_NAMES = (
    "grad value_and_grad array_namespace register_backend backend_of convert Traced value "
    "IndependentOutputWarning STANDARD_FUNCTIONS COVERAGE MISSING primitive defvjp "
    "relu sigm elu softplus softmax logsoftmax logsumexp nll accuracy bce logistic dropout mat "
    "conv4 deconv4 pool unpool data init optim minibatch progress train save load gradcheck "
    "float32 float64 int64 bool pi inf nan newaxis"
).split()

# The modules that `kn.<name>` may be: public layers and the documented registry module.
PUBLIC_MODULES = {"backends", "data", "init", "nn", "optim", "registry", "rules", "testing", "training"}

# What the layers above the core may import from it, by core module (None: the module itself).
CORE_PUBLIC = {
    "knetapi.registry": {None, "backend_of", "backends", "default_backend", "describe", "get_backend",
                         "owner", "Backend", "SCALAR_TYPES"},
    "knetapi.traced": {"Traced", "strip"},
    "knetapi.rules": {"PRIMITIVES"},
    "knetapi.pytree": {"map_with_path", "tree_map", "leaves", "is_namedtuple", "enter", "MAX_DEPTH"},
    "knetapi.convert": {"convert", "to_numpy"},
    "knetapi.differentiate": {"grad", "value_and_grad"},
    "knetapi.namespace": {"functions", "STANDARD_FUNCTIONS", "DTYPES_AND_CONSTANTS"},
    "knetapi.tape": {"Trace"},   # the conformance namespace's trace is a Trace that never closes
}
LAYERS = ("nn", "training", "testing", "data")


def _modules():
    """(dotted name, path, package) of every module of knetapi."""
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
        is_package = parts[-1] == "__init__"
        if is_package:
            parts.pop()
        name = ".".join(parts)
        yield name, path, name if is_package else name.rpartition(".")[0]


def _imports(path: Path, package: str):
    """(module, name) for each name imported relatively in ``path`` (name None: a whole module)."""
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.level:
            base = package.split(".")[: len(package.split(".")) - node.level + 1]
            target = ".".join(base + ([node.module] if node.module else []))
            for alias in node.names:
                submodule = f"{target}.{alias.name}"
                if importlib.util.find_spec(submodule) if _is_package(target) else False:
                    yield submodule, None
                else:
                    yield target, alias.name


def _is_package(dotted: str) -> bool:
    return hasattr(importlib.import_module(dotted), "__path__")


def test_every_public_name_is_there():
    missing = [n for n in PUBLIC_NAMES + list(kn.STANDARD_FUNCTIONS) if not hasattr(kn, n)]
    assert not missing
    assert set(kn.__all__) >= set(PUBLIC_NAMES) - {"float32", "float64", "int64", "bool", "pi", "inf",
                                                    "nan", "newaxis", "logsumexp"}
    assert callable(kn.optim.SGD) and callable(kn.init.xavier) and callable(kn.data.housing)
    from knetapi.testing import GradcheckReport, check_grads, gradcheck, traced_namespace
    assert gradcheck is kn.gradcheck and callable(check_grads) and callable(traced_namespace)
    assert isinstance(kn.gradcheck(lambda x: kn.sum(x * x), 1.0), GradcheckReport)


def test_optim_and_init_import_as_modules():
    import knetapi.init
    import knetapi.optim
    from knetapi.optim import Adam
    assert knetapi.optim is kn.optim and knetapi.init is kn.init and Adam is kn.optim.Adam


def test_internal_modules_are_not_attributes_of_kn():
    modules = {n for n in dir(kn) if not n.startswith("_") and isinstance(getattr(kn, n), types.ModuleType)}
    assert modules == PUBLIC_MODULES
    for name in ("scatter", "tape", "cotangent", "composite", "primitives", "namespace"):
        with pytest.raises(AttributeError):
            getattr(kn, name)
    from knetapi.tape import Trace   # still importable by their full name
    assert Trace.__module__ == "knetapi.tape"


@pytest.mark.parametrize("layer", LAYERS)
def test_layers_use_only_the_cores_public_names(layer):
    wrong = []
    for name, path, package in _modules():
        if not name.startswith(f"knetapi.{layer}"):
            continue
        for module, imported in _imports(path, package):
            if module.startswith(f"knetapi.{layer}") or module == "knetapi.backends":
                continue
            if module.split(".")[1] in LAYERS:
                wrong.append(f"{name} imports the layer {module}")
            elif imported not in CORE_PUBLIC.get(module, set()):
                wrong.append(f"{name} imports {imported or 'the module'} from {module}")
    assert not wrong, "\n".join(wrong)


def test_data_layer_needs_nothing_from_the_core():
    for name, path, package in _modules():
        if name.startswith("knetapi.data"):
            assert all(m.startswith("knetapi.data") for m, _ in _imports(path, package)), name


def test_no_import_cycles_among_modules():
    graph = {name: {m for m, _ in _imports(path, package) if m != "knetapi"}
             for name, path, package in _modules()}
    state: dict[str, int] = {}

    def visit(node, chain):
        state[node] = 1
        for dep in graph.get(node, ()):
            if state.get(dep) == 1:
                pytest.fail("import cycle: " + " -> ".join(chain[chain.index(dep):] + [dep]))
            if dep not in state:
                visit(dep, chain + [dep])
        state[node] = 2

    for node in graph:
        if node not in state:
            visit(node, [node])


def test_import_knetapi_loads_no_optional_library():
    code = ("import sys, knetapi; "
            "print(sorted(m for m in ('torch', 'array_api_strict', 'jax', 'safetensors', 'tqdm') "
            "if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
