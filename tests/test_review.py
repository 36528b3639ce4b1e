"""The review panel without a browser: its messages are sent to ``handle`` as the widget
would send them; storage is a real SQLite store (the isolated one of conftest)."""

from __future__ import annotations

import json
import sqlite3
from typing import Any

import pytest

import workbench as wb
from workbench.calls.session import get_session
from workbench.core.errors import InvalidInputError
from workbench.core.record import RunRecord
from workbench.notebook.review import ReviewPanel, blind_swap, score_history, win_rate
from workbench.notebook.review.store import read_preferences


def add_run(output: str, *, experiment: str = "exp", item: str | None = None,
            sample_index: int = 0, expected: str | None = None, **variables: Any) -> str:
    record = RunRecord(kind="chat", provider="openai", model="gpt-4o-mini",
                       experiment=experiment, output=output, status="ok",
                       request_hash=f"h-{experiment}-{output}-{sample_index}",
                       sample_index=sample_index, prompt=f"Q about {output}",
                       variables=json.dumps(variables) if variables else None)
    record.item_id = item
    record.expected = expected
    get_session().store.append(record)
    return record.run_id


@pytest.mark.usefixtures("backend")
def test_keyboard_ratings_are_human_scores_in_runs_the_moment_they_are_given() -> None:
    ids = [add_run(text, expected="Paris") for text in ("Paris", "Lyon", "Nice")]
    panel = ReviewPanel("exp", rater="ana")
    panel.widget()
    assert panel.progress == "0 of 3 rated"
    assert panel.card()["expected"] == "Paris" and panel.card()["output"] == "Paris"
    panel.handle({"action": "rate", "value": "pass", "comment": "right"})
    panel.handle({"action": "rate", "value": "fail", "comment": ""})
    assert panel.widget().progress == "2 of 3 rated"  # the widget's trait follows
    runs = wb.runs().set_index("run_id")
    assert runs.loc[ids[0], "score:human"] == 1 and runs.loc[ids[1], "score:human"] == 0
    assert runs["score:human"].isna().sum() == 1
    scores = wb.scores(scorer="human")
    assert set(scores["scorer_id"]) == {"human:ana"}
    assert scores.set_index("run_id").loc[ids[0], "reason"] == "right"


@pytest.mark.usefixtures("backend")
def test_changing_a_rating_replaces_it_and_keeps_the_old_one_with_its_time() -> None:
    run = add_run("Paris")
    panel = ReviewPanel("exp", scale=(1, 5), rater="ana")
    panel.rate(2, "too short")
    panel.back()
    assert panel.card()["rating"] == "your rating: 2"
    panel.handle({"action": "rate", "value": 5, "comment": "fine after all"})
    now = wb.scores(scorer="human")
    assert now[["run_id", "value", "passed", "reason"]].values.tolist() == [
        [run, 5.0, True, "fine after all"]]
    old = score_history(get_session().store, run_id=run)
    assert old[["value", "passed", "reason"]].values.tolist() == [[2.0, False, "too short"]]
    assert old["replaced_at"].iloc[0] >= old["created_at"].iloc[0]


def test_the_default_rater_is_the_os_user(monkeypatch: pytest.MonkeyPatch) -> None:
    add_run("Paris")
    monkeypatch.setattr("getpass.getuser", lambda: "osuser")
    panel = ReviewPanel("exp")
    panel.rate("pass")
    assert wb.scores(scorer="human")["scorer_id"].tolist() == ["human:osuser"]


def test_skip_back_and_the_not_yet_rated_filter() -> None:
    ids = [add_run(text) for text in ("a", "b", "c")]
    panel = ReviewPanel("exp", rater="ana")
    panel.handle({"action": "skip"})
    panel.rate("pass")  # rates b
    panel.handle({"action": "back"})
    assert panel.current is not None and panel.current.run_id == ids[1]
    panel.handle({"action": "filter", "value": "unrated"})
    assert panel.current is not None and panel.current.run_id == ids[0]
    panel.rate("fail")
    assert panel.current is not None and panel.current.run_id == ids[2]
    panel.rate("fail")
    assert panel.progress == "3 of 3 rated"
    panel.show("unrated")
    assert panel.current is None and panel.card()["message"] == "no cases match 'unrated'"


