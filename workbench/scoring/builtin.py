"""The scorers that need no model: text checks, JSON checks, length.

Yes/no scorers (contains, regex, is_json, ...) score a whole column of outputs in one list
comprehension with two fixed reasons: 100,000 runs must score in about the time of a bare
Python loop (see bench/scoring.py), so nothing is formatted per run on the way.
"""

from __future__ import annotations

import json
import re
import unicodedata
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from workbench.core.checks import whole
from workbench.core.errors import InvalidInputError
from workbench.core.tokens import count_tokens
from workbench.scoring.base import Item, Score, Scorer

__all__ = [
    "contains",
    "regex",
    "equals",
    "one_of",
    "is_json",
    "json_schema",
    "length",
    "YesNoScorer",
]


class YesNoScorer(Scorer):
    """A scorer that only reads the output and answers yes (1.0) or no (0.0)."""

    def __init__(
        self,
        name: str | None,
        definition: Mapping[str, Any],
        test: Callable[[str], bool],
        yes: str,
        no: str,
    ) -> None:
        super().__init__(name, definition)
        self.test = test
        self.yes, self.no = yes, no

    def score(self, item: Item) -> Score:
        ok = bool(self.test(item.output))
        return Score(1.0 if ok else 0.0, ok, self.yes if ok else self.no)

    def verdicts(self, outputs: Iterable[str]) -> list[bool]:
        """The batch path: one bool per output, no Item or Score built."""
        test = self.test
        return [bool(test(text)) for text in outputs]


def _text(name: str, value: Any) -> str:
    if not isinstance(value, str) or not value:
        raise InvalidInputError(f"{name} must be non-empty text, got {value!r}")
    return value


class _ContainsExpected(Scorer):
    kind = "contains"

    def __init__(self, case: bool, name: str | None) -> None:
        super().__init__(name, {"text": None, "case": case})
        self.case = case

    def score(self, item: Item) -> Score:
        if item.expected is None:
            return Score(None, None, "no expected answer: pass contains(text) or give the"
                         " dataset an expected column")
        needle = str(item.expected)
        found = needle in item.output if self.case else (
            needle.casefold() in item.output.casefold()
        )
        return Score(1.0 if found else 0.0, found,
                     f"{'contains' if found else 'does not contain'} {needle[:80]!r}")


def contains(text: str | None = None, case: bool = False, *, name: str | None = None) -> Scorer:
    """Yes when the output contains ``text`` (None: the run's expected answer), ignoring
    case unless ``case=True``."""
    if not isinstance(case, bool):
        raise InvalidInputError(f"contains(case=...) must be True or False, got {case!r}")
    if text is None:
        return _ContainsExpected(case, name)
    needle = _text("contains(text)", text)
    test: Callable[[str], bool]
    if case:
        test = lambda output: needle in output  # noqa: E731
    else:
        folded = needle.casefold()
        test = lambda output: folded in output.casefold()  # noqa: E731 - one call per run
    return YesNoScorer(
        name or "contains",
        {"text": needle, "case": case},
        test,
        f"contains {needle!r}",
        f"does not contain {needle!r}",
    )


def regex(pattern: str, *, flags: int = 0, name: str | None = None) -> Scorer:
    """Yes when ``pattern`` (Python ``re``) matches somewhere in the output."""
    _text("regex(pattern)", pattern)
    try:
        compiled = re.compile(pattern, flags)
    except re.error as exc:
        raise InvalidInputError(f"regex({pattern!r}) is not a valid pattern: {exc}") from None
    search = compiled.search
    return YesNoScorer(
        name or "regex",
        {"pattern": pattern, "flags": flags},
        lambda output: search(output) is not None,
        f"matches /{pattern}/",
        f"does not match /{pattern}/",
    )


# What a JSON text can start with after JSON's own whitespace (NaN and Infinity too, as
# json.loads takes them). Anything else cannot parse, and a failed json.loads costs an
# exception: testing the first character first made is_json ~3 x faster on prose.
_MAY_BE_JSON = re.compile(r"[ \t\n\r]*[-{\[\"0-9tfnNI]").match


def _is_json(output: str) -> bool:
    if _MAY_BE_JSON(output) is None:
        return False
    try:
        json.loads(output)
    except ValueError:
        return False
    return True


def is_json(*, name: str | None = None) -> Scorer:
    """Yes when the whole output parses as JSON."""
    return YesNoScorer(name or "is_json", {}, _is_json, "valid JSON", "not valid JSON")


def _normalized(text: Any) -> str:
    # Answers that differ only in case, accents' composition, spacing or a final full stop
    # are the same answer.
    folded = unicodedata.normalize("NFKC", str(text)).casefold()
    return " ".join(folded.split()).strip(" .!?;:")


