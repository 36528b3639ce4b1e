"""The sync client: requests as sent, results as read, errors as raised (no network)."""

from __future__ import annotations

import base64
import json
import struct
import traceback
from typing import Any

import httpx
import pytest
import respx
from fake_openai import BASE_URL, FakeClock, FakeOpenAI, completion, json_response

import workbench.api.client
from workbench.api.client import ChatResult, EmbeddingResult, OpenAIClient
from workbench.core.errors import (
    APIConnectionError,
    APIError,
    APIResponseError,
    APIStatusError,
    AuthenticationError,
    BadRequestError,
    ConfigurationError,
    NotFoundError,
)
from workbench.core.usage import Usage

KEY = "sk-SENTINEL-0123456789abcdef"
CHAT_URL = f"{BASE_URL}/chat/completions"
BODY = {"model": "gpt-test", "messages": [{"role": "user", "content": "hi"}], "temperature": 0.7}


def make_client(fake: FakeOpenAI, **kwargs: Any) -> OpenAIClient:
    kwargs.setdefault("sleep", lambda seconds: None)
    return OpenAIClient(BASE_URL, KEY, transport=fake.transport, **kwargs)


def test_exports() -> None:
    assert workbench.api.client.__all__ == [
        "ChatResult",
        "EmbeddingResult",
        "OpenAIClient",
        "AsyncOpenAIClient",
    ]


# -- chat -----------------------------------------------------------------------------


def test_chat_result_fields() -> None:
    clock = FakeClock()
    tool_call = {
        "id": "call_1",
        "type": "function",
        "function": {"name": "add", "arguments": '{"a": 1}'},
    }
    data = completion(
        "Hi there",
        usage={
            "prompt_tokens": 20,
            "completion_tokens": 4,
            "total_tokens": 24,
            "prompt_tokens_details": {"cached_tokens": 8},
        },
    )
    data["choices"][0]["message"]["tool_calls"] = [tool_call]
    data["choices"][0]["finish_reason"] = "tool_calls"

    def answer(request: httpx.Request) -> httpx.Response:
        clock.now += 1.25  # the server takes its time
        return json_response(data, headers={"X-RateLimit-Remaining-Requests": "99"})

    result = make_client(FakeOpenAI(answer), clock=clock).chat(BODY)
    assert isinstance(result, ChatResult)
    assert result.text == "Hi there"
    assert result.finish_reason == "tool_calls"
    assert result.tool_calls == [tool_call]
    assert result.usage == Usage(
        prompt_tokens=20, completion_tokens=4, cached_tokens=8, total_tokens=24
    )
    assert result.model == "gpt-test-0001"
    assert result.system_fingerprint == "fp_123"
    assert result.id == "chatcmpl-1"
    assert result.latency_s == 1.25
    assert result.ttft_s is None
    assert result.retries == 0
    assert result.headers["x-ratelimit-remaining-requests"] == "99"
    assert result.headers["content-type"] == "application/json"
    assert result.raw == data


def test_chat_without_content_or_usage() -> None:
    result = make_client(FakeOpenAI(json_response(completion(None, usage=None)))).chat(BODY)
    assert (result.text, result.usage, result.tool_calls) == ("", None, [])


def test_chat_request_as_sent() -> None:
    fake = FakeOpenAI(json_response(completion()))
    body = dict(BODY)
    make_client(fake, default_headers={"OpenAI-Organization": "org-1"}).chat(body)
    (request,) = fake.requests
    assert request.method == "POST"
    assert str(request.url) == CHAT_URL
    assert fake.body() == BODY  # exactly the caller's body: no stream_options added
    assert body == BODY  # and the caller's dict is left alone
    assert request.headers["authorization"] == f"Bearer {KEY}"
    assert request.headers["accept"] == "application/json"
    assert request.headers["content-type"] == "application/json"
    assert request.headers["openai-organization"] == "org-1"


