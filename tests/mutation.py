"""Mutation testing of knetapi's core with mutmut: do the tests catch what they claim to?

    .venv/bin/pip install mutmut                           # once: not in any extra yet
    .venv/bin/python tests/mutation.py                     # every target below (about an hour)
    .venv/bin/python tests/mutation.py knetapi/cotangent.py  # some of them
    .venv/bin/python tests/mutation.py --list              # the targets and the tests each runs

Not part of CI. For each target file, mutmut changes one thing at a time in it (an operator, a
constant, a condition, a returned value: a *mutant*) and runs the tests that call the changed
function, stopping at the first failure; a mutant that no test notices *survived*. Each target runs
in a scratch copy of the working tree, ``build/mutation/<target>/``, so the checkout is never
touched: there ``knetapi/backends`` is a copy of ``backends/`` (an editable install maps it to the
checkout's otherwise), and the tests run with the hypothesis profile ``mutation`` (the ``ci``
profile with fewer examples, registered in the copy's conftest). Each target runs only the test
files that exercise it (TARGETS), so that a run takes minutes. mutmut switches a mutant on at call
time inside processes that imported knetapi before, so code that ran at import (the rule table's
``rule(...)`` rows and the primitives they make) or was cached keeps its original behaviour there:
each survivor is therefore written into the copy's source and the tests run again in a fresh
process ("killed in a fresh process" when they fail). The counts and every survivor's diff go to
``build/mutation/report.md``. A full run's result is not recorded in docs/ yet (issue 16): each
survivor is to be killed by a test or explained (an *equivalent* mutant, which no test can kill).

mutmut only mutates code inside functions and methods: a rule table's lambdas, written at module
level, are not mutated (the named helpers they call are).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BUILD = ROOT / "build" / "mutation"

CORE = ["tests/test_grad_api.py", "tests/test_primitives.py", "tests/test_accumulation.py",
        "tests/test_rules_conventions.py", "tests/test_recording_namespace.py",
        "tests/test_no_silent_wrong_gradient.py", "tests/test_gradcheck.py", "tests/test_bad_input.py",
        "tests/test_backends.py", "tests/test_ties.py", "tests/test_ops.py", "tests/test_models.py",
        "tests/test_tape.py", "tests/test_grad_contracts.py", "tests/test_primitive_checks.py",
        "tests/test_traced_messages.py"]
INDEXING = ["tests/test_accumulation.py", "tests/test_scatter.py", "tests/test_rules_conventions.py",
            "tests/test_grad_api.py", "tests/test_ties.py", "tests/test_conv.py", "tests/test_rules.py",
            "-k", "not test_gradient_matches or getitem or take or index_add or pool"]
RULES = ["tests/test_rules.py", "tests/test_rules_conventions.py", "tests/test_ties.py",
         "tests/test_accumulation.py", "tests/test_ops.py", "tests/test_torch_oracle.py",
         *[p for p in ["tests/test_edge_points.py"] if (ROOT / p).exists()]]

# target file (or folder, ending in /): the pytest arguments that select its tests
TARGETS = {
    "knetapi/tape.py": CORE,
    "knetapi/traced.py": CORE + ["tests/test_conformance.py"],
    "knetapi/primitives.py": CORE,
    "knetapi/differentiate.py": CORE,
    "knetapi/cotangent.py": INDEXING,
    "knetapi/scatter.py": INDEXING,
    "knetapi/rules/": RULES + ["tests/test_conv.py"],     # a folder: its files in one run
    "knetapi/testing/gradient_check.py": ["tests/test_gradcheck.py", "tests/test_hostile_input.py"],
    "knetapi/testing/__init__.py": ["tests/test_gradcheck.py"],
    "knetapi/training/optim.py": ["tests/test_optim.py", "tests/test_training.py"],
}
# Tests that fail under mutmut without any mutant, left out of every run: mutmut wraps each function
# of the mutated module in a trampoline (its own frame) and runs the tests from its copy.
HARNESS_FAILURES = {
    "tests/test_no_silent_wrong_gradient.py::test_debug_names_the_op_the_forward_pass_and_the_users_line":
        "kn.debug names the first frame outside knetapi: under mutmut, the trampoline's",
    "tests/test_backends.py::test_register_backend_through_the_entry_point_group":
        "the entry point of a package made in tmp_path is not found from mutmut's copy",
}

PROFILE = 'settings.register_profile("mutation", parent=settings.get_profile("ci"), max_examples={n})\n'
STATUS = {1: "killed", 3: "killed", 0: "survived", 5: "no tests", 33: "no tests", 34: "skipped",
          36: "timeout", -24: "timeout", 24: "timeout", 152: "timeout", 255: "timeout",
          -11: "segfault", -9: "segfault", None: "not checked"}


def test_selection(target: str) -> list[str]:
    return list(TARGETS[target])


def working_tree_files() -> list[str]:
    """The checkout's files, tracked or new, that git does not ignore."""
    listed = subprocess.run(["git", "ls-files", "-co", "--exclude-standard", "-z"], cwd=ROOT,
                            capture_output=True, check=True).stdout.decode()
    return [f for f in listed.split("\0") if f and (ROOT / f).is_file()]


