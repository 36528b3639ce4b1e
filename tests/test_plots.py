"""wb.plots on real runs frames: what each figure says, for three runs and for 3,000."""

from __future__ import annotations

import math
from collections.abc import Iterator
from itertools import combinations
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest
from loopback import LoopbackAPI, Received, Reply, chat_reply
from matplotlib.axes import Axes
from matplotlib.patches import PathPatch

import workbench as wb
from workbench.calls.results import EmbedResponse
from workbench.calls.session import get_session
from workbench.core.record import RunRecord, new_run_id


@pytest.fixture(autouse=True)
def close_figures() -> Iterator[None]:
    yield
    plt.close("all")


def run(**fields: Any) -> RunRecord:
    values: dict[str, Any] = {
        "kind": "chat", "provider": "openai", "model": "gpt-4o-mini", "prompt": "Hi",
        "output": "an answer", "prompt_tokens": 10, "completion_tokens": 5,
        "cost_usd": 0.001, "latency_s": 0.5, "request_hash": new_run_id(),
    }
    values.update(fields)
    return RunRecord(**values)


def stored(*records: RunRecord) -> pd.DataFrame:
    """The records as ``wb.runs()`` returns them, with the store's real dtypes."""
    for record in records:
        get_session().store.append(record)
    return wb.runs()


def tick_labels(ax: Axes, axis: str = "x") -> list[str]:
    ticks = ax.get_xticklabels() if axis == "x" else ax.get_yticklabels()
    return [t.get_text() for t in ticks]


def legend_texts(ax: Axes) -> list[str]:
    legend = ax.get_legend()
    return [t.get_text() for t in legend.get_texts()] if legend else []


def boxes(ax: Axes) -> int:
    return sum(isinstance(p, PathPatch) for p in ax.patches)


def dots(ax: Axes, series: int = 0) -> list[float]:
    """The y values of one series' dots (each run drawn over its box)."""
    return sorted(float(y) for y in ax.collections[series].get_offsets()[:, 1])


# ---------------------------------------------------------------------- through the API


def completion_by_knobs(request: Received) -> Reply:
    body = request.body
    temperature = body.get("temperature")
    completion = 99 if temperature is None else 10 + round(10 * temperature)
    if body["model"] == "gpt-4o":
        completion += 1
    return chat_reply("Hello there.", model=body["model"], prompt_tokens=20,
                      completion_tokens=completion)


@pytest.fixture
def api(monkeypatch: pytest.MonkeyPatch, in_tmp_dir: Path) -> Iterator[LoopbackAPI]:
    with LoopbackAPI(completion_by_knobs) as server:
        monkeypatch.setenv("OPENAI_BASE_URL", server.base_url)
        monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
        yield server


def test_tokens_of_real_calls_by_temperature_and_model(api: LoopbackAPI) -> None:
    for model in ("gpt-4o-mini", "gpt-4o"):
        for temperature in (1.0, 0.2, 0, None):
            wb.chat("Say hello.", model=model, temperature=temperature)
    ax = wb.plots.tokens(wb.runs())
    assert "tokens" in ax.get_title() and "temperature" in ax.get_title()
    assert "tokens" in ax.get_ylabel() and ax.get_xlabel() == "temperature"
    # Numbers in numeric order, the runs that sent no temperature last.
    assert tick_labels(ax) == ["0", "0.2", "1", "not set"]
    assert ax.get_legend().get_title().get_text() == "model"
    assert {"gpt-4o", "gpt-4o-mini", "prompt", "completion"} <= set(legend_texts(ax))
    # Per model (sorted: gpt-4o, gpt-4o-mini) a prompt and a completion bar per group.
    assert len(ax.containers) == 4 and all(len(c) == 4 for c in ax.containers)
    heights = [[bar.get_height() for bar in container] for container in ax.containers]
    assert heights[0] == heights[2] == [20, 20, 20, 20]
    assert heights[1] == [11, 13, 21, 100] and heights[3] == [10, 12, 20, 99]


def test_a_sweep_is_read_through_its_df_and_hue_is_optional() -> None:
    df = stored(run(model="a", completion_tokens=4), run(model="b", completion_tokens=8))
    ax = wb.plots.tokens(SimpleNamespace(df=df), by="model", hue=None)
    assert legend_texts(ax) == ["prompt tokens", "completion tokens"]
    assert [bar.get_height() for bar in ax.containers[1]] == [4, 8]
    with pytest.raises(TypeError, match="runs DataFrame"):
        wb.plots.tokens([1, 2, 3])
    with pytest.raises(KeyError, match="did you mean 'temperature'"):
        wb.plots.latency(df, by="temprature")