def test_no_authorization_header_without_a_key() -> None:
    fake = FakeOpenAI(json_response(completion()))
    OpenAIClient(BASE_URL + "/", transport=fake.transport).chat(BODY)
    assert "authorization" not in fake.requests[0].headers
    assert str(fake.requests[0].url) == CHAT_URL  # the trailing slash was stripped


def test_stream_requests_ask_for_usage_unless_the_caller_chose() -> None:
    from fake_openai import DONE, sse_response

    fake = FakeOpenAI(sse_response(DONE), sse_response(DONE))
    client = make_client(fake)
    client.chat({**BODY, "stream": True})
    client.chat({**BODY, "stream": True, "stream_options": {"include_usage": False}})
    assert fake.body(0)["stream_options"] == {"include_usage": True}
    assert fake.body(1)["stream_options"] == {"include_usage": False}
    assert fake.requests[0].headers["accept"] == "text/event-stream"


def test_chat_with_respx() -> None:
    with respx.mock(base_url=BASE_URL, assert_all_called=True) as router:
        route = router.post("/chat/completions").mock(
            return_value=httpx.Response(200, json=completion("from respx"))
        )
        with OpenAIClient(BASE_URL, KEY) as client:
            assert client.chat(BODY).text == "from respx"
        assert json.loads(route.calls.last.request.content) == BODY


# -- embeddings and models ------------------------------------------------------------


def test_embeddings_are_ordered_by_index_and_ask_for_floats() -> None:
    data = {
        "object": "list",
        "data": [
            {"object": "embedding", "index": 2, "embedding": [0.3, 0.3]},
            {"object": "embedding", "index": 0, "embedding": [0.1, 0.1]},
            {"object": "embedding", "index": 1, "embedding": [0.2, 0.2]},
        ],
        "model": "text-embedding-test",
        "usage": {"prompt_tokens": 6, "total_tokens": 6},
    }
    fake = FakeOpenAI(json_response(data))
    result = make_client(fake).embeddings({"model": "e", "input": ["a", "b", "c"]})
    assert isinstance(result, EmbeddingResult)
    assert result.vectors == [[0.1, 0.1], [0.2, 0.2], [0.3, 0.3]]
    assert result.model == "text-embedding-test"
    assert result.usage == Usage(prompt_tokens=6, total_tokens=6)
    assert result.retries == 0
    assert result.raw == data
    assert str(fake.requests[0].url) == f"{BASE_URL}/embeddings"
    assert fake.body() == {"model": "e", "input": ["a", "b", "c"], "encoding_format": "float"}


def test_embeddings_in_base64_are_decoded() -> None:
    packed = base64.b64encode(struct.pack("<3f", 0.5, -1.0, 2.0)).decode()
    fake = FakeOpenAI(json_response({"data": [{"index": 0, "embedding": packed}]}))
    body = {"model": "e", "input": "a", "encoding_format": "base64"}
    result = make_client(fake).embeddings(body)
    assert result.vectors == [[0.5, -1.0, 2.0]]
    assert fake.body()["encoding_format"] == "base64"


def test_models_lists_ids() -> None:
    data = {"object": "list", "data": [{"id": "gpt-a", "object": "model"}, {"id": "gpt-b"}]}
    fake = FakeOpenAI(json_response(data))
    assert make_client(fake).models() == ["gpt-a", "gpt-b"]
    assert fake.requests[0].method == "GET"
    assert str(fake.requests[0].url) == f"{BASE_URL}/models"


# -- lifecycle and configuration ------------------------------------------------------


def test_injected_http_client_is_left_open() -> None:
    http = httpx.Client(transport=FakeOpenAI(json_response(completion())).transport)
    with OpenAIClient(BASE_URL, KEY, http_client=http) as client:
        client.chat(BODY)
    assert not http.is_closed
    http.close()


def test_own_http_client_is_closed() -> None:
    client = make_client(FakeOpenAI())
    client.close()
    assert client._http.is_closed


def test_bad_base_url_names_the_fix() -> None:
    with pytest.raises(ConfigurationError, match="http:// or https://"):
        OpenAIClient("localhost:8080/v1")


