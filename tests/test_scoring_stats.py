"""Issue 12's statistics and export: wb.compare_runs, wb.stability, wb.agreement,
wb.plots.paired and wb.export_finetune, checked against hand-computed cases on a real
SQLite store (scores inserted as a scorer or the review panel would store them)."""

from __future__ import annotations

import itertools
import json
import math
from pathlib import Path
from typing import Any

import pytest

import workbench as wb
from workbench.calls.session import get_session
from workbench.core.errors import InvalidInputError
from workbench.core.record import RunRecord
from workbench.decide.agreement import cohen_kappa
from workbench.decide.stability import pass_at_k, pass_hat_k
from workbench.scoring.finetune import validate_example
from workbench.scoring.table import NewScores, write_scores


def add_run(output: str, *, experiment: str, case: Any = None, sample_index: int = 0,
            **fields: Any) -> str:
    record = RunRecord(kind="chat", provider="openai", model="gpt-4o-mini",
                       experiment=experiment, output=output, status="ok",
                       request_hash=f"{experiment}-{case}-{sample_index}",
                       sample_index=sample_index,
                       variables=None if case is None else json.dumps({"q": case}),
                       prompt=f"question {case}", **fields)
    get_session().store.append(record)
    return record.run_id


def put_scores(name: str, values: dict[str, float | None],
               passed: dict[str, bool | None] | None = None) -> None:
    """Store scores as the engine or the review panel does: one scorer id per name."""
    new = NewScores(scorer=name, scorer_id=f"{name}-test")
    for run_id, value in values.items():
        new.run_ids.append(run_id)
        new.values.append(value)
        new.passed.append((passed or {}).get(run_id, None if value is None else value >= 1))
        new.reasons.append("")
        new.judge_run_ids.append(None)
    write_scores(get_session().store, new)


def two_sides(baseline: list[float], candidate: list[float]) -> None:
    """Experiments "base" and "cand": case i scored baseline[i] and candidate[i]."""
    values = {}
    for i, (b, c) in enumerate(zip(baseline, candidate, strict=True)):
        values[add_run(f"b{i}", experiment="base", case=i)] = b
        values[add_run(f"c{i}", experiment="cand", case=i)] = c
    put_scores("contains", values)


def exact_sign_flip_p(diffs: list[float]) -> float:
    """The exact two-sided paired permutation p-value, by enumerating every sign flip."""
    observed = abs(sum(diffs) / len(diffs))
    flips = list(itertools.product((1, -1), repeat=len(diffs)))
    extreme = sum(
        abs(sum(s * d for s, d in zip(signs, diffs, strict=True)) / len(diffs))
        >= observed - 1e-12
        for signs in flips
    )
    return extreme / len(flips)


# ------------------------------------------------------------------------ compare_runs


def test_a_known_difference() -> None:
    two_sides([0, 0, 0, 0, 0], [1, 1, 1, 1, 0])
    result = wb.compare_runs("base", "cand", scorer="contains")
    assert (result.baseline_mean, result.candidate_mean) == (0.0, 0.8)
    assert result.difference == pytest.approx(0.8)
    assert result.pairs == 5
    # By hand: |mean| >= 0.8 needs the four 1s to share a sign: 2 x 2 of 32 flips.
    assert result.p_value == pytest.approx(4 / 32)
    assert result.ci is not None and 0 < result.ci[0] <= 0.8 <= result.ci[1] <= 1
    assert len(result.flipped) == 4
    assert all(f["candidate_passed"] and not f["baseline_passed"] for f in result.flipped)
    assert list(result.df["difference"]) == [1, 1, 1, 1, 0]
    assert result.unpaired_baseline == [] and result.unpaired_candidate == []


def test_the_summary_names_both_sides_reads_cases_and_says_how_to_read_ci_and_p() -> None:
    two_sides([0, 0, 0, 0, 0], [1, 1, 1, 1, 0])
    result = wb.compare_runs("base", wb.runs("cand"), scorer="contains")
    assert (result.baseline_name, result.candidate_name) == ("base", "cand")
    # The interval excludes 0 while p = 0.125: the two methods disagree, and it says so.
    assert result.ci is not None and result.ci[0] > 0 and result.p_value == pytest.approx(0.125)
    page = result._repr_html_()
    assert "base · mean 0" in page and "cand · mean 0.8" in page
    assert "q = 0: fixed" in page and "{" not in page.split("<ul")[1]  # not raw JSON
    assert "two different methods" in page and "here they disagree" in page
    assert "bootstrap" in str(result) and "base" in str(result) and "cand" in str(result)
    two_sides([0] * 10, [1] * 10)  # every case fixed: interval and p both say so
    agreeing = wb.compare_runs("base", "cand", scorer="contains")
    assert "here they agree" in agreeing.reading()