# ---------------------------------------------------------------------- cost


def test_cost_totals_and_marks_unknown_prices() -> None:
    df = stored(
        run(model="a", cost_usd=0.001), run(model="a", cost_usd=0.002),
        run(model="b", cost_usd=None), run(model="b", cost_usd=0.003),
        run(model="c", cost_usd=None),
        run(model="a", cost_usd=None, status="error", output=None),  # never billed
    )
    ax = wb.plots.cost(df)
    assert "USD" in ax.get_ylabel() and "Cost by model" in ax.get_title()
    assert tick_labels(ax) == ["a", "b", "c"]
    assert [bar.get_height() for bar in ax.containers[0]] == pytest.approx([0.003, 0.003, 0])
    texts = [t.get_text() for t in ax.texts]
    assert "1 of 2 unknown" in texts and "1 of 1 unknown" in texts
    assert not any("of 3" in t for t in texts)  # the error run is not an unknown price
    hatched = [p for p in ax.patches if p.get_hatch() == "xx"]
    assert len(hatched) == 2
    assert "runs with unknown cost (2)" in legend_texts(ax)
    assert any("/run" in t for t in texts)


def test_cost_with_every_price_known_has_no_marks() -> None:
    ax = wb.plots.cost(stored(run(model="a"), run(model="b", kind="embed", output="2 vectors")))
    assert tick_labels(ax) == ["a", "b"]  # embedding calls cost money too
    assert not [p for p in ax.patches if p.get_hatch()] and ax.get_legend() is None


# ---------------------------------------------------------------------- distributions


def test_latency_boxes_per_group_and_ttft_when_streamed() -> None:
    plain = stored(
        *(run(model=m, latency_s=s) for m, s in [("a", 1.0), ("a", 2.0), ("a", 3.0),
                                                  ("b", 0.5), ("c", 0.7)])
    )
    ax = wb.plots.latency(plain)
    assert "(s)" in ax.get_ylabel() and ax.get_title().startswith("Latency by model")
    assert boxes(ax) == 3 and legend_texts(ax) == ["latency"]
    assert dots(ax) == [0.5, 0.7, 1.0, 2.0, 3.0]
    streamed = stored(run(model="c", latency_s=0.9, ttft_s=0.1))
    ax = wb.plots.latency(streamed)
    assert boxes(ax) == 6 and legend_texts(ax) == ["latency", "time to first token"]


def test_replays_are_left_out_of_latency_and_counted_once_elsewhere() -> None:
    first, second = run(latency_s=1.5, output="a b c"), run(latency_s=2.5, output="d e")
    replays = [
        run(request_hash=r.request_hash, cache_hit=True, latency_s=0.0, output=r.output)
        for r in (first, second, first)
    ]
    df = stored(first, second, *replays)
    assert dots(wb.plots.latency(df)) == [1.5, 2.5]
    assert len(dots(wb.plots.length(df))) == 2
    # A replayed sweep holds only replays: each answer still counts once.
    only_replays = df[df["cache_hit"]]
    assert dots(wb.plots.length(only_replays), series=1) == [2.0, 3.0]


def test_length_in_tokens_and_words_by_seed_in_numeric_order() -> None:
    df = stored(
        run(seed=10, output="one two three four", completion_tokens=6),
        run(seed=2, output="one two", completion_tokens=3),
        run(seed=1, output="one", completion_tokens=1),
    )
    ax = wb.plots.length(df, by="seed")
    assert tick_labels(ax) == ["1", "2", "10"]
    assert "tokens" in ax.get_ylabel() and "words" in ax.get_ylabel()
    assert legend_texts(ax) == ["completion tokens", "words"]
    assert boxes(ax) == 6
    assert dots(ax, 0) == [1, 3, 6] and dots(ax, 1) == [1, 2, 4]


# ---------------------------------------------------------------------- grids


