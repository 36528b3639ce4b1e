"""The local model: a ``%%chat`` round trip against a direct request to the local server
with the same body, and the tokens per second it generates.

Both sides make the same request (greedy, fixed seed, ``max_tokens``) to the same
embedded llama.cpp server, interleaved (each side first every other turn), ``--repeat``
times; ``%%chat`` runs with
``--fresh`` so every call reaches the model. Figures: median round trip of each, their
ratio (target <= 1.05), and generated tokens per second (completion tokens / the direct
request's wall time, and llama.cpp's own ``timings.predicted_per_second``).

    WORKBENCH_THREADS=1 .venv/bin/python bench/local_model.py [--repeat 7] [--max-tokens 64]
"""

from __future__ import annotations

import argparse
import contextlib
import io
import os
import tempfile
import time
from typing import Any

from common import median, record

PROMPT = "Write three sentences about the sea."


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--max-tokens", type=int, default=64)
    args = parser.parse_args()
    for name in ("OPENAI_API_KEY", "OPENAI_BASE_URL"):
        os.environ.pop(name, None)  # the embedded local model

    import httpx
    from IPython.core.interactiveshell import InteractiveShell
    from traitlets.config import Config

    import workbench as wb
    from workbench.api.local import CHAT_MODEL_ALIAS, get_local_server

    with tempfile.TemporaryDirectory() as scratch:
        wb.configure(store=os.path.join(scratch, "local.db"))
        server = get_local_server()
        url, key = server.chat_base_url, server.api_key  # starts it
        config = Config()
        config.HistoryManager.hist_file = ":memory:"
        shell = InteractiveShell.instance(config=config)
        shell.run_line_magic("load_ext", "workbench")
        knobs = f"--model {CHAT_MODEL_ALIAS} -t 0 --seed 1 --max-tokens {args.max_tokens}"
        cell = f"%%chat {knobs} --no-stream --fresh\n{PROMPT}"
        body: dict[str, Any] = {
            "model": CHAT_MODEL_ALIAS,
            "messages": [{"role": "user", "content": PROMPT}],
            "temperature": 0,
            "seed": 1,
            "max_tokens": args.max_tokens,
        }
        http = httpx.Client(timeout=120, headers={"Authorization": f"Bearer {key}"})

        def direct() -> dict[str, Any]:
            reply = http.post(f"{url}/chat/completions", json=body)
            reply.raise_for_status()
            data: dict[str, Any] = reply.json()
            return data

        def magic() -> None:
            with contextlib.redirect_stdout(io.StringIO()):
                result = shell.run_cell(cell)
            result.raise_error()

        direct()  # warm both paths: the model's first prompt, the magic's model list
        magic()
        magics, directs, tokens, speeds = [], [], [], []
        for turn in range(args.repeat):
            # Each side goes first every other turn: the second of a pair could find the
            # server's prompt cache or CPU caches warmer.
            for side in ("magic", "direct") if turn % 2 == 0 else ("direct", "magic"):
                start = time.perf_counter()
                if side == "magic":
                    magic()
                    magics.append(time.perf_counter() - start)
                    continue
                data = direct()
                directs.append(time.perf_counter() - start)
                tokens.append(int(data["usage"]["completion_tokens"]))
                speeds.append(float(data.get("timings", {}).get("predicted_per_second", 0.0)))
        http.close()
        rows = wb.runs()
        assert (rows.status == "ok").all() and len(rows) == args.repeat + 1
        assert set(rows.completion_tokens) == set(tokens), "both sides generated the same"
        server.stop()

    chat_s, direct_s = median(magics), median(directs)
    per_second = median([t / d for t, d in zip(tokens, directs, strict=True)])
    print(f"%%chat round trip  median {chat_s * 1000:.1f} ms")
    print(f"direct request     median {direct_s * 1000:.1f} ms (ratio {chat_s / direct_s:.3f})")
    print(
        f"{median(tokens):.0f} completion tokens: {per_second:.1f} tokens/s end to end, "
        f"{median(speeds):.1f} tokens/s generating (llama.cpp timings)"
    )
    record(
        "local_model",
        f"%%chat {chat_s * 1000:.0f} ms = {chat_s / direct_s:.3f} x direct request "
        f"({direct_s * 1000:.0f} ms), median of {args.repeat}, {median(tokens):.0f} tokens "
        f"(target ≤ 1.05: {'met' if chat_s / direct_s <= 1.05 else 'MISSED'}); "
        f"{per_second:.1f} tokens/s end to end, {median(speeds):.1f} tokens/s generating, "
        f"threads={server.n_threads}",
    )


if __name__ == "__main__":
    main()