class _Equals(Scorer):
    kind = "equals"

    def __init__(self, expected: Any, normalize: bool, name: str | None) -> None:
        super().__init__(name, {"expected": expected, "normalize": normalize})
        self.expected, self.normalize = expected, normalize

    def score(self, item: Item) -> Score:
        wanted = self.expected if self.expected is not None else item.expected
        if wanted is None:
            return Score(None, None, "no expected answer: pass equals(expected=...) or give"
                         " the dataset an expected column")
        same = (
            _normalized(item.output) == _normalized(wanted)
            if self.normalize
            else item.output == str(wanted)
        )
        return Score(1.0 if same else 0.0, same, "equals the expected answer" if same
                     else f"expected {str(wanted)[:80]!r}")


def equals(expected: Any = None, normalize: bool = True, *, name: str | None = None) -> Scorer:
    """Yes when the output equals ``expected`` (None: the run's expected answer from its
    dataset); ``normalize`` ignores case, spacing and a final full stop."""
    return _Equals(expected, normalize, name)


def one_of(options: Sequence[str], *, name: str | None = None) -> Scorer:
    """Yes when the output (normalized as by ``equals``) is one of ``options``."""
    if isinstance(options, str) or not isinstance(options, Sequence) or not options:
        raise InvalidInputError(f"one_of(options) must be a non-empty list, got {options!r}")
    allowed = frozenset(_normalized(option) for option in options)
    return YesNoScorer(
        name or "one_of",
        {"options": sorted(allowed)},
        lambda output: _normalized(output) in allowed,
        "one of the options",
        f"not one of {sorted(allowed)}",
    )


class _JsonSchema(Scorer):
    kind = "json_schema"

    def __init__(self, schema: Mapping[str, Any], name: str | None) -> None:
        import jsonschema  # type: ignore[import-untyped]  # no stubs shipped

        try:
            validator_class = jsonschema.validators.validator_for(schema)
            validator_class.check_schema(schema)
        except jsonschema.SchemaError as exc:
            raise InvalidInputError(f"json_schema(schema) is not a valid JSON schema: "
                                    f"{exc.message}") from None
        super().__init__(name, {"schema": schema})
        self.validator = validator_class(schema)

    def score(self, item: Item) -> Score:
        try:
            data = json.loads(item.output)
        except json.JSONDecodeError as exc:
            return Score(0.0, False, f"not valid JSON ({exc.msg} at {exc.pos})")
        error = next(iter(self.validator.iter_errors(data)), None)
        if error is None:
            return Score(1.0, True, "matches the schema")
        where = "/".join(str(p) for p in error.absolute_path) or "the top level"
        return Score(0.0, False, f"at {where}: {error.message}"[:300])


def json_schema(schema: Any, *, name: str | None = None) -> Scorer:
    """Yes when the output is JSON valid against ``schema`` (a dict, or a pydantic model
    class), checked by the ``jsonschema`` library."""
    if isinstance(schema, type) and hasattr(schema, "model_json_schema"):
        schema = schema.model_json_schema()
    if not isinstance(schema, Mapping):
        raise InvalidInputError(
            f"json_schema(schema) takes a dict or a pydantic model class, got {schema!r}"
        )
    return _JsonSchema(dict(schema), name)


class _Length(Scorer):
    kind = "length"

    def __init__(self, bounds: dict[str, int | None], name: str | None) -> None:
        super().__init__(name, bounds)
        self.bounds = bounds

    def score(self, item: Item) -> Score:
        words = len(item.output.split())
        problems = []
        low, high, most = (self.bounds[k] for k in ("min_words", "max_words", "max_tokens"))
        if low is not None and words < low:
            problems.append(f"{words} words < {low}")
        if high is not None and words > high:
            problems.append(f"{words} words > {high}")
        detail = f"{words} words"
        if most is not None:
            tokens = count_tokens(item.output, str(item.run.get("model") or "gpt-4o"))
            detail += f", {tokens} tokens"
            if tokens > most:
                problems.append(f"{tokens} tokens > {most}")
        ok = not problems
        return Score(1.0 if ok else 0.0, ok, detail if ok else "; ".join(problems))


def length(
    min_words: int | None = None,
    max_words: int | None = None,
    max_tokens: int | None = None,
    *,
    name: str | None = None,
) -> Scorer:
    """Yes when the output has between ``min_words`` and ``max_words`` words and at most
    ``max_tokens`` tokens (counted with the run's model's tokenizer)."""
    bounds = {"min_words": min_words, "max_words": max_words, "max_tokens": max_tokens}
    for key, value in bounds.items():
        if value is not None:
            whole(f"length({key}=...)", value, low=0)
    if all(v is None for v in bounds.values()):
        raise InvalidInputError("length() needs min_words, max_words or max_tokens")
    return _Length(bounds, name)
