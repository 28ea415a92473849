"""Every ```python block in README.md and docs/**/*.md runs, and prints what the page says it prints.

The blocks of one file run in order in one namespace, as a reader would type them, and a failure
points at the file and line. A page that reads MNIST-format data (``kn.data.mnist()``) is skipped
where none is installed.

Expected output: a ```text block that follows a ```python block, with nothing but blank lines
between them, holds exactly what that python block prints (its standard output). ``...`` in it
matches any text, as in doctest (``ELLIPSIS``), for the parts that are not the point (a long error
message, the digits of a random draw); everything else must match character for character, but for
trailing blank lines. A ```text block anywhere else is plain text (a sample, a program's output).
A block whose output is only roughly known says so in a comment (``# about 0.7``) and has no
```text block.
"""

from __future__ import annotations

import contextlib
import doctest
import io
import re
from dataclasses import dataclass
from pathlib import Path

import pytest

import knetapi as kn

ROOT = Path(__file__).resolve().parents[1]
DOCUMENTS = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]
FENCE = re.compile(r"^```(\w*)\n(.*?)^```[ \t]*$", re.DOTALL | re.MULTILINE)


@dataclass(frozen=True)
class Block:
    """A ```python block: its first code line, its code, and the output its page promises (None
    where the page states none)."""

    line: int
    code: str
    expected: str | None


def python_blocks(text: str) -> list[Block]:
    """The ```python blocks of a markdown text, each with the ```text block right after it."""
    fences = list(FENCE.finditer(text))
    blocks = []
    for m, after in zip(fences, fences[1:] + [None]):
        if m.group(1) != "python":
            continue
        expected = None
        if after is not None and after.group(1) == "text" and not text[m.end():after.start()].strip():
            expected = after.group(2)
        blocks.append(Block(text.count("\n", 0, m.start(2)) + 1, m.group(2), expected))
    return blocks


def output_mismatch(expected: str, printed: str) -> str | None:
    """None when ``printed`` is the ``expected`` output (``...`` matching anything), else a report
    of the difference."""
    expected, printed = expected.rstrip("\n") + "\n", printed.rstrip("\n") + "\n"
    checker = doctest.OutputChecker()
    if checker.check_output(expected, printed, doctest.ELLIPSIS):
        return None
    example = doctest.Example("", expected)
    return checker.output_difference(example, printed, doctest.ELLIPSIS)


def run_page(path: Path, text: str) -> None:
    """Run the page's blocks in order in one namespace; AssertionError naming the block whose
    output differs from the page's."""
    namespace = {"__name__": f"docs:{path.name}"}
    for block in python_blocks(text):
        printed = io.StringIO()
        with contextlib.redirect_stdout(printed):
            # padding keeps the markdown file's line numbers in tracebacks
            exec(compile("\n" * (block.line - 1) + block.code, str(path), "exec"), namespace)
        if block.expected is not None:
            difference = output_mismatch(block.expected, printed.getvalue())
            assert difference is None, \
                f"{path.name}, the block at line {block.line} printed other than its ```text block:\n{difference}"


@pytest.mark.parametrize("path", DOCUMENTS, ids=lambda p: str(p.relative_to(ROOT)))
def test_python_blocks_run_and_print_what_the_page_shows(path):
    text = path.read_text(encoding="utf-8")
    blocks = python_blocks(text)
    assert blocks, f"{path.name} has no ```python block"
    if any("kn.data.mnist()" in block.code for block in blocks):
        try:
            kn.data.mnist()
        except FileNotFoundError as e:
            pytest.skip(f"{path.name} reads MNIST-format data, and there is none here: {e}")
    run_page(path, text)


# --- the convention itself ------------------------------------------------------------------------

PAGE = """Some prose.

```python
print("a")
print([1.0, 2.0])
```

```text
a
[1.0, 2.0]
```

```python
print("no promise")
```

More prose, then a sample that is not output:

```text
anything
```

```python
print("the", "value", 42)
```
```text
the ... 42
```
"""


def test_a_text_block_right_after_a_python_block_is_its_output():
    blocks = python_blocks(PAGE)
    assert [(b.line, b.expected) for b in blocks] == [
        (4, "a\n[1.0, 2.0]\n"), (14, None), (24, "the ... 42\n")]
    run_page(Path("page.md"), PAGE)


@pytest.mark.parametrize("wrong, promised", [
    ('print("b")', "a"),
    ('print("a"); print("b")', "a"),
    ('pass', "a"),
    ('print("a b")', "a  b"),
    ('print("32.0 48.0")', "32 48"),
])
def test_a_block_that_prints_other_than_its_page_says_fails(wrong, promised):
    page = f"```python\n{wrong}\n```\n\n```text\n{promised}\n```\n"
    with pytest.raises(AssertionError, match=r"page.md, the block at line 2 printed other than"):
        run_page(Path("page.md"), page)


def test_an_ellipsis_matches_any_text_and_nothing_else_is_loose():
    assert output_mismatch("add: ... used; ...\n", "add: a traced value was used; use its value\n") is None
    assert output_mismatch("[2. 4.]\n\n", "[2. 4.]\n") is None          # trailing blank lines
    assert output_mismatch("[2. 4.]", "[2.  4.]") is not None
    assert output_mismatch("12.0", "12") is not None
