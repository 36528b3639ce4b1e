"""Matplotlib figures as a notebook shows them, readable in JupyterLab's light and dark
themes.

A figure is drawn once, as a PNG with matplotlib's white background and black text. In
the dark theme that is a white box among dark cells; there, CSS inverts the image's
lightness and turns its hues back (``invert(0.93) hue-rotate(180deg)``; 0.93 makes white
the theme's near-black, not pure black), so the background is dark, the text light, and
every bar keeps its colour family, the legend matching the bars. The light theme, and any
frontend that is not JupyterLab, shows the PNG as drawn. The PNG is stored once in the
notebook (an ``<img>`` in the HTML output).
"""

from __future__ import annotations

import base64
import io
from typing import Any

__all__ = ["ThemedFigure", "DARK_THEME_STYLE"]

DARK_THEME_STYLE = """<style>
body[data-jp-theme-light="false"] .wb-figure img {filter: invert(0.93) hue-rotate(180deg)}
</style>"""


class ThemedFigure:
    """A matplotlib figure for ``display``: its PNG, dark-adapted in the dark theme."""

    def __init__(self, figure: Any) -> None:
        buffer = io.BytesIO()
        # What the inline backend does: tight around what is drawn, at the figure's dpi.
        figure.savefig(buffer, format="png", bbox_inches="tight")
        self.png = buffer.getvalue()
        self.text = repr(figure)

    def html(self) -> str:
        data = base64.b64encode(self.png).decode("ascii")
        image = f'<img src="data:image/png;base64,{data}">'
        return f'{DARK_THEME_STYLE}<div class="wb-figure">{image}</div>'

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> dict[str, str]:
        return {"text/html": self.html(), "text/plain": self.text}

    def __repr__(self) -> str:
        return self.text
