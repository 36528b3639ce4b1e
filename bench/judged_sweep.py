"""A judged sweep at a server's rate limit: 600 generations, each graded by an LLM judge,
against a loopback API that lets 40 requests a second through and answers in 100 ms.

The server (a process of its own) keeps one continuous token bucket of 40 requests (one
second's worth), refilled at 40 a second, for every call whatever its model, and
announces it in OpenAI's headers (``x-ratelimit-limit-requests``, ``-remaining-``,
``-reset-``); a request that finds the bucket empty gets a 429 with ``retry-after-ms``.
Judge requests (those with ``response_format``) get a JSON grade, the others a text.

Figure: the sweep's wall time (generations and their judge calls, from ``s.run()`` to its
end) / the physical bound, (calls - the initial burst of 40) / 40 per second + one
answer's 100 ms; and the share of requests refused. Target (issue 21 item 3): <= 1.10 x.

    .venv/bin/python bench/judged_sweep.py [--calls 600] [--repeat 3] [--profile]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import cProfile
import json
import os
import subprocess
import tempfile
import time
from typing import Any

from common import print_profile, record, served, server_stats

RATE = 40.0  # requests a second, every model together
LATENCY_S = 0.1
CONCURRENCY = 8  # wb.sweep's default


class Bucket:
    def __init__(self, capacity: float, rate: float) -> None:
        self.capacity, self.rate = capacity, rate
        self.level, self.at = capacity, time.monotonic()

    def take(self) -> float:
        """0 when a request may go (and takes its place), else the seconds it is short."""
        now = time.monotonic()
        self.level = min(self.capacity, self.level + (now - self.at) * self.rate)
        self.at = now
        if self.level < 1:
            return (1 - self.level) / self.rate
        self.level -= 1
        return 0.0

    def headers(self) -> dict[str, str]:
        reset_ms = round(max(self.capacity - self.level, 0.0) / self.rate * 1000)
        return {
            "x-ratelimit-limit-requests": str(int(self.capacity)),
            "x-ratelimit-remaining-requests": str(max(int(self.level), 0)),
            "x-ratelimit-reset-requests": f"{reset_ms}ms",
        }


async def serve() -> None:
    bucket = Bucket(RATE, RATE)
    counts = {"ok": 0, "refused": 0, "judge": 0}

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                lines = head.decode("latin-1").split("\r\n")
                fields = {k.lower(): v.strip()
                          for k, _, v in (x.partition(":") for x in lines[1:] if x)}
                raw = await reader.readexactly(int(fields.get("content-length", "0")))
                if lines[0].startswith("GET /stats"):
                    await respond(writer, 200, counts, {})
                    continue
                body = json.loads(raw)
                short = bucket.take()
                if short > 0:
                    counts["refused"] += 1
                    extra = {**bucket.headers(), "retry-after-ms": str(max(1, round(short * 1000)))}
                    await respond(writer, 429, {"error": {"message": "Rate limit reached"}}, extra)
                    continue
                extra = bucket.headers()
                counts["ok"] += 1
                judging = "response_format" in body
                counts["judge"] += judging
                text = '{"score": 4, "reason": "right"}' if judging else f"Answer {raw[-40:]!r}"
                await asyncio.sleep(LATENCY_S)
                await respond(writer, 200, completion(body["model"], text), extra)
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0, backlog=512)
    print(f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}/v1", flush=True)
    async with server:
        await server.serve_forever()


def completion(model: str, text: str) -> dict[str, Any]:
    return {
        "id": "chatcmpl-bench", "object": "chat.completion", "model": model,
        "choices": [{"index": 0, "message": {"role": "assistant", "content": text},
                     "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 30, "completion_tokens": 8, "total_tokens": 38},
    }


async def respond(writer: asyncio.StreamWriter, status: int, payload: Any,
                  headers: dict[str, str]) -> None:
    data = json.dumps(payload).encode()
    reason = {200: "OK", 429: "Too Many Requests"}[status]
    lines = [f"HTTP/1.1 {status} {reason}", "content-type: application/json",
             f"content-length: {len(data)}", *(f"{k}: {v}" for k, v in headers.items())]
    writer.write(("\r\n".join(lines) + "\r\n\r\n").encode() + data)
    await writer.drain()


def limited_api() -> contextlib.AbstractContextManager[str]:
    return served(__file__, "--serve")


def judged_sweep(calls: int, tag: str) -> tuple[float, int, int]:
    """(wall, generations ok, scores) of one judged sweep in a fresh store."""
    import workbench as wb

    s = wb.sweep("Question {{i}} ({{tag}})", vars={"i": list(range(calls)), "tag": [tag]},
                 model="gpt-4o-mini", max_tokens=16, concurrency=CONCURRENCY,
                 experiment=f"judged-{tag}",
                 scorers=wb.scorers.judge("Is it right?", model="gpt-4o-mini"))
    start = time.monotonic()
    df = s.run(progress=False)
    wall = time.monotonic() - start
    return wall, int((df.status == "ok").sum()), int(df["score:judge"].notna().sum())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--calls", type=int, default=600)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--profile", action="store_true")
    args = parser.parse_args()
    if args.serve:
        asyncio.run(serve())
        return
    with tempfile.TemporaryDirectory() as tmp, limited_api() as base_url:
        os.environ.update(OPENAI_BASE_URL=base_url, OPENAI_API_KEY="sk-bench-0123456789",
                          WORKBENCH_STORE=os.path.join(tmp, "runs.db"))
        import workbench as wb

        wb.sweep("warm {{i}}", vars={"i": [0]}, model="gpt-4o-mini",
                 max_tokens=4).run(progress=False)  # imports and first connection, untimed
        time.sleep(2)  # the bucket refills
        ratios, refused_shares, walls = [], [], []
        for n in range(args.repeat):
            before = server_stats(base_url)
            profiler = cProfile.Profile() if args.profile else None
            if profiler is not None:
                profiler.enable()
            wall, ok, scored = judged_sweep(args.calls, f"r{n}")
            if profiler is not None:
                profiler.disable()
                print_profile(profiler, 25)
            after = server_stats(base_url)
            sent = {k: after[k] - before[k] for k in after}
            total = 2 * args.calls  # each generation and its judge call
            bound = (total - RATE) / RATE + LATENCY_S
            refused = sent["refused"] / max(1, sent["ok"] + sent["refused"])
            ratios.append(wall / bound)
            refused_shares.append(refused)
            walls.append(wall)
            print(f"run {n + 1}: {ok} generations, {scored} judged ({sent['judge']} judge calls),"
                  f" {wall:.1f} s = {wall / bound:.2f} x the bound of {bound:.1f} s,"
                  f" {refused:.1%} of requests refused", flush=True)
            time.sleep(2)
    load = subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()
    record(
        "judged_sweep.py",
        f"{args.calls} generations + {args.calls} judge calls at {RATE:g} req/s, "
        f"{LATENCY_S * 1000:g} ms answers, concurrency {CONCURRENCY}: wall "
        + ", ".join(f"{w:.1f} s" for w in walls)
        + " = " + ", ".join(f"{r:.2f}" for r in ratios)
        + " x the bound; refused " + ", ".join(f"{r:.1%}" for r in refused_shares)
        + f" (target <= 1.10 x); load: {load.split('load average:')[-1].strip()}",
    )


if __name__ == "__main__":
    main()