def test_heatmap_cells_are_the_pivot_means() -> None:
    df = stored(
        *(
            run(temperature=t, top_p=p, completion_tokens=n)
            for t, p, n in [(0, 0.5, 10), (0, 0.5, 20), (0.7, 0.5, 7), (0, 1.0, 3),
                            (1.2, 1.0, 40), (1.2, 1.0, 41), (None, 1.0, 8)]
        )
    )
    ax = wb.plots.heatmap(df)
    grid = ax.images[0].get_array()
    assert grid.shape == (2, 4)
    pivot = df.pivot_table(index="top_p", columns="temperature", values="completion_tokens",
                           aggfunc="mean")
    for row, top_p in enumerate([0.5, 1.0]):
        for col, temperature in enumerate([0, 0.7, 1.2]):
            expected = pivot.loc[top_p, temperature]
            if pd.isna(expected):
                assert grid.mask[row, col]
            else:
                assert grid[row, col] == pytest.approx(expected)
    assert grid[1, 3] == 8 and grid.mask[0, 3]  # the run without a temperature
    assert tick_labels(ax) == ["0", "0.7", "1.2", "not set"]
    assert tick_labels(ax, "y") == ["0.5", "1"]
    assert ax.get_xlabel() == "temperature" and ax.get_ylabel() == "top_p"
    colorbar = ax.figure.axes[-1]
    assert colorbar.get_ylabel() == "mean completion_tokens (tokens)"
    assert sorted(t.get_text() for t in ax.texts) == sorted(["15", "7", "3", "40.5", "8"])


def test_embeddings_pca_keeps_the_distances_of_three_points() -> None:
    class Embedded:  # any object with texts and vectors, e.g. an %%embed cell's result
        texts = ["a cat", "a kitten", "the stock market"]
        vectors = np.array([[1.0, 0, 0], [0, 2.0, 0], [0, 0, 3.0]])

    ax = wb.plots.embeddings(Embedded())
    points = ax.collections[0].get_offsets()
    assert points.shape == (3, 2)
    # Three points lie in a plane, so two components keep every distance between them.
    for i, j in combinations(range(3), 2):
        original = np.linalg.norm(Embedded.vectors[i] - Embedded.vectors[j])
        assert np.linalg.norm(points[i] - points[j]) == pytest.approx(original)
    assert [t.get_text() for t in ax.texts] == Embedded.texts
    assert ax.get_xlabel().startswith("PC1 (") and "% of variance" in ax.get_ylabel()
    assert "3 texts" in ax.get_title()


def test_embeddings_of_an_embed_response() -> None:
    response = EmbedResponse(
        record=run(kind="embed"), texts=["x", "y"], embeddings=[[3.0, 4.0], [0.0, 2.0]]
    )
    points = wb.plots.embeddings(response).collections[0].get_offsets()
    # Unit vectors (0.6, 0.8) and (0, 1): 2-D PCA keeps their distance.
    assert np.linalg.norm(points[0] - points[1]) == pytest.approx(math.hypot(0.6, 0.2))


# ---------------------------------------------------------------------- scale and files


@pytest.fixture
def big() -> pd.DataFrame:
    """3,000 runs with the store's dtypes: 50 temperatures (and unset), 3 models."""
    base = stored(run(), run(cost_usd=None), run(ttft_s=0.2))
    df = pd.concat([base] * 1000, ignore_index=True)
    n = len(df)
    rng = np.random.default_rng(7)
    temperature = np.round(np.arange(n) % 51 / 25, 2)
    return df.assign(
        request_hash=[f"h{i}" for i in range(n)],
        temperature=np.where(np.arange(n) % 51 == 50, np.nan, temperature),
        top_p=np.where(np.arange(n) % 2 == 0, 0.5, 1.0),
        model=np.array(["a", "b", "c"])[np.arange(n) % 3],
        completion_tokens=pd.array(rng.integers(1, 200, n), dtype="Int64"),
        latency_s=rng.random(n),
    )


@pytest.mark.parametrize(
    "draw",
    [
        lambda df: wb.plots.tokens(df),
        lambda df: wb.plots.cost(df, by="temperature"),
        lambda df: wb.plots.latency(df, by="temperature"),
        lambda df: wb.plots.length(df, by="temperature"),
        lambda df: wb.plots.heatmap(df, x="temperature", y="model"),
    ],
    ids=["tokens", "cost", "latency", "length", "heatmap"],
)
def test_3000_runs_in_51_groups_keep_ticks_readable(big: pd.DataFrame, draw: Any) -> None:
    ax = draw(big)
    labels = tick_labels(ax)
    assert 5 <= len(labels) <= 20
    assert labels[0] == "0" and labels[-1] == "not set"  # thinned, but never the unset group
    assert "3000 runs" in ax.get_title()


def test_many_groups_draw_one_bar_or_box_each(big: pd.DataFrame) -> None:
    assert all(len(c) == 51 for c in wb.plots.tokens(big, hue=None).containers)
    assert boxes(wb.plots.latency(big, by="temperature")) == 2 * 51  # latency and ttft


