"""Prompt templates: {{name}} from the namespace; JSON, code and Jinja's other syntax stay text."""

from __future__ import annotations

import os

import pytest

from workbench.core.errors import InvalidInputError
from workbench.core.templates import (
    TemplateError,
    UnsafeTemplateError,
    is_template,
    render,
    variables_of,
)


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


# -- templates cannot run code: they may come from data, not only from a person's cell --------


def notebook_function(x: object) -> object:
    return x


class Record:
    def __init__(self) -> None:
        self.name = "Ada"
        self._secret = "hidden"


NOTEBOOK: dict[str, object] = {
    "text": "abc",
    "items": [1, 2],
    "person": {"name": "Ada"},
    "record": Record(),
    "fmt": "{0.__class__.__mro__}",
    "os": os,
    "helper": notebook_function,
    "get_ipython": lambda: pytest.fail("the template called get_ipython()"),
}


@pytest.mark.parametrize(
    ("template", "names"),
    [
        # The escapes known from server-side template injection, each as a notebook has it.
        ("{{ cycler.__init__.__globals__.os.getpid() }}", "'__init__'"),
        ("{{ joiner.__init__.__globals__['os'].environ['OPENAI_API_KEY'] }}", "'__init__'"),
        ("{{ helper.__globals__['os'].environ }}", "'__globals__'"),
        ("{{ text.__class__.__mro__[1].__subclasses__() }}", "'__class__'"),
        ("{{ text['__class__'] }}", "'__class__'"),
        ("{{ text|attr('__class__') }}", "'__class__'"),
        ("{{ fmt.format(text) }}", "'__class__'"),  # str.format reaching attributes
        ("{{ self._TemplateReference__context }}", "'_TemplateReference__context'"),
        ("{{ record._secret }}", "'_secret'"),
        ("{{ os.getpid() }}", "'getpid' of 'module'"),  # a module's contents
        ("{{ os['environ'] }}", "'environ' of 'module'"),
        ("{{ get_ipython().system('id') }}", "calling <lambda>() is not allowed"),
        ("{{ helper(1) }}", "calling notebook_function() is not allowed"),
        ("{{ items.append(3) }}", "'append' of 'list'"),  # no changes to notebook objects
        ("{{ text * 10**10 }}", "a repetition of 30,000,000,000 items is too large"),
        ("{{ items * 10**9 }}", "a repetition of 2,000,000,000 items is too large"),
        ("{{ items[1] ** (10**9) }}", "2**1000000000 is too large a number"),
    ],
)
def test_templates_cannot_reach_past_their_variables(template: str, names: str) -> None:
    with pytest.raises(UnsafeTemplateError) as info:
        render(template, NOTEBOOK)
    message = str(info.value)
    assert message.startswith("In the prompt: refused: ") and names in message
    assert "compute anything else in Python" in message and "\n" not in message
    assert isinstance(info.value, TemplateError) and isinstance(info.value, InvalidInputError)
    assert NOTEBOOK["items"] == [1, 2]


@pytest.mark.parametrize(
    "template",
    [
        "{{ lipsum.__globals__['os'].environ['OPENAI_API_KEY'] }}",  # lipsum is not offered
        "{{ config.items() }}",  # Flask's globals are not here either
        "{{ request.application.__globals__ }}",
    ],
)
def test_the_usual_globals_of_web_templates_are_not_there(template: str) -> None:
    with pytest.raises(TemplateError, match="Undefined variable"):
        render(template, NOTEBOOK)


def test_a_huge_range_is_refused() -> None:
    with pytest.raises(TemplateError, match="Range too big"):
        render("{{ range(10**9)|list }}", NOTEBOOK)


def test_what_templates_do_still_works_in_the_sandbox() -> None:
    got = render(
        "{{ text.upper() }} {{ person.name }} {{ record.name }} {{ items|join('+') }} "
        "{{ pattern|format(text, 2) }} {{ items.index(2) }} {{ person.get('name') }} "
        "{{ text * 2 }} {{ items[1] ** 3 }} {{ range(3)|list }} {{ dict(a=1) }} "
        "{{ greeting.format(text) }}",
        {**NOTEBOOK, "pattern": "%s-%d", "greeting": "{}!"},
    )
    assert got == "ABC Ada Ada 1+2 abc-2 1 Ada abcabc 8 [0, 1, 2] {'a': 1} abc!"
    with pytest.raises(TemplateError, match="'dict object' has no attribute 'nope'"):
        render("{{ person.nope() }}", NOTEBOOK)  # undefined, not refused
