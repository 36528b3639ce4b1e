"""What Ctrl-C during ``wb.chat`` leaves on screen: the partial answer and its footer.

The one line after them (what was kept, under which run id) is the exception's own, see
:class:`workbench.errors.CallInterrupted`; this module only prints what comes before it.
"""

from __future__ import annotations

from workbench.display import footer
from workbench.errors import CallInterrupted

__all__ = ["show_partial_answer"]


def show_partial_answer(exc: CallInterrupted, *, streamed: bool) -> None:
    """Print the partial answer (unless ``on_delta`` already showed it) and its footer."""
    text = exc.response.text
    if streamed:
        print(flush=True)  # end the line the deltas were written on
    elif text:
        print(text, flush=True)
    print(footer(exc.response), flush=True)