@pytest.mark.usefixtures("backend")
def test_the_judge_disagrees_filter_compares_passed() -> None:
    ids = [add_run(text) for text in ("a", "b", "c")]
    judged = {"a": True, "b": False, "c": True}
    wb.score("exp", lambda output, **_: judged[output])  # a yes/no scorer, the "judge"
    panel = ReviewPanel("exp", rater="ana")
    for verdict in ("pass", "pass", "pass"):
        panel.rate(verdict)
    panel.show("disagree")
    assert panel.current is not None and panel.current.run_id == ids[1]
    panel.skip()
    assert panel.current is not None and panel.current.run_id == ids[1]  # the only one
    assert panel.status == "no more cases after this one"


def test_bad_ratings_show_one_line_in_the_panel_and_store_nothing() -> None:
    add_run("a")
    panel = ReviewPanel("exp", scale=(1, 5), rater="ana")
    panel.widget()
    panel.handle({"action": "rate", "value": 7})
    assert panel.widget().status == "rate a grade from 1 to 5, not 7"
    assert wb.scores().empty
    with pytest.raises(InvalidInputError, match="scale must be"):
        ReviewPanel("exp", scale=(1, 50))


@pytest.mark.usefixtures("backend")
def test_pairwise_pairs_by_test_case_and_sample_and_stores_preferences() -> None:
    base = [add_run(f"b{i}", experiment="base", item=f"case{i}") for i in range(3)]
    cand = [add_run(f"c{i}", experiment="cand", item=f"case{i}") for i in (0, 1)]
    panel = ReviewPanel(pairwise=("base", "cand"), rater="ana")
    assert [(c.run_id, c.other["run_id"]) for c in panel.cases if c.other] == [
        (base[0], cand[0]), (base[1], cand[1])]
    assert panel.progress == "0 of 2 rated (1 runs without a partner left out)"
    card = panel.card()
    assert (card["left"], card["right"]) == ("b0", "c0")  # not blind: baseline left
    panel.handle({"action": "rate", "value": "right"})
    panel.handle({"action": "rate", "value": "tie"})
    stored = read_preferences(get_session().store)
    assert stored[["baseline_run_id", "candidate_run_id", "winner", "rater"]].values.tolist() == [
        [base[0], cand[0], "candidate", "ana"], [base[1], cand[1], "tie", "ana"]]
    result = panel.summary()
    assert (result.wins, result.losses, result.ties, result.rate) == (1, 0, 1, 0.75)


def test_pairwise_pairs_by_variables_when_there_is_no_test_case() -> None:
    add_run("b", experiment="base", city="Paris", sample_index=1)
    add_run("b0", experiment="base", city="Paris", sample_index=0)
    cand = add_run("c", experiment="cand", city="Paris", sample_index=1)
    panel = ReviewPanel(pairwise=("base", "cand"), rater="ana")
    assert [c.other["run_id"] for c in panel.cases if c.other] == [cand]
    assert panel.cases[0].run["output"] == "b"


def test_blind_sides_are_random_per_case_stable_and_rated_as_shown() -> None:
    for i in range(16):
        add_run(f"b{i}", experiment="base", item=f"case{i}")
        add_run(f"c{i}", experiment="cand", item=f"case{i}")
    first = ReviewPanel(pairwise=("base", "cand"), blind=True, rater="ana")
    again = ReviewPanel(pairwise=("base", "cand"), blind=True, rater="ana")
    swaps = [c.swapped for c in first.cases]
    assert swaps == [c.swapped for c in again.cases]  # the same sides every time
    assert 0 < sum(swaps) < len(swaps)  # but not all on one side
    assert swaps == [blind_swap(c.run_id, str(c.other["run_id"])) for c in first.cases
                     if c.other]
    card = first.card()
    assert card["left_label"] == "left"  # blind: no names
    shown_left = card["left"]
    first.rate("left")
    winner = read_preferences(get_session().store)["winner"].iloc[0]
    assert winner == ("candidate" if shown_left.startswith("c") else "baseline")


