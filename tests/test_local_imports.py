"""Every import inside a function says why it is there (the developers' guide): a comment
on its line, or on the line above it (or above the run of imports it belongs to), usually
"deferred: keeps import workbench light". An import that needs no reason belongs at the
top of its module."""

from __future__ import annotations

import ast
import io
import tokenize
from pathlib import Path

import workbench

PACKAGE = Path(workbench.__file__).parent


def _type_checking(node: ast.AST) -> bool:
    test = getattr(node, "test", None)
    return isinstance(node, ast.If) and (
        (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING")
        or (isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")
    )


def unexplained_local_imports(source: str) -> list[int]:
    """The first lines of the function-local imports of ``source`` with no comment."""
    commented = {token.start[0] for token in tokenize.generate_tokens(
        io.StringIO(source).readline) if token.type == tokenize.COMMENT}
    found: list[int] = []

    def visit(node: ast.AST, in_function: bool) -> None:
        for field in ("body", "orelse", "finalbody", "handlers", "cases"):
            block = getattr(node, field, None)
            if not isinstance(block, list):
                continue
            for index, child in enumerate(block):
                if _type_checking(child):
                    continue
                if in_function and isinstance(child, (ast.Import, ast.ImportFrom)):
                    last = child.end_lineno or child.lineno
                    start = index  # the run of imports this one closes
                    while start and isinstance(block[start - 1], (ast.Import, ast.ImportFrom)) \
                            and block[start - 1].end_lineno == block[start].lineno - 1:
                        start -= 1
                    lines = {*range(child.lineno - 1, last + 1), block[start].lineno - 1}
                    if not lines & commented:
                        found.append(child.lineno)
                inner = in_function or isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef))
                visit(child, inner)

    visit(ast.parse(source), False)
    return found


def test_the_rule_flags_an_unexplained_local_import_and_accepts_a_reason() -> None:
    source = (
        "import os\n"
        "def f():\n"
        "    import json\n"
        "    return json\n"
        "def g():\n"
        "    # deferred: keeps import workbench light\n"
        "    import pandas\n"
        "    import numpy\n"
        "    from typing import TYPE_CHECKING\n"
        "    if TYPE_CHECKING:\n"
        "        import decimal\n"
        "    import csv  # deferred: why\n"
        "    x = 1\n"
        "    import re\n"
        "    return pandas, numpy, csv, re, x\n"
    )
    assert unexplained_local_imports(source) == [3, 14]


def test_every_function_local_import_says_why() -> None:
    missing = [
        f"{path.relative_to(PACKAGE.parent)}:{line}"
        for path in sorted(PACKAGE.rglob("*.py"))
        for line in unexplained_local_imports(path.read_text())
    ]
    assert missing == [], (
        f"{len(missing)} function-local imports without a comment saying why (move them to "
        "the top, or comment them): " + ", ".join(missing[:20])
    )
