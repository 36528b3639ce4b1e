"""Sweeps at a server's rate limit: 1,000 calls against a loopback API that enforces an
OpenAI-style limit, through ``wb.sweep`` and (with ``--sdk``) the openai SDK + a semaphore.

Two servers (each a process of its own) keep a continuous token bucket per limit:

- ``second``: announces the bucket it enforces: ``x-ratelimit-limit-*`` is the bucket's
  size (one second's worth), ``-remaining-*`` what is left when a request arrives,
  ``-reset-*`` how long until it is full again ("20ms", "1.5s", "6m0s").
- ``minute``: announces a per-minute limit (6,000 requests, 1,200,000 tokens), as OpenAI
  documents, and enforces it quantized, as OpenAI says it may ("60,000 requests/minute
  may be enforced as 1,000 requests/second"): a bucket of one second's worth (100
  requests, 20,000 tokens); ``-remaining-*`` and ``-reset-*`` are that bucket's, so the
  headers disagree (full again in 10 ms of a 6,000 limit reads as 590,100 a second).

A request that finds the bucket short gets a 429, in one of three ways (``retry-after-ms``,
a whole-second ``retry-after``, or the rate-limit headers only), and refused requests
count against the limit or not (OpenAI's do); the ``cold`` variant runs its sweep in a
fresh interpreter, s.run() right after planning (the store, the client and the tokenizer
not loaded yet), where the others run after an untimed warm-up sweep. Answers take 200 ms.
Requests limit: 100 a second, a bucket of one second's worth. Tokens variant: 20,000
tokens a second (prompt tokens + max_tokens, prompts of varied length), requests unlimited.

Figures per server and variant: wall time / the physical bound ((calls - initial burst)
/ rate + one latency, the initial burst being what the server allows at once: its
bucket), the share of requests refused, the machine's load (``uptime``) when the run
started, and with ``--sdk`` the same for the SDK (stopped after ``--sdk-cap`` seconds).
Targets: workbench wall <= 1.05 x the bound in every variant on both servers, < 2 %
refused.

    .venv/bin/python bench/rate_limited.py [--calls 1000] [--variants all] [--servers all]
        [--repeat 3] [--sdk] [--sdk-cap 60] [--trace]

``--repeat 3`` is the issue's check (three runs of every variant on both servers): 48
sweeps, about 11 minutes on a quiet 2-core machine.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import math
import os
import subprocess
import sys
import tempfile
import time
from contextlib import suppress
from dataclasses import dataclass
from typing import Any

from common import record, served, server_stats

LATENCY_S = 0.2
RATE = 100.0  # requests a second
TOKEN_RATE = 20_000.0  # tokens a second, in the tokens variant
# What each server announces as its limit, as a multiple of the one-second bucket it
# enforces: the bucket itself, or (OpenAI's documented unit) a minute's worth.
SERVERS = {"second": 1, "minute": 60}
CONCURRENCY = 64
MAX_TOKENS = 16
PLAN_S = 0.0  # the last sweep's planning (wb.sweep), before its run: printed by --trace

# name -> (how a 429 says when to come back, do refused requests count)
VARIANTS: dict[str, tuple[str, bool]] = {
    "retry-after-ms": ("ms", False),
    "retry-after-ms, refused count": ("ms", True),
    "retry-after s": ("s", False),
    "retry-after s, refused count": ("s", True),
    "headers only": ("headers", False),
    "headers only, refused count": ("headers", True),
    "tokens, retry-after-ms, refused count": ("ms", True),
    # A fresh interpreter: import, plan, and s.run() at once (nothing loaded before).
    "cold, retry-after-ms, refused count": ("ms", True),
}

# argv: base URL, store path, calls. The cold variant's client, in a process of its own.
COLD_RUN = """
import json, os, sys, time
os.environ["OPENAI_BASE_URL"] = sys.argv[1]
os.environ["OPENAI_API_KEY"] = "sk-bench-0000000000000000"
sys.path.insert(0, os.path.dirname(os.path.abspath(sys.argv[4])))
import rate_limited
import workbench as wb
wb.configure(store=sys.argv[2])
texts = rate_limited.prompts(int(sys.argv[3]), False)
print(json.dumps(rate_limited.workbench_run(texts)))
"""


# ---------------------------------------------------------------------- the server


class Bucket:
    def __init__(self, capacity: float, rate: float) -> None:
        self.capacity, self.rate = capacity, rate
        self.level, self.at = capacity, time.monotonic()

    def refill(self) -> None:
        now = time.monotonic()
        self.level = min(self.capacity, self.level + (now - self.at) * self.rate)
        self.at = now

    def reset_text(self) -> str:
        seconds = max(self.capacity - self.level, 0.0) / self.rate
        if seconds < 1:
            return f"{round(seconds * 1000)}ms"
        minutes, rest = divmod(seconds, 60)
        return f"{int(minutes)}m{rest:.3f}s" if minutes else f"{rest:.3f}s"

    def shortfall_s(self, cost: float) -> float:
        return max(cost - self.level, 0.0) / self.rate


def prompt_tokens(body: dict[str, Any]) -> int:
    from workbench.core.tokens import count_chat_tokens

    return count_chat_tokens(body["messages"], body["model"])


async def serve(variant: str, server: str = "second") -> None:
    style, refused_count = VARIANTS[variant]
    announced_times = SERVERS[server]
    tokens_limited = variant.startswith("tokens")
    requests = Bucket(RATE, RATE) if not tokens_limited else None
    tokens = Bucket(TOKEN_RATE, TOKEN_RATE) if tokens_limited else None
    if tokens_limited:
        # Import and load the tokenizer before listening: done on the first request, it
        # held the first calls ~1-2 s (a loaded machine) inside the client's wall time.
        prompt_tokens({"messages": [{"role": "user", "content": "warm"}], "model": "gpt-4o-mini"})
    counts = {"ok": 0, "refused": 0}
    arrivals: list[tuple[float, int]] = []  # (monotonic time, status): the --trace profile

    def headers_of() -> dict[str, str]:
        out: dict[str, str] = {}
        for kind, bucket in (("requests", requests), ("tokens", tokens)):
            if bucket is not None:
                out[f"x-ratelimit-limit-{kind}"] = str(int(bucket.capacity) * announced_times)
                out[f"x-ratelimit-remaining-{kind}"] = str(max(int(bucket.level), 0))
                out[f"x-ratelimit-reset-{kind}"] = bucket.reset_text()
        return out

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                lines = head.decode("latin-1").split("\r\n")
                fields = {
                    k.lower(): v.strip() for k, _, v in (x.partition(":") for x in lines[1:] if x)
                }
                raw = await reader.readexactly(int(fields.get("content-length", "0")))
                if lines[0].startswith("GET /stats"):
                    await respond(writer, 200, {**counts, "arrivals": arrivals}, {})
                    continue
                body = json.loads(raw)
                cost = prompt_tokens(body) + int(body.get("max_tokens") or 0) if tokens else 0
                short = 0.0
                for bucket, need in ((requests, 1.0), (tokens, float(cost))):
                    if bucket is not None:
                        bucket.refill()
                        short = max(short, bucket.shortfall_s(need))
                if short > 0:
                    counts["refused"] += 1
                    arrivals.append((time.monotonic(), 429))
                    if refused_count:
                        for bucket, need in ((requests, 1.0), (tokens, float(cost))):
                            if bucket is not None:
                                bucket.level -= need
                    extra = headers_of()
                    if style == "ms":
                        extra["retry-after-ms"] = str(max(1, math.ceil(short * 1000)))
                    elif style == "s":
                        extra["retry-after"] = str(max(1, math.ceil(short)))
                    await respond(writer, 429, {"error": {"message": "Rate limit reached"}}, extra)
                    continue
                for bucket, need in ((requests, 1.0), (tokens, float(cost))):
                    if bucket is not None:
                        bucket.level -= need
                extra = headers_of()  # as it was when the request arrived
                counts["ok"] += 1
                arrivals.append((time.monotonic(), 200))
                await asyncio.sleep(LATENCY_S)
                await respond(writer, 200, completion(body), extra)
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0, backlog=512)
    port = server.sockets[0].getsockname()[1]
    print(f"http://127.0.0.1:{port}/v1", flush=True)
    async with server:
        await server.serve_forever()


def completion(body: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": "chatcmpl-bench",
        "object": "chat.completion",
        "model": body["model"],
        "choices": [
            {"index": 0, "message": {"role": "assistant", "content": "ok"}, "finish_reason": "stop"}
        ],
        "usage": {"prompt_tokens": 10, "completion_tokens": 1, "total_tokens": 11},
    }


async def respond(
    writer: asyncio.StreamWriter, status: int, payload: Any, headers: dict[str, str]
) -> None:
    data = json.dumps(payload).encode()
    reason = {200: "OK", 429: "Too Many Requests"}[status]
    lines = [
        f"HTTP/1.1 {status} {reason}",
        "content-type: application/json",
        f"content-length: {len(data)}",
        *(f"{k}: {v}" for k, v in headers.items()),
    ]
    writer.write(("\r\n".join(lines) + "\r\n\r\n").encode() + data)
    await writer.drain()


def rate_limited_api(
    variant: str, server: str = "second"
) -> contextlib.AbstractContextManager[str]:
    return served(__file__, "--serve", variant, "--server", server)


def profile(side: str, arrivals: list[list[float]], start: float, end: float) -> str:
    """Requests the server let through and refused per 0.5 s of the run (the --trace
    view): where a run falls short of the limit, and when its 429s came."""
    bins: dict[int, list[int]] = {}
    for at, status in arrivals:
        counts = bins.setdefault(int((at - start) / 0.5), [0, 0])
        counts[status == 429] += 1
    per_bin = (bins.get(i, [0, 0]) for i in range(max(bins, default=0) + 1))
    cells = " ".join(f"{ok}/{no}" if no else str(ok) for ok, no in per_bin)
    first = min((at for at, _ in arrivals), default=start) - start
    last = max((at for at, _ in arrivals), default=start) - start
    return (
        f"  {side}: first request {first:.2f} s after the start, last {last:.2f} s, "
        f"end {end - start:.2f} s; ok/429 per 0.5 s: {cells}"
    )


# ---------------------------------------------------------------------- the clients


def prompts(calls: int, varied: bool) -> list[str]:
    if not varied:
        return [f"Bench #{i}" for i in range(calls)]
    # 5 to ~400 words: token costs that differ call by call.
    return [f"Bench #{i}: " + "lorem ipsum " * (5 + (i * 37) % 200) for i in range(calls)]


def workbench_run(texts: list[str]) -> tuple[float, int, float, float]:
    """(wall, calls ok, monotonic start, monotonic end) of one sweep."""
    import workbench as wb

    planned = time.monotonic()
    s = wb.sweep(
        "{{p}}",
        vars={"p": texts},
        model="gpt-4o-mini",
        max_tokens=MAX_TOKENS,
        concurrency=CONCURRENCY,
    )
    start = time.monotonic()
    df = s.run(progress=False)
    end = time.monotonic()
    global PLAN_S
    PLAN_S = start - planned
    return end - start, int((df.status == "ok").sum()), start, end


def cold_run(base_url: str, store: str, calls: int) -> tuple[float, int, float, float]:
    """:func:`workbench_run` in a fresh interpreter (its wall time from s.run())."""
    out = subprocess.run(
        [sys.executable, "-c", COLD_RUN, base_url, store, str(calls), __file__],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    wall, done, start, end = json.loads(out.strip().splitlines()[-1])
    return float(wall), int(done), float(start), float(end)


def sdk_run(base_url: str, texts: list[str], cap_s: float) -> tuple[float, int, float, float]:
    import httpx
    from openai import AsyncOpenAI

    done = 0

    async def main() -> None:
        nonlocal done
        limits = httpx.Limits(max_connections=CONCURRENCY, max_keepalive_connections=CONCURRENCY)
        async with httpx.AsyncClient(limits=limits, timeout=60) as http:
            client = AsyncOpenAI(base_url=base_url, api_key="sk-bench", http_client=http)
            gate = asyncio.Semaphore(CONCURRENCY)

            async def one(text: str) -> None:
                nonlocal done
                async with gate:
                    await client.chat.completions.create(
                        model="gpt-4o-mini",
                        messages=[{"role": "user", "content": text}],
                        max_tokens=MAX_TOKENS,
                    )
                    done += 1

            jobs = [asyncio.ensure_future(one(t)) for t in texts]
            with suppress(asyncio.TimeoutError):
                await asyncio.wait_for(asyncio.gather(*jobs, return_exceptions=True), cap_s)

    start = time.monotonic()
    asyncio.run(main())
    end = time.monotonic()
    return end - start, done, start, end


@dataclass
class Outcome:
    wall: float
    done: int
    refused: int
    sent: int


def run_variant(
    variant: str, server: str, calls: int, cap_s: float, sdk: bool, trace: bool = False
) -> tuple[Outcome, Outcome | None, float]:
    """(workbench, SDK or None, the physical bound in seconds) of one variant."""
    import workbench as wb

    varied = variant.startswith("tokens")
    texts = prompts(calls, varied)
    # The physical bound: what the server lets through at once (its bucket, one second's
    # worth), then the rest at its rate, plus the last answer's latency.
    if varied:
        from workbench.core.tokens import count_chat_tokens

        total = sum(
            count_chat_tokens([{"role": "user", "content": t}], "gpt-4o-mini") + MAX_TOKENS
            for t in texts
        )
        bound = max(total - TOKEN_RATE, 0.0) / TOKEN_RATE + LATENCY_S
    else:
        bound = max(calls - RATE, 0.0) / RATE + LATENCY_S
    results: list[Outcome] = []
    for side in ("workbench", "sdk") if sdk else ("workbench",):
        with (
            rate_limited_api(variant, server) as base_url,
            tempfile.TemporaryDirectory() as scratch,
        ):
            os.environ["OPENAI_BASE_URL"] = base_url
            os.environ["OPENAI_API_KEY"] = "sk-bench-0000000000000000"
            if side == "workbench" and variant.startswith("cold"):
                wall, done, start, end = cold_run(base_url, os.path.join(scratch, "b.db"), calls)
            elif side == "workbench":
                wb.configure(store=os.path.join(scratch, "bench.db"), experiment=variant)
                wall, done, start, end = workbench_run(texts)
            else:
                wall, done, start, end = sdk_run(base_url, texts, cap_s)
            counts = server_stats(base_url)
            if trace:
                print(profile(side, counts["arrivals"], start, end), flush=True)
                if side == "workbench" and not variant.startswith("cold"):
                    print(f"  workbench: planning (wb.sweep, untimed) {PLAN_S:.2f} s", flush=True)
            results.append(Outcome(wall, done, counts["refused"], counts["ok"] + counts["refused"]))
    return results[0], (results[1] if sdk else None), bound


def load() -> str:
    """The machine's load averages (1, 5, 15 min), as ``uptime`` prints them."""
    one, five, fifteen = os.getloadavg()
    return f"load {one:.2f}, {five:.2f}, {fifteen:.2f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--calls", type=int, default=1000)
    parser.add_argument("--sdk", action="store_true", help="measure the openai SDK too")
    parser.add_argument("--sdk-cap", type=float, default=60.0)
    parser.add_argument("--variants", default="all", help="names separated by ;, or all")
    parser.add_argument("--servers", default="all", help="second, minute, or all")
    parser.add_argument("--repeat", type=int, default=1, help="runs of each server")
    parser.add_argument("--trace", action="store_true", help="print each run's profile")
    parser.add_argument("--serve", help=argparse.SUPPRESS)
    parser.add_argument("--server", default="second", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        asyncio.run(serve(args.serve, args.server))
        return
    names = list(VARIANTS) if args.variants == "all" else args.variants.split(";")
    servers = list(SERVERS) if args.servers == "all" else args.servers.split(",")
    if args.sdk:
        import openai  # noqa: F401 - imported before timing

    import workbench

    # Warm up (imports, the store, first connections), untimed.
    with rate_limited_api("retry-after-ms") as base_url, tempfile.TemporaryDirectory() as tmp:
        os.environ["OPENAI_BASE_URL"] = base_url
        os.environ["OPENAI_API_KEY"] = "sk-bench-0000000000000000"
        workbench.configure(store=os.path.join(tmp, "warm.db"))
        workbench_run([f"warm {i}" for i in range(20)])
        if args.sdk:
            sdk_run(base_url, [f"warm {i}" for i in range(20)], 30)
    for repeat in range(args.repeat):
        for server in servers:
            lines, all_met, started_at = [], True, load()
            for name in names:
                ours, sdk, bound = run_variant(
                    name, server, args.calls, args.sdk_cap, args.sdk, args.trace
                )
                ratio = ours.wall / bound
                refused = ours.refused / max(ours.sent, 1)
                met = ratio <= 1.05 and refused < 0.02 and ours.done == args.calls
                all_met &= met
                sdk_text = ""
                if sdk is not None:
                    sdk_text = "; SDK " + (
                        f"{sdk.wall / bound:.2f} x, {sdk.refused / max(sdk.sent, 1):.0%} refused"
                        if sdk.done == args.calls
                        else f"{sdk.done} of {args.calls} done in {sdk.wall:.0f} s"
                    )
                line = (
                    f"{name}: {ratio:.3f} x bound ({bound:.2f} s), {refused:.1%} refused, "
                    f"{ours.done}/{args.calls} ok{sdk_text} ({'met' if met else 'MISSED'})"
                )
                print(f"[{server} #{repeat + 1}] {line}", flush=True)
                lines.append(line)
            record(
                "rate_limited",
                f"server `{server}` (limit announced per "
                f"{'second' if SERVERS[server] == 1 else 'minute'}), run {repeat + 1}, "
                f"{started_at} at its start; {args.calls} calls, concurrency {CONCURRENCY}, "
                f"{LATENCY_S * 1000:.0f} ms answers, {RATE:.0f} req/s "
                f"(tokens: {TOKEN_RATE:,.0f}/s), bound = (calls - burst) / rate + latency: "
                + "; ".join(lines)
                + f" (targets ≤ 1.05 x, < 2 % refused: {'met' if all_met else 'MISSED'})",
            )


if __name__ == "__main__":
    main()
