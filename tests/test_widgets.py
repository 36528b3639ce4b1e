"""The panels without a browser: ipywidgets fire observers and click handlers synchronously,
so setting a value or clicking a button here is what a person does in the notebook."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from loopback import LoopbackAPI, Received, Reply, chat_reply

import workbench as wb
from workbench.notebook.widgets import Playground, SweepPanel, parse_variables


def echo(request: Received) -> Reply:
    body = request.body
    if body["model"] == "broken":
        return Reply(400, {"error": {"message": "model 'broken' does not exist"}})
    text = f"{body['messages'][-1]['content']} t={body.get('temperature')}"
    return chat_reply(text, model=body["model"], prompt_tokens=12, completion_tokens=4)


Start = Callable[[Callable[[Received], Reply]], LoopbackAPI]  # the start_api fixture


@pytest.fixture
def api(start_api: Start) -> LoopbackAPI:
    return start_api(echo)


def chats(api: LoopbackAPI) -> int:
    return api.count("/chat/completions")


def panel(**kwargs: object) -> SweepPanel:
    return SweepPanel("Capital of {{country}}?", models=["gpt-4o-mini", "gpt-4o"], **kwargs)  # type: ignore[arg-type]


def test_the_estimate_follows_every_control(api: LoopbackAPI) -> None:
    p = panel()
    assert "Undefined variable" in p.estimate.value  # {{country}} has no values yet
    p.variables.value = "country = France, Japan"
    assert p.estimate_runs == 2 * 3  # 2 countries x temperature 0, 0.5, 1
    assert "6 runs" in p.estimate.value and "$" in p.estimate.value
    p.temperature.control.value = (0.2, 0.8)
    p.temperature_steps.value = 4
    assert p.estimate_runs == 2 * 4
    assert p.build().grid["temperature"] == [0.2, 0.4, 0.6, 0.8]
    before = p.estimate.value
    p.max_tokens.value = 1_000
    assert p.estimate.value != before  # more completion tokens at most
    p.models.value = ("gpt-4o-mini", "gpt-4o")
    p.seeds.value = "1:3"
    p.repeats.value = 2
    assert p.estimate_runs == 2 * 4 * 2 * 3 * 2
    p.temperature.check.value = False  # unchecked: temperature is not sent at all
    assert p.estimate_runs == 2 * 2 * 3 * 2 and "temperature" not in p.build().grid
    p.seeds.value = "1,x"
    assert "whole numbers" in p.estimate.value
    assert chats(api) == 0  # estimating sends nothing


def test_run_fills_results_and_plot(api: LoopbackAPI) -> None:
    p = panel()
    p.variables.value = "country = France, Japan"
    p.temperature.control.value = (0.0, 1.0)
    p.temperature_steps.value = 2
    p.run_button.click()
    assert p.wait(timeout=30)
    assert chats(api) == 4
    assert p.sweep is not None and p.sweep.progress.state == "done"
    assert p.progress.value == p.progress.max == 4
    assert "4/4 done" in p.status.value
    assert p.table is not None and p.table.shape == (2, 2)
    assert p.table.loc["Japan", "temperature=1"] == "Capital of Japan? t=1.0"
    assert "Capital of Japan? t=1.0" in p.results.value and "<table" in p.results.value
    assert "<svg" in p.plot.value and "currentColor" in p.plot.value  # themed, crisp
    assert not p.run_button.disabled and p.stop_button.disabled
    p.update_estimate()
    assert "4 already in the table" in p.estimate.value
    # Run again: the answers are in the table, nothing is sent
    p.run_button.click()
    assert p.wait(timeout=30) and chats(api) == 4


def test_stop_cancels_the_sweep(start_api: Start) -> None:
    def slow(request: Received) -> Reply:
        reply = echo(request)
        reply.delay_s = 0.3
        return reply

    api = start_api(slow)
    p = panel()
    p.variables.value = "country = " + ", ".join(f"c{i}" for i in range(6))
    p.temperature.check.value = False
    p.concurrency.value = 1
    p.run_button.click()
    assert p.stop_button.disabled is False
    p.stop_button.click()
    assert p.wait(timeout=30)
    assert p.sweep is not None and p.sweep.progress.state == "stopped"
    assert len(wb.runs()) < 6 and chats(api) < 6
    assert "stopped" in p.status.value
    assert "stopped: press Run again to resume" in p.results.value  # not "run the cell"
    assert not p.run_button.disabled


def test_run_again_clears_the_last_sweep_and_stop_shows_only_the_new_one(
    start_api: Start,
) -> None:
    slow = {"delay": 0.0}

    def answer(request: Received) -> Reply:
        reply = echo(request)
        reply.delay_s = slow["delay"]
        return reply

    api = start_api(answer)
    p = panel()
    p.variables.value = "country = France, Japan"
    p.temperature_steps.value = 2
    p.run_button.click()
    assert p.wait(timeout=30) and "temperature=1" in p.results.value and "<svg" in p.plot.value
    first_plot = p.plot.value
    slow["delay"] = 0.5
    p.variables.value = "country = " + ", ".join(f"c{i}" for i in range(8))
    p.concurrency.value = 1
    p.run_button.click()
    # While the new sweep runs, nothing of the last one is shown as if it were this one.
    assert p.results.value == "" and p.plot.value == "" and p.table is None
    p.stop_button.click()
    assert p.wait(timeout=30) and p.sweep is not None and p.sweep.progress.state == "stopped"
    assert "France" not in p.results.value and p.plot.value != first_plot
    assert p.table is None or set(p.table.index) <= {f"c{i}" for i in range(8)}
    assert chats(api) < 4 + 16


def test_run_is_disabled_while_a_field_shows_an_error(api: LoopbackAPI) -> None:
    p = panel()
    assert "Undefined variable" in p.estimate.value and p.run_button.disabled
    p.variables.value = "country = France"
    assert "runs" in p.estimate.value and not p.run_button.disabled
    p.seeds.value = "1,x"
    assert "whole numbers" in p.estimate.value and p.run_button.disabled
    p.seeds.value = "1,2"
    assert not p.run_button.disabled
    p.run_button.click()
    assert p.run_button.disabled or p.wait(0)  # off while running (unless already done)
    p.seeds.value = "1,x"  # a field turns bad during the run: Run stays off after it
    assert p.wait(timeout=30) and p.run_button.disabled
    assert chats(api) == 3 * 2  # 1 country x temperature 0, 0.5, 1 x seeds 1, 2


def test_errors_show_in_the_panel(api: LoopbackAPI) -> None:
    p = panel()
    p.variables.value = "country = France"
    p.models.value = ()
    p.run_button.click()
    assert "Pick at least one model" in p.message.value
    wb.configure(budget=0.000001)
    p.models.value = ("gpt-4o",)
    p.max_tokens.value = 100_000
    p.run_button.click()
    assert "refused before sending" in p.message.value
    assert p.wait(timeout=1) and not p.run_button.disabled
    assert chats(api) == 0


def test_a_failing_sweep_shows_its_error(api: LoopbackAPI) -> None:
    p = SweepPanel("n={{n}}", models=["broken"])
    p.variables.value = "n = 1:12"
    p.temperature.check.value = False
    p.run_button.click()
    assert p.wait(timeout=30)
    assert "does not exist" in p.message.value
    assert p.sweep is not None and p.sweep.progress.state == "failed"


def test_parse_variables() -> None:
    assert parse_variables("a = 1:3\n\n b = x, y ") == {"a": [1, 2, 3], "b": ["x", "y"]}
    with pytest.raises(ValueError, match="line 1"):
        parse_variables("no equals sign")


def test_playground_runs_with_its_knobs(api: LoopbackAPI) -> None:
    g = Playground("Capital of France?", models=["gpt-4o-mini", "gpt-4o"])
    g.stream.value = False
    g.knobs["temperature"].control.value = 0.3
    g.knobs["seed"].check.value = True
    g.knobs["seed"].control.value = 7
    g.run_button.click()
    assert g.wait(timeout=30)
    assert g.message.value == ""
    assert g.text == "Capital of France? t=0.3"
    assert "gpt-4o-mini" in g.footer.value and "12→4 tokens" in g.footer.value
    assert api.received[-1].body["seed"] == 7 and "top_p" not in api.received[-1].body
    g.run_button.click()  # the same again: answered from the table
    assert g.wait(timeout=30)
    assert chats(api) == 1 and "cached" in g.footer.value
    g.model.value = "gpt-4o"
    g.fresh.value = True
    g.run_button.click()
    assert g.wait(timeout=30)
    assert chats(api) == 2


def test_playground_shows_errors(api: LoopbackAPI) -> None:
    g = Playground("hi", models=["broken"])
    g.stream.value = False
    g.run_button.click()
    assert g.wait(timeout=30)
    assert "does not exist" in g.message.value and g.text == ""
    g.prompt.value = " "
    g.run_button.click()
    assert g.wait(timeout=30)
    assert "Write a prompt" in g.message.value


def test_panels_are_exported_lazily() -> None:
    assert wb.SweepPanel is SweepPanel and wb.Playground is Playground
    assert callable(wb.sweep) and wb.Sweep.__name__ == "Sweep"


@pytest.mark.integration
def test_playground_streams_from_the_local_model(in_tmp_dir: Path) -> None:
    g = Playground("Say hello.")
    assert g.model.value == "smollm2-135m-instruct"
    g.knobs["max_tokens"].control.value = 8
    g.knobs["temperature"].control.value = 0.0
    g.run_button.click()
    assert g.wait(timeout=30)
    assert g.text.strip() and "error" not in g.message.value
    if g.response.finish_reason == "length":  # 8 tokens: most likely cut, and said so
        assert "cut at 8 tokens" in g.message.value
    assert g.text == g.response.text and "local" not in g.message.value


def test_import_workbench_loads_neither_sweeps_nor_widgets_nor_pandas() -> None:
    # pandas (with numpy and pyarrow) took ~0.5 s of `%load_ext workbench` when the
    # store's package file imported its backends eagerly.
    code = (
        "import sys, workbench\n"
        "heavy = ('workbench.sweeps.sweep', 'workbench.notebook.widgets', 'ipywidgets',"
        " 'tqdm', 'jinja2', 'pandas', 'numpy', 'pyarrow')\n"
        "print([m for m in heavy if m in sys.modules])"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


@pytest.mark.integration
def test_playground_run_is_disabled_while_generating_and_stop_ends_a_stream(
    in_tmp_dir: Path,
) -> None:
    g = Playground("Tell me a long story about a lighthouse.")
    g.knobs["max_tokens"].control.value = 64
    seen: list[tuple[bool, bool]] = []
    shown = g._delta

    def delta(text: str) -> None:  # Stop pressed as the first words arrive
        seen.append((g.run_button.disabled, g.stop_button.disabled))
        g.stop()
        shown(text)

    g._delta = delta  # type: ignore[method-assign]
    g.run_button.click()
    assert g.wait(timeout=30)
    assert seen, g.message.value
    assert seen[0] == (True, False)  # Run off, Stop on, while generating
    assert "stopped" in g.message.value and "var(--jp-warn-color0)" in g.message.value
    assert not g.run_button.disabled and g.stop_button.disabled
    assert "#b00020" not in g.message.value and 'class="wb-' not in g.answer.value


def test_playground_refuses_an_undefined_variable_as_chat_does(api: LoopbackAPI) -> None:
    from testing_shell import open_shell

    with open_shell() as shell:  # the notebook whose variables the templates read
        refuse_then_fill(api, shell)


def refuse_then_fill(api: LoopbackAPI, shell: Any) -> None:
    g = Playground("Tell me about {{thing}}.", models=["gpt-4o-mini"])
    g.stream.value = False
    g.run_button.click()
    assert g.wait(timeout=30)
    assert chats(api) == 0 and g.text == ""  # nothing sent, nothing shown as an answer
    message = g.message.value
    assert "Undefined variable thing in the prompt: define thing in the notebook first" in message
    assert message.count("⚠") == 1 and "<br" not in message  # one line
    shell.user_ns["thing"] = "lighthouses"  # defined: filled as %%chat fills it
    g.run_button.click()
    assert g.wait(timeout=30)
    assert api.received[-1].body["messages"][-1]["content"] == "Tell me about lighthouses."
    row = wb.runs().iloc[-1]  # the table keeps the template and its values, as for %%chat
    assert row["template"] == "Tell me about {{thing}}." and "lighthouses" in row["variables"]


def test_a_saved_panel_says_what_it_is_where_its_widget_does_not_show(api: LoopbackAPI) -> None:
    # Opened again without its kernel (Lab restores no widget by default; GitHub never),
    # the sweeps notebook showed ipywidgets' text: "VBox(children=(Textarea(value='Write…".
    bundle = panel()._repr_mimebundle_()
    assert "application/vnd.jupyter.widget-view+json" in bundle
    assert bundle["text/plain"].startswith("SweepPanel (a widget"), bundle["text/plain"]
