"""`workbench serve`'s router (workbench/cli.py) when the model server drops a kept-alive
connection just as it is reused: cpp-httplib, under llama.cpp's server, closes a
connection idle for 5 s, and a reused one can meet that close. Seen once in a loaded test
run as a 502 for /models right after a stream (tests/test_local.py). Here a loopback
server answers the first request of each connection and closes the connection, without
a word, when the next one arrives: what the client sees in that race."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import pytest

from workbench.cli import Router


class DropsReusedConnections(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as the model server speaks

    def setup(self) -> None:
        super().setup()
        self.answered = 0

    def do_GET(self) -> None:  # noqa: N802 - http.server's name
        if self.answered:
            self.close_connection = True  # the second request on it: no answer at all
            return
        self.answered += 1
        body = json.dumps({"data": [{"id": "smollm2", "created": 1}]}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def router() -> Iterator[Router]:
    upstream = ThreadingHTTPServer(("127.0.0.1", 0), DropsReusedConnections)
    origin = f"http://127.0.0.1:{upstream.server_address[1]}/v1"
    served = Router(("127.0.0.1", 0), api_key="outer", chat_base_url=origin,
                    embeddings_base_url=origin, inner_api_key="inner", log_requests=False)
    threads = [threading.Thread(target=s.serve_forever, kwargs={"poll_interval": 0.01},
                                daemon=True) for s in (upstream, served)]
    for thread in threads:
        thread.start()
    yield served
    for server in (served, upstream):
        server.shutdown()
        server.server_close()


def test_models_are_listed_again_on_a_connection_the_server_dropped(router: Router) -> None:
    headers = {"Authorization": "Bearer outer"}
    for _ in range(3):  # from the second on, each pooled connection is dropped on reuse
        response = httpx.get(f"{router.base_url}/models", headers=headers, timeout=10)
        assert response.status_code == 200, response.text
        assert [model["id"] for model in response.json()["data"]] == ["smollm2", "smollm2"]
