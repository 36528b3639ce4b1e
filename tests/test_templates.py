"""Prompt templates: {{name}} from the namespace; JSON, code and Jinja's other syntax stay text."""

from __future__ import annotations

import pytest

from workbench.templates import TemplateError, is_template, render, variables_of


def test_names_are_filled_in() -> None:
    namespace = {"topic": "rain", "n": 3, "items": ["a", "b"], "person": {"name": "Ada"}}
    template = "Write {{n}} haiku about {{ topic }} for {{person.name}}: {{ items|join(', ') }}"
    assert render(template, namespace) == "Write 3 haiku about rain for Ada: a, b"


@pytest.mark.parametrize(
    "text",
    [
        '{"a": {"b": 1}}',  # JSON, with the closing }} of a nested object
        '{{"a": 1}}',  # JSON inside doubled braces
        "int grid[2][2] = {{1, 2}, {3, 4}};",  # C initialisers
        "{% raw %} {% for x in y %} {% endfor %}",  # Jinja/Django block syntax as text
        "{# a comment #} and ${#array[@]} in bash",
        "f'{x}' and {} and {{}} and {{ }} and {{{",
        "trailing newline kept\n",
    ],
)
def test_code_and_json_come_back_unchanged(text: str) -> None:
    assert render(text, {}) == text


def test_code_and_names_mix() -> None:
    template = 'Fill {"name": "{{name}}", "tags": {{tags}}} as JSON; {% not a block %}'
    assert render(template, {"name": "Ada", "tags": ["x"]}) == (
        "Fill {\"name\": \"Ada\", \"tags\": ['x']} as JSON; {% not a block %}"
    )


def test_an_undefined_name_is_named() -> None:
    with pytest.raises(TemplateError) as info:
        render("About {{topic}} and {{ place }} and {{topic}}.", {"other": 1})
    assert info.value.missing == ("place", "topic")
    assert str(info.value).startswith("Undefined variables place, topic in the prompt: define")


def test_what_names_the_template() -> None:
    with pytest.raises(TemplateError, match="Undefined variable who in the --system"):
        render("You are {{who}}.", {}, what="--system")


def test_a_missing_attribute_or_a_failing_expression_is_a_template_error() -> None:
    with pytest.raises(TemplateError, match="In the prompt: 'dict object' has no attribute 'age'"):
        render("{{ person.age }}", {"person": {}})
    with pytest.raises(TemplateError, match="ZeroDivisionError"):
        render("{{ n / 0 }}", {"n": 1})


def test_broken_syntax_says_where_and_how_to_write_literal_braces() -> None:
    with pytest.raises(TemplateError) as info:
        render("line one\n{{ a b }}", {"a": 1, "b": 2})
    assert "line 2" in str(info.value) and "{{ '{{' }}" in str(info.value)


def test_literal_double_braces_by_jinja_escape() -> None:
    assert render("{{ '{{' }}name}}", {}) == "{{name}}"


def test_variables_of_and_is_template() -> None:
    assert variables_of("{{b}} {{ a.x }} {{a}} {{ 'lit' }} {\"j\": 1}") == ["a", "b"]
    assert variables_of('{"j": {"k": 1}}') == []
    assert is_template("Hi {{ name }}") and not is_template('{{"a": 1}}')