def scratch_copy(target: str, examples: int, deselect: list[str]) -> Path:
    """A copy of the working tree for ``target``, set up for mutmut."""
    where = BUILD / target.strip("/").replace("/", "_").removesuffix(".py")
    if where.exists():
        shutil.rmtree(where)
    for name in working_tree_files():
        (where / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / name, where / name)
    shutil.copytree(ROOT / "backends", where / "knetapi" / "backends",
                    ignore=shutil.ignore_patterns("__pycache__"))
    conftest = where / "tests" / "conftest.py"
    text = conftest.read_text(encoding="utf-8")
    load = re.search(r"^settings\.load_profile\(", text, re.MULTILINE)
    if load is None:
        raise SystemExit("tests/conftest.py no longer loads a hypothesis profile; update tests/mutation.py")
    conftest.write_text(text[:load.start()] + PROFILE.format(n=examples) + text[load.start():],
                        encoding="utf-8")
    selection = "\n    ".join(test_selection(target))
    (where / "setup.cfg").write_text(f"""[mutmut]
source_paths = knetapi
only_mutate = {target + "*.py" if target.endswith("/") else target}
do_not_mutate = knetapi/backends/*
pytest_add_cli_args =
    -pno:cacheprovider
    {"".join(f"--deselect={d}" + chr(10) + "    " for d in deselect).rstrip()}
pytest_add_cli_args_test_selection =
    {selection}
use_git_change_detection = false
""", encoding="utf-8")
    return where


