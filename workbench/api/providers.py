"""Where a call goes: OpenAI, any OpenAI-compatible base URL, or the embedded local model.

Resolution order: an explicit provider (argument or ``NAME:model``), else the default set
with ``wb.configure(provider=...)`` or ``workbench.toml``, else ``OPENAI_BASE_URL`` /
``OPENAI_API_KEY`` from the environment (the openai SDK's conventions), else the local
model. Keys are read from the environment when a call is made and never stored.

:func:`route` is the one decision every front end (``wb.chat``, sweeps, ``wb.embed``,
magics, panels, estimates) goes through: the local model answers only to its own names,
so a hosted model's name with no key, or a misspelled name, is refused, never answered
by the local model under the name that was asked for.
"""

from __future__ import annotations

import functools
import os
import re
import sys
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from workbench.api.credentials import ApiKey, load_key
from workbench.api.keycheck import find_key
from workbench.api.local import CHAT_MODEL_ALIAS, EMBEDDING_MODEL_ALIAS
from workbench.api.model_names import LOCAL_MODELS, local_name_refusal, set_key_hint
from workbench.core.errors import ConfigurationError, mask_url
from workbench.core.names import closest_name

__all__ = [
    "Provider",
    "OPENAI_URL",
    "LOCAL",
    "load_config",
    "known_providers",
    "Route",
    "resolve",
    "route",
]

OPENAI_URL = "https://api.openai.com/v1"
LOCAL = "local"
CONFIG_FILE = "workbench.toml"

# Models used when none is named and the provider has no default of its own.
_OPENAI_CHAT_DEFAULT = "gpt-4o-mini"
_OPENAI_EMBED_DEFAULT = "text-embedding-3-small"


@dataclass(frozen=True)
class Provider:
    """A place to send calls. Holds the *name* of the key's variable, never the key."""

    name: str
    base_url: str | None = None  # None for the local model: known once it has started
    api_key_env: str | None = None
    default_model: str | None = None
    default_embedding_model: str | None = None
    local: bool = False
    # Which genai-prices provider prices this one's models; None: only wb.set_price
    # prices apply, because guessing a price for a self-hosted model would be wrong.
    price_provider: str | None = None
    # Which models are reasoning models (workbench.api.reasoning): these names, then
    # ``reasoning`` for every other model (None: judged by OpenAI's model names).
    reasoning_models: tuple[str, ...] = ()
    reasoning: bool | None = None
    # The server an environment OPENAI_BASE_URL reaches (host[:port]), None for
    # api.openai.com and for named providers: see ``identity``.
    origin: str | None = None
    # Which API chat calls use (workbench.api.responses): "chat", "responses", or None
    # (Chat Completions, but Responses for the models listed in ``responses_models``,
    # None: the workbench's own list of models served only there).
    api: str | None = None
    responses_models: tuple[str, ...] | None = None

    def __repr__(self) -> str:
        # A base URL may carry a password: shown masked, as every message shows it.
        shown = {f.name: getattr(self, f.name) for f in fields(self)}
        shown["base_url"] = mask_url(self.base_url) if self.base_url else self.base_url
        return f"Provider({', '.join(f'{name}={value!r}' for name, value in shown.items())})"

    @property
    def identity(self) -> str:
        """The provider as the table records it and replays key on.

        ``openai`` reaching another server is ``openai@host:port``, so a replay answers
        only for the server that gave the answer. A provider named in workbench.toml
        keeps its name: a team that names its proxy shares replays across machines that
        reach it by different URLs.
        """
        return f"{self.name}@{self.origin}" if self.origin else self.name

    def chat_base_url(self) -> str:
        if self.local:
            # looked up at call time: the tests patch it
            from workbench.api.local import get_local_server

            return get_local_server().chat_base_url
        assert self.base_url is not None
        return self.base_url

    def embeddings_base_url(self) -> str:
        if self.local:
            # looked up at call time: the tests patch it
            from workbench.api.local import get_local_server

            return get_local_server().embeddings_base_url
        assert self.base_url is not None
        return self.base_url

    def api_key(self) -> str | None:
        """The key, read now from the environment (or the local server's own key)."""
        key = self.key()
        return key.reveal() if key is not None else None

    def key(self) -> ApiKey | None:
        """The key as :meth:`api_key` reads it, held so that no repr shows it."""
        if self.local:
            # looked up at call time: the tests patch it
            from workbench.api.local import get_local_server

            return ApiKey(get_local_server().api_key)
        if not self.api_key_env:
            return None
        # No local holds the plain text, and os.environ is not named on this line: a
        # verbose traceback prints the locals and the values of names on the failing line.
        key = load_key(os.getenv(self.api_key_env), source=f"${self.api_key_env}")
        if not key:
            missing = self.missing_key()
            if missing is not None:
                raise ConfigurationError(missing)
        return key

    def missing_key(self) -> str | None:
        """Why a call cannot be sent for want of a key (one line naming the fix), or None.

        A server reached through OPENAI_BASE_URL may need no key; api.openai.com and a
        provider whose workbench.toml names an api_key_env do.
        """
        if self.local or not self.api_key_env or (os.getenv(self.api_key_env) or "").strip():
            return None
        if self.base_url == OPENAI_URL:
            return (
                f"No API key: set {self.api_key_env} {set_key_hint(self.api_key_env)}, or "
                f'use the local model by its name (model="{CHAT_MODEL_ALIAS}")'
            )
        if self.name != "openai":
            return (
                f"No API key for provider {self.name!r}: set the environment variable "
                f"{self.api_key_env} (named by api_key_env in {CONFIG_FILE})"
            )
        return None

    def default_chat_model(self) -> str | None:
        if self.default_model:
            return self.default_model
        if self.local:
            return CHAT_MODEL_ALIAS
        if self.base_url == OPENAI_URL:
            return _OPENAI_CHAT_DEFAULT
        return None  # the caller asks the server's model list

    def default_embed_model(self) -> str | None:
        if self.default_embedding_model:
            return self.default_embedding_model
        if self.local:
            return EMBEDDING_MODEL_ALIAS
        if self.base_url == OPENAI_URL:
            return _OPENAI_EMBED_DEFAULT
        return None


