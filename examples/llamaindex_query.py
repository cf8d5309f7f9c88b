"""LlamaIndex's RAG query path: ``VectorStoreIndex.as_query_engine(use_async=True, llm=...)`` and ``aquery``.

    loadgen run -f examples/llamaindex_query.py -u 10 -t 30s

``MockLLM`` answers offline, so the run measures retrieval through the query engine; the engine's calls into
``MilvusVectorStore`` are timed by loadgen (request type ``llamaindex-async``, name ``aquery``).
"""

from llama_index.core import VectorStoreIndex
from llama_index.core.llms import MockLLM
from locust import task

from loadgen import VectorStoreUser


class LlamaIndexQuery(VectorStoreUser):
    layer = "llamaindex"  # loadgen prepares <collection>_llamaindex; self.llamaindex is a timed MilvusVectorStore

    async def on_start(self) -> None:
        index = VectorStoreIndex.from_vector_store(self.llamaindex, embed_model=self.embed_model)
        self.engine = index.as_query_engine(use_async=True, llm=MockLLM(max_tokens=32), similarity_top_k=4)

    @task(2)
    async def query(self) -> None:
        async with self.flow("query_engine"):
            response = await self.engine.aquery(self.query_text())
        assert response.source_nodes

    @task
    async def retrieve_then_synthesize(self) -> None:
        question = self.query_text()
        async with self.flow("rag") as steps:
            nodes = await self.engine.aretrieve(question)
            steps.mark("retrieve")
            await self.engine.asynthesize(question, nodes)
            steps.mark("synthesize")
