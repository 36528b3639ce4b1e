"""Tools for chat calls: OpenAI tool schemas from Python functions, and the loop that runs them.

A function's signature, type hints and docstring are its schema, so the function a person
already wrote is the tool. :func:`run_tool_loop` calls what the model asks for and sends
the results back until the model answers in text.
"""

from __future__ import annotations

import enum
import inspect
import json
import re
import types
import typing
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal, Union, get_args, get_origin

from workbench.calls.results import ChatResponse

__all__ = [
    "ToolError",
    "ToolRun",
    "function_schema",
    "json_schema_of",
    "tool_specs",
    "run_tool_call",
    "run_tool_loop",
    "calls_of",
]

JSON = dict[str, Any]
MAX_ROUNDS = 8

_SIMPLE: dict[Any, JSON] = {
    str: {"type": "string"},
    bool: {"type": "boolean"},  # before int: bool is an int subclass
    int: {"type": "integer"},
    float: {"type": "number"},
    type(None): {"type": "null"},
    dict: {"type": "object"},
    list: {"type": "array"},
}
_ARRAYS = {list, tuple, set, frozenset, Sequence, typing.Sequence}
_OBJECTS = {dict, Mapping, typing.Mapping}


class ToolError(ValueError):
    """Tools that cannot be described to the model; the message says which and why."""


def _literal_schema(values: tuple[Any, ...]) -> JSON:
    schema: JSON = {"enum": list(values)}
    kinds = {type(v) for v in values}
    if len(kinds) == 1 and (kind := kinds.pop()) in _SIMPLE:
        schema = {**_SIMPLE[kind], **schema}
    return schema


def json_schema_of(hint: Any) -> JSON:
    """The JSON schema of a type hint; ``{}`` (anything) where there is no good answer."""
    if hint is inspect.Parameter.empty or hint is Any:
        return {}
    origin, args = get_origin(hint), get_args(hint)
    if origin is Literal:
        return _literal_schema(args)
    if origin is Union or origin is types.UnionType:
        options = [json_schema_of(a) for a in args if a is not type(None)]
        return options[0] if len(options) == 1 else {"anyOf": options}
    if origin is typing.Annotated:
        return json_schema_of(args[0])
    if origin in _ARRAYS:
        items = json_schema_of(args[0]) if args and args[0] is not Ellipsis else {}
        return {"type": "array", "items": items} if items else {"type": "array"}
    if origin in _OBJECTS:
        return {"type": "object"}
    if isinstance(hint, type) and issubclass(hint, enum.Enum):
        return _literal_schema(tuple(member.value for member in hint))
    if isinstance(hint, type) and hasattr(hint, "model_json_schema"):  # a pydantic model
        return dict(hint.model_json_schema())
    return dict(_SIMPLE.get(hint, {}))


_SECTION = re.compile(r"^(Args|Arguments|Parameters|Params)\s*:?$", re.IGNORECASE)
_OTHER_SECTION = re.compile(r"^(Returns?|Yields?|Raises?|Examples?|Notes?|See Also)\s*:?$", re.I)
_GOOGLE_PARAM = re.compile(r"^\*{0,2}(\w+)(?:\s*\([^)]*\))?:\s*(.*)$")  # name (type): text
_NUMPY_PARAM = re.compile(r"^(\w+)\s+:\s*.*$")  # name : type, text on the next lines
_SPHINX_PARAM = re.compile(r"^:param\s+(?:[\w\[\], .]+\s+)?(\w+)\s*:\s*(.*)$")


def _parse_docstring(doc: str) -> tuple[str, dict[str, str]]:
    """The description and per-parameter texts of a Google, NumPy or Sphinx docstring."""
    description: list[str] = []
    params: dict[str, str] = {}
    section, current = "description", None
    for line in doc.splitlines():
        text = line.strip()
        if match := _SPHINX_PARAM.match(text):
            current, params[match[1]] = match[1], match[2]
            section = "params"
        elif _SECTION.match(text):
            section, current = "params", None
        elif _OTHER_SECTION.match(text) or text.startswith(":"):
            section, current = "other", None
        elif section == "description":
            description.append(text)
        elif section == "params" and text and set(text) != {"-"}:
            if match := _GOOGLE_PARAM.match(text):
                current, params[match[1]] = match[1], match[2]
            elif match := _NUMPY_PARAM.match(text):
                current, params[match[1]] = match[1], ""
            elif current:
                params[current] = f"{params[current]} {text}".strip()
    return " ".join(" ".join(description).split()), params


def function_schema(func: Callable[..., Any]) -> JSON:
    """The OpenAI tool schema of a Python function, from its signature and docstring."""
    name = getattr(func, "__name__", None)
    if not name or not re.fullmatch(r"[A-Za-z0-9_-]{1,64}", name):
        raise ToolError(f"A tool needs a plain function name (letters, digits, _), got {name!r}")
    description, param_docs = _parse_docstring(inspect.getdoc(func) or "")
    try:
        hints = typing.get_type_hints(func, include_extras=True)
    except Exception:  # hints naming types that are not importable here: describe loosely
        hints = {}
    properties: JSON = {}
    required: list[str] = []
    for param in inspect.signature(func).parameters.values():
        if param.kind in (param.VAR_POSITIONAL, param.VAR_KEYWORD) or param.name == "self":
            continue
        schema = json_schema_of(hints.get(param.name, param.annotation))
        if param.name in param_docs:
            schema["description"] = param_docs[param.name]
        if param.default is param.empty:
            required.append(param.name)
        elif isinstance(param.default, (str, int, float, bool)):
            schema["default"] = param.default
        properties[param.name] = schema
    parameters: JSON = {"type": "object", "properties": properties, "required": required}
    function: JSON = {"name": name, "description": description} if description else {"name": name}
    function["parameters"] = parameters
    return {"type": "function", "function": function}


