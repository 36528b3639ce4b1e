"""The word diff of two texts, one implementation for every view that marks changes:
``wb.compare`` (an output against its baseline's) and ``wb.optimize``'s result (the best
prompt against the starting one). Words, spaces and punctuation are each one token;
diff-match-patch's semantic clean-up grows changes to whole phrases."""

from __future__ import annotations

import html
import re
from difflib import SequenceMatcher

__all__ = ["DIFF_CSS", "diff_html", "similarity", "word_diff"]

_WORDS = re.compile(r"\w+|\s+|[^\w\s]+")  # words, spaces and punctuation each a token

# <ins>/<del> as a diff view shows them, in the theme's colours (light and dark alike);
# scoped by a class the caller puts around the marked text.
DIFF_CSS = """
.{scope} ins {{text-decoration: none; border-radius: 2px; padding: 0 .15em; margin: 0 .1em;
  background: color-mix(in srgb, var(--jp-success-color1) 28%, transparent)}}
.{scope} del {{text-decoration: line-through; border-radius: 2px; padding: 0 .15em;
  margin: 0 .1em; color: var(--jp-content-font-color2);
  background: color-mix(in srgb, var(--jp-error-color1) 22%, transparent)}}
"""


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
    from it in <del>; changes of spacing alone are not marked."""
    marked = []
    for op, chunk in word_diff(base, text):
        if op == 0 or not chunk.strip():
            if op != -1:  # equal text, or spacing added: shown as it is
                marked.append(html.escape(chunk))
        elif op == -1:
            marked.append(f"<del>{html.escape(chunk.strip())}</del>")
        else:
            lead = chunk[: len(chunk) - len(chunk.lstrip())]
            trail = chunk[len(chunk.rstrip()):]
            marked.append(f"{html.escape(lead)}<ins>{html.escape(chunk.strip())}</ins>"
                          f"{html.escape(trail)}")
    return "".join(marked)
