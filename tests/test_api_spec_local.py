"""Issue 14 against the real local model: embeddings split above 2,048 inputs, logprobs
streamed and not, and the JSON instruction that ``--json`` adds."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from testing_shell import TestingShell, open_shell

import workbench as wb
from workbench.api.jsonmode import JSON_INSTRUCTION

pytestmark = pytest.mark.integration


def test_5000_texts_are_embedded_in_three_requests_in_order(in_tmp_dir: Path) -> None:
    texts = [str(i) for i in range(5000)]  # short: the test is about counts, not length
    answer = wb.embed(texts)
    assert answer.vectors.shape == (5000, 384)
    row = wb.runs().iloc[-1]
    assert row.status == "ok" and row.requests == 3 and len(wb.runs()) == 1
    # Order: the same texts embedded alone give the same vectors at the same places.
    picks = [0, 2047, 2048, 4999]
    alone = wb.embed([texts[i] for i in picks], fresh=True).vectors
    assert np.allclose(np.sum(alone * answer.vectors[picks], axis=1), 1.0, atol=1e-3)
    assert wb.embed(texts).cache_hit  # every text is in the table


@pytest.mark.parametrize("stream", [False, True])
def test_local_logprobs_are_kept(in_tmp_dir: Path, stream: bool) -> None:
    answer = wb.chat(
        "Say hello.", max_tokens=6, temperature=0, logprobs=True, top_logprobs=3, stream=stream
    )
    tokens = answer.logprobs
    assert tokens and "".join(t.token for t in tokens) == answer.text
    assert all(0 < t.probability <= 1 and 1 <= len(t.alternatives) <= 3 for t in tokens)
    page = wb.plots.logprobs(wb.runs().iloc[-1])._repr_html_()
    assert page.count("<span title=") == len(tokens)


@pytest.fixture
def shell(in_tmp_dir: Path) -> Iterator[TestingShell]:
    with open_shell() as ipython:
        yield ipython


def test_json_mode_with_the_instruction_on_the_local_model(shell: TestingShell) -> None:
    shell.run_cell("%%chat --json --max-tokens 80 --temperature 0 --out r\nName a colour.")
    shown = shell.user_ns["r"]
    messages = json.loads(wb.runs().iloc[-1].messages)
    assert messages[0] == {"role": "system", "content": JSON_INSTRUCTION}
    assert "JSON instruction added" in shown.footer
    assert shown.response.text.lstrip().startswith("{")  # the server held it to JSON