def test_a_win_rate_counts_in_words_with_plurals() -> None:
    import pandas as pd

    from workbench.notebook.review.store import win_rate

    one_each = win_rate(pd.DataFrame({"winner": ["candidate", "baseline", "tie"]}))
    assert "1 win, 1 loss, 1 tie," in str(one_each)
    more = win_rate(pd.DataFrame({"winner": ["candidate"] * 2 + ["baseline"] * 2}))
    assert "2 wins, 2 losses, 0 ties," in str(more)


def test_graded_scores_match_the_enumerated_permutation_test() -> None:
    baseline = [3.0, 2.0, 4.0, 1.0, 5.0, 2.0]
    candidate = [5.0, 3.0, 3.0, 4.0, 5.0, 3.0]
    two_sides(baseline, candidate)
    result = wb.compare_runs("base", "cand", scorer="score:contains")
    diffs = [c - b for b, c in zip(baseline, candidate, strict=True)]
    assert result.difference == pytest.approx(sum(diffs) / 6)
    assert result.p_value == pytest.approx(exact_sign_flip_p(diffs))
    assert result.ci is not None and result.ci[0] < result.difference < result.ci[1]


def test_no_difference() -> None:
    two_sides([0, 1, 0, 1], [1, 0, 1, 0])
    result = wb.compare_runs("base", "cand", scorer="contains")
    assert result.difference == 0
    assert result.p_value == pytest.approx(1.0)
    assert result.ci is not None and result.ci[0] < 0 < result.ci[1]
    assert sorted(f["candidate_passed"] for f in result.flipped) == [False, False, True, True]


def test_all_pairs_identical() -> None:
    two_sides([1, 0, 1], [1, 0, 1])
    result = wb.compare_runs("base", "cand", scorer="contains")
    assert (result.difference, result.ci, result.p_value) == (0.0, (0.0, 0.0), 1.0)
    assert result.flipped == []


def test_one_pair_has_no_interval_or_p_value() -> None:
    two_sides([0], [1])
    result = wb.compare_runs("base", "cand", scorer="contains")
    assert result.difference == 1 and result.pairs == 1
    assert result.ci is None and result.p_value is None
    assert any("one pair" in note for note in result.notes)
    assert "n/a" in result._repr_html_()
    assert "over 1 pair; 1 flipped" in str(result)  # not "1 pairs"


def test_unpaired_runs_are_counted_and_named() -> None:
    two_sides([0, 1], [1, 1])
    extra = add_run("c9", experiment="cand", case=9)
    put_scores("contains", {extra: 1.0})  # same scorer id: adds to the stored scores
    result = wb.compare_runs("base", wb.runs("cand"), scorer="contains")
    assert result.pairs == 2
    assert result.unpaired_candidate == [extra] and result.unpaired_baseline == []
    assert any("1 candidate runs have no partner" in note for note in result.notes)


def test_no_pairs_is_one_clear_line() -> None:
    put_scores("contains", {add_run("a", experiment="base", case=1): 1.0,
                            add_run("b", experiment="cand", case=2): 0.0})
    with pytest.raises(InvalidInputError) as error:
        wb.compare_runs("base", "cand", scorer="contains")
    assert "\n" not in str(error.value) and "same test case" in str(error.value)
    with pytest.raises(InvalidInputError, match="no 'score:judge' scores"):
        wb.compare_runs("base", "cand", scorer="judge")


def test_a_knob_swept_on_both_sides_pairs_runs_with_their_equal() -> None:
    values = {}
    for temperature, b, c in ((0.0, 0.0, 1.0), (1.0, 1.0, 1.0)):
        values[add_run("b", experiment="base", case=1, temperature=temperature)] = b
        values[add_run("c", experiment="cand", case=1, temperature=temperature)] = c
    put_scores("contains", values)
    result = wb.compare_runs("base", "cand", scorer="contains")
    assert result.pairs == 2 and "temperature" in result.paired_on
    by_temperature = dict(zip(result.df["temperature"], result.df["difference"], strict=True))
    assert by_temperature == {0.0: 1.0, 1.0: 0.0}