def _as_tool(item: Any, where: str) -> tuple[JSON, Callable[..., Any] | None]:
    if isinstance(item, Mapping):
        spec = dict(item)
        if spec.get("type") == "function" and isinstance(spec.get("function"), Mapping):
            tool_name = spec["function"].get("name")
            if not isinstance(tool_name, str) or not tool_name:
                # Sent as is, the server would refuse it, or the model could never call it.
                raise ToolError(
                    f"{where} has no function name: a tool schema needs "
                    '{"type": "function", "function": {"name": ..., "parameters": ...}}'
                )
            return spec, None
        if "name" in spec:  # the bare function object of a schema
            return {"type": "function", "function": spec}, None
        raise ToolError(
            f"{where} is a dict but not a tool schema: give "
            '{"type": "function", "function": {"name": ..., "parameters": ...}}'
        )
    if callable(item) and not isinstance(item, type):
        return function_schema(item), item
    raise ToolError(f"{where} is {type(item).__name__}: tools are Python functions or schemas")


def tool_specs(value: Any, name: str = "tools") -> tuple[list[JSON], dict[str, Callable[..., Any]]]:
    """The schemas to send for a list of functions and/or schemas, and the runnable ones."""
    items = list(value) if isinstance(value, (list, tuple)) else [value]
    if not items:
        raise ToolError(f"{name} is empty: give a list of functions or tool schemas")
    schemas: list[JSON] = []
    functions: dict[str, Callable[..., Any]] = {}
    for index, item in enumerate(items):
        schema, func = _as_tool(item, f"{name}[{index}]")
        tool_name = schema["function"].get("name")
        if any(s["function"].get("name") == tool_name for s in schemas):
            raise ToolError(f"Two tools in {name} are called {tool_name!r}: names must differ")
        schemas.append(schema)
        if func is not None:
            functions[tool_name] = func
    return schemas, functions


@dataclass(frozen=True)
class ToolRun:
    """One tool call the model made and what running it gave (``ran`` False: not run)."""

    call_id: str
    name: str
    arguments: str
    result: str | None = None
    ran: bool = False
    failed: bool = False


def _result_text(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, default=str)


def run_tool_call(call: Mapping[str, Any], functions: Mapping[str, Callable[..., Any]]) -> ToolRun:
    """Run one tool call. Failures become the result text, so the model can react to them."""
    function = call.get("function") or {}
    name = str(function.get("name") or "")
    raw = str(function.get("arguments") or "{}")
    call_id = str(call.get("id") or "")

    def failed(message: str) -> ToolRun:
        return ToolRun(call_id, name, raw, f"Error: {message}", ran=True, failed=True)

    if name not in functions:
        return failed(f"no Python function named {name!r} was given")
    try:
        arguments = json.loads(raw) if raw.strip() else {}
    except ValueError as exc:
        return failed(f"the arguments are not valid JSON ({exc})")
    if not isinstance(arguments, dict):
        return failed("the arguments are not a JSON object")
    try:
        value = functions[name](**arguments)
    except Exception as exc:  # the tool's own bug or bad input: tell the model, go on
        return failed(f"{type(exc).__name__}: {exc}")
    return ToolRun(call_id, name, raw, _result_text(value), ran=True)


def calls_of(response: ChatResponse) -> list[JSON]:
    """The response's tool calls, each with an id (some servers leave it out)."""
    calls = []
    for index, call in enumerate(response.tool_calls):
        call = dict(call)
        call["id"] = call.get("id") or f"call_{index}"
        calls.append(call)
    return calls


def run_tool_loop(
    send: Callable[[list[JSON]], ChatResponse],
    messages: list[JSON],
    functions: Mapping[str, Callable[..., Any]],
    *,
    max_rounds: int = MAX_ROUNDS,
) -> tuple[list[ChatResponse], list[ToolRun]]:
    """Send, run the tool calls, send their results back; until a text answer.

    ``messages`` grows by the assistant's tool calls and the tool results, so the caller
    has the whole exchange. Stops after ``max_rounds`` calls even if tools are still asked
    for; the last response then shows those calls, not run.
    """
    responses: list[ChatResponse] = []
    runs: list[ToolRun] = []
    while True:
        response = send(messages)
        responses.append(response)
        calls = calls_of(response)
        if not calls or len(responses) >= max_rounds:
            return responses, runs
        asked = {"role": "assistant", "content": response.text or None, "tool_calls": calls}
        messages.append(asked)
        for call in calls:
            run = run_tool_call(call, functions)
            runs.append(run)
            messages.append({"role": "tool", "tool_call_id": run.call_id, "content": run.result})
