"""A LangChain RAG flow: retrieve from langchain-milvus, then generate with an LLM.

    loadgen run -f examples/langchain_rag.py -u 10 -t 30s

The LLM is deterministic and offline (``FakeListLLM``), so the run measures your retrieval path and nothing else;
set ``LOADGEN_EXAMPLE_OPENAI_MODEL`` (with ``OPENAI_API_KEY`` and, for a compatible server, ``OPENAI_BASE_URL``) and
``pip install langchain-openai`` to generate with a real OpenAI-compatible endpoint instead.
"""

import os

from langchain_core.language_models.fake import FakeListLLM
from langchain_core.output_parsers import StrOutputParser
from langchain_core.prompts import PromptTemplate
from locust import task

from loadgen import VectorStoreUser

PROMPT = PromptTemplate.from_template("Answer from the context.\nContext:\n{context}\nQuestion: {question}\nAnswer:")


def make_llm() -> object:
    model = os.environ.get("LOADGEN_EXAMPLE_OPENAI_MODEL", "")
    if model:
        from langchain_openai import ChatOpenAI  # optional: only with a configured endpoint

        return ChatOpenAI(model=model, temperature=0)
    return FakeListLLM(responses=["Milvus stores vectors; the context above says how."])


class LangChainRag(VectorStoreUser):
    layer = "langchain"  # loadgen prepares <collection>_langchain; self.langchain is a timed langchain Milvus

    def on_start(self) -> None:
        self.chain = PROMPT | make_llm() | StrOutputParser()

    @task(3)
    async def rag(self) -> None:
        question = self.query_text()
        async with self.flow("rag") as steps:
            docs = await self.langchain.asimilarity_search(question, k=4)
            steps.mark("retrieve")
            context = "\n".join(doc.page_content for doc in docs)
            answer = await self.chain.ainvoke({"context": context, "question": question})
            steps.mark("generate")
        assert answer

    @task
    def retriever(self) -> None:
        # a LangChain retriever over the timed store: its similarity_search is timed too
        self.langchain.as_retriever(search_kwargs={"k": 4}).invoke(self.query_text())
