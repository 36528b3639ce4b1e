"""Reading a judge's verdict honestly: a grade is taken only when the answer states one.

The structured answer (the JSON object the judge was asked for, kept to the schema by
servers that honour ``response_format``) is the verdict. In prose only an unambiguous
verdict counts: every verdict the text states must agree, and none may be negated
("would never give it a 5", "does not pass"), hedged ("3 or 4", "maybe 4") or quoted.
Anything else is *unreadable* (None, "unreadable verdict: ..."), never a guess and never
a pass. Text quoted from the output under review is removed before reading, so an output
that writes ``{"score": 5}`` cannot grade itself.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

__all__ = ["Verdict", "read_verdict", "UNREADABLE"]

UNREADABLE = "unreadable verdict"

_KEYS = ("score", "grade", "rating", "verdict", "passed", "result")
# Labels a verdict is stated under, in a few languages (French note, Spanish puntuación,
# German Bewertung/Note, Italian punteggio/voto, Portuguese nota, Russian оценка, Chinese
# 评分/分数, Japanese 評価/点数).
_LABELS = (
    r"score|grade|rating|verdict|result|final\s+(?:score|grade|verdict)|note|puntuaci[oó]n"
    r"|calificaci[oó]n|bewertung|punteggio|voto|nota|оценка|балл|评分|分数|得分|評価|点数"
)
_PASS = {"pass", "passed", "passes", "yes", "true", "correct", "acceptable"}
_FAIL = {"fail", "failed", "fails", "no", "false", "incorrect", "unacceptable"}
# Verdict words read in prose (yes/no, true/false, correct... only as a labelled or lone
# answer: "no errors" or "true to the source" are not verdicts).
_PROSE_WORDS = r"pass(?:es|ed)?|fail(?:s|ed)?"
_NEGATIONS = re.compile(
    r"\b(?:not|never|no|cannot|can't|cant|won't|wouldn't|shouldn't|doesn't|don't|didn't"
    r"|isn't|hardly|neither|nor|without|fails?\s+to|unable\s+to)\b|n't\b",
    re.IGNORECASE,
)
_HEDGES = re.compile(
    r"\b(?:maybe|perhaps|possibly|probably|might|could\s+be|unsure|not\s+sure|hard\s+to\s+say"
    r"|somewhere|between|either|roughly|approximately|borderline|leaning)\b",
    re.IGNORECASE,
)
_NUMBER = r"[+-]?\d+(?:[.,]\d+)?"


@dataclass(frozen=True)
class Verdict:
    """A reading of one judge answer: the grade (None: unreadable) and the reason."""

    value: float | None
    reason: str


def read_verdict(
    text: str, scale: tuple[int, int] | None, *, quoted: tuple[str, ...] = ()
) -> Verdict:
    """The grade stated in ``text`` on ``scale`` ((low, high), or None for pass/fail), or
    an unreadable verdict saying why. ``quoted``: texts under review (the output, the
    reference), removed first so that they can never become the grade."""
    original = text or ""
    whole = _whole_json(original)
    if whole is not None:  # the structured answer: it alone is the verdict
        return _from_object(whole, scale, original)
    text = _without_quoted(original, quoted)
    truncated = _truncated_json(text, scale)
    if truncated is not None:
        return truncated
    return _from_prose(text, scale, original)


def _unreadable(why: str, text: str) -> Verdict:
    shown = " ".join(text.split())[:120]
    return Verdict(None, f"{UNREADABLE}: {why}: {shown!r}")


def _without_quoted(text: str, quoted: tuple[str, ...]) -> str:
    """``text`` without what it quotes of ``quoted``: each whole, each line and each JSON
    object in them (a judge quotes a part more often than the whole)."""
    parts = set()
    for whole in quoted:
        parts.add(whole)
        parts.update(whole.splitlines())
        parts.update(_json_spans(whole))
    for part in sorted({p.strip() for p in parts if len(p.strip()) >= 3}, key=len, reverse=True):
        text = text.replace(part, " ")
    return text


def _json_spans(text: str) -> list[str]:
    spans, decoder, i = [], json.JSONDecoder(), 0
    while (start := text.find("{", i)) != -1:
        try:
            _, end = decoder.raw_decode(text, start)
        except ValueError:
            i = start + 1
            continue
        spans.append(text[start:end])
        i = end
    return spans


def _whole_json(text: str) -> dict[str, Any] | None:
    stripped = text.strip()
    fence = re.fullmatch(r"```[a-zA-Z]*\s*(.*?)\s*```", stripped, re.DOTALL)
    if fence:
        stripped = fence.group(1)
    try:
        data = json.loads(stripped)
    except ValueError:
        return None
    return data if isinstance(data, dict) else None


def _key_of(data: dict[str, Any]) -> str | None:
    lowered = {str(k).lower(): k for k in data}
    return next((lowered[k] for k in _KEYS if k in lowered), None)


def _from_object(data: dict[str, Any], scale: tuple[int, int] | None, text: str) -> Verdict:
    key = _key_of(data)
    reason = str(data.get("reason") or data.get("explanation") or "").strip()
    if key is None:
        return _unreadable("the JSON answer has no score", text)
    grade = _grade(data[key], scale)
    if grade is None:
        return _unreadable(f"{data[key]!r} is not on the scale {_scale_text(scale)}", text)
    return Verdict(grade, reason)


def _truncated_json(text: str, scale: tuple[int, int] | None) -> Verdict | None:
    """An answer cut off by max_tokens after its first key (the schema puts the score
    first): ``{"score": 5, "reason": "The answer is corr``."""
    match = re.match(
        r'\s*(?:```[a-zA-Z]*\s*)?\{\s*"(score|grade|verdict|rating)"\s*:\s*'
        r'("?)([^",}\s]+)\2\s*(?:,|$)',
        text,
        re.IGNORECASE,
    )
    if not match or _json_objects(text):
        return None
    grade = _grade(match.group(3), scale)
    if grade is None:
        return None
    reason = re.search(r'"reason"\s*:\s*"([^"]*)', text)
    return Verdict(grade, (reason.group(1) if reason else "").strip())


def _json_objects(text: str) -> list[dict[str, Any]]:
    """The JSON objects inside a text, each as written (nested ones inside theirs)."""
    found, decoder, i = [], json.JSONDecoder(), 0
    while (start := text.find("{", i)) != -1:
        try:
            data, end = decoder.raw_decode(text, start)
        except ValueError:
            i = start + 1
            continue
        if isinstance(data, dict):
            found.append(data)
        i = end
    return found


def _strip_json(text: str) -> str:
    out, decoder, i = [], json.JSONDecoder(), 0
    while (start := text.find("{", i)) != -1:
        try:
            _, end = decoder.raw_decode(text, start)
        except ValueError:
            out.append(text[i : start + 1])
            i = start + 1
            continue
        out.append(text[i:start] + " . ")
        i = end
    out.append(text[i:])
    return "".join(out)


def _strip_quotes(text: str) -> str:
    """Prose without what it quotes: "...", “...”, «...», `...` and > lines."""
    text = re.sub(r"^\s*>.*$", " ", text, flags=re.MULTILINE)
    return re.sub(r'"[^"\n]*"|“[^”\n]*”|«[^»\n]*»|`[^`\n]*`', ' "" ', text)


def _clean(text: str) -> str:
    """Markdown emphasis and headings out of the way: **Score:** 4 reads as Score: 4."""
    text = re.sub(r"[*_#]+", " ", text)
    return text.replace("：", ":")  # the full-width colon of CJK text


def _from_prose(text: str, scale: tuple[int, int] | None, original: str) -> Verdict:
    # Quoted spans that may hold JSON go first: `{"score": 5}` and "> ..." lines.
    text = re.sub(r"^\s*>.*$", " ", text, flags=re.MULTILINE)
    text = re.sub(r"(?<!`)`[^`\n]+`(?!`)", ' "" ', text)
    objects = [o for o in _json_objects(text) if _key_of(o) is not None]
    prose = _clean(_strip_quotes(_strip_json(text)))
    found: list[tuple[float, str]] = []  # (grade, the sentence that states it)
    for data in objects:
        key = _key_of(data)
        grade = _grade(data[key], scale) if key is not None else None
        if grade is None:
            return _unreadable("a JSON score off the scale", original)
        found.append((grade, ""))
    for sentence in _sentences(prose):
        for raw, at in _stated(sentence, scale):
            grade = _grade(raw, scale)
            if grade is None:
                return _unreadable(f"{raw!r} is not on the scale {_scale_text(scale)}",
                                   original)
            # A negation in the few words before the verdict: "would never give it a 5",
            # "does not pass", "fails to pass".
            before = " ".join(sentence[:at].split()[-6:])
            if _NEGATIONS.search(before):
                return _unreadable("a negated verdict", original)
            if _HEDGES.search(sentence) or re.search(
                rf"{_NUMBER}\s*(?:or|to|–|-)\s*{_NUMBER}\b", sentence
            ):
                return _unreadable("a hedged verdict", original)
            found.append((grade, sentence))
    if not found:
        return _unreadable("no verdict stated", original)
    grades = {grade for grade, _ in found}
    if len(grades) > 1:
        shown = ", ".join(_format(g) for g in sorted(grades))
        return _unreadable(f"conflicting verdicts ({shown})", original)
    reason = next((str(o.get("reason") or "") for o in objects if o.get("reason")), "")
    return Verdict(found[-1][0], (reason or _reason_in(text)).strip()[:300])


def _sentences(text: str) -> list[str]:
    parts = re.split(r"(?<=[.!?;。！？])\s+|\n+", text)
    return [p.strip() for p in parts if p.strip()]


def _stated(sentence: str, scale: tuple[int, int] | None) -> list[tuple[str, int]]:
    """The verdicts a sentence states: (raw text, where it starts) of each."""
    labelled = [
        (m.group(1), m.start(1))
        for m in re.finditer(
            rf"(?:{_LABELS})\s*(?:is|of|=|:|-|→)?\s*:?\s*({_NUMBER}|[A-Za-z]+)",
            sentence,
            re.IGNORECASE,
        )
    ]
    if scale is not None:
        stated = [(raw, at) for raw, at in labelled if re.fullmatch(_NUMBER, raw)]
        out_of = rf"({_NUMBER})\s*(?:/|out\s+of|of|sur|von|de|su|из)\s*{scale[1]}\b"
        for m in re.finditer(out_of, sentence, re.IGNORECASE):
            if all(at != m.start(1) for _, at in stated):  # "Score: 4/5" is one verdict
                stated.append((m.group(1), m.start(1)))
        lone = re.fullmatch(rf"\W*({_NUMBER})\W*", sentence)
        if lone and not stated:
            stated.append((lone.group(1), lone.start(1)))
        return stated
    verdicts = _PASS | _FAIL
    stated = [(raw, at) for raw, at in labelled if raw.lower() in verdicts]
    first = re.match(r"\W*([A-Za-z]+)\b(?=\W*(?:$|[,.!:;—-]))", sentence)
    if first and first.group(1).lower() in verdicts and not stated:
        stated.append((first.group(1), first.start(1)))  # "Yes." / "No, it is wrong."
    for m in re.finditer(rf"\b({_PROSE_WORDS})\b", sentence, re.IGNORECASE):
        if all(at != m.start(1) for _, at in stated):
            stated.append((m.group(1), m.start(1)))
    return stated


def _grade(raw: Any, scale: tuple[int, int] | None) -> float | None:
    if scale is None:
        if isinstance(raw, bool):
            return 1.0 if raw else 0.0
        word = str(raw).strip().lower()
        if word in _PASS:
            return 1.0
        if word in _FAIL:
            return 0.0
        return None
    if isinstance(raw, bool):
        return None
    if isinstance(raw, str):
        raw = raw.strip().replace(",", ".")
    try:
        value = float(raw)  # float() reads every script's digits: "٤" is 4.0
    except (TypeError, ValueError):
        return None
    low, high = scale
    return value if low <= value <= high else None


def _scale_text(scale: tuple[int, int] | None) -> str:
    return "pass/fail" if scale is None else f"{scale[0]}-{scale[1]}"


def _format(grade: float) -> str:
    return f"{grade:g}"


def _reason_in(text: str) -> str:
    match = re.search(r"""["']?reason["']?\s*[:=]\s*["']?([^"'\n}]*)""", text, re.IGNORECASE)
    return (match.group(1) if match else " ".join(text.split()))[:300]
