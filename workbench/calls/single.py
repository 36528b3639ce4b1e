"""One chat call and one estimate, as the documented API states them: the one place their
knobs and defaults are written (``wb.chat`` forwards here; the session's own methods take
the same names as keywords and add no defaults of their own)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import replace
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from workbench.api.providers import route
from workbench.core.checks import whole
from workbench.core.errors import ConfigurationError
from workbench.core.knobs import check

if TYPE_CHECKING:
    from workbench.calls.budget.estimate import Estimate
    from workbench.calls.prepare import Message
    from workbench.calls.results import ChatResponse
    from workbench.calls.session import Session

__all__ = ["chat", "achat", "estimate"]


def chat(
    session: Session,
    prompt: str | Sequence[Message],
    *,
    model: str | None = None,
    system: str | None = None,
    temperature: float | None = None,
    top_p: float | None = None,
    seed: int | None = None,
    max_tokens: int | None = None,
    stream: bool = False,
    provider: str | None = None,
    experiment: str | None = None,
    fresh: bool = False,
    budget: float | Decimal | None = None,
    on_delta: Callable[[str], None] | None = None,
    deadline: float | None = None,
    api: str | None = None,
    **params: Any,
) -> ChatResponse:
    """Send one chat call (or answer it from the experiment table) and log it as a row.

    Parameters left as None are not sent. ``model`` may be ``"provider:model"``. Extra
    keyword arguments (``stop``, ``response_format``, ``tools``, ...) are sent as given.
    ``fresh=True`` asks the API even when an identical run is already in the table.
    ``deadline`` (seconds) bounds this call, retries included, instead of the session's.
    ``budget`` (USD) refuses the call, before sending, when its estimate is above it.
    Ctrl-C ends it with the partial answer, its footer and one line; the row is stored.
    ``api="responses"`` sends it to the Responses API (``/v1/responses``) instead of Chat
    Completions (None: the provider's ``api`` setting, else Chat Completions except for
    models served only by the Responses API); the ``api`` column records which.
    """
    return session.chat(prompt, **_chat_keywords(locals()))


async def achat(
    session: Session,
    prompt: str | Sequence[Message],
    *,
    model: str | None = None,
    system: str | None = None,
    temperature: float | None = None,
    top_p: float | None = None,
    seed: int | None = None,
    max_tokens: int | None = None,
    stream: bool = False,
    provider: str | None = None,
    experiment: str | None = None,
    fresh: bool = False,
    budget: float | Decimal | None = None,
    on_delta: Callable[[str], None] | None = None,
    deadline: float | None = None,
    api: str | None = None,
    **params: Any,
) -> ChatResponse:
    """The async twin of :func:`chat`."""
    return await session.achat(prompt, **_chat_keywords(locals()))


def _chat_keywords(given: dict[str, Any]) -> dict[str, Any]:
    keywords = {k: v for k, v in given.items() if k not in ("session", "prompt", "params")}
    return {**keywords, **given["params"]}


def estimate(
    session: Session,
    prompt_or_messages: str | Sequence[Message],
    *,
    model: str | None = None,
    system: str | None = None,
    max_tokens: int | None = None,
    repeats: int = 1,
    provider: str | None = None,
) -> Estimate:
    """Tokens and low / expected / high dollars for ``repeats`` calls, sending nothing."""

    whole("repeats", repeats, low=1)
    max_tokens = check("max_tokens", max_tokens)
    # A hosted model with no key set is priced at its price, with a note: only a name
    # that cannot be sent anywhere (a typo) is refused.
    routed = route(model, provider, default_provider=session.default_provider)
    if routed.refusal is not None and routed.missing_key is None and model:
        raise ConfigurationError(routed.refusal)
    chosen, model_name = routed.provider, session.chat_model_for(routed.provider, routed.model)
    messages: list[Message] = [{"role": "system", "content": system}] if system else []
    if isinstance(prompt_or_messages, str):
        messages.append({"role": "user", "content": prompt_or_messages})
    else:
        messages.extend(dict(m) for m in prompt_or_messages)
    estimated = session.spend.estimate_messages(  # the one budget estimates
        messages,
        model=model_name,
        provider=chosen,
        max_tokens=max_tokens,
        repeats=repeats,
    )
    if routed.missing_key is None:
        return estimated
    return replace(estimated, note=f"no {routed.missing_key} is set: set it to send these calls")
