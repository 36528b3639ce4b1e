"""The workbench's figures follow the theme on every path a notebook shows them (issue 22,
item 5.1): a bare plot cell, ``ax = wb.plots.x(...)``, an ``ax`` of the user's
``plt.subplots``, ``plt.show()``, the paired and leaderboard plots, the ``%%embed``
heatmap. Each is checked in the PNG the notebook receives: its background is
transparent (the page's own, light or dark) and every opaque grey pixel (text, axes,
ticks) reads on white and on JupyterLab Dark's #111 (WCAG contrast of 3:1 or more).
"""

from __future__ import annotations

import base64
import io
from collections.abc import Iterator
from typing import Any

import matplotlib.pyplot as plt
import numpy as np
import pytest
from PIL import Image

import workbench as wb
from workbench.calls.results import EmbedResponse
from workbench.calls.session import get_session
from workbench.core.record import RunRecord, new_run_id
from workbench.notebook.embedview import EmbedResult

WHITE, JUPYTER_DARK = (255, 255, 255), (17, 17, 17)  # the two themes' output backgrounds


@pytest.fixture(autouse=True)
def close_figures() -> Iterator[None]:
    yield
    plt.close("all")


def stored_runs() -> None:
    for model, tokens in (("gpt-4o-mini", 5), ("gpt-4o", 9)):
        get_session().store.append(RunRecord(
            kind="chat", provider="openai", model=model, prompt="Hi", output="an answer",
            prompt_tokens=10, completion_tokens=tokens, cost_usd=0.001, latency_s=0.5,
            request_hash=new_run_id()))


def _luminance(rgb: Any) -> Any:
    c = np.asarray(rgb, dtype="float64") / 255
    c = np.where(c <= 0.03928, c / 12.92, ((c + 0.055) / 1.055) ** 2.4)
    return c @ np.array([0.2126, 0.7152, 0.0722])


def _contrast(a: Any, b: Any) -> Any:
    la, lb = _luminance(a), _luminance(b)
    return (np.maximum(la, lb) + 0.05) / (np.minimum(la, lb) + 0.05)


def assert_follows_both_themes(png: bytes) -> None:
    pixels = np.asarray(Image.open(io.BytesIO(png)).convert("RGBA"))
    corners = pixels[[0, 0, -1, -1], [0, -1, 0, -1]]
    assert (corners[:, 3] == 0).all(), "the background is painted, not the page's own"
    # Ink on the page: opaque grey pixels (not data colours) beside a see-through one
    # (not the numbers printed on a heatmap's opaque cells).
    alpha = pixels[:, :, 3]
    clear = np.zeros_like(alpha, dtype=bool)
    clear[1:-1, 1:-1] = ((alpha[:-2, 1:-1] < 255) | (alpha[2:, 1:-1] < 255)
                         | (alpha[1:-1, :-2] < 255) | (alpha[1:-1, 2:] < 255))
    rgb = pixels[:, :, :3].astype(int)
    achromatic = (rgb.max(axis=2) - rgb.min(axis=2)) <= 8
    grey = rgb[(alpha == 255) & achromatic & clear]
    assert len(grey) > 100, "no text or axes drawn"
    worst = min(_contrast(grey, WHITE).min(), _contrast(grey, JUPYTER_DARK).min())
    assert worst >= 3.0, f"ink with contrast {worst:.2f} on one of the themes"


def shown_pngs(cell: str) -> list[bytes]:
    """Run ``cell`` in a real IPython shell with the inline backend, as a notebook does,
    and return the PNGs it showed (none other than through image/png)."""
    from IPython.utils.capture import capture_output
    from testing_shell import open_shell

    with open_shell() as shell, capture_output() as shown:
        shell.enable_gui = lambda gui=None: None  # a kernel's no-op; the bare shell raises
        # Figures an earlier test left open would be shown at this cell's end too.
        shell.run_cell("%matplotlib inline\nimport matplotlib.pyplot as plt\n"
                       "import workbench as wb\nplt.close('all')")
        shell.run_cell(cell)
        shell.run_cell("plt.close('all')")
    assert not any("<Axes" in o.data.get("text/plain", "") for o in shown.outputs)
    assert "<Axes" not in shown.stdout
    assert all("text/html" not in o.data for o in shown.outputs)  # no CSS to lose
    return [base64.b64decode(o.data["image/png"]) for o in shown.outputs]


def test_a_bare_plot_cell_shows_one_theme_neutral_figure() -> None:
    stored_runs()
    [png] = shown_pngs("wb.plots.tokens(wb.runs())")
    assert_follows_both_themes(png)


def test_an_assigned_plot_shows_once_at_the_end_of_the_cell() -> None:
    stored_runs()
    [png] = shown_pngs("ax = wb.plots.cost(wb.runs())")
    assert_follows_both_themes(png)


def test_a_users_subplots_follow_the_theme_with_their_own_axes() -> None:
    stored_runs()
    cell = (
        "fig, axes = plt.subplots(1, 2, figsize=(10, 4))\n"
        "wb.plots.latency(wb.runs(), ax=axes[0])\n"
        "axes[1].plot([0, 1], [1, 0])\n"  # the user's own axes, drawn with black ink
        "axes[1].set_title('mine')\n"
        "fig.tight_layout()"
    )
    [png] = shown_pngs(cell)
    assert_follows_both_themes(png)


def test_plt_show_and_a_last_line_fig_show_the_figure_once() -> None:
    stored_runs()
    [png] = shown_pngs("ax = wb.plots.length(wb.runs())\nplt.show()")
    assert_follows_both_themes(png)
    [png] = shown_pngs("ax = wb.plots.outcomes(wb.runs())\nax.figure")
    assert_follows_both_themes(png)


def test_the_paired_plot_is_shown_not_its_axes_repr() -> None:
    from test_scoring_stats import two_sides

    two_sides([0, 0, 1, 0], [1, 1, 1, 0])
    [png] = shown_pngs("wb.plots.paired(wb.compare_runs('base', 'cand', scorer='contains'))")
    assert_follows_both_themes(png)


def test_the_embed_heatmap_follows_the_theme() -> None:
    record = RunRecord(kind="embed", provider="openai", model="m", prompt="x",
                       request_hash=new_run_id())
    response = EmbedResponse(record=record, texts=["a cat", "a dog", "the market"],
                             embeddings=[[1.0, 0.1], [0.9, 0.3], [0.0, 1.0]])
    result = EmbedResult(response)
    assert_follows_both_themes(result.png())
    # Its cell numbers keep black on the bright cells: they sit on the cell, not the page.
    texts = [t for t in result.heatmap().texts if t.get_text() == "1.00"]
    assert texts and texts[0].get_color() == "black"


def test_the_paired_legend_says_what_the_pair_colours_mean() -> None:
    from matplotlib.colors import same_color
    from test_scoring_stats import two_sides

    from workbench.core.figures import INK

    two_sides([1, 0, 1, 0], [0, 1, 1, 0])  # a worse pair first: its red was the legend's
    ax = wb.plots.paired(wb.compare_runs("base", "cand", scorer="contains"))
    legend = ax.get_legend()
    assert legend.get_texts()[0].get_text() == "pair (green: candidate better, red: worse)"
    assert same_color(legend.legend_handles[0].get_facecolor()[0], INK)
