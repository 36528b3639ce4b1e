"""Where calls go: explicit names, NAME:model, workbench.toml, the environment, local."""

from __future__ import annotations

from pathlib import Path

import pytest

from workbench.api.providers import LOCAL, OPENAI_URL, load_config, resolve
from workbench.core.errors import ConfigurationError


def write_toml(directory: Path, text: str) -> None:
    (directory / "workbench.toml").write_text(text)


def test_no_environment_means_local(in_tmp_dir: Path) -> None:
    provider, model = resolve()
    assert provider.name == LOCAL and provider.local
    assert model is None


def test_openai_key_in_environment_means_openai(
    in_tmp_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-123456789")
    provider, model = resolve("gpt-4o-mini")
    assert provider.name == "openai"
    assert provider.chat_base_url() == OPENAI_URL
    assert provider.api_key() == "sk-test-123456789"
    assert provider.default_chat_model() == "gpt-4o-mini"
    assert model == "gpt-4o-mini"


def test_base_url_without_key_is_an_openai_compatible_server(
    in_tmp_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPENAI_BASE_URL", "http://127.0.0.1:8000/v1/")
    provider, _ = resolve()
    assert provider.chat_base_url() == "http://127.0.0.1:8000/v1"
    assert provider.api_key() is None  # vLLM / llama.cpp without auth
    assert provider.default_chat_model() is None  # asked from the server's list


def test_official_openai_without_key_names_the_fix(in_tmp_dir: Path) -> None:
    provider, _ = resolve(provider="openai")
    with pytest.raises(ConfigurationError, match="No API key: set OPENAI_API_KEY"):
        provider.api_key()


def test_toml_providers_by_prefix_and_default(
    in_tmp_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_toml(
        in_tmp_dir,
        """
default_provider = "vllm"
[providers.vllm]
base_url = "http://gpu:8000/v1"
api_key_env = "VLLM_KEY"
default_model = "qwen"
[providers.ollama]
base_url = "http://localhost:11434/v1"
""",
    )
    monkeypatch.setenv("VLLM_KEY", "secret-vllm-key")
    provider, model = resolve()
    assert (provider.name, model) == ("vllm", None)
    assert provider.default_chat_model() == "qwen"
    assert provider.api_key() == "secret-vllm-key"
    provider, model = resolve("ollama:llama3:8b")
    assert (provider.name, model) == ("ollama", "llama3:8b")
    # A colon that does not name a provider is part of the model name.
    provider, model = resolve("llama3:8b")
    assert (provider.name, model) == ("vllm", "llama3:8b")
    provider, model = resolve("smollm2-135m-instruct", provider="local")
    assert (provider.name, model) == ("local", "smollm2-135m-instruct")


def test_toml_provider_with_unset_key_variable(
    in_tmp_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_toml(in_tmp_dir, '[providers.team]\nbase_url = "http://x/v1"\napi_key_env = "TEAM_KEY"\n')
    monkeypatch.delenv("TEAM_KEY", raising=False)
    provider, _ = resolve(provider="team")
    with pytest.raises(ConfigurationError, match="set the environment variable TEAM_KEY"):
        provider.api_key()


def test_keys_are_never_accepted_in_the_file(in_tmp_dir: Path) -> None:
    write_toml(in_tmp_dir, '[providers.team]\nbase_url = "http://x/v1"\napi_key = "sk-oops"\n')
    with pytest.raises(ConfigurationError, match="keys belong in the environment") as info:
        load_config()
    assert "sk-oops" not in str(info.value)


def test_unknown_provider_suggests(in_tmp_dir: Path) -> None:
    with pytest.raises(ConfigurationError, match="Did you mean 'local'"):
        resolve(provider="locla")


def test_broken_toml_is_one_clear_error(in_tmp_dir: Path) -> None:
    write_toml(in_tmp_dir, "[providers.x\n")
    with pytest.raises(ConfigurationError, match="Cannot read"):
        load_config()
    write_toml(in_tmp_dir, "[providers.x]\napi_key_env = 'K'\n")
    with pytest.raises(ConfigurationError, match="needs base_url"):
        load_config()


PASTED_KEYS = [
    "sk-proj-" + "Ab3dEf6hIj9kLm2nOp5qRs8tUv1wXy4z",  # OpenAI's shape
    "vLLMkey" + "9fQ2xT7mW4pZ8kR3",  # a self-hosted server's key: random, no prefix
    "Bearer tok-123",  # not a variable name at all
]


@pytest.mark.parametrize("pasted", PASTED_KEYS)
def test_a_key_pasted_as_api_key_env_is_refused_without_echoing_it(
    in_tmp_dir: Path, pasted: str
) -> None:
    write_toml(
        in_tmp_dir, f'[providers.team]\nbase_url = "http://x/v1"\napi_key_env = "{pasted}"\n'
    )
    with pytest.raises(ConfigurationError, match="api_key_env must be the name") as info:
        resolve(provider="team")
    assert pasted not in str(info.value) and pasted[-6:] not in str(info.value)
    assert "\n" not in str(info.value)


@pytest.mark.parametrize("name", ["TEAM_API_KEY", "vllm_key", "OPENAI_API_KEY_2", "_K"])
def test_names_of_variables_are_accepted_as_api_key_env(in_tmp_dir: Path, name: str) -> None:
    write_toml(in_tmp_dir, f'[providers.team]\nbase_url = "http://x/v1"\napi_key_env = "{name}"\n')
    provider, _ = resolve(provider="team")
    assert provider.api_key_env == name


def test_a_key_read_from_a_file_is_stripped(
    in_tmp_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-123456789\n")
    provider, _ = resolve()
    assert provider.api_key() == "sk-test-123456789"


@pytest.mark.parametrize(
    ("base_url", "identity"),
    [
        (None, "openai"),
        ("https://api.openai.com/v1", "openai"),
        ("https://API.OpenAI.com/v1/", "openai"),
        ("http://127.0.0.1:8000/v1", "openai@127.0.0.1:8000"),
        ("https://user:TOKEN@Proxy.Example:443/openai/v1", "openai@proxy.example"),
        ("http://proxy.example:80/v1", "openai@proxy.example"),
        ("http://[::1]:8080/v1", "openai@[::1]:8080"),
    ],
)
def test_the_environment_provider_is_known_by_the_server_it_reaches(
    in_tmp_dir: Path, monkeypatch: pytest.MonkeyPatch, base_url: str | None, identity: str
) -> None:
    if base_url is None:
        monkeypatch.setenv("OPENAI_API_KEY", "sk-test-123456789")
    else:
        monkeypatch.setenv("OPENAI_BASE_URL", base_url)
    provider, _ = resolve()
    assert provider.name == "openai"  # what a person types stays the same
    assert provider.identity == identity
    assert "TOKEN" not in repr(provider)


def test_a_named_provider_keeps_its_name_whatever_its_url(in_tmp_dir: Path) -> None:
    write_toml(in_tmp_dir, '[providers.team]\nbase_url = "http://10.1.2.3:8000/v1"\n')
    assert resolve(provider="team")[0].identity == "team"
    assert resolve(provider="local")[0].identity == "local"