def test_the_summary_uses_theme_colours_and_the_plot_draws() -> None:
    two_sides([0, 0, 1, 0], [1, 1, 1, 0])
    result = wb.compare_runs("base", "cand", scorer="contains")
    page = result._repr_html_()
    assert "var(--jp-" in page and "#" not in page.replace("&#x27;", "")
    assert "2 fixed, 0 broken" in page
    ax = wb.plots.paired(result)
    assert len(ax.collections[0].get_offsets()) == 4  # one dot per pair
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert labels[1] == "mean +0.5" and labels[2].startswith("95% CI")
    assert "4 pairs" in ax.get_title()


# ------------------------------------------------------------------------ stability


def test_pass_at_k_and_pass_hat_k_by_hand() -> None:
    assert pass_at_k(5, 2, 2) == pytest.approx(7 / 10)  # 10 pairs, 3 with no pass
    assert pass_hat_k(5, 2, 2) == pytest.approx(1 / 10)  # 1 pair of the 2 passes
    assert pass_at_k(3, 0, 1) == 0 and pass_at_k(3, 3, 3) == 1
    with pytest.raises(InvalidInputError, match="k <= the number of repeats"):
        pass_at_k(2, 1, 3)


def test_stability_per_combination() -> None:
    values = {}
    prints = {"A": ["fp1", "fp1", "fp2"], "B": ["fp1", "fp1", "fp1"]}
    outputs = {"A": ["yes", "yes", "no"], "B": ["no", "no", "no"]}
    scores = {"A": [1.0, 1.0, 0.0], "B": [0.0, 0.0, 0.0]}
    for case in ("A", "B"):
        for i in range(3):
            run = add_run(outputs[case][i], experiment="rep", case=case, sample_index=i,
                          temperature=1.0, system_fingerprint=prints[case][i])
            values[run] = scores[case][i]
    values[add_run("once", experiment="rep", case="A", temperature=0.0)] = 1.0
    put_scores("contains", values)
    table = wb.stability("rep", scorer="contains")
    assert len(table) == 1  # temperature 0 has no repeats
    assert "seed" not in table.columns  # no run sent one
    row = table.iloc[0]
    assert (row["temperature"], row["cases"], row["repeats"], row["k"]) == (1.0, 2, 3, 3)
    assert row["pass@k"] == pytest.approx(0.5)  # A: some pass, B: none
    assert row["pass^k"] == 0
    assert row["distinct"] == pytest.approx((2 / 3 + 1 / 3) / 2)
    assert row["score_std"] == pytest.approx(math.sqrt(1 / 3) / 2)
    assert row["drift"] and row["fingerprints"] == 2
    two = wb.stability("rep", scorer="contains", k=2).iloc[0]
    assert two["pass^k"] == pytest.approx((1 / 3 + 0) / 2)
    assert "pass@k" not in wb.stability("rep").columns


def test_stability_without_repeats_says_how_to_get_them() -> None:
    put_scores("contains", {add_run("a", experiment="once", case=1): 1.0})
    with pytest.raises(InvalidInputError, match="repeats=N"):
        wb.stability("once", scorer="contains")


# ------------------------------------------------------------------------ agreement


def test_plain_kappa_by_hand() -> None:
    # p_o = 3/4; chance = 1/2 x 1/4 + 1/2 x 3/4 = 1/2; kappa = (3/4 - 1/2) / (1/2)
    assert cohen_kappa([1, 1, 0, 0], [1, 0, 0, 0]) == pytest.approx(0.5)
    assert cohen_kappa([1, 0], [1, 0]) == 1
    assert math.isnan(cohen_kappa([1, 1], [1, 1]))


def test_quadratic_kappa_by_hand() -> None:
    # weights ((i-j)/2)^2; observed 1/3 x 1/4 = 1/12; by chance 1/4 -> 1 - 1/3
    assert cohen_kappa([1, 2, 3], [1, 2, 2], weights="quadratic") == pytest.approx(2 / 3)


def test_agreement_of_a_judge_and_a_person() -> None:
    runs = [add_run(f"out{i}", experiment="rated", case=i) for i in range(4)]
    put_scores("judge", dict(zip(runs, [1.0, 1.0, 0.0, 0.0], strict=True)))
    put_scores("human", dict(zip(runs, [1.0, 0.0, 0.0, 0.0], strict=True)))
    result = wb.agreement("judge", "human")
    assert result.kappa == pytest.approx(0.5) and result.weights is None and result.n == 4
    # Rows the judge, columns the person, labelled with the verdicts' words.
    assert list(result.confusion.index) == ["fail", "pass"] == list(result.confusion.columns)
    assert result.confusion.loc["pass", "pass"] == 1 and result.confusion.loc["pass", "fail"] == 1
    assert result.confusion.loc["fail", "fail"] == 2
    assert list(result.disagreements["run_id"]) == [runs[1]]
    assert "var(--jp-" in result._repr_html_()


