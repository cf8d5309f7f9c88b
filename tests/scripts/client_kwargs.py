"""Builds every client layer's store from one Settings with a token and TLS options, with each library's client
constructor replaced by a recorder, and prints (as JSON) what each constructor was given. A subprocess of its own:
the adapters import loadgen.runtime, which patches this process with gevent."""

# isort: split
import loadgen.runtime  # noqa: F401

# isort: split
import json
import sys
from typing import Any

from loadgen.clients import langchain, langchain_setup, llamaindex_setup, pymilvus
from loadgen.config.settings import Settings
from loadgen.milvus import collection
from loadgen.runtime import bridge

seen: dict[str, dict[str, Any]] = {}


def recorder(name: str) -> type:
    class Recorder:
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            seen[name] = {k: v for k, v in kwargs.items() if isinstance(v, str | int | float | bool)}

        async def has_collection(self, *args: Any, **kwargs: Any) -> bool:
            return True

    return Recorder


ca, cert, key = sys.argv[1:4]
settings = Settings(
    uri="https://127.0.0.1:19530", milvus_token="root:tok-XYZ", timeout=3.0,
    tls_ca_file=ca, tls_server_name="localhost",
    **({"tls_client_cert": cert, "tls_client_key": key} if cert else {}),
)  # fmt: skip
collection.MilvusClient = recorder("setup MilvusClient")  # type: ignore[misc]
collection.connect(settings)
pymilvus.MilvusClient = recorder("pymilvus MilvusClient")  # type: ignore[misc]
pymilvus.AsyncMilvusClient = recorder("pymilvus AsyncMilvusClient")  # type: ignore[misc]
pymilvus.ADAPTER.open(settings, False)
bridge.run(pymilvus.ADAPTER.attach(pymilvus.ADAPTER.open(settings, True)), 10)
seen["langchain connection_args"] = langchain_setup.store_kwargs(settings, "alias-1")["connection_args"]
langchain.AsyncMilvusClient = recorder("langchain AsyncMilvusClient")  # type: ignore[misc]
langchain.Milvus = recorder("langchain Milvus")  # type: ignore[misc]
bridge.run(langchain.ADAPTER.attach(langchain.ADAPTER.open(settings, True)), 10)
llamaindex_setup.MilvusVectorStore = recorder("llamaindex MilvusVectorStore")  # type: ignore[misc]
llamaindex_setup.store_for(settings)
llamaindex_setup.AsyncMilvusClient = recorder("llamaindex AsyncMilvusClient")  # type: ignore[misc]
bridge.run(llamaindex_setup.attach_async_client(llamaindex_setup.store_for(settings), settings), 10)
print(json.dumps(seen))