def test_a_plot_saves_as_png(tmp_path: Path) -> None:
    ax = wb.plots.cost(stored(run(model="a"), run(model="b", cost_usd=None)))
    target = tmp_path / "cost.png"
    ax.figure.savefig(target)
    assert target.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and target.stat().st_size > 5_000


def test_no_runs_still_draws_a_labelled_figure() -> None:
    for draw in (wb.plots.tokens, wb.plots.cost, wb.plots.latency, wb.plots.length,
                 wb.plots.heatmap, wb.plots.diversity, wb.plots.embeddings):
        ax = draw(wb.runs())
        assert ax.get_title()
    assert "no runs to show" in [t.get_text() for t in wb.plots.cost(wb.runs()).texts]


# ---------------------------------------------------------------------- diversity

SAME = "the cat sat on the mat"
VARIED = {1: "a purple fox jumps", 2: "seven silent owls watch the moon", 3: "rain"}


def text_by_knobs(request: Received) -> Reply:
    if request.path.endswith("/embeddings"):
        # A direction that depends on the text's length: equal texts, equal vectors.
        data = [{"object": "embedding", "index": i, "embedding": [float(len(t)), 1.0, 0.5]}
                for i, t in enumerate(request.body["input"])]
        return Reply(body={"object": "list", "model": request.body["model"], "data": data,
                           "usage": {"prompt_tokens": 1, "total_tokens": 1}})
    body = request.body
    text = SAME if body["temperature"] == 0 else VARIED[body["seed"]]
    return chat_reply(text, model=body["model"])


def test_diversity_of_identical_and_of_varied_outputs(
    monkeypatch: pytest.MonkeyPatch, in_tmp_dir: Path
) -> None:
    with LoopbackAPI(text_by_knobs) as server:
        monkeypatch.setenv("OPENAI_BASE_URL", server.base_url)
        monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
        for temperature in (0, 1.0):
            for seed in (1, 2, 3):
                wb.chat("Write a line.", model="gpt-4o-mini", temperature=temperature, seed=seed)
        chats = wb.runs()
        ax = wb.plots.diversity(chats, model="text-embedding-3-small")
        assert server.count("/embeddings") == 1
        wb.plots.diversity(chats, model="text-embedding-3-small")
        assert server.count("/embeddings") == 1  # the vectors came from the table
    assert list(wb.runs()["kind"]).count("embed") == 2  # ...and both calls were logged
    assert tick_labels(ax) == ["0", "1"] and legend_texts(ax) == [
        "distinct-2", "mean cosine distance"]
    distinct, cosine = ([bar.get_height() for bar in c] for c in ax.containers)
    assert distinct[0] == pytest.approx(5 / 15)  # one sentence's 5 word pairs, three times
    assert distinct[1] == 1.0
    assert cosine[0] == pytest.approx(0, abs=1e-9) and cosine[1] > 0.01
    assert "diversity" in ax.get_title().lower()


@pytest.mark.integration
def test_diversity_with_the_local_models(
    monkeypatch: pytest.MonkeyPatch, in_tmp_dir: Path
) -> None:
    monkeypatch.setenv("WORKBENCH_THREADS", "1")
    for temperature in (0.0, 1.5):
        for seed in (1, 2, 3):
            wb.chat("Write one sentence about the sea.", temperature=temperature, seed=seed,
                    max_tokens=24)
    ax = wb.plots.diversity(wb.runs())
    distinct, cosine = ([bar.get_height() for bar in c] for c in ax.containers)
    # Greedy decoding gives one text three times; sampling at 1.5 gives three texts.
    assert cosine[0] == pytest.approx(0, abs=1e-6) and distinct[0] < 0.5
    assert cosine[1] > 0.01 and distinct[1] > distinct[0]


def test_a_bare_plot_cell_shows_the_figure_not_the_axes_repr() -> None:
    from IPython.utils.capture import capture_output
    from testing_shell import open_shell

    stored(run(), run(model="gpt-4o"))
    with open_shell() as shell, capture_output() as shown:
        shell.run_cell("import workbench as wb\nwb.plots.tokens(wb.runs())")
        ax = shell.user_ns.get("_")
    assert "<Axes" not in shown.stdout
    assert [o.data["text/plain"] for o in shown.outputs] == ["<Figure size 750x480 with 1 Axes>"]
    # The PNG once (test_figures.py checks that it reads in both themes).
    assert shown.outputs[0].data["image/png"].startswith("iVBOR")
    assert isinstance(ax, Axes)  # still the Axes, for composition