@pytest.mark.usefixtures("backend")
def test_a_changed_preference_counts_once_and_keeps_its_history() -> None:
    add_run("b", experiment="base", item="x")
    add_run("c", experiment="cand", item="x")
    panel = ReviewPanel(pairwise=("base", "cand"), rater="ana")
    panel.rate("baseline")
    panel.back()
    panel.rate("candidate")
    assert wb.preferences("base", "cand")["winner"].tolist() == ["candidate"]
    assert wb.preferences(history=True)["winner"].tolist() == ["baseline", "candidate"]


def test_win_rate_has_a_wilson_interval_with_ties_as_half() -> None:
    import pandas as pd

    frame = pd.DataFrame({"winner": ["candidate"] * 6 + ["baseline"] * 2 + ["tie"] * 2})
    result = win_rate(frame)
    assert (result.wins, result.losses, result.ties, result.pairs) == (6, 2, 2, 10)
    assert result.rate == pytest.approx(0.7)
    # Wilson 95 % for 7 of 10 (z = 1.959964): 0.3968 to 0.8922, computed by hand.
    assert (result.low, result.high) == (pytest.approx(0.3968, abs=1e-4),
                                         pytest.approx(0.8922, abs=1e-4))
    assert "ties count half" in str(result)
    assert str(win_rate(frame.iloc[:0])) == "no preferences yet"