def mutmut(where: Path, *args: str, log=None) -> subprocess.CompletedProcess:
    command = Path(sys.executable).with_name("mutmut")
    if not command.exists():
        raise SystemExit(f"mutmut is not installed in {Path(sys.executable).parent.parent}; "
                         "./run mutation installs it (the [mutation] extra)")
    env = {**os.environ, "HYPOTHESIS_PROFILE": "mutation", "OMP_NUM_THREADS": "1",
           "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "TERM": "dumb"}
    return subprocess.run([str(command), *args], cwd=where, env=env, text=True,
                          stdout=log or subprocess.PIPE, stderr=subprocess.STDOUT)


def files_of(target: str) -> list[str]:
    """The files a target mutates."""
    if not target.endswith("/"):
        return [target]
    return sorted(str(f.relative_to(ROOT)) for f in (ROOT / target).glob("*.py"))


def results(where: Path, file: str) -> dict[str, str]:
    """Each mutant's status in ``file``, from mutmut's record of the run."""
    meta = where / "mutants" / (file + ".meta")
    if not meta.exists():
        return {}
    codes = json.loads(meta.read_text(encoding="utf-8"))["exit_code_by_key"]
    return {name: STATUS.get(code, "suspicious") for name, code in codes.items()}


def confirm(where: Path, target: str, file: str, name: str, deselect: list[str]) -> bool:
    """Whether the tests fail with mutant ``name`` written into the copy's source and run in a
    fresh process. mutmut switches mutants on inside functions at call time, in processes that
    imported knetapi before: code that runs at import (a rule table's ``rule(...)`` rows and the
    primitives they make) or whose result is cached at the first call then keeps its original
    behaviour. A survivor is checked again this way before it is reported: with the tests that
    mutmut saw call the mutated function, or all of the target's tests when none did."""
    listed = mutmut(where, "tests-for-mutant", name).stdout.splitlines()
    tests = [t for t in listed if "::" in t] or test_selection(target)
    source = where / file
    original = source.read_text(encoding="utf-8")
    try:
        applied = mutmut(where, "apply", name)
        if applied.returncode != 0 or source.read_text(encoding="utf-8") == original:
            print(f"  could not apply {name}: {applied.stdout.strip()[-300:]}")
            return False
        env = {**os.environ, "PYTHONPATH": str(where), "HYPOTHESIS_PROFILE": "mutation",
               "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
        env.pop("CI", None)
        try:
            done = subprocess.run([sys.executable, "-m", "pytest", "-x", "-q", "-p", "no:cacheprovider",
                                   *[f"--deselect={d}" for d in deselect], *tests],
                                  cwd=where, env=env, capture_output=True, text=True, timeout=1200)
        except subprocess.TimeoutExpired:
            return True
        return done.returncode != 0
    finally:
        source.write_text(original, encoding="utf-8")


def run_target(target: str, children: int, examples: int,
               deselect: list[str]) -> tuple[dict[str, dict[str, str]], dict[str, str], float]:
    """Each file's mutants with their status, the diffs of those not killed, and the minutes."""
    deselect = [*HARNESS_FAILURES, *deselect]
    where = scratch_copy(target, examples, deselect)
    start = time.monotonic()
    with open(where / "mutmut.log", "w", encoding="utf-8") as log:
        done = mutmut(where, "run", "--max-children", str(children), log=log)
    by_file = {file: results(where, file) for file in files_of(target)}
    if done.returncode != 0 or not any(by_file.values()):
        tail = (where / "mutmut.log").read_text(encoding="utf-8", errors="replace")[-3000:]
        print(f"mutmut failed on {target} (exit {done.returncode}); the end of {where / 'mutmut.log'}:\n{tail}")
    diffs = {}
    for file, statuses in by_file.items():
        for name, status in statuses.items():
            if status in ("survived", "no tests", "suspicious", "segfault") and \
                    confirm(where, target, file, name, deselect):
                statuses[name] = "killed in a fresh process"
        diffs.update((name, mutmut(where, "show", name).stdout) for name, status in statuses.items()
                     if not status.startswith("killed") and status not in ("timeout", "not checked"))
    return by_file, diffs, (time.monotonic() - start) / 60


def summary_line(file: str, statuses: dict[str, str], minutes: str) -> str:
    """A row of the report's table; a mutant that makes the tests time out counts as killed."""
    counts = {s: sum(v == s for v in statuses.values()) for s in set(statuses.values())}
    total = len(statuses)
    killed = counts.get("killed", 0) + counts.get("timeout", 0) + counts.get("killed in a fresh process", 0)
    others = ", ".join(f"{n} {s}" for s, n in sorted(counts.items())
                       if s not in ("killed", "timeout", "survived"))
    rate = f"{100 * killed / total:.0f}%" if total else "-"
    return (f"| `{file}` | {total} | {killed} | {counts.get('survived', 0)} | {others or '-'} | "
            f"{rate} | {minutes} |")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("targets", nargs="*", metavar="FILE", help="files to mutate (default: all)")
    parser.add_argument("--list", action="store_true", help="list the targets and their tests")
    parser.add_argument("--max-children", type=int, default=2, help="mutants run at once (default 2)")
    parser.add_argument("--examples", type=int, default=8,
                        help="hypothesis examples per property test (default 8; the ci profile has 25)")
    parser.add_argument("--deselect", action="append", default=[], metavar="NODEID",
                        help="leave out a test that fails without any mutant (mutmut needs a green run "
                             "to start), e.g. one that another change in progress breaks")
    args = parser.parse_args(argv)
    if args.list:
        for target in TARGETS:
            print(target, " ".join(test_selection(target)))
        return 0
    unknown = [t for t in args.targets if t not in TARGETS]
    if unknown:
        parser.error(f"not a target: {', '.join(unknown)}; --list lists them")
    BUILD.mkdir(parents=True, exist_ok=True)
    rows, details = [], []
    for target in args.targets or list(TARGETS):
        print(f"mutating {target} ...", flush=True)
        by_file, diffs, minutes = run_target(target, args.max_children, args.examples, args.deselect)
        for file, statuses in by_file.items():
            rows.append(summary_line(file, statuses, f"{minutes:.1f} min" if file == target else
                                     f"{minutes:.1f} min for {target}"))
            print(rows[-1], flush=True)
            details += [f"### {name}: {statuses[name]}\n\n```diff\n{diff.strip()}\n```\n"
                        for name, diff in diffs.items() if name in statuses]
    report = ["| file | mutants | killed (timeouts included) | survived | other | killed % | time |",
              "|---|---|---|---|---|---|---|",
              *rows, "", "## Mutants not killed", "", *details]
    (BUILD / "report.md").write_text("\n".join(report) + "\n", encoding="utf-8")
    print(f"\nwrote {BUILD / 'report.md'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
