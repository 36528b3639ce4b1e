"""Keys as the workbench holds them: checked on load, masked in every repr and message."""

from __future__ import annotations

import traceback
import warnings
from collections.abc import Iterator

import httpx
import pytest

from workbench.api import credentials
from workbench.api.client import OpenAIClient
from workbench.api.credentials import (
    ApiKey,
    SecretHeaders,
    UnencryptedKeyWarning,
    load_key,
    scrub_chain,
    warn_if_unencrypted,
)
from workbench.core.errors import APIError, ConfigurationError, mask_url, redact

KEY = "wbKEY4hT9vQ2mX7pL5nR8cdef"


def rendered(exc: BaseException) -> str:
    """The traceback with every frame's locals, as ``%xmode Verbose`` shows it, without
    the test's own frame (whose locals hold the key on purpose)."""
    assert exc.__traceback__ is not None
    text = traceback.TracebackException(
        type(exc), exc, exc.__traceback__.tb_next, capture_locals=True
    ).format()
    return "".join(text)


@pytest.fixture(autouse=True)
def fresh_warnings() -> Iterator[None]:
    """Each test sees the once-per-URL warning afresh."""
    credentials._warned.clear()
    yield
    credentials._warned.clear()


# -- loading a key ------------------------------------------------------------------------


def test_a_key_read_from_a_file_loses_its_trailing_newline() -> None:
    key = load_key(f"  {KEY}\r\n", source="$OPENAI_API_KEY")
    assert key is not None and key.reveal() == KEY


def test_an_empty_key_is_no_key() -> None:
    assert load_key(" \n", source="$X") is None and load_key(None, source="$X") is None


@pytest.mark.parametrize(
    ("raw", "what"),
    [
        (KEY + "é", "non-ASCII"),
        (KEY[:10] + "\u200b" + KEY[10:], "non-ASCII"),  # a zero-width space from a web page
        (KEY[:10] + "\n" + KEY[10:], "control character"),
        (KEY[:10] + "\x00" + KEY[10:], "control character"),
    ],
)
def test_a_key_no_header_can_carry_is_refused_in_one_line_without_the_key(
    raw: str, what: str
) -> None:
    with pytest.raises(ConfigurationError) as caught:
        load_key(raw, source="$OPENAI_API_KEY")
    message = str(caught.value)
    assert what in message and "$OPENAI_API_KEY" in message and "\n" not in message
    assert KEY[:10] not in message and KEY[10:] not in message
    assert "in load_key" in rendered(caught.value)  # the frame that raised is shown...
    assert KEY[:10] not in rendered(caught.value)  # ...without a local holding the key
    assert KEY[10:] not in rendered(caught.value)


def test_the_client_refuses_such_a_key_before_sending_anything() -> None:
    sent: list[httpx.Request] = []
    transport = httpx.MockTransport(lambda request: sent.append(request) or httpx.Response(200))
    with pytest.raises(ConfigurationError, match="non-ASCII"):
        OpenAIClient("https://api.example.test/v1", KEY + "é", transport=transport)
    with pytest.raises(ConfigurationError, match="header 'api-key'"):
        OpenAIClient(
            "https://api.example.test/v1", default_headers={"api-key": "é"}, transport=transport
        )
    assert sent == []


def test_an_api_key_never_shows_itself() -> None:
    key = ApiKey(KEY)
    for shown in (repr(key), str(key), f"{key}", repr([key]), repr({"k": key})):
        assert KEY not in shown and "****" in shown
    assert KEY not in key.fingerprint and len(key.fingerprint) == 16
    assert ApiKey(KEY).fingerprint == key.fingerprint != ApiKey(KEY + "x").fingerprint


def test_secret_headers_mask_secret_values_only() -> None:
    headers = SecretHeaders(
        {"Accept": "application/json", "Authorization": f"Bearer {KEY}", "api-key": KEY}
    )
    assert KEY not in repr(headers) and KEY not in str(headers)
    assert "application/json" in repr(headers)
    assert headers["Authorization"] == f"Bearer {KEY}"  # what is sent is unchanged


# -- the exception chain ------------------------------------------------------------------


def _leaky() -> None:
    headers = {"Authorization": f"Bearer {KEY}"}  # a frame local, as in httpcore
    raise ValueError(f"Illegal header value {headers['Authorization']!r}")


def _wrapped() -> None:
    try:
        _leaky()
    except ValueError as inner:
        inner.add_note(f"note with {KEY}")
        raise RuntimeError(f"outer {KEY}") from inner


