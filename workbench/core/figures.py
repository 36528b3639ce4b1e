"""The workbench's matplotlib figures as a notebook shows them: a transparent PNG with
grey ink, so they read in JupyterLab's light and dark themes and in any other frontend.

Why one theme-neutral PNG, not a dark copy picked by CSS or SVG in ``currentColor``: the
kernel does not know the theme, and what could pick by theme in the page is lost where
figures are often seen. JupyterLab's sanitizer drops ``<style>`` and inline ``<svg>``
from the outputs of a notebook it does not trust (any notebook opened from disk that was
not run in this browser: the shipped examples), and VS Code, GitHub and nbconvert apply
no JupyterLab CSS at all; the CSS filter this module used before left every such figure,
and every figure the inline backend drew, a white box in the dark theme. A PNG with a
transparent background shows the page's own background in every case. Its ink (text,
spines, ticks, the lines matplotlib draws black by default) is ``INK``, a grey with the
same contrast, ~4.35:1, on white and on JupyterLab Dark's #111 (black would be 1.1:1
there); the data keep their colours (tab10 and viridis read on both).

Every path goes through :func:`adopt`: a bare ``wb.plots.x(...)`` cell (the Axes'
``_ipython_display_``), ``ax = wb.plots.x(...)`` and ``plt.subplots`` with ``ax=`` (the
inline backend shows the figure at the end of the cell or at ``plt.show()`` through
``display(figure)``, which asks the figure's ``_ipython_display_`` first), and ``fig`` as
a cell's last line. The figure is inked again when shown, so a title or an axes the user
added after the workbench drew is grey too.
"""

from __future__ import annotations

import base64
import io
import sys
from functools import partial
from typing import Any, TypeVar

__all__ = ["INK", "KEEP_COLOUR", "ThemedFigure", "adopt", "follow_theme", "themed_png"]

INK = "#797979"  # 4.35:1 on white, 4.34:1 on #111: the grey that reads equally on both
AxesT = TypeVar("AxesT")
KEEP_COLOUR = "wb-keep-colour"  # an artist's gid: its black is meant (text on a bright cell)


def _is_black(colour: Any) -> bool:
    from matplotlib.colors import to_rgba  # deferred: keeps import workbench light (~0.3 s)

    try:
        red, green, blue, alpha = to_rgba(colour)
    except (ValueError, TypeError):  # "auto", "none" and the like: not ink
        return False
    return alpha > 0 and red == green == blue == 0


def _ink_collection(collection: Any) -> None:
    # Error bars and box whiskers are collections drawn black by default.
    colours = collection.get_edgecolor()
    if len(colours) and all(_is_black(c) for c in colours):
        collection.set_edgecolor(INK)


def follow_theme(figure: Any) -> None:
    """Make ``figure`` theme-neutral in place: transparent background, black ink grey."""
    # deferred: keeps import workbench light (matplotlib.collections ~0.4 s)
    from matplotlib.collections import LineCollection
    from matplotlib.legend import Legend  # deferred: keeps import workbench light (~0.5 s)
    from matplotlib.lines import Line2D  # deferred: keeps import workbench light (~0.3 s)
    from matplotlib.spines import Spine  # deferred: keeps import workbench light (~0.3 s)
    from matplotlib.text import Text  # deferred: keeps import workbench light (~0.4 s)

    figure.patch.set_facecolor("none")
    for ax in figure.axes:
        ax.set_facecolor("none")
        labels = ax.get_xticklabels() + ax.get_yticklabels()
        if not labels or _is_black(labels[0].get_color()):
            ax.tick_params(which="both", colors=INK)  # kept for ticks made at draw time
    for artist in figure.findobj():
        if artist.get_gid() == KEEP_COLOUR:
            continue
        if isinstance(artist, Text) and _is_black(artist.get_color()):
            artist.set_color(INK)
        elif isinstance(artist, Spine) and _is_black(artist.get_edgecolor()):
            artist.set_edgecolor(INK)
        elif isinstance(artist, Line2D):
            for part in ("color", "markeredgecolor", "markerfacecolor"):
                if _is_black(getattr(artist, f"get_{part}")()):
                    artist.set(**{part: INK})
        elif isinstance(artist, LineCollection):
            _ink_collection(artist)
        elif isinstance(artist, Legend):
            artist.get_frame().set_facecolor("none")  # a white frame is a white box on dark
            artist.get_frame().set_edgecolor(INK)


def themed_png(figure: Any) -> bytes:
    """The figure as a theme-neutral PNG, tight around what is drawn, at its dpi."""
    follow_theme(figure)
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", bbox_inches="tight", transparent=True)
    return buffer.getvalue()


class ThemedFigure:
    """A matplotlib figure for ``display``: its theme-neutral PNG."""

    def __init__(self, figure: Any) -> None:
        self.png = themed_png(figure)
        self.text = repr(figure)

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> dict[str, str]:
        return {"image/png": base64.b64encode(self.png).decode("ascii"), "text/plain": self.text}

    def __repr__(self) -> str:
        return self.text


def _show(figure: Any) -> None:
    from IPython.display import display  # only when shown: core imports no IPython

    display(ThemedFigure(figure))  # type: ignore[no-untyped-call]
    pyplot = sys.modules.get("matplotlib.pyplot")
    if pyplot is not None:  # shown once: the inline backend would show it again at cell end
        pyplot.close(figure)


def adopt(ax: AxesT) -> AxesT:
    """Make the figure of ``ax`` (an Axes the workbench drew on, maybe in a user's
    ``plt.subplots``) theme-neutral, now and whenever it is shown; returns ``ax``.

    IPython asks an object for ``_ipython_display_`` before any formatter, and asks the
    instance: only the workbench's figures change, not every figure of the kernel."""
    figure = ax.get_figure(root=True)  # type: ignore[attr-defined]
    if figure is None:
        return ax
    follow_theme(figure)
    show = partial(_show, figure)  # a partial, not a lambda: the figure still pickles
    setattr(figure, "_ipython_display_", show)  # noqa: B010 - not a Figure field
    setattr(ax, "_ipython_display_", show)  # noqa: B010 - a bare cell shows the chart
    return ax
