"""Every Python and IPython block of README.md and docs/*.md runs as written, in order.

Each file gets one fresh IPython shell (tests/testing_shell.py) with ``%load_ext
workbench`` done, a fresh store and an empty working folder, and runs its blocks one
after the other as a reader pasting them into a notebook would: later blocks use what
earlier ones defined. Calls go to the real local model, hence ``integration``.

Fence info strings (the word after the backticks):

- ``python`` / ``ipython`` (a cell with magics): run; it must not raise.
- ``python raises`` / ``ipython raises``: must raise; the block's last line is a comment
  ``# ErrorType: text`` and the error must be of that type, carry that text, and be one
  line (the workbench's one-line errors).
- ``python notest``: shown, not run: it needs what a test machine does not have (a
  PostgreSQL server of your own, a real API key). Each such block says why in a comment.

Any other fence (``sh``, ``toml``, ``text``, ``sql``) is not Python and is not run.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import pytest
from testing_shell import open_shell

ROOT = Path(__file__).resolve().parent.parent
DOC_FILES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
RUN_LANGUAGES = {"python", "ipython"}
FENCE = re.compile(r"^```(\S*)(.*)$")


@dataclass(frozen=True)
class Block:
    path: Path
    line: int  # of the opening fence, 1-based
    language: str
    flags: frozenset[str]
    code: str

    @property
    def where(self) -> str:
        return f"{self.path.relative_to(ROOT)}:{self.line}"


def read_blocks(path: Path) -> list[Block]:
    """The fenced blocks of a Markdown file, in order (fences at the start of a line)."""
    blocks: list[Block] = []
    lines = path.read_text(encoding="utf-8").splitlines()
    index = 0
    while index < len(lines):
        opening = FENCE.match(lines[index].lstrip())
        if opening is None or not lines[index].lstrip().startswith("```"):
            index += 1
            continue
        start = index
        indent = len(lines[index]) - len(lines[index].lstrip())
        body: list[str] = []
        index += 1
        while index < len(lines) and not lines[index].lstrip().startswith("```"):
            body.append(lines[index][indent:])
            index += 1
        blocks.append(
            Block(path, start + 1, opening.group(1), frozenset(opening.group(2).split()),
                  "\n".join(body) + "\n")
        )
        index += 1  # the closing fence
    return blocks


def runnable(path: Path) -> list[Block]:
    return [
        b for b in read_blocks(path) if b.language in RUN_LANGUAGES and "notest" not in b.flags
    ]


def expected_error(block: Block) -> tuple[str, str]:
    last = block.code.strip().splitlines()[-1]
    match = re.match(r"#\s*(\w+):\s*(.+)$", last)
    assert match, f"{block.where}: a `raises` block ends with `# ErrorType: message`"
    return match.group(1), match.group(2).strip()


def test_the_collector_reads_fences_flags_and_indented_blocks(tmp_path: Path) -> None:
    page = tmp_path / "page.md"
    page.write_text(
        "text\n```python\nx = 1\n```\n\n```ipython raises\n%chat\n# UsageError: no\n```\n"
        "- item\n\n  ```python notest\n  y = 2\n  ```\n```sh\nls\n```\n"
    )
    blocks = read_blocks(page)
    assert [(b.line, b.language, sorted(b.flags)) for b in blocks] == [
        (2, "python", []), (6, "ipython", ["raises"]), (12, "python", ["notest"]), (15, "sh", []),
    ]
    assert blocks[2].code == "y = 2\n"
    assert [b.line for b in runnable(page)] == [2, 6]
    assert expected_error(blocks[1]) == ("UsageError", "no")


@pytest.mark.integration
@pytest.mark.timeout(600)
@pytest.mark.parametrize("path", DOC_FILES, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_example_runs_as_written(
    path: Path, in_tmp_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    blocks = runnable(path)
    if not blocks:
        pytest.skip(f"{path.name} has no Python example")
    monkeypatch.setenv("MPLBACKEND", "Agg")
    with open_shell() as shell:
        shell.run_cell("import workbench as wb")  # what each page says its examples assume
        for block in blocks:
            if "raises" in block.flags:
                kind, text = expected_error(block)
                with pytest.raises(Exception) as caught:
                    shell.run_cell(block.code)
                message = str(caught.value)
                assert type(caught.value).__name__ == kind, f"{block.where}: {caught.value!r}"
                assert text in message, f"{block.where}: {message!r}"
                assert "\n" not in message.strip(), f"{block.where}: not one line: {message!r}"
                continue
            try:
                shell.run_cell(block.code)
            except BaseException as exc:  # name the block that failed
                raise AssertionError(f"{block.where} failed: {exc!r}") from exc


def test_a_chat_cells_out_object_reads_the_logprobs_as_the_docs_say() -> None:
    """docs/calls.md: ``%%chat --logprobs 5 --out r`` then ``r.logprobs`` (it was an
    AttributeError: ``--out`` binds the display object, not the response)."""
    from types import SimpleNamespace

    from workbench.calls.logprobs import TokenLogprob
    from workbench.notebook.display import ChatDisplay

    tokens = [TokenLogprob("Blue", -0.1, (("Red", -2.3),))]
    outcome = SimpleNamespace(response=SimpleNamespace(logprobs=tokens))
    assert ChatDisplay(outcome).logprobs == tokens  # type: ignore[arg-type]


def _anchors(path: Path) -> set[str]:
    """GitHub's anchors for a Markdown file's headings (lower case, punctuation dropped)."""
    text = re.sub(r"```.*?```", "", path.read_text(encoding="utf-8"), flags=re.S)
    return {
        re.sub(r"[^\w\- ]", "", title.strip().lower()).replace(" ", "-")
        for title in re.findall(r"^#+ (.+)$", text, flags=re.M)
    }


@pytest.mark.parametrize("path", DOC_FILES, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_link_between_the_pages_arrives(path: Path) -> None:
    text = re.sub(r"```.*?```", "", path.read_text(encoding="utf-8"), flags=re.S)
    broken = []
    for target in re.findall(r"\]\(([^)\s]+)\)", text):
        if target.startswith(("http://", "https://")):
            continue
        file_part, _, anchor = target.partition("#")
        destination = (path.parent / file_part).resolve() if file_part else path
        missing_heading = (
            destination.exists() and destination.suffix == ".md" and bool(anchor)
            and anchor not in _anchors(destination)
        )
        if not destination.exists() or missing_heading:
            broken.append(target)
    assert not broken, f"{path.relative_to(ROOT)}: {broken}"