def test_http_client_and_transport_are_exclusive() -> None:
    with httpx.Client() as http, pytest.raises(ValueError, match="not both"):
        OpenAIClient(BASE_URL, http_client=http, transport=FakeOpenAI().transport)


# -- errors ---------------------------------------------------------------------------


def test_status_error_carries_the_server_message() -> None:
    body = {"error": {"message": "max_tokens is too large", "type": "invalid_request_error"}}
    with pytest.raises(BadRequestError) as info:
        make_client(FakeOpenAI(json_response(body, 400))).chat(BODY)
    exc = info.value
    assert str(exc) == f"HTTP 400 from POST {CHAT_URL}: max_tokens is too large"
    assert (exc.status_code, exc.url, exc.retries) == (400, CHAT_URL, 0)
    assert exc.body is not None and json.loads(exc.body) == body


@pytest.mark.parametrize(
    ("status", "error_class"),
    [(401, AuthenticationError), (404, NotFoundError), (422, BadRequestError)],
)
def test_status_classes(status: int, error_class: type[APIStatusError]) -> None:
    with pytest.raises(error_class):
        make_client(FakeOpenAI(json_response({"detail": "nope"}, status))).models()


def test_status_error_without_json_shows_a_body_excerpt() -> None:
    page = "<html><body>" + "Bad gateway " * 100 + "</body></html>"
    reply = httpx.Response(404, text=page, headers={"content-type": "text/html"})
    with pytest.raises(NotFoundError) as info:
        make_client(FakeOpenAI(reply)).chat(BODY)
    message = str(info.value)
    assert message.startswith(f"HTTP 404 from POST {CHAT_URL}: <html><body>Bad gateway")
    assert message.endswith("…")
    assert len(message) < len(f"HTTP 404 from POST {CHAT_URL}: ") + 301
    assert info.value.body == page


def test_fastapi_style_error_detail() -> None:
    with pytest.raises(NotFoundError, match=r": Model not found$"):
        make_client(FakeOpenAI(json_response({"detail": "Model not found"}, 404))).chat(BODY)


@pytest.mark.parametrize(
    ("reply", "problem"),
    [
        (
            httpx.Response(200, text="{not json", headers={"content-type": "application/json"}),
            "not valid JSON",
        ),
        (
            httpx.Response(
                200, text="<html>proxy login</html>", headers={"content-type": "text/html"}
            ),
            "content type 'text/html', not JSON",
        ),
        (json_response(["a", "list"]), "not a JSON object"),
        (json_response({"id": "x", "object": "chat.completion"}), "no choices"),
        (json_response({"choices": []}), "no choices"),
        (
            json_response({"error": {"message": "model overloaded"}}),
            "it holds an error: model overloaded",
        ),
    ],
)
def test_unusable_2xx_answers_raise_response_errors_without_retry(
    reply: httpx.Response, problem: str
) -> None:
    fake = FakeOpenAI(reply)
    with pytest.raises(APIResponseError) as info:
        make_client(fake).chat(BODY)
    assert str(info.value).startswith(f"Unusable answer from POST {CHAT_URL}: ")
    assert problem in str(info.value)
    assert len(fake.requests) == 1


def test_malformed_embeddings_raise_response_errors() -> None:
    fake = FakeOpenAI(json_response({"data": [{"index": 0}]}), json_response({"object": "list"}))
    client = make_client(fake)
    with pytest.raises(APIResponseError, match="malformed embedding"):
        client.embeddings({"model": "e", "input": "a"})
    with pytest.raises(APIResponseError, match="no list of embeddings"):
        client.embeddings({"model": "e", "input": "a"})


def test_connection_error_names_the_url_and_what_to_check() -> None:
    fake = FakeOpenAI(*(httpx.ConnectError("[Errno 111] Connection refused") for _ in range(3)))
    with pytest.raises(APIConnectionError) as info:
        make_client(fake).chat(BODY)
    assert str(info.value) == (
        f"Could not talk to POST {CHAT_URL} (ConnectError: [Errno 111] Connection refused): "
        "check the base URL, that the server is running, and any proxy or network in between "
        "(gave up after 2 retries)"
    )
    assert isinstance(info.value.__cause__, httpx.ConnectError)


