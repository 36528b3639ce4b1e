"""``wb.chat`` as a notebook shows it at Ctrl-C: the partial answer and its footer.

The one line after them (what was kept, under which run id) is the exception's own, see
:class:`workbench.core.errors.CallInterrupted`; the call itself is :mod:`workbench.calls.single`.
"""

from __future__ import annotations

import functools
from typing import Any

from workbench.calls import single
from workbench.core.errors import CallInterrupted
from workbench.notebook.display import footer

__all__ = ["achat", "chat", "show_partial_answer"]


def show_partial_answer(exc: CallInterrupted, *, streamed: bool) -> None:
    """Print the partial answer (unless ``on_delta`` already showed it) and its footer."""
    text = exc.response.text
    if streamed:
        print(flush=True)  # end the line the deltas were written on
    elif text:
        print(text, flush=True)
    print(footer(exc.response), flush=True)


@functools.wraps(single.chat)
def chat(*args: Any, **kwargs: Any) -> Any:
    try:
        return single.chat(*args, **kwargs)
    except CallInterrupted as exc:
        show_partial_answer(exc, streamed=kwargs.get("on_delta") is not None)
        raise


@functools.wraps(single.achat)
async def achat(*args: Any, **kwargs: Any) -> Any:
    try:
        return await single.achat(*args, **kwargs)
    except CallInterrupted as exc:
        show_partial_answer(exc, streamed=kwargs.get("on_delta") is not None)
        raise