LOCAL_PROVIDER = Provider(name=LOCAL, local=True)


_DEFAULT_PORTS = {"http": 80, "https": 443}


def _origin(base_url: str) -> str | None:
    """``host[:port]`` of a base URL (never its user or password); None for OpenAI's own."""
    parts = urlsplit(base_url)
    host = (parts.hostname or "").lower()
    if host == "api.openai.com":
        return None
    shown = f"[{host}]" if ":" in host else host
    try:
        port = parts.port
    except ValueError:  # not a number: the client refuses the URL with its own message
        port = None
    if port is not None and port != _DEFAULT_PORTS.get(parts.scheme.lower()):
        shown += f":{port}"
    return shown or None


def _env_provider() -> Provider:
    return _env_provider_at((os.environ.get("OPENAI_BASE_URL") or OPENAI_URL).rstrip("/"))


@functools.lru_cache(maxsize=64)
def _env_provider_at(base_url: str) -> Provider:
    # Built once per URL: every call routes, and a sweep plans a million of them.
    # OPENAI_* variables mean "OpenAI or a drop-in for it": price by OpenAI's table.
    return Provider(
        name="openai",
        base_url=base_url,
        api_key_env="OPENAI_API_KEY",
        price_provider="openai",
        origin=_origin(base_url),
    )


def _read_toml(path: Path) -> dict[str, Any]:
    if sys.version_info >= (3, 11):
        import tomllib  # local: which module exists depends on the Python version
    else:  # pragma: no cover - exercised on 3.10 only
        import tomli as tomllib  # type: ignore[import-not-found,unused-ignore]
    try:
        with path.open("rb") as fh:
            data: dict[str, Any] = tomllib.load(fh)
            return data
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ConfigurationError(f"Cannot read {path}: {exc}") from exc


@dataclass(frozen=True)
class Config:
    providers: dict[str, Provider]
    default_provider: str | None


_VARIABLE_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def _looks_like_key(value: str) -> bool:
    if find_key(value) is not None:
        return True
    # Variable names are words; a long run mixing cases and digits is random, a key.
    mixed = (
        any(c.islower() for c in value)
        and any(c.isupper() for c in value)
        and any(c.isdigit() for c in value)
    )
    return len(value) >= 16 and mixed


