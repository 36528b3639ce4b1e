"""What a ``%%chat`` or ``%%embed`` cell does once its options are read, without IPython.

Renders the templates over the notebook's namespace, builds the messages (thread history,
images, tools, response format), checks the model name, and calls the same session as
``wb.chat``/``wb.embed``, so every call the cell makes is one row of the table.
"""

from __future__ import annotations

import base64
import difflib
import json
import mimetypes
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any

from workbench.api.jsonmode import schema_name
from workbench.api.keycheck import warn_if_key
from workbench.api.local import CHAT_MODEL_ALIAS, EMBEDDING_MODEL_ALIAS
from workbench.calls.embedding import embed
from workbench.calls.session import Message, Session, get_session, one_line
from workbench.calls.tools import ToolRun, calls_of, run_tool_loop, tool_specs
from workbench.core.errors import APIStatusError, InvalidInputError
from workbench.core.templates import render, variables_of
from workbench.notebook.options import ChatRequest, EmbedRequest, OptionError, closest_name
from workbench.scoring.base import as_scorers
from workbench.scoring.cell import score_cell

if TYPE_CHECKING:
    from workbench.api.providers import Provider
    from workbench.calls.results import ChatResponse, EmbedResponse

__all__ = [
    "ChatOutcome",
    "run_chat",
    "run_embed",
    "check_model",
    "image_url",
    "response_format_for",
    "response_format_of",
]

Parser = Callable[[str], Any]
_IMAGE_HINT = "give a readable .png/.jpg/.gif/.webp file or an http(s) URL"


@dataclass
class ChatOutcome:
    """Everything a ``%%chat`` cell produced: the answer, each call made, tools run."""

    responses: list[ChatResponse]
    tool_runs: list[ToolRun] = field(default_factory=list)
    json: bool = False  # the answer was asked for as JSON
    parsed: Any = None
    parse_error: str | None = None
    scores: list[str] = field(default_factory=list)  # --score: "contains ✓", "judge 4"

    @property
    def response(self) -> ChatResponse:
        return self.responses[-1]


def scorers_of(request: ChatRequest, namespace: Mapping[str, Any]) -> list[Any] | None:
    """The scorers ``--score VAR`` names, checked; None without --score."""
    if request.score is None:
        return None

    try:
        return list(as_scorers(_lookup(namespace, request.score, "--score")))
    except InvalidInputError as exc:
        raise OptionError(f"--score {request.score}: {one_line(exc)}") from None


def _lookup(namespace: Mapping[str, Any], name: str, option: str) -> Any:
    if name in namespace:
        return namespace[name]
    public = [n for n in namespace if not n.startswith("_")]
    hint = difflib.get_close_matches(name, public, n=1)
    suggestion = f" (did you mean {hint[0]}?)" if hint else ""
    raise OptionError(f"{option} {name}: no variable {name!r} in the notebook{suggestion}")


def image_url(spec: str) -> str:
    """An image for a message: URLs as given, local files as base64 ``data:`` URLs."""
    if spec.startswith(("http://", "https://", "data:image/")):
        return spec
    path = Path(spec).expanduser()
    mime = mimetypes.guess_type(path.name)[0]
    if not mime or not mime.startswith("image/"):
        raise OptionError(f"--image {spec}: not an image file by its name; {_IMAGE_HINT}")
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise OptionError(
            f"--image {spec}: cannot read it ({exc.strerror or exc}); {_IMAGE_HINT}"
        ) from None
    return f"data:{mime};base64,{base64.b64encode(data).decode('ascii')}"


def _user_message(prompt: str, images: tuple[str, ...]) -> Message:
    if not images:
        return {"role": "user", "content": prompt}
    parts: list[dict[str, Any]] = [{"type": "text", "text": prompt}]
    parts += [{"type": "image_url", "image_url": {"url": image_url(i)}} for i in images]
    return {"role": "user", "content": parts}