def test_real_refused_connection() -> None:
    # Port 9 (discard) on loopback is closed on any sane test machine.
    client = OpenAIClient("http://127.0.0.1:9/v1", KEY, max_retries=0, timeout=5)
    with client, pytest.raises(APIConnectionError, match="127.0.0.1:9/v1/models"):
        client.models()


# -- key hygiene ----------------------------------------------------------------------


def everything_said(exc: BaseException) -> str:
    """All the text an error could show: str, repr, attributes and the printed chain."""
    parts = [str(exc), repr(exc), "".join(traceback.format_exception(exc))]
    if isinstance(exc, APIError):
        parts += [str(exc.body), str(exc.url)]
    return "\n".join(parts)


def echo_headers(request: httpx.Request) -> httpx.Response:
    """A server that quotes the request's headers back in its error, as some proxies do."""
    headers = dict(request.headers)
    message = f"invalid key; you sent Authorization: {headers['authorization']}"
    return json_response({"error": {"message": message}, "request_headers": headers}, 401)


def test_key_echoed_in_an_error_body_never_reaches_the_error() -> None:
    with pytest.raises(AuthenticationError) as info:
        make_client(FakeOpenAI(echo_headers)).chat(BODY)
    said = everything_said(info.value)
    assert KEY not in said
    assert "invalid key; you sent Authorization: Bearer [redacted]" in str(info.value)
    assert "[redacted]" in str(info.value.body)


def test_key_in_a_connection_error_never_reaches_the_error() -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError(f"proxy refused {request.headers['authorization']}")

    fake = FakeOpenAI(refuse, refuse, refuse)
    with pytest.raises(APIConnectionError) as info:
        make_client(fake).chat(BODY)
    said = everything_said(info.value)
    assert KEY not in said
    assert "proxy refused Bearer [redacted]" in str(info.value)


def test_other_secret_headers_are_redacted_too() -> None:
    def echo(request: httpx.Request) -> httpx.Response:
        return json_response({"error": {"message": f"bad {request.headers['api-key']}"}}, 403)

    client = OpenAIClient(
        BASE_URL,
        transport=FakeOpenAI(echo).transport,
        default_headers={"api-key": "azure-secret-value"},
    )
    with pytest.raises(APIStatusError) as info:
        client.chat(BODY)
    assert "azure-secret-value" not in everything_said(info.value)


# -- redirects ------------------------------------------------------------------------


@pytest.mark.parametrize("stream", [False, True])
@pytest.mark.parametrize(
    ("location", "shown"),
    [
        ("https://api.example.test/v1/chat", "https://api.example.test/v1/chat"),
        ("https://user:REDIRECTPASS@proxy.test/v1/chat", "https://user:***@proxy.test/v1/chat"),
        ("/v2/chat/completions", "{server}/v2/chat/completions"),  # relative to the server
    ],
)
def test_a_redirect_names_where_it_points_with_credentials_masked(
    location: str, shown: str, stream: bool
) -> None:
    from loopback import Reply, serving

    moved = Reply(307, {"error": "moved"}, headers={"location": location})
    with (
        serving(lambda request: moved) as api,
        OpenAIClient(api.base_url, KEY) as client,
        pytest.raises(APIStatusError) as info,
    ):
        client.chat({**BODY, "stream": stream})
    server = api.base_url.removesuffix("/v1")
    assert str(info.value) == (
        f"HTTP 307 from POST {api.base_url}/chat/completions: it redirects to "
        f"{shown.format(server=server)}, which the workbench does not follow: set the base "
        "URL to where it points"
    )
    assert "REDIRECTPASS" not in everything_said(info.value)
    assert api.count() == 1  # neither followed nor retried