def _secret_in_config(path: Path, data: dict[str, Any]) -> str | None:
    """Why ``data`` cannot be used because it holds a key, never showing it; or None."""
    for name, table in (data.get("providers") or {}).items():
        if not isinstance(table, dict):
            continue
        if "api_key" in table:
            return (
                f"{path}: [providers.{name}] has api_key; keys belong in the environment: "
                'use api_key_env = "NAME_OF_VARIABLE"'
            )
        value = table.get("api_key_env")
        if value is None:
            continue
        if (
            not isinstance(value, str)
            or not _VARIABLE_NAME.fullmatch(value)
            or _looks_like_key(value)
        ):
            # The commonest slip is pasting the key itself here: an error message, or the
            # table's error column, must not keep it.
            return (
                f"{path}: [providers.{name}] api_key_env must be the name of an environment "
                'variable (like "TEAM_API_KEY"), and what is there is not one (a key itself?): '
                "put the key in an environment variable and name that variable here"
            )
    return None


_NO_CONFIG = Config(providers={}, default_provider=None)
# (path, mtime_ns, size) -> the file's Config: every call routes, and reading and checking
# the file each time was ~160 us of a dataset sweep's ~400 us of planning per row.
_read_configs: dict[tuple[str, int, int], Config] = {}


def load_config(directory: str | os.PathLike[str] | None = None) -> Config:
    """Named providers from ``workbench.toml`` in ``directory`` (default: the cwd)."""
    path = os.path.join(os.fspath(directory or os.getcwd()), CONFIG_FILE)
    try:
        status = os.stat(path)
    except OSError:
        return _NO_CONFIG
    stamp = (path, status.st_mtime_ns, status.st_size)
    if stamp not in _read_configs:
        config = _load_config(Path(path))  # raises for a bad file: nothing is kept
        _read_configs.clear()
        _read_configs[stamp] = config
    return _read_configs[stamp]


def _load_config(path: Path) -> Config:
    if not path.is_file():
        return _NO_CONFIG
    data = _read_toml(path)
    refused = _secret_in_config(path, data)
    if refused is not None:
        # The parsed file holds a key, and a verbose traceback prints every frame's
        # locals: none may keep it when the error is raised.
        del data
        raise ConfigurationError(refused)
    providers: dict[str, Provider] = {}
    for name, table in (data.get("providers") or {}).items():
        if not isinstance(table, dict) or not table.get("base_url"):
            raise ConfigurationError(
                f'{path}: [providers.{name}] needs base_url = "http://host:port/v1"'
            )
        providers[name] = Provider(
            name=name,
            base_url=str(table["base_url"]).rstrip("/"),
            api_key_env=table.get("api_key_env"),
            default_model=table.get("default_model"),
            default_embedding_model=table.get("default_embedding_model"),
            price_provider=table.get("price_provider"),
            **_reasoning_settings(path, name, table),
            **_api_settings(path, name, table),
        )
    default = data.get("default_provider")
    if default is not None and default not in providers and default not in (LOCAL, "openai"):
        raise ConfigurationError(
            f"{path}: default_provider = {default!r} is not one of "
            f"{sorted([*providers, LOCAL, 'openai'])}"
        )
    return Config(providers=providers, default_provider=default)


def _reasoning_settings(path: Path, name: str, table: dict[str, Any]) -> dict[str, Any]:
    """``reasoning_models = ["name", ...]`` and ``reasoning = true|false`` of a provider."""
    models = table.get("reasoning_models", [])
    if not isinstance(models, list) or not all(isinstance(m, str) for m in models):
        raise ConfigurationError(
            f'{path}: [providers.{name}] reasoning_models must be a list of model names, '
            'e.g. ["my-proxy-model"]'
        )
    reasoning = table.get("reasoning")
    if reasoning is not None and not isinstance(reasoning, bool):
        raise ConfigurationError(
            f"{path}: [providers.{name}] reasoning must be true or false, got {reasoning!r}"
        )
    return {"reasoning_models": tuple(models), "reasoning": reasoning}


def _api_settings(path: Path, name: str, table: dict[str, Any]) -> dict[str, Any]:
    """``api = "chat"|"responses"`` and ``responses_models = [...]`` of a provider."""
    api, models = table.get("api"), table.get("responses_models")
    if api is not None and api not in ("chat", "responses"):
        raise ConfigurationError(
            f'{path}: [providers.{name}] api must be "chat" or "responses", got {api!r}'
        )
    if models is not None and (
        not isinstance(models, list) or not all(isinstance(m, str) for m in models)
    ):
        raise ConfigurationError(
            f'{path}: [providers.{name}] responses_models must be a list of model names'
        )
    return {"api": api, "responses_models": None if models is None else tuple(models)}


