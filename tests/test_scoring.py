"""Scorers, the scores table and wb.score, on a real SQLite store (and a loopback judge)."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from loopback import Received, Reply, chat_reply

import workbench as wb
from workbench.calls.session import get_session
from workbench.core.errors import BudgetExceededError, InvalidInputError
from workbench.core.record import RunRecord
from workbench.scoring.base import Item, Score
from workbench.scoring.judge import parse_verdict
from workbench.store import SQLiteStore
from workbench.store.migrations import MIGRATIONS

S = wb.scorers


def verdict(scorer: Any, output: str, **item: Any) -> Score:
    return scorer.score(Item(output=output, **item))


def add_run(output: str | None, *, experiment: str = "exp", status: str = "ok",
            expected: str | None = None, **fields: Any) -> str:
    record = RunRecord(kind="chat", provider="openai", model="gpt-4o-mini",
                       experiment=experiment, output=output, status=status,  # type: ignore[arg-type]
                       request_hash=f"h-{output}", **fields)
    if expected is not None and hasattr(record, "expected"):
        record.expected = expected  # the datasets migration's column
    get_session().store.append(record)
    return record.run_id


# ---------------------------------------------------------------- built-in scorers


def test_contains_ignores_case_unless_asked() -> None:
    assert verdict(S.contains("paris"), "It is PARIS.") == Score(1.0, True, "contains 'paris'")
    assert verdict(S.contains("paris", case=True), "It is PARIS.").passed is False
    assert verdict(S.contains("paris"), "Lyon").reason == "does not contain 'paris'"
    with pytest.raises(InvalidInputError, match="non-empty"):
        S.contains("")
    assert verdict(S.contains(), "It is Paris.", expected="paris").passed is True
    assert verdict(S.contains(), "Lyon", expected="Paris").reason == "does not contain 'Paris'"
    assert verdict(S.contains(), "Lyon").value is None


def test_regex_searches_and_rejects_a_bad_pattern() -> None:
    assert verdict(S.regex(r"\b\d{4}\b"), "in 1969 it").passed is True
    assert verdict(S.regex(r"^\d+$"), "12a").passed is False
    with pytest.raises(InvalidInputError, match="not a valid pattern"):
        S.regex("(")


def test_equals_normalizes_and_reads_the_runs_expected_answer() -> None:
    assert verdict(S.equals("Paris"), "  paris. ").passed is True
    assert verdict(S.equals("Paris", normalize=False), "paris").passed is False
    assert verdict(S.equals(), "Rome", expected="rome").passed is True
    missing = verdict(S.equals(), "Rome")
    assert missing.value is None and "no expected answer" in missing.reason


def test_one_of_and_is_json() -> None:
    assert verdict(S.one_of(["yes", "no"]), "Yes.").passed is True
    assert verdict(S.one_of(["yes", "no"]), "maybe").passed is False
    assert verdict(S.is_json(), '{"a": [1, 2]}').passed is True
    assert verdict(S.is_json(), "{'a': 1}").passed is False
    with pytest.raises(InvalidInputError, match="non-empty list"):
        S.one_of("yes")


def test_json_schema_from_a_dict_and_from_pydantic() -> None:
    import pydantic

    class City(pydantic.BaseModel):
        name: str
        population: int

    schema = {"type": "object", "required": ["name"], "properties": {"name": {"type": "string"}}}
    assert verdict(S.json_schema(schema), '{"name": "Oslo"}').passed is True
    wrong = verdict(S.json_schema(City), '{"name": "Oslo", "population": "many"}')
    assert wrong.passed is False and "population" in wrong.reason
    assert "not valid JSON" in verdict(S.json_schema(City), "Oslo").reason
    with pytest.raises(InvalidInputError, match="not a valid JSON schema"):
        S.json_schema({"type": 12})


def test_length_in_words_and_tokens() -> None:
    assert verdict(S.length(min_words=2, max_words=3), "one two").passed is True
    too_long = verdict(S.length(max_words=3), "one two three four")
    assert too_long.passed is False and "4 words > 3" in too_long.reason
    assert verdict(S.length(max_tokens=2), "a b c d e f g h").passed is False
    with pytest.raises(InvalidInputError, match="needs"):
        S.length()


def test_a_function_is_a_scorer_named_after_it() -> None:
    def short(output: str) -> bool:
        return len(output) < 5

    def overlap(output: str, *, expected: str | None = None, vars: Any = None) -> float:
        return float(expected in output) + len(vars)

    from workbench.scoring.base import as_scorer

    scorer = as_scorer(short)
    assert scorer.name == "short" and scorer.id.startswith("short:")
    assert verdict(scorer, "hey") == Score(1.0, True, "")
    assert verdict(as_scorer(overlap), "a b", expected="b", vars={"x": 1}).value == 2.0
    assert as_scorer(lambda o: Score(0.5, None, "half")).score(Item("x")).reason == "half"


def test_the_id_follows_the_definition_and_names_can_be_given() -> None:
    assert S.contains("a").id == S.contains("a").id
    assert S.contains("a").id != S.contains("b").id
    assert S.judge("Is it kind?").id != S.judge("Is it polite?").id
    assert S.contains("a", name="has_a").id.startswith("has_a:")
    with pytest.raises(InvalidInputError, match="both named 'contains'"):
        wb.score(pd.DataFrame({"run_id": [], "output": []}), [S.contains("a"), S.contains("b")])


# ---------------------------------------------------------------- judge parsing


@pytest.mark.parametrize(
    ("answer", "grade"),
    [
        ('{"score": 4, "reason": "mostly right"}', 4.0),
        ('Here you go:\n```json\n{"score": 2, "reason": "wrong city"}\n```', 2.0),
        ('{"score": 5, "reason": "The answer is corr', 5.0),  # cut off by max_tokens
        ("Score: 3\nReason: vague", 3.0),
        ("I would give it 4/5.", 4.0),
        ("5", 5.0),
    ],
)
def test_judge_answers_that_can_be_read(answer: str, grade: float) -> None:
    value, _ = parse_verdict(answer, (1, 5))
    assert value == grade


@pytest.mark.parametrize(
    "answer",
    ['{"score": 9, "reason": "great"}', "It is good, maybe 3 or 4.", "", "<html>oops</html>",
     '{"verdict": "excellent"}'],
)
def test_judge_answers_that_cannot_be_read_are_none_with_the_reason(answer: str) -> None:
    value, reason = parse_verdict(answer, (1, 5))
    assert value is None and "unreadable verdict" in reason


def test_pass_fail_answers() -> None:
    assert parse_verdict('{"score": "pass", "reason": "ok"}', None) == (1.0, "ok")
    assert parse_verdict("FAIL - it invents a city", None)[0] == 0.0
    assert parse_verdict("pass or fail, hard to say", None)[0] is None


# ---------------------------------------------------------------- the table and wb.score


def test_the_migration_adds_the_scores_table_to_an_existing_store(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("CREATE TABLE schema_migrations (name TEXT PRIMARY KEY, applied_at TEXT)")
    for name, migration in MIGRATIONS:
        if name != "m007_scores":
            migration(conn)
            conn.execute("INSERT INTO schema_migrations VALUES (?, '2026-01-01T00:00:00+00:00')",
                         (name,))
    conn.close()
    with SQLiteStore(path) as store:
        store.append(RunRecord(kind="chat", provider="p", model="m"))
    conn = sqlite3.connect(path)
    columns = [row[1] for row in conn.execute("PRAGMA table_info(scores)")]
    assert columns == ["run_id", "scorer", "scorer_id", "value", "passed", "reason",
                       "judge_run_id", "created_at"]
    names = [n for (n,) in conn.execute("SELECT name FROM schema_migrations ORDER BY rowid")]
    assert names[-1] == "m007_scores"
    assert conn.execute("SELECT COUNT(*) FROM runs").fetchone() == (1,)


@pytest.mark.usefixtures("backend")
def test_score_stores_and_rescoring_computes_nothing_already_stored() -> None:
    ids = [add_run(text) for text in ("Paris", "Lyon", '{"a": 1}')]
    add_run(None, status="error")  # a failed run has nothing to score
    calls: list[str] = []

    def counted(output: str) -> bool:
        calls.append(output)
        return "a" in output

    first = wb.score("exp", [S.contains("paris"), counted])
    assert len(first) == 6 and set(first.run_id) == set(ids)
    assert list(first.columns) == ["run_id", "scorer", "scorer_id", "value", "passed", "reason",
                                   "judge_run_id", "created_at"]
    again = wb.score("exp", [S.contains("paris"), counted])
    assert len(calls) == 3  # nothing computed the second time
    pd.testing.assert_frame_equal(
        first.sort_values(["scorer", "run_id"]).reset_index(drop=True),
        again.sort_values(["scorer", "run_id"]).reset_index(drop=True),
    )
    wb.score("exp", counted, fresh=True)
    assert len(calls) == 6

    table = wb.runs(experiment="exp")
    by_output = table.set_index("output")
    assert by_output.loc["Paris", "score:contains"] == 1.0
    assert by_output.loc["Lyon", "score:contains"] == 0.0
    assert by_output.loc["Lyon", "score:counted"] == 0.0
    assert pd.isna(table.loc[table.status.eq("error"), "score:contains"]).all()
    assert len(wb.scores()) == 6 and len(wb.scores(scorer="counted")) == 3


@pytest.mark.usefixtures("backend")
def test_a_changed_definition_is_a_new_scorer_and_the_old_scores_stay() -> None:
    add_run("Paris")
    wb.score("exp", S.contains("paris"))
    wb.score("exp", S.contains("lyon"))
    assert len(wb.scores()) == 2
    assert wb.runs()["score:contains"].tolist() == [0.0]  # the latest definition shows


def test_a_scorer_that_raises_scores_none_naming_the_scorer_and_run() -> None:
    good, bad = add_run("fine"), add_run("boom")

    def fragile(output: str) -> bool:
        if output == "boom":
            raise ValueError("cannot cope")
        return True

    with pytest.warns(RuntimeWarning, match="fragile failed"):
        out = wb.score("exp", fragile).set_index("run_id")
    assert out.loc[good, "passed"]
    assert pd.isna(out.loc[bad, "value"])
    assert out.loc[bad, "reason"] == (
        f"scorer fragile failed on run {bad}: ValueError: cannot cope"
    )


def test_scoring_a_dataframe_and_bad_data() -> None:
    add_run("Paris")
    assert wb.score(wb.runs(), S.contains("Paris"))["passed"].tolist() == [True]
    with pytest.raises(InvalidInputError, match="has no runs"):
        wb.score("nope", S.is_json())
    with pytest.raises(InvalidInputError, match="not a scorer"):
        wb.score("exp", "contains")
    with pytest.raises(InvalidInputError, match="takes a Sweep"):
        wb.score(42, S.is_json())


@pytest.mark.usefixtures("backend")
def test_check_passes_and_fails_in_one_line() -> None:
    for text in ("Paris", "Paris", "Lyon", "Paris"):
        add_run(text, experiment="new")
    for text in ("Paris", "Paris", "Paris", "Paris"):
        add_run(text + " ", experiment="old")
    for name in ("new", "old"):
        wb.score(name, S.contains("paris"))
    wb.check("new", scorer="contains", min_score=0.5)
    with pytest.raises(AssertionError) as failed:
        wb.check("new", scorer="contains", baseline="old", max_drop=0.1)
    message = str(failed.value)
    assert "\n" not in message
    assert message.startswith("contains: candidate mean 0.75")
    assert "baseline mean 1" in message and "difference -0.25" in message
    with pytest.raises(AssertionError, match="below min_score 0.9"):
        wb.check("new", scorer="contains", min_score=0.9)
    with pytest.raises(InvalidInputError, match="no 'score:judge' scores"):
        wb.check("new", scorer="judge", min_score=1)


# ---------------------------------------------------------------- the judge, on loopback


def grader(answer: str) -> Any:
    def handler(request: Received) -> Reply:
        return chat_reply(answer, model=request.body["model"], prompt_tokens=50,
                          completion_tokens=10)

    return handler


@pytest.mark.usefixtures("backend")
def test_judge_calls_are_rows_linked_by_judge_run_id_and_replayed(start_api: Any) -> None:
    api = start_api(grader('{"score": 4, "reason": "right city, no detail"}'))
    run = add_run("Paris", prompt="Capital of France?")
    rubric = S.judge("Grade the answer to {{input}}: {{output}}", model="gpt-4o-mini",
                     threshold=3)
    out = wb.score("exp", rubric)
    assert out[["value", "passed", "reason"]].values.tolist() == [[4.0, True,
                                                                   "right city, no detail"]]
    judged = wb.runs(experiment="exp:judge")
    assert len(judged) == 1 and judged.run_id[0] == out.judge_run_id[0]
    assert judged.temperature[0] == 0 and judged.seed[0] == 0
    body = api.received[-1].body
    assert body["response_format"]["type"] == "json_schema"
    assert "Capital of France?" in body["messages"][1]["content"]
    assert judged.cost_usd[0] > 0

    wb.score("exp", rubric)  # stored: nothing sent
    assert api.count("/chat/completions") == 1
    wb.score("exp", rubric, fresh=True)
    assert api.count("/chat/completions") == 2
    assert wb.runs()["score:judge"].dropna().tolist() == [4.0]
    assert run in set(wb.scores().run_id)


def test_an_unreadable_judge_answer_is_a_none_score(start_api: Any) -> None:
    start_api(grader("I cannot grade this."))
    add_run("Paris")
    out = wb.score("exp", S.judge("Correct?", model="gpt-4o-mini"))
    assert pd.isna(out.value[0]) and "unreadable verdict" in out.reason[0]
    assert out.judge_run_id[0] is not None


def test_a_judge_over_budget_is_refused_before_sending(start_api: Any) -> None:
    api = start_api(grader('{"score": 4, "reason": "ok"}'))
    for text in ("a", "b", "c"):
        add_run(text)
    with pytest.raises(BudgetExceededError, match="refused before sending"):
        wb.score("exp", S.judge("Correct?", model="gpt-4o-mini"), budget=1e-7)
    assert api.count("/chat/completions") == 0


def test_a_server_without_structured_output_gets_plain_json(start_api: Any) -> None:
    def handler(request: Received) -> Reply:
        if "response_format" in request.body:
            return Reply(400, {"error": {"message": "response_format is not supported"}})
        return chat_reply('{"score": "pass", "reason": "fine"}', model="m-plain")

    api = start_api(handler)
    add_run("Paris")
    out = wb.score("exp", S.judge("Correct?", model="m-plain", scale="pass/fail"))
    assert out.passed.tolist() == [True]
    assert [("response_format" in r.body) for r in api.received] == [True, False]
    last = json.loads(wb.runs(experiment="exp:judge").params.iloc[-1])
    assert "response_format" not in last


def embedder(request: Received) -> Reply:
    """Two-dimensional vectors: texts naming Paris point one way, the rest another."""
    texts = request.body["input"]
    vectors = [[1.0, 0.0] if "paris" in t.lower() else [0.6, 0.8] for t in texts]
    return Reply(body={
        "object": "list",
        "model": request.body["model"],
        "data": [{"object": "embedding", "index": i, "embedding": v}
                 for i, v in enumerate(vectors)],
        "usage": {"prompt_tokens": 3 * len(texts), "total_tokens": 3 * len(texts)},
    })


def test_similar_is_the_cosine_to_the_reference_through_logged_embed_calls(
    start_api: Any,
) -> None:
    api = start_api(embedder)
    near, far = add_run("Paris, of course"), add_run("Lyon")
    add_run("no reference", experiment="other")
    out = wb.score("exp", S.similar(expected="Paris", threshold=0.7,
                                    model="text-embedding-3-small")).set_index("run_id")
    assert out.loc[near, "value"] == pytest.approx(1.0) and out.loc[near, "passed"]
    assert out.loc[far, "value"] == pytest.approx(0.6) and not out.loc[far, "passed"]
    assert out.loc[far, "reason"] == "cosine 0.600 < 0.7"
    logged = wb.runs(experiment="exp:judge")
    assert list(logged.kind) == ["embed"] and out.loc[near, "judge_run_id"] == logged.run_id[0]
    wb.score("exp", S.similar(expected="Paris", threshold=0.7, model="text-embedding-3-small"))
    assert api.count("/embeddings") == 1  # stored: nothing embedded again
    missing = wb.score("other", S.similar(model="text-embedding-3-small"))
    assert pd.isna(missing.value[0]) and "no expected answer" in missing.reason[0]


# ---------------------------------------------------------------- sweeps with scorers


def answer_or_grade(request: Received) -> Reply:
    body = request.body
    if "response_format" in body:  # the judge
        return chat_reply('{"score": 5, "reason": "fine"}', model=body["model"],
                          prompt_tokens=80, completion_tokens=12)
    text = f"The capital is {body['messages'][-1]['content']}"
    return chat_reply(text, model=body["model"], prompt_tokens=20, completion_tokens=5)


@pytest.mark.usefixtures("backend")
def test_a_sweep_scores_each_run_and_its_estimate_counts_the_judge(start_api: Any) -> None:
    api = start_api(answer_or_grade)
    grade = S.judge("Is it right?", model="gpt-4o-mini")
    plain = wb.sweep("{{city}}", vars={"city": ["Paris", "Rome"]}, model="gpt-4o-mini",
                     max_tokens=10, experiment="caps")
    judged = wb.sweep("{{city}}", vars={"city": ["Paris", "Rome"]}, model="gpt-4o-mini",
                      max_tokens=10, experiment="caps", scorers=[S.contains("paris"), grade])
    bare, with_judge = plain.estimate(), judged.estimate()
    # One judge call per run, counted apart from the runs ("2 runs + 2 judge calls").
    assert (with_judge.runs, with_judge.judge_calls) == (bare.runs, 2)
    assert with_judge.cost_expected > bare.cost_expected

    df = judged.run(progress=False)
    assert df["score:contains"].tolist() == [1.0, 0.0]
    assert df["score:judge"].tolist() == [5.0, 5.0]
    assert len(wb.runs(experiment="caps:judge")) == 2
    sent = api.count("/chat/completions")
    assert sent == 4

    again = wb.sweep("{{city}}", vars={"city": ["Paris", "Rome"]}, model="gpt-4o-mini",
                     max_tokens=10, experiment="caps", scorers=[S.contains("paris"), grade])
    again.run(progress=False)
    assert api.count("/chat/completions") == sent  # nothing asked again, nothing judged again
    assert len(wb.scores()) == 4


def test_a_scorer_that_raises_does_not_stop_the_sweep(start_api: Any) -> None:
    start_api(answer_or_grade)

    def picky(output: str) -> bool:
        if "Rome" in output:
            raise KeyError("rome")
        return True

    s = wb.sweep("{{city}}", vars={"city": ["Paris", "Rome"]}, model="gpt-4o-mini",
                 max_tokens=10, scorers=picky)
    with pytest.warns(RuntimeWarning, match="picky failed"):
        df = s.run(progress=False)
    assert (df.status == "ok").all()
    assert df["score:picky"].tolist()[0] == 1.0 and pd.isna(df["score:picky"].tolist()[1])
    reasons = wb.scores(scorer="picky").reason.tolist()
    assert any(r.startswith("scorer picky failed on run ") and "KeyError" in r for r in reasons)


def test_bad_scorers_are_refused_before_a_sweep_sends_anything(start_api: Any) -> None:
    api = start_api(answer_or_grade)
    with pytest.raises(InvalidInputError, match="is not a scorer"):
        wb.sweep("{{city}}", vars={"city": ["Paris"]}, scorers=["contains"])
    assert api.count() == 0


# ---------------------------------------------------------------- plots and intervals


def scored_grid() -> None:
    for temperature, texts in ((0.0, ["Paris", "Paris", "Paris", "Lyon"]),
                               (1.0, ["Rome", "Lyon", "Paris", "Nice"])):
        for i, text in enumerate(texts):
            add_run(f"{text} {i} {temperature}", temperature=temperature, seed=i,
                    cost_usd=0.001 * (1 + temperature))
    wb.score("exp", [S.contains("paris"), S.length(max_words=3)])


def test_the_score_plot_shows_pass_rates_with_intervals() -> None:
    scored_grid()
    ax = wb.plots.scores(wb.runs(), by="temperature", scorer="contains")
    heights = [bar.get_height() for bar in ax.patches]
    assert heights == [0.75, 0.25]
    assert ax.get_ylabel() == "pass rate" and "95% CI" in ax.get_title()
    assert len(ax.lines) + len(ax.collections) > 0  # the error bars
    both = wb.plots.scores(wb.runs(), by="temperature")
    assert [t.get_text() for t in both.get_legend().get_texts()] == ["contains", "length"]
    with pytest.raises(InvalidInputError, match="no 'score:judge' column"):
        wb.plots.scores(wb.runs(), scorer="judge")


def test_pareto_marks_the_front_and_heatmap_takes_scores() -> None:
    from workbench.notebook.plots.scores import pareto_front

    assert pareto_front([1, 2, 3, 4], [0.5, 0.4, 0.9, 0.9]) == [0, 2]
    scored_grid()
    ax = wb.plots.pareto(wb.runs(), quality="contains", cost="cost_usd")
    front = [line for line in ax.lines if line.get_label() == "Pareto front"]
    assert len(front) == 1 and list(front[0].get_xdata()) == [0.001]
    grid = wb.plots.heatmap(wb.runs(), x="temperature", y="seed", value="score:contains")
    assert "score:contains" in grid.get_title()


def test_intervals() -> None:
    from workbench.decide.stats import difference_interval, mean_interval, t_975, wilson_interval

    # Student's t table values (NIST/SEMATECH e-Handbook, table 1.3.6.7.2, 0.975 column)
    assert round(t_975(10), 3) == 2.228 and round(t_975(200), 3) == 1.972
    assert round(t_975(1), 3) == 12.706 and round(t_975(29), 3) == 2.045
    assert 2.228 > t_975(10.5) > 2.201  # Welch's fractional degrees of freedom
    assert t_975(0.5) == float("inf")
    m = mean_interval([1.0, 2.0, 3.0])
    assert m.estimate == 2.0 and abs(m.high - 4.484) < 0.01
    w = wilson_interval(0, 10)
    assert w.low == 0.0 and 0.27 < w.high < 0.28
    d = difference_interval([1.0, 1.0, 0.0, 1.0], [0.0, 0.0, 1.0, 0.0])
    assert d.estimate == 0.5 and d.low < 0 < d.high


# ---------------------------------------------------------------- the real local model


@pytest.mark.integration
def test_a_judged_sweep_on_the_local_model() -> None:
    cases = [{"question": "What is the capital of France?", "expected": "Paris"},
             {"question": "What colour is the sky on a clear day?", "expected": "Blue"}]
    grade = S.judge("Does the answer agree with the reference {{expected}}?", max_tokens=40)
    s = wb.sweep("{{question}}", vars=cases, grid={"temperature": [0, 1]}, seed=1,
                 max_tokens=16, experiment="judged", scorers=[S.contains(), grade])
    df = s.run(progress=False)
    assert len(df) == 4 and (df.status == "ok").all()
    assert df["score:contains"].notna().all()
    judge_rows = wb.runs(experiment="judged:judge")
    assert len(judge_rows) == 4 and (judge_rows.temperature == 0).all()
    stored = wb.scores(scorer="judge")
    assert len(stored) == 4 and set(stored.judge_run_id) == set(judge_rows.run_id)
    for value, reason in zip(stored.value, stored.reason, strict=True):
        # the small model's grades are weak, but each is on the scale or says why not
        assert (1 <= value <= 5) or (pd.isna(value) and "could not read" in reason)

    wb.sweep("{{question}}", vars=cases, grid={"temperature": [0, 1]}, seed=1, max_tokens=16,
             experiment="judged", scorers=[S.contains(), grade]).run(progress=False)
    assert len(wb.runs(experiment="judged:judge")) == 4  # replayed: not judged again
    wb.check(s, scorer="contains", min_score=0)


@pytest.mark.usefixtures("backend")
def test_scores_stored_by_another_connection_are_not_computed_again() -> None:
    from workbench.calls.session import Session
    from workbench.scoring.engine import score

    calls: list[str] = []

    def counted(output: str) -> bool:
        calls.append(output)
        return True

    add_run("a")
    wb.score("exp", counted)
    other = Session()  # another kernel on the same file
    other.configure(store=get_session().store_target)
    add_run("b")
    score("exp", counted, session=other)
    assert calls == ["a", "b"]
    out = wb.score("exp", counted)  # this process's memory is stale: it must notice
    assert calls == ["a", "b"] and len(out) == 2
    other.close_store()


@pytest.mark.usefixtures("backend")
def test_equals_reads_the_expected_answer_of_a_dataset_sweep(start_api: Any) -> None:
    start_api(answer_or_grade)  # answers "The capital is <question>"
    cases = [{"q": "Paris", "answer": "The capital is Paris"},
             {"q": "Rome", "answer": "Madrid"}]
    s = wb.sweep("{{q}}", vars=cases, expected="answer", model="gpt-4o-mini", max_tokens=5,
                 scorers=[S.equals(), S.contains()])
    df = s.run(progress=False)
    assert df["score:equals"].tolist() == [1.0, 0.0]
    assert df["score:contains"].tolist() == [1.0, 0.0]