def test_the_migration_adds_the_review_tables(tmp_path: Any) -> None:
    path = get_session().store.path
    conn = sqlite3.connect(path)
    tables = {n for (n,) in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    assert {"score_history", "preferences"} <= tables
    with pytest.raises(sqlite3.IntegrityError):
        conn.execute("INSERT INTO preferences VALUES ('a', 'b', 'left', 'r', '', 't')")


def test_pairwise_refuses_a_side_with_two_runs_of_one_case() -> None:
    add_run("b", experiment="base", item="x")
    add_run("b2", experiment="base", item="x")  # another knob combination, same case
    add_run("c", experiment="cand", item="x")
    with pytest.raises(InvalidInputError, match="the baseline has more than one run"):
        ReviewPanel(pairwise=("base", "cand"))


def _press(panel: ReviewPanel, action: str, value: Any = None) -> dict[str, Any]:
    """The message the widget's front end sends for a key: it names the run of the card
    it is showing (the card trait, as last synced from Python)."""
    return {"action": action, "value": value, "comment": "",
            "run_id": panel.widget().card.get("run_id")}


def test_a_double_pressed_key_rates_only_the_output_that_was_shown() -> None:
    ids = [add_run(text) for text in ("a", "b", "c")]
    panel = ReviewPanel("exp", rater="ana")
    first, again = _press(panel, "rate", "pass"), _press(panel, "rate", "pass")
    # Both presses left the browser before Python's next card (b) was drawn there.
    panel.handle(first)
    panel.handle(again)
    rated = wb.scores(scorer="human")
    assert rated["run_id"].tolist() == [ids[0]]  # b, never seen, is not rated
    assert panel.current is not None and panel.current.run_id == ids[1]
    assert "ignored" in panel.widget().status
    skip, skip_again = _press(panel, "skip"), _press(panel, "skip")
    panel.handle(skip)
    panel.handle(skip_again)  # the second skip would pass over c unseen
    assert panel.current is not None and panel.current.run_id == ids[2]
    panel.handle(_press(panel, "rate", "fail"))
    assert sorted(wb.scores(scorer="human")["run_id"]) == sorted([ids[0], ids[2]])


def test_a_double_pressed_key_in_pairwise_mode_prefers_only_the_pair_shown() -> None:
    base = [add_run(f"b{i}", experiment="base", item=f"case{i}") for i in range(2)]
    add_run("c0", experiment="cand", item="case0")
    add_run("c1", experiment="cand", item="case1")
    panel = ReviewPanel(pairwise=("base", "cand"), rater="ana")
    first, again = _press(panel, "rate", "left"), _press(panel, "rate", "left")
    panel.handle(first)
    panel.handle(again)
    stored = read_preferences(get_session().store)
    assert stored["baseline_run_id"].tolist() == [base[0]]


def test_the_widget_sends_the_run_id_and_ignores_a_held_key() -> None:
    from workbench.notebook.review.widget import _ESM

    # The front end's half of the contract (a browser test presses the keys for real).
    assert "run_id" in _ESM.split("model.send(")[1].split(")")[0]
    assert "if (event.repeat) return;" in _ESM


def test_a_card_shows_the_variant_the_item_number_and_the_judges_verdict() -> None:
    from workbench.scoring.base import Score

    record = RunRecord(kind="chat", provider="openai", model="gpt-4o-mini", experiment="var",
                       output="Lyon", status="ok", request_hash="h-var", prompt="Capital?",
                       system="Answer in one word.", temperature=0.7, seed=3)
    get_session().store.append(record)
    add_run("Paris", experiment="var")

    def judge(output: str, **_: Any) -> Score:  # a judge that says why
        right = output == "Paris"
        return Score(1.0 if right else 0.0, right, "" if right else "Lyon is not the capital")

    wb.score("var", judge)
    panel = ReviewPanel("var", rater="ana")
    card = panel.card()
    assert card["position"] == "item 1 of 2"
    assert card["variant"] == "gpt-4o-mini · temperature 0.7 · seed 3"
    assert card["system"] == "Answer in one word."
    assert card["verdicts"] == ["judge: fail (0) · Lyon is not the capital"]
    panel.rate("pass")  # the human disagrees with the judge
    panel.rate("pass")
    panel.show("disagree")  # the filter shows the case, and why the judge said otherwise
    card = panel.card()
    assert card["run_id"] == record.run_id and card["position"] == "item 1 of 2"
    assert card["verdicts"] == ["judge: fail (0) · Lyon is not the capital"]


def test_a_pairwise_card_names_each_sides_variant_unless_blind() -> None:
    for experiment, temperature in (("base", 0.0), ("cand", 1.0)):
        record = RunRecord(kind="chat", provider="openai", model="gpt-4o-mini",
                           experiment=experiment, output=f"{experiment} answer", status="ok",
                           request_hash=f"h-{experiment}", prompt="Q", temperature=temperature,
                           system=f"{experiment} system")
        record.item_id = "case0"
        get_session().store.append(record)
    card = ReviewPanel(pairwise=("base", "cand"), rater="ana").card()
    assert (card["left_variant"], card["right_variant"]) == (
        "gpt-4o-mini · temperature 0", "gpt-4o-mini · temperature 1")
    assert (card["left_system"], card["right_system"]) == ("base system", "cand system")
    assert card["position"] == "item 1 of 1"
    blind = ReviewPanel(pairwise=("base", "cand"), blind=True, rater="ana").card()
    assert "left_variant" not in blind and "left_system" not in blind


def test_a_cards_variables_read_as_name_equals_value() -> None:
    add_run("Paris", experiment="vars", country="France", size=3)
    assert ReviewPanel("vars", rater="ana").card()["variables"] == "country = France, size = 3"


def test_a_saved_review_panel_says_what_it_is_where_its_widget_does_not_show() -> None:
    # Opened again without its kernel, the evaluation notebook showed
    # "<workbench.notebook.review.widget.ReviewWidget object at 0x7fe5719ab610>".
    add_run("Paris")
    bundle, _ = ReviewPanel("exp", rater="ana")._repr_mimebundle_()
    assert "application/vnd.jupyter.widget-view+json" in bundle
    assert bundle["text/plain"].startswith("ReviewPanel (a widget"), bundle["text/plain"]