def known_providers(config: Config | None = None) -> dict[str, Provider]:
    """Every provider that can be named: local, openai (from the environment), toml ones."""
    config = config or load_config()
    return {LOCAL: LOCAL_PROVIDER, "openai": _env_provider(), **config.providers}


def _by_name(name: str, providers: dict[str, Provider]) -> Provider:
    if name in providers:
        return providers[name]
    hint = closest_name(name, list(providers))
    suggestion = f" Did you mean {hint!r}?" if hint else ""
    raise ConfigurationError(
        f"Unknown provider {name!r}.{suggestion} Known: {', '.join(sorted(providers))} "
        f"(add others under [providers.NAME] in {CONFIG_FILE})"
    )


def resolve(
    model: str | None = None,
    provider: str | None = None,
    *,
    default_provider: str | None = None,
    config: Config | None = None,
) -> tuple[Provider, str | None]:
    """Pick the provider for a call and the model name to send (None: provider default).

    Raises ConfigurationError (one line naming the fix) when a named model cannot be
    sent: see :func:`route`. A missing key is left to the call (``Provider.key``).
    """
    routed = route(model, provider, default_provider=default_provider, config=config)
    if routed.refusal is not None and model:
        raise ConfigurationError(routed.refusal)
    return routed.provider, routed.model


@dataclass(frozen=True)
class Route:
    """Where a call would go. ``refusal`` (one line naming the fix) says why the model
    named cannot be sent there; ``missing_key`` names the variable of a key that is not
    set (an estimate prices the call at its provider's price and says so)."""

    provider: Provider
    model: str | None
    refusal: str | None = None
    missing_key: str | None = None


def route(
    model: str | None = None,
    provider: str | None = None,
    *,
    kind: str | None = None,
    default_provider: str | None = None,
    config: Config | None = None,
) -> Route:
    """Where a call naming ``model`` (and ``provider``) goes, refusals included.

    ``NAME:model`` selects a provider only when NAME is a known provider, because model
    names themselves may contain colons (Ollama's ``llama3:8b``). The local model serves
    whatever name it is sent (llama.cpp ignores it), so it is reached only by its own
    names; ``kind`` ("chat" or "embedding") narrows which of them a suggestion offers.
    """
    config = config or load_config()
    providers = known_providers(config)
    chosen, name, fell_back = _choose(model, provider, default_provider, config, providers)
    if chosen.local:
        return _local_route(name, kind, fell_back, providers["openai"])
    # A missing key is the call's to refuse (Provider.key, when it is sent): a sweep
    # under a budget is refused by its estimate first, without any key.
    missing = chosen.api_key_env if chosen.missing_key() is not None else None
    return Route(chosen, name, None, missing)


def _choose(
    model: str | None,
    provider: str | None,
    default_provider: str | None,
    config: Config,
    providers: dict[str, Provider],
) -> tuple[Provider, str | None, bool]:
    """The provider and model name; True when the local model was chosen for want of
    an OpenAI key or URL (rather than named)."""
    if model and ":" in model and provider is None:
        prefix, rest = model.split(":", 1)
        if prefix in providers:
            return providers[prefix], rest or None, False
    if provider is not None:
        return _by_name(provider, providers), model, False
    chosen = default_provider or config.default_provider
    if chosen is not None:
        return _by_name(chosen, providers), model, False
    if os.environ.get("OPENAI_BASE_URL") or os.environ.get("OPENAI_API_KEY"):
        return providers["openai"], model, False
    return LOCAL_PROVIDER, model, True


def _local_route(
    name: str | None, kind: str | None, fell_back: bool, hosted: Provider
) -> Route:
    if name is None or name in LOCAL_MODELS:
        return Route(LOCAL_PROVIDER, name)
    refusal, is_hosted = local_name_refusal(name, kind, fell_back=fell_back)
    if is_hosted and fell_back:
        # Routed (and so priced) as OpenAI's: an estimate gives the real price of what
        # was asked for; the call itself is refused.
        return Route(hosted, name, refusal, "OPENAI_API_KEY")
    return Route(LOCAL_PROVIDER, name, refusal)