def _is_pydantic_model(value: Any) -> bool:
    # Duck-typed so pydantic stays optional: a class with pydantic 2's two methods.
    return isinstance(value, type) and all(
        hasattr(value, m) for m in ("model_json_schema", "model_validate_json")
    )


def response_format_for(value: Any, name: str) -> tuple[dict[str, Any], Parser]:
    """The ``json_schema`` response format for a schema dict or pydantic model class,
    and how to parse an answer into the object it describes."""
    if _is_pydantic_model(value):
        schema, parse = dict(value.model_json_schema()), value.model_validate_json
        name = value.__name__
    elif isinstance(value, Mapping) and {"type", "properties", "$ref", "anyOf"} & set(value):
        schema, parse = dict(value), json.loads
    else:
        raise OptionError(
            f"--schema {name}: {name} is a {type(value).__name__}, not a JSON-schema dict "
            "(with 'type' and 'properties') or a pydantic model class"
        )
    # The API takes [a-zA-Z0-9_-]{1,64}; a Python name may be longer or hold other letters.
    format_ = {"type": "json_schema", "json_schema": {"name": schema_name(name), "schema": schema}}
    return format_, parse


def response_format_of(
    request: ChatRequest, namespace: Mapping[str, Any]
) -> tuple[dict[str, Any] | None, Parser | None]:
    """The response format ``--json``/``--schema VAR`` ask for, and how to parse an answer."""
    if request.json:
        return {"type": "json_object"}, json.loads
    if request.schema:
        return response_format_for(_lookup(namespace, request.schema, "--schema"), request.schema)
    return None, None


def _template_columns(request: ChatRequest, namespace: Mapping[str, Any]) -> dict[str, Any]:
    names = variables_of(request.prompt) + variables_of(request.system or "")
    if not names:
        return {}
    return {"template": request.prompt, "variables": {n: namespace[n] for n in sorted(set(names))}}


def _of_kind(provider: Provider, listed: list[str], kind: str) -> list[str]:
    """The listed models fit for ``kind`` ("chat" or "embedding"), by name: servers do
    not say which is which, and offering an embedding model for a chat sends people
    into an error they cannot read."""
    if provider.local:
        return [CHAT_MODEL_ALIAS if kind == "chat" else EMBEDDING_MODEL_ALIAS]
    embedding = [n for n in listed if "embed" in n.lower()]
    if kind == "embedding":
        return embedding or listed
    return [n for n in listed if n not in embedding] or listed


def check_model(
    session: Session, model: str | None, provider: str | None, kind: str = "chat"
) -> None:
    """Refuse a model the provider does not list, naming the closest one it does.

    Some servers (llama.cpp among them) answer with whatever model they hold whatever
    name is sent, so a typo would silently give results from the wrong model.
    """
    chosen, name = session.resolve(model, provider)
    if not name:
        return
    try:
        listed = session.models(chosen)
    except APIStatusError:  # no /models on this server: let the call itself say
        return
    if not listed or name in listed:
        return
    fit = _of_kind(chosen, listed, kind)
    hint = closest_name(name, fit) or closest_name(name, listed)
    shown = ", ".join(fit[:8]) + (", ..." if len(fit) > 8 else "")
    suggestion = f" Did you mean {hint!r}?" if hint else ""
    # A list that is only the suggestion again is noise (and wraps mid-name in Lab's
    # error box): the suggestion alone says it.
    others = "" if hint is not None and fit == [hint] else f" Its {kind} models: {shown}."
    raise OptionError(
        f"Unknown model {name!r} for provider {chosen.name!r}.{suggestion}{others}"
        " (see %workbench models)"
    )


def _answered_from_table(
    session: Session, messages: list[Message], call: dict[str, Any]
) -> bool:
    prepared = session.prepare_chat(messages, **call)
    record = prepared.record
    return session.store.find_ok(record.request_hash, record.sample_index) is not None


