"""The retrieval layer's own statistics, merged across workers like recall (see ``loadgen.stats.listeners``):

- relevance against the corpus's qrels per (request type, name): recall@k and NDCG@10 (``context["relevance_recall"]``,
  ``context["ndcg@10"]``), exact value histograms (``RecallStats``);
- iterators: time to the first page (``context["first_page_ms"]``), next to the request row's time to the whole result;
- tenants: the request's latency per tenant bucket hot / warm / cold (``context["tenant_bucket"]``);
- freshness: write acknowledged -> first query that sees it, per write kind and consistency level
  (``context["freshness_ms"]``, ``context["write"]``, ``context["consistency_level"]``), carried by that query's row
  (the write is a row of its own, and so is every query: see ``loadgen.clients.freshness``); writes no query saw
  within ``--timeout`` are counted (``context["freshness_unseen"]``).
Latencies are HDR histograms in microseconds (``LatencyHistograms``), so merging is exact.
"""

from __future__ import annotations

import math
from typing import Any

from loadgen.stats.histograms import LatencyHistograms
from loadgen.stats.listeners import MergedListener, OutPath
from loadgen.workload.groundtruth import RecallStats

PAYLOAD_FORMAT = "milvus-loadgen/retrieval-payload/v1"
RESULTS_FORMAT = "milvus-loadgen/retrieval/v1"
REPORT_KEY = "loadgen_retrieval"
RELEVANCE = ("relevance_recall", "ndcg@10")


class RetrievalStats:
    """Everything above for one node (a worker, or the master's merge)."""

    def __init__(self) -> None:
        self.relevance: dict[tuple[str, str, str], RecallStats] = {}  # (metric, type, name)
        self.latency = LatencyHistograms()  # keys: ("first_page <type>", name), ("tenant <bucket>", ...), ...
        self.unseen: dict[str, int] = {}  # "<write> <level> <type>" (freshness's keys) -> writes never seen

    def __bool__(self) -> bool:
        return bool(self.latency) or bool(self.unseen) or any(s.count for s in self.relevance.values())

    def record(self, request_type: str, name: str, response_time: float, context: dict[str, Any]) -> None:
        for metric in RELEVANCE:
            value = context.get(metric)
            if isinstance(value, int | float) and not math.isnan(value):
                self.relevance.setdefault((metric, request_type, name), RecallStats()).add(float(value))
        if isinstance(context.get("first_page_ms"), int | float):
            self.latency.record(f"first_page {request_type}", name, float(context["first_page_ms"]))
        if context.get("tenant_bucket"):
            self.latency.record(f"tenant {request_type} {context['tenant_bucket']}", name, float(response_time))
        if isinstance(context.get("freshness_ms"), int | float):
            level = context.get("consistency_level", "")
            self.latency.record(f"freshness {context.get('write', '')} {level}", request_type, context["freshness_ms"])
        if context.get("freshness_unseen"):
            key = f"{context.get('write', '')} {context.get('consistency_level', '')} {request_type}"
            self.unseen[key] = self.unseen.get(key, 0) + 1

    def to_payload(self) -> dict[str, Any]:
        return {
            "format": PAYLOAD_FORMAT,
            "relevance": [{"key": list(k), **s.to_dict()} for k, s in sorted(self.relevance.items()) if s.count],
            "latency": self.latency.to_payload(),
            "unseen": dict(self.unseen),
        }

    def merge_payload(self, payload: dict[str, Any]) -> None:
        if payload.get("format") != PAYLOAD_FORMAT:
            raise ValueError(f"not a loadgen retrieval payload: format {payload.get('format')!r}")
        for item in payload["relevance"]:
            key = tuple(str(x) for x in item["key"])
            self.relevance.setdefault((key[0], key[1], key[2]), RecallStats()).merge(RecallStats.from_dict(item))
        self.latency.merge(LatencyHistograms.from_payload(payload["latency"]))
        for key, n in payload.get("unseen", {}).items():
            self.unseen[str(key)] = self.unseen.get(str(key), 0) + int(n)

    def results(self) -> dict[str, Any]:
        relevance: dict[str, dict[str, Any]] = {}
        for (metric, rtype, name), s in sorted(self.relevance.items()):
            if s.count:
                relevance.setdefault(f"{rtype} {name}", {})[metric] = {"mean": s.mean, "count": s.count}
        groups: dict[str, dict[str, Any]] = {"first_page": {}, "tenant": {}, "freshness": {}}
        for key, name in self.latency.request_keys():
            family, _, rest = key.partition(" ")
            groups[family][f"{rest} {name}"] = self.latency.percentiles(key, name)
        return {
            "format": RESULTS_FORMAT,
            "relevance": relevance,
            **groups,
            "freshness_unseen": dict(sorted(self.unseen.items())),
        }


class RetrievalListener(MergedListener):
    report_key = REPORT_KEY
    what = "retrieval statistics"

    def __init__(self, environment: Any, out_path: OutPath = None) -> None:
        self.stats = RetrievalStats()
        super().__init__(environment, out_path)

    def on_request(
        self,
        request_type: str,
        name: str,
        response_time: float = 0.0,
        exception: BaseException | None = None,
        context: dict[str, Any] | None = None,
        **_: Any,
    ) -> None:
        if exception is None and context:
            self.stats.record(request_type, name, response_time, context)

    def has_data(self) -> bool:
        return bool(self.stats)

    def to_payload(self) -> dict[str, Any]:
        return self.stats.to_payload()

    def merge_payload(self, payload: dict[str, Any]) -> None:
        self.stats.merge_payload(payload)

    def reset(self) -> None:
        self.stats = RetrievalStats()

    def results(self) -> dict[str, Any]:
        return self.stats.results()
