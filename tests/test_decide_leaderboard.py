"""wb.leaderboard on a sweep whose true pass rates are set by a loopback server."""

from __future__ import annotations

from typing import Any

import pytest
from decide_server import PassRateServer

import workbench as wb


def sweep_of(start_api: Any, rates: dict[str, float], cases: int, repeats: int = 1,
             **server: Any) -> Any:
    api = start_api(PassRateServer({("gpt-4o-mini", s): r for s, r in rates.items()},
                                   **server))
    s = wb.sweep("Question {{i}}", vars={"i": list(range(cases))},
                 grid={"system": list(rates)}, model="gpt-4o-mini", max_tokens=5,
                 repeats=repeats, scorers=[wb.scorers.contains("yes")])
    s.run(progress=False)
    api.received.clear()
    return s


def test_the_better_variant_is_found_and_the_equal_one_is_not(start_api: Any) -> None:
    s = sweep_of(start_api, {"Be brief.": 0.5, "Be kind.": 0.5, "Think first.": 0.9}, 80)
    board = wb.leaderboard(s, scorer="contains", baseline={"system": "Be brief."})
    assert board.better == ["system='Think first.'"]
    top = board.df.iloc[0]
    assert top["difference"] == pytest.approx(0.4, abs=0.08)  # shared draws: exactly the gap
    assert top["low"] > 0
    same = board.df[board.df["variant"] == "system='Be kind.'"].iloc[0]
    assert same["difference"] == 0 and same["decision"] == ""
    assert "Think first." in board.summary() and "decidedly better" in board.summary().lower()
    assert list(board.df["difference"]) == sorted(board.df["difference"], reverse=True)


def test_holm_intervals_are_wider_than_one_comparison(start_api: Any) -> None:
    from scipy import stats
    from statsmodels.stats.multitest import multipletests

    rates = {"base": 0.5, **{f"v{i}": 0.6 for i in range(5)}}
    s = sweep_of(start_api, rates, 60, independent=True)
    board = wb.leaderboard(s, scorer="contains", baseline={"system": "base"})
    # Holm's steps: the most convincing of 5 at alpha / 5, the least at alpha.
    assert sorted(board.df["confidence"]) == pytest.approx([1 - 0.05 / k for k in range(1, 6)])
    raw = board.df["p_value"].to_numpy()
    assert board.df["p_adjusted"].to_numpy() == pytest.approx(
        multipletests(raw, method="holm")[1])
    # The widest interval is wider than one comparison's 95 % interval of the same cases.
    top = board.df.loc[board.df["confidence"].idxmax()]
    df = s.df
    base = df[df["system"] == "base"].set_index("i")["score:contains"]
    mine = df[df["system"] == top["knob:system"]].set_index("i")["score:contains"]
    single = stats.ttest_1samp((mine - base).to_numpy(), 0.0).confidence_interval(0.95)
    assert top["low"] < single.low and top["high"] > single.high


def test_repeats_are_clustered_by_case(start_api: Any) -> None:
    s = sweep_of(start_api, {"a": 0.5, "b": 0.8}, 30, repeats=3)
    board = wb.leaderboard(s, scorer="contains", baseline={"system": "a"})
    assert board.df.iloc[0]["cases"] == 30  # 90 runs a side, but 30 cases


def test_plot_draws_one_interval_per_variant(start_api: Any) -> None:
    s = sweep_of(start_api, {"a": 0.5, "b": 0.9, "c": 0.2}, 40)
    board = wb.leaderboard(s, scorer="contains", baseline="system='a'")
    ax = board.plot()
    assert len(ax.get_yticklabels()) == 2
    assert "<table" in board._repr_html_()


def test_a_baseline_that_names_no_variant(start_api: Any) -> None:
    s = sweep_of(start_api, {"a": 0.5, "b": 0.9}, 5)
    with pytest.raises(wb.InvalidInputError, match="names no variant.*system='a'"):
        wb.leaderboard(s, scorer="contains", baseline={"system": "z"})


def test_the_decisions_read_the_store_they_are_given(
    tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Below the top floor nothing looks the session up (docs: the layering rule): the
    leaderboard reads the store it is handed, here another kernel's file, and the
    notebook's session is never reached."""
    import json

    from workbench.calls import session as session_mod
    from workbench.calls.session import Session
    from workbench.core.record import RunRecord
    from workbench.decide.leaderboard import leaderboard
    from workbench.scoring.table import NewScores, write_scores

    other = Session()
    other.configure(store=tmp_path / "other.db")
    scores = NewScores(scorer="contains", scorer_id="contains-test")
    for case in range(30):
        for system, passed in (("a", case % 2 == 0), ("b", True)):
            record = RunRecord(kind="chat", provider="openai", model="gpt-4o-mini",
                               experiment="elsewhere", system=system, output="yes",
                               status="ok", request_hash=f"{system}-{case}",
                               variables=json.dumps({"i": case}), prompt=f"Question {case}")
            other.store.append(record)
            scores.run_ids.append(record.run_id)
            scores.values.append(float(passed))
            scores.passed.append(passed)
            scores.reasons.append("")
            scores.judge_run_ids.append(None)
    write_scores(other.store, scores)

    def no_lookup() -> None:
        raise AssertionError("get_session() called below the top floor")

    monkeypatch.setattr(session_mod, "get_session", no_lookup)
    board = leaderboard("elsewhere", scorer="contains", baseline={"system": "a"},
                        store=other.store)
    assert board.better == ["system='b'"]
    top = board.df.iloc[0]
    assert top["difference"] == pytest.approx(0.5)  # 30 of 30 against 15 of 30
    other.close_store()
