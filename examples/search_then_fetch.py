"""Search, then fetch the hits' rows: pymilvus, sync and async in one user.

loadgen run -f examples/search_then_fetch.py -u 10 -t 30s    (--nq 4: four query vectors per search)
"""

from locust import task

from loadgen import VectorStoreUser


class SearchThenFetch(VectorStoreUser):
    # layer = "pymilvus" (the default): loadgen prepares --collection and self.collection names it

    @task(2)
    def search_then_fetch(self) -> None:
        hits = self.milvus.search(self.collection, data=self.query_vectors(), limit=10)
        self.milvus.get(self.collection, ids=[hit["id"] for q in hits for hit in q], output_fields=["text"])

    @task
    async def search_then_fetch_async(self) -> None:
        async with self.flow("search_then_fetch") as steps:
            hits = await self.amilvus.search(self.collection, data=self.query_vectors(), limit=10)
            steps.mark("search")
            await self.amilvus.get(self.collection, ids=[hit["id"] for q in hits for hit in q], output_fields=["text"])
            steps.mark("fetch")