def run_chat(
    request: ChatRequest,
    namespace: Mapping[str, Any],
    *,
    session: Session | None = None,
    on_delta: Callable[[str], None] | None = None,
) -> ChatOutcome:
    """Run one ``%%chat`` cell: one call, or one per tool round with ``--run-tools``."""
    session = session or get_session()
    prompt = render(request.prompt, namespace)
    system = None if request.system is None else render(request.system, namespace, what="--system")
    warn_if_key("%%chat", [prompt, system])  # before anything is sent
    response_format, parse = response_format_of(request, namespace)
    tools, functions = (
        tool_specs(_lookup(namespace, request.tools, "--tools"), request.tools)
        if request.tools
        else ([], {})
    )
    call: dict[str, Any] = {
        "model": request.model,
        "provider": request.provider,
        "system": system,
        "stream": request.stream,
        "experiment": request.experiment,
        "response_format": response_format,  # None is not sent
        "tools": tools or None,
        **_template_columns(request, namespace),
        **request.params,
    }
    scorers = scorers_of(request, namespace)  # a wrong --score fails before anything is sent
    history = session.threads.get(request.thread, []) if request.thread else []
    messages = [*history, _user_message(prompt, request.images)]
    # A replay needs no server, so a shared notebook re-runs offline: check only misses.
    def answered() -> bool:
        return not request.fresh and _answered_from_table(session, messages, call)

    if request.model and not answered():
        check_model(session, request.model, request.provider)
    budget = None if request.budget is None else Decimal(str(request.budget))
    if scorers is not None and budget is not None:  # the judge's calls are the cell's too
        from workbench.scoring.cell import refuse_cell_over_budget

        prepared = session.prepare_chat(messages, **call)
        refuse_cell_over_budget(session, prepared, scorers, budget, answered=answered())

    def send(conversation: list[Message]) -> ChatResponse:
        return session.chat(
            list(conversation),
            fresh=request.fresh,
            budget=request.budget,
            deadline=request.deadline,
            on_delta=on_delta,
            **call,
        )

    if request.run_tools:
        responses, runs = run_tool_loop(send, messages, functions)
    else:
        responses = [send(messages)]
        runs = [ToolRun(c["id"], c["function"]["name"], c["function"]["arguments"])
                for c in calls_of(responses[0])]
    outcome = ChatOutcome(responses, runs, json=parse is not None)
    if parse is not None and outcome.response.refusal:
        outcome.parse_error = f"the model refused: {outcome.response.refusal}"
    elif parse is not None:
        try:
            outcome.parsed = parse(outcome.response.text)
        except ValueError as exc:  # json's and pydantic's errors are both ValueErrors
            outcome.parse_error = one_line(exc)
    if scorers is not None:
        outcome.scores = score_cell(outcome.responses, scorers, session, budget)
    if request.thread:
        answer: Message = {"role": "assistant", "content": outcome.response.text}
        session.threads[request.thread] = [*messages, answer]
    return outcome


def _all_embedded(session: Session, request: EmbedRequest) -> bool:
    chosen, name = session.resolve(request.model, None)
    name = name or chosen.default_embed_model()
    if not name:
        return False
    known = session.store.get_embeddings(name, request.dimensions, list(request.texts))
    return all(text in known for text in request.texts)


def run_embed(request: EmbedRequest, *, session: Session | None = None) -> EmbedResponse:
    """Run one ``%%embed`` cell: one call (texts already in the table are not sent)."""
    session = session or get_session()
    warn_if_key("%%embed", request.texts)  # before anything is sent
    if request.model and (request.fresh or not _all_embedded(session, request)):
        check_model(session, request.model, None, kind="embedding")
    return embed(
        session,
        list(request.texts),
        model=request.model,
        dimensions=request.dimensions,
        experiment=request.experiment,
        fresh=request.fresh,
    )
