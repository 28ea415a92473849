"""Every ```python block in README.md and docs/**/*.md runs: the blocks of one file run in order in
one namespace, as a reader would type them, and a failure points at the file and line. A page that
reads MNIST-format data (``kn.data.mnist()``) is skipped where none is installed."""

import re
from pathlib import Path

import pytest

import knetapi as kn

ROOT = Path(__file__).resolve().parents[1]
DOCUMENTS = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]
BLOCK = re.compile(r"^```python\n(.*?)^```", re.DOTALL | re.MULTILINE)


def python_blocks(path: Path) -> list[tuple[int, str]]:
    """``(line, code)`` for each ```python block of ``path``, ``line`` being its first code line."""
    text = path.read_text(encoding="utf-8")
    return [(text.count("\n", 0, m.start(1)) + 1, m.group(1)) for m in BLOCK.finditer(text)]


@pytest.mark.parametrize("path", DOCUMENTS, ids=lambda p: str(p.relative_to(ROOT)))
def test_python_blocks_run(path):
    blocks = python_blocks(path)
    assert blocks, f"{path.name} has no ```python block"
    if any("kn.data.mnist()" in code for _, code in blocks):
        try:
            kn.data.mnist()
        except FileNotFoundError as e:
            pytest.skip(f"{path.name} reads MNIST-format data, and there is none here: {e}")
    namespace = {"__name__": f"docs:{path.name}"}
    for line, code in blocks:
        # padding keeps the markdown file's line numbers in tracebacks
        exec(compile("\n" * (line - 1) + code, str(path), "exec"), namespace)
