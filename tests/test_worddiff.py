"""The word diff's markup as a reopened notebook shows it: JupyterLab sanitizes the HTML of
a notebook it does not trust, dropping <style> blocks and any colour in a style attribute
that is not hex, rgb, rgba or a name (so no var(), no color-mix())."""

from __future__ import annotations

import html
import re

from workbench.core.worddiff import diff_html
from workbench.optimize.result import TextDiff

BEFORE = "Answer briefly."
AFTER = "Following the instructions, I provide a task description."
SANITIZER_COLOURS = re.compile(r"#[0-9a-f]+|rgba?\([\d\s.,]+\)|[a-z]+", re.I)


def sanitized_text(markup: str) -> str:
    """The words a reader sees with no stylesheet: <style> dropped, then every tag."""
    markup = re.sub(r"<style>.*?</style>", "", markup, flags=re.S)
    return html.unescape(re.sub(r"<[^>]+>", "", markup))


def test_a_replaced_phrase_and_its_replacement_do_not_run_together() -> None:
    shown = sanitized_text(TextDiff(BEFORE, AFTER)._repr_html_())
    # It read "Answer briefly.Following the instructions" in a reopened notebook.
    assert re.sub(r"\s+", " ", shown).startswith("Answer briefly Following the instructions")
    assert sanitized_text(diff_html("The sun set.", "The moon rose.")) == (
        "The sun set moon rose.")


def test_changes_carry_their_look_in_styles_a_sanitizer_keeps() -> None:
    markup = TextDiff(BEFORE, AFTER)._repr_html_()
    assert "<style>" not in markup  # dropped from an untrusted notebook: nothing relies on it
    marks = re.findall(r"<(del|ins) style='([^']*)'>", markup)
    assert {tag for tag, _ in marks} == {"del", "ins"}
    for tag, style in marks:
        rules = dict(rule.split(":", 1) for rule in style.split(";"))
        rules = {name.strip(): value.strip() for name, value in rules.items()}
        assert SANITIZER_COLOURS.fullmatch(rules["background-color"]), style
        assert rules["background-color"].startswith("rgba(")  # a tint: either theme's text
        assert rules["text-decoration"] == ("line-through" if tag == "del" else "underline")


def test_deleted_words_keep_the_spaces_around_them_they_had() -> None:
    # sweeps.ipynb's compare read "The seaıs" (the deleted "is" against "sea").
    assert sanitized_text(diff_html("The sea is a vast realm", "The sea: a vast realm")) == (
        "The sea is : a vast realm")
    assert sanitized_text(diff_html("x y z", "x z")) == "x y z"
    assert sanitized_text(diff_html("Be brief, always.", "Be brief.")) == "Be brief, always."