def test_scrub_chain_redacts_messages_and_clears_frame_locals() -> None:
    with pytest.raises(RuntimeError) as caught:
        _wrapped()
    assert KEY in rendered(caught.value)  # the leak this guards against
    scrub_chain(caught.value, [KEY])
    assert KEY not in rendered(caught.value)
    # Where it failed stays: file, function and line of every frame.
    assert "_leaky" in rendered(caught.value) and "_wrapped" in rendered(caught.value)
    assert "Illegal header value 'Bearer [redacted]'" in rendered(caught.value)


def _callers_helper() -> None:
    note = "the caller's own variable"  # noqa: F841 - a local for the traceback to show
    raise APIError("an earlier failure the caller is handling")


def test_scrub_chain_leaves_an_earlier_error_of_the_caller_alone() -> None:
    low: BaseException | None = None
    try:
        _callers_helper()
    except APIError:
        try:
            _leaky()
        except ValueError as exc:
            low = exc
    assert low is not None and isinstance(low.__context__, APIError)
    scrub_chain(low, [KEY])
    assert KEY not in rendered(low)
    assert 'note = "the caller\'s own variable"' in rendered(low.__context__)


# -- redaction ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "echo",
    [
        "sk-adv-S****cdef",
        "sk-****cdef",
        "sk-...cdef",
        "sk-proj-…cdef",
        "sk-abc*********************wxyz",
    ],
)
def test_masked_echoes_of_keys_are_redacted(echo: str) -> None:
    text = f"Incorrect API key provided: {echo}. You can find your API key at ..."
    assert echo not in redact(text)
    assert redact(text).startswith("Incorrect API key provided: [redacted]")


def test_masked_echoes_of_a_known_key_of_any_shape_are_redacted() -> None:
    for echo in (f"{KEY[:6]}****{KEY[-4:]}", f"****{KEY[-4:]}", f"{KEY[:3]}...{KEY[-4:]}"):
        assert echo not in redact(f"bad key {echo}!", [KEY])
    assert redact("Ask task-force members...cdef", []) == "Ask task-force members...cdef"


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("http://user:TOKEN@host/v1", "http://user:***@host/v1"),
        ("https://TOKEN@host:8443/v1", "https://***@host:8443/v1"),
        ("http://host/v1?email=a@b.c", "http://host/v1?email=a@b.c"),
        ("http://[::1]:8080/v1", "http://[::1]:8080/v1"),
    ],
)
def test_urls_are_shown_with_their_credentials_masked(url: str, shown: str) -> None:
    assert mask_url(url) == shown
    assert redact(f"Could not talk to POST {url}/chat") == f"Could not talk to POST {shown}/chat"


# -- plain http ---------------------------------------------------------------------------


def test_plain_http_to_another_machine_warns_once_per_url() -> None:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        warn_if_unencrypted("http://gpu.lan:8000/v1")
        warn_if_unencrypted("http://gpu.lan:8000/v1")
        warn_if_unencrypted("http://user:TOKEN@10.0.0.7/v1")
    assert [w.category for w in caught] == [UnencryptedKeyWarning] * 2
    assert "http://gpu.lan:8000/v1" in str(caught[0].message)
    assert "unencrypted" in str(caught[0].message)
    assert "TOKEN" not in str(caught[1].message) and "user:***@10.0.0.7" in str(caught[1].message)


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:8000/v1",
        "http://127.8.0.1/v1",
        "http://localhost:8000/v1",
        "http://[::1]:8000/v1",
        "https://gpu.lan/v1",
    ],
)
def test_loopback_and_https_do_not_warn(url: str) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        warn_if_unencrypted(url)


def test_a_client_warns_only_when_a_key_would_travel() -> None:
    transport = httpx.MockTransport(lambda request: httpx.Response(200))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        OpenAIClient("http://vllm.lan:8000/v1", transport=transport)  # no key: nothing to leak
        OpenAIClient("http://vllm.lan:8000/v1", KEY, transport=transport)
        OpenAIClient("http://vllm.lan:8000/v1", KEY, transport=transport)
    assert [w.category for w in caught] == [UnencryptedKeyWarning]


@pytest.mark.parametrize("key", ["sk-bearer-wins-0123456789", None])
def test_credentials_in_a_base_url_travel_in_a_header_not_in_the_url(key: str | None) -> None:
    from loopback import LoopbackAPI, chat_reply

    with LoopbackAPI(lambda request: chat_reply("ok")) as server:
        host = server.base_url.removeprefix("http://")
        with OpenAIClient(f"http://proxyuser:proxy-pass-9f8e7d@{host}", key) as client:
            assert client.chat({"model": "m", "messages": []}).text == "ok"
        sent = server.received[-1].headers["authorization"]
    # The key is sent when there is one (httpx's Basic from the URL used to replace it);
    # without one the URL's credentials are, as Basic; never in a request's URL.
    assert sent == (f"Bearer {key}" if key else "Basic cHJveHl1c2VyOnByb3h5LXBhc3MtOWY4ZTdk")
