"""The key of every configured provider is a key (issue 20, item 7, third bullet).

A provider of workbench.toml names its key's variable (``api_key_env = "CORP_KEY"``).
Its value is then as secret as OPENAI_API_KEY's, whatever its shape: a prompt holding
it raises KeyInPromptWarning before it is sent, and no row, export or fine-tuning file
keeps it.
"""

from __future__ import annotations

import json
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from loopback import Received, Reply, chat_reply
from testing_shell import open_shell

import workbench as wb
from workbench.api.credentials import configured_key_variables
from workbench.api.keycheck import KeyInPromptWarning, find_key, hide_keys
from workbench.calls.session import get_session
from workbench.scoring.table import NewScores, write_scores

# No key shape (no sk-, no bearer), so only the configured variable can make it a key.
CORP_SECRET = "corpTOKENq7w2e9r4t1y8u3"


def echoing(request: Received) -> Reply:
    """An OpenAI-style server whose answers repeat the prompt, key and all."""
    if request.path.endswith("/models"):
        return Reply(body={"object": "list", "data": [{"id": "gpt-4o-mini"}]})
    return chat_reply(f"You said: {request.body['messages'][-1]['content']}")


@pytest.fixture
def corp(in_tmp_dir: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    (in_tmp_dir / "workbench.toml").write_text(
        '[providers.corp]\nbase_url = "https://llm.corp.example/v1"\napi_key_env = "CORP_KEY"\n'
    )
    monkeypatch.setenv("CORP_KEY", CORP_SECRET)
    return in_tmp_dir


def test_the_configured_variable_is_a_key_variable(corp: Path) -> None:
    assert configured_key_variables() == ("OPENAI_API_KEY", "CORP_KEY")
    assert find_key(f"Use {CORP_SECRET} please") == "the value of $CORP_KEY"
    assert hide_keys(f"Use {CORP_SECRET} please") == "Use [redacted] please"
    # The variable's name is no key: a prompt may name it.
    assert find_key("Set CORP_KEY in your shell") is None


def test_without_the_file_it_is_not(in_tmp_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CORP_KEY", CORP_SECRET)
    assert find_key(f"Use {CORP_SECRET} please") is None  # an ordinary word, then


def test_a_cell_holding_it_is_warned_about_and_no_row_or_export_keeps_it(
    corp: Path, start_api: Callable[[Callable[[Any], Any]], Any]
) -> None:
    api = start_api(echoing)
    with open_shell() as shell, warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        shell.user_ns["secret"] = CORP_SECRET
        shell.run_cell("%%chat --model gpt-4o-mini --no-stream\nMy key is {{secret}}.")
    shown = [w for w in caught if issubclass(w.category, KeyInPromptWarning)]
    assert len(shown) == 1 and "$CORP_KEY" in str(shown[0].message)
    assert CORP_SECRET not in str(shown[0].message)
    # A warning, not a refusal: the call went out, key and all, to its provider.
    sent = [r.body for r in api.received if r.path.endswith("/chat/completions")]
    assert len(sent) == 1 and CORP_SECRET in json.dumps(sent)
    runs = wb.runs()
    assert len(runs) == 1 and runs.prompt[0] == "My key is [redacted]."
    for suffix in ("csv", "jsonl", "parquet"):
        path = wb.export(corp / f"runs.{suffix}")
        assert CORP_SECRET.encode() not in path.read_bytes()
    assert CORP_SECRET not in json.dumps(wb.runs().astype(str).to_dict("records"))
    # Fine-tuning data is written from the same rows.
    scores = NewScores(scorer="human", scorer_id="human-test")
    scores.run_ids.append(runs.run_id[0])
    scores.values.append(1.0)
    scores.passed.append(True)
    scores.reasons.append("")
    scores.judge_run_ids.append(None)
    write_scores(get_session().store, scores)
    train = corp / "train.jsonl"
    wb.export_finetune(runs.experiment[0], train, where="human == pass")
    assert train.exists() and CORP_SECRET.encode() not in train.read_bytes()


def test_a_python_call_keeps_no_key_either(
    corp: Path, start_api: Callable[[Callable[[Any], Any]], Any]
) -> None:
    start_api(echoing)
    response = wb.chat(f"Remember {CORP_SECRET}", model="gpt-4o-mini", system=CORP_SECRET)
    assert response.record.system == "[redacted]"
    assert CORP_SECRET not in json.dumps(wb.runs().astype(str).to_dict("records"))
