"""What an ``%%embed`` cell shows: its texts, unit vectors and similarities, drawn as a
heatmap with the texts in full, and a footer with tokens and cost."""

from __future__ import annotations

import base64
import json
import textwrap
from typing import TYPE_CHECKING, Any

from workbench.calls.results import EmbedResponse
from workbench.core.figures import KEEP_COLOUR, adopt, themed_png
from workbench.core.money import money_html
from workbench.notebook.display import Bundle, footer, metadata, shorten

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt
    import pandas as pd
    from matplotlib.axes import Axes

__all__ = ["EmbedResult"]


class EmbedResult:
    """The result of an ``%%embed`` cell: texts, unit vectors, similarities, a heatmap."""

    def __init__(self, response: EmbedResponse) -> None:
        self.response = response

    @property
    def texts(self) -> list[str]:
        return list(self.response.texts)

    @property
    def vectors(self) -> npt.NDArray[np.float64]:
        """The vectors as an (n, d) array, each of length 1."""
        vectors: npt.NDArray[np.float64] = self.response.vectors
        return vectors

    @property
    def run_id(self) -> str:
        return self.response.run_id

    @property
    def df(self) -> pd.DataFrame:
        """One row per text (the index), one column per dimension."""
        import pandas as pd  # deferred: keeps import workbench light (pandas ~0.5 s)

        return pd.DataFrame(self.vectors, index=pd.Index(self.texts, name="text"))

    def similarity(self) -> pd.DataFrame:
        """Cosine similarity of every pair of texts (symmetric, 1 on the diagonal)."""
        import numpy as np  # deferred: keeps import workbench light (numpy ~0.2 s)
        import pandas as pd  # deferred: keeps import workbench light (pandas ~0.5 s)

        vectors = self.vectors
        matrix = vectors @ vectors.T
        matrix = np.clip((matrix + matrix.T) / 2, -1.0, 1.0)  # exactly symmetric
        return pd.DataFrame(matrix, index=self.texts, columns=self.texts)

    def nearest(self, query: str | int, k: int = 5) -> pd.DataFrame:
        """The ``k`` texts most similar to ``query`` (a text, embedded if new, or an index)."""
        import pandas as pd  # deferred: keeps import workbench light (pandas ~0.5 s)

        target = self._vector_of(query)
        scores = self.vectors @ target
        order = scores.argsort()[::-1][:k]
        return pd.DataFrame(
            {"text": [self.texts[i] for i in order], "similarity": scores[order]},
            index=pd.RangeIndex(1, len(order) + 1, name="rank"),
        )

    def _vector_of(self, query: str | int) -> npt.NDArray[np.float64]:
        vectors = self.vectors
        if isinstance(query, int) or query in self.texts:
            index = query if isinstance(query, int) else self.texts.index(query)
            row: npt.NDArray[np.float64] = vectors[index]
            return row
        # A new text: one more call (and row), with the same model and dimensions.
        from workbench.calls.embedding import embed
        from workbench.calls.session import get_session

        record = self.response.record
        dimensions = json.loads(record.params or "{}").get("dimensions")
        answer = embed(
            get_session(),
            [query],
            model=record.model,
            provider=record.provider,
            dimensions=dimensions,
            experiment=record.experiment,
        )
        row = answer.vectors[0]
        return row

    @property
    def footer(self) -> str:
        extra = [f"{len(self.texts)} texts × {self.response.dimensions} dims"]
        return footer(self.response, extra=extra)

    def heatmap(self, ax: Axes | None = None) -> Axes:
        """Draw the similarity matrix; returns the Axes.

        Rows carry the texts in full (wrapped, numbered), columns their numbers: rotated
        texts on both axes cut them at ~20 characters and left half the figure empty.
        The figure grows with the number of texts, so its lettering stays at ~10 px."""
        n = len(self.texts)
        if ax is None:
            from matplotlib.figure import Figure  # deferred: keeps import workbench light (~0.5 s)

            # A bare Figure needs no pyplot or GUI backend: safe in kernels and tests.
            cell = 0.6 if n <= 12 else max(0.2, 7.0 / n)  # inches per text
            side = min(max(2.0, cell * n), 9.0)
            figure = Figure(figsize=(side + 4.6, side + 0.9), dpi=100, layout="constrained")
            ax = figure.add_subplot()
        matrix = self.similarity().to_numpy()
        image = ax.imshow(matrix, vmin=min(0.0, float(matrix.min())), vmax=1.0, cmap="viridis")
        ax.figure.colorbar(image, ax=ax, fraction=0.046, pad=0.04)
        if n <= 40:  # beyond that, labels overlap into a black smear
            ax.set_xticks(range(n), [str(i + 1) for i in range(n)], fontsize=10)
            ax.set_yticks(range(n), [_wrapped_label(i, t) for i, t in enumerate(self.texts)],
                          fontsize=10 if n <= 12 else 8)
            ax.xaxis.tick_top()
        if n <= 12:
            for i in range(n):
                for j in range(n):
                    value = matrix[i, j]
                    color = "black" if value > 0.6 else "white"
                    ax.text(j, i, f"{value:.2f}", ha="center", va="center", fontsize=9,
                            color=color, gid=KEEP_COLOUR)  # on the cell, not the page
        ax.set_title("cosine similarity", fontsize=11)
        return adopt(ax)  # follows the theme, in the cell's view and drawn on its own

    def png(self) -> bytes:
        """The heatmap as PNG bytes: transparent, with ink that reads in both themes."""
        return themed_png(self.heatmap().figure)

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> Bundle:
        encoded = base64.b64encode(self.png()).decode("ascii")
        page = (
            f'<img src="data:image/png;base64,{encoded}" alt="cosine similarity heatmap"/>'
            f"<div><sub>{money_html(self.footer)}</sub></div>"
        )
        data = {"text/html": page, "text/plain": repr(self)}
        extra = {"texts": len(self.texts), "dimensions": self.response.dimensions}
        return data, metadata(self.response, **extra)

    def __repr__(self) -> str:
        table = self.similarity().round(2)
        table.index = table.columns = [shorten(t, 24) for t in self.texts]
        # Small matrices in full; pandas' own elision for the rest.
        text = table.to_string() if len(self.texts) <= 12 else str(table)
        return f"{text}\n\n{self.footer}"


def _wrapped_label(index: int, text: str, width: int = 36, lines: int = 3) -> str:
    # Numbered like the columns; at most three lines of the text, then an ellipsis.
    wrapped = textwrap.wrap(" ".join(text.split()), width) or [""]
    if len(wrapped) > lines:
        wrapped = [*wrapped[: lines - 1], shorten(" ".join(wrapped[lines - 1:]), width)]
    return f"{index + 1}  " + "\n    ".join(wrapped)