def test_a_graded_judge_against_pass_fail_ratings_compares_verdicts() -> None:
    runs = [add_run(f"out{i}", experiment="rated", case=i) for i in range(4)]
    put_scores("judge", dict(zip(runs, [5.0, 4.0, 2.0, 1.0], strict=True)),
               passed=dict(zip(runs, [True, True, False, False], strict=True)))
    put_scores("human", dict(zip(runs, [1.0, 1.0, 0.0, 0.0], strict=True)))
    result = wb.agreement(data="rated")
    assert result.kappa == 1 and result.disagreements.empty
    assert any("verdicts" in note for note in result.notes)


def test_graded_scales_use_quadratic_weights_and_missing_scorers_are_named() -> None:
    runs = [add_run(f"out{i}", experiment="rated", case=i) for i in range(3)]
    put_scores("judge", dict(zip(runs, [1.0, 2.0, 3.0], strict=True)))
    put_scores("human", dict(zip(runs, [1.0, 2.0, 2.0], strict=True)))
    result = wb.agreement()
    assert result.weights == "quadratic" and result.kappa == pytest.approx(2 / 3)
    with pytest.raises(InvalidInputError, match="no 'nobody' scores"):
        wb.agreement("judge", "nobody")


# ------------------------------------------------------------------------ export_finetune


def chat_run(prompt: str, output: str, *, tool_calls: list[Any] | None = None) -> str:
    messages = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": prompt}]
    return add_run(output, experiment="ft", case=prompt, system="Be brief.",
                   messages=json.dumps(messages),
                   tool_calls=json.dumps(tool_calls) if tool_calls else None)


def test_export_writes_checked_chat_jsonl(tmp_path: Path,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    call = [{"id": "call_1", "type": "function",
             "function": {"name": "lookup", "arguments": "{\"city\": \"Paris\"}"}}]
    good = chat_run("Capital of France?", "Paris")
    tool = chat_run("Weather in Paris?", "", tool_calls=call)
    bad = chat_run("Capital of Spain?", "Lisbon")
    put_scores("human", {good: 1.0, tool: 1.0, bad: 0.0})
    path = tmp_path / "train.jsonl"
    result = wb.export_finetune("ft", path, where="human == pass")
    lines = path.read_text(encoding="utf-8").splitlines()
    examples = [json.loads(line) for line in lines]
    assert len(examples) == 2 == result.examples
    for example in examples:
        assert validate_example(example) is None
        assert [m["role"] for m in example["messages"]] == ["system", "user", "assistant"]
    assert examples[0]["messages"][-1] == {"role": "assistant", "content": "Paris"}
    assert examples[1]["messages"][-1]["tool_calls"] == call
    assert "Lisbon" not in path.read_text(encoding="utf-8")
    assert result.tokens > 0
    assert result.estimated_cost_usd == pytest.approx(result.tokens * 3 * 3.0 / 1e6)
    printed = capsys.readouterr().out
    assert "2 examples" in printed and "an estimate" in printed


def test_export_by_threshold_and_an_unknown_price(tmp_path: Path,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    runs = [chat_run(f"q{i}", f"answer {i}") for i in range(3)]
    put_scores("judge", dict(zip(runs, [5.0, 3.0, 4.0], strict=True)))
    path = tmp_path / "t.jsonl"
    assert wb.export_finetune("ft", path, where="judge >= 4").examples == 2
    result = wb.export_finetune("ft", path, where="judge", threshold=5, model="my-model")
    assert result.examples == 1 and result.estimated_cost_usd is None
    assert "unknown" in capsys.readouterr().out
    with pytest.raises(InvalidInputError, match="not understood"):
        wb.export_finetune("ft", path, where="judge is good")


def test_export_refuses_keys_and_empty_answers_before_writing(tmp_path: Path) -> None:
    leaky = chat_run("Use sk-" + "a" * 40, "ok")
    put_scores("human", {leaky: 1.0})
    path = tmp_path / "k.jsonl"
    with pytest.raises(InvalidInputError, match="OpenAI-style key") as error:
        wb.export_finetune("ft", path)
    assert "sk-aaa" not in str(error.value)
    assert not path.exists()
    assert validate_example({"messages": [{"role": "user", "content": "hi"},
                                          {"role": "assistant", "content": " "}]})
    assert validate_example({"messages": [{"role": "robot", "content": "hi"}]})
