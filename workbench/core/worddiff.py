"""The word diff of two texts, one implementation for every view that marks changes:
``wb.compare`` (an output against its baseline's) and ``wb.optimize``'s result (the best
prompt against the starting one). Words, spaces and punctuation are each one token;
diff-match-patch's semantic clean-up grows changes to whole phrases."""

from __future__ import annotations

import html
import re
from difflib import SequenceMatcher

__all__ = ["DELETED_STYLE", "INSERTED_STYLE", "diff_html", "similarity", "word_diff"]

_WORDS = re.compile(r"\w+|\s+|[^\w\s]+")  # words, spaces and punctuation each a token

# Inline styles, not a <style> block: JupyterLab sanitizes the HTML of a notebook it does
# not trust (any notebook opened from disk) and drops <style>, then keeps only colours it
# can read in a style attribute (hex, rgb, rgba, names: no var(), no color-mix()). So the
# tints are JupyterLab's success and error colours (green/red 500) as rgba: see-through,
# the text keeps the theme's colour in light and dark alike; line-through and underline
# still say which is which without colour.
DELETED_STYLE = "background-color: rgba(244, 67, 54, 0.22); text-decoration: line-through"
INSERTED_STYLE = "background-color: rgba(76, 175, 80, 0.28); text-decoration: underline"


def similarity(base: str, text: str) -> float:
    """The share of words the two texts have in common (0 to 1, by difflib's ratio)."""
    # Spaces shared by any two texts do not count.
    old, new = ([w for w in _WORDS.findall(t) if not w.isspace()] for t in (base, text))
    return SequenceMatcher(None, old, new, autojunk=False).ratio()


def word_diff(base: str, text: str) -> list[tuple[int, str]]:
    """diff-match-patch's diff of the two texts word by word (each word, space and mark
    encoded as one character, as its line mode does with lines), with its semantic
    clean-up: changes grow to whole phrases instead of scattered shared words. Each item
    is (-1 removed, 0 kept, 1 added; the text)."""
    from diff_match_patch import diff_match_patch  # type: ignore[import-untyped]

    codes: dict[str, str] = {}
    words: list[str] = []

    def encode(value: str) -> str:
        out = []
        for word in _WORDS.findall(value):
            if word not in codes:
                codes[word] = chr(0xE000 + len(words)) if len(words) < 6400 else chr(
                    0x10000 + len(words))
                words.append(word)
            out.append(codes[word])
        return "".join(out)

    engine = diff_match_patch()
    engine.Diff_Timeout = 1.0
    diffs = engine.diff_main(encode(base), encode(text), False)
    engine.diff_cleanupSemantic(diffs)
    decode = {code: word for word, code in codes.items()}
    return [(op, "".join(decode[c] for c in chunk)) for op, chunk in diffs]


def diff_html(base: str, text: str) -> str:
    """``text`` as HTML, with words not in ``base`` in <ins> and words of ``base`` missing
    from it in <del>; changes of spacing alone are not marked. Deleted words are kept
    apart from their neighbours by a space, as they were in ``base`` ("The sea is a" to
    "The sea: a" shows "The sea <del>is</del> <ins>:</ins> a", not "sea<del>is</del>")."""
    marked: list[str] = []
    spaced = True  # the text shown so far ends in a space (or nothing)
    touching = 0  # the change (-1, 1) the text shown so far ends with; 0 if none
    owed = False  # a deletion ended with a space: the next words must not touch it
    for op, chunk in word_diff(base, text):
        if op != -1 and owed and not chunk[:1].isspace():
            marked.append(" ")
            spaced, touching = True, 0
        owed = False
        if op == 0 or not chunk.strip():
            if op != -1:  # equal text, or spacing added: shown as it is
                marked.append(html.escape(chunk))
                spaced, touching = chunk[-1:].isspace(), 0
            continue
        lead = chunk[: len(chunk) - len(chunk.lstrip())]
        trail = chunk[len(chunk.rstrip()):]
        if op == -1:  # its own spaces are not in the text: one, where words would touch
            lead = " " if lead and not spaced else ""
            owed, trail = bool(trail), ""
        if touching == -op and not lead:  # a replacement: the two phrases must not touch
            lead = " "
        tag, style = ("del", DELETED_STYLE) if op == -1 else ("ins", INSERTED_STYLE)
        marked.append(f"{html.escape(lead)}<{tag} style='{style}'>"
                      f"{html.escape(chunk.strip())}</{tag}>{html.escape(trail)}")
        spaced, touching = bool(trail), 0 if trail else op
    return "".join(marked)
