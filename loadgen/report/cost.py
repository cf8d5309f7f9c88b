"""Money: what a rate costs at the prices you give (nothing is looked up; the inputs are printed with the figures).

The serving cost is the Milvus nodes' (``--price-per-node-hour`` x nodes); the load generator's pods
(``--price-per-generator-hour``) are what the test costs while it runs, shown apart: an app does not pay for them.
Two figures for a rate R req/s that a cost of C $/h serves:
- cost per million queries: C / (R x 3600) x 1,000,000;
- QPS per dollar: R / C, the queries per second each dollar of hourly price buys (VectorDBBench's "QP$").
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from loadgen.errors import LoadgenError


@dataclass(frozen=True)
class Prices:
    node_hour: float  # one Milvus node (query node / replica), per hour
    nodes: int = 1  # nodes of the configuration the rate was measured on
    generator_hour: float | None = None  # one load generator pod, per hour
    generators: int = 1
    currency: str = "USD"

    def check(self) -> Prices:
        if not self.node_hour > 0 or self.nodes < 1:
            raise LoadgenError(f"--price-per-node-hour must be positive and --nodes at least 1, got "
                               f"{self.node_hour:g} and {self.nodes}")  # fmt: skip
        if self.generator_hour is not None and (self.generator_hour < 0 or self.generators < 1):
            raise LoadgenError("--price-per-generator-hour must be 0 or more and --generators at least 1")
        return self


def add_arguments(parser: Any) -> None:
    """The prices that turn a rate into money (``loadgen capacity`` and ``loadgen report``)."""
    g = parser.add_argument_group("cost (prices you give; nothing is looked up)")
    g.add_argument("--price-per-node-hour", type=float, help="price of one Milvus node per hour: cost per query")
    g.add_argument("--nodes", type=int, default=1, help="Milvus nodes the measured configuration ran on (default 1)")
    g.add_argument("--price-per-generator-hour", type=float, help="price of one load generator pod per hour")
    g.add_argument("--generators", type=int, default=1, help="load generator pods of the run (default 1)")
    g.add_argument("--currency", default="USD", help="the prices' currency, as printed (default USD)")


def prices(args: Any) -> Prices | None:
    """The prices given (checked: one line for a bad one), or None."""
    if args.price_per_node_hour is None:
        if args.price_per_generator_hour is not None:
            raise LoadgenError("--price-per-generator-hour needs --price-per-node-hour (the serving cost)")
        return None
    given = Prices(args.price_per_node_hour, args.nodes, args.price_per_generator_hour, args.generators, args.currency)
    return given.check()


def figures(qps: float, prices: Prices, nodes: int | None = None) -> dict[str, Any]:
    """What ``qps`` costs on ``nodes`` (default: the measured configuration's) at ``prices``."""
    n = prices.nodes if nodes is None else nodes
    serving = prices.node_hour * n
    out: dict[str, Any] = {
        "inputs": asdict(prices),
        "qps": qps,
        "nodes": n,
        "serving_per_hour": serving,
        "per_million_queries": serving / (qps * 3600.0) * 1e6 if qps > 0 else None,
        "qps_per_dollar_hour": qps / serving,
    }
    if prices.generator_hour is not None:
        out["generator_per_hour"] = prices.generator_hour * prices.generators
    return out


def line(c: dict[str, Any], what: str, *, generator: bool = True) -> str:
    """``c`` (``figures``) in one line, with its inputs (the generator's too, unless ``generator`` is False)."""
    p, cur = c["inputs"], c["inputs"]["currency"]
    text = (
        f"cost {what}: {c['nodes']} node(s) x {p['node_hour']:g} {cur}/h = {c['serving_per_hour']:.4g} {cur}/h; at "
        f"{c['qps']:.4g} req/s: "
    )
    if c["per_million_queries"] is None:
        text += "no rate held, so no cost per query"
    else:
        text += (
            f"{c['per_million_queries']:.4g} {cur} per million queries, "
            f"{c['qps_per_dollar_hour']:.4g} req/s per {cur}/h"
        )
    if generator and "generator_per_hour" in c:
        text += (
            f" (the load generator: {p['generators']} pod(s) x {p['generator_hour']:g} {cur}/h = "
            f"{c['generator_per_hour']:.4g} {cur}/h while testing, not included)"
        )
    return text


def section(prices: Prices, curves: list[dict[str, Any]], sizing: dict[str, Any] | None) -> dict[str, Any]:
    """The report's cost: each operation's SLO-held rate on the measured configuration, and each sized operation
    at the target on the replicas the sizing found (one node per replica)."""
    measured = [
        {"operation": f"{c['type']} {c['name']}", **figures(float(c["slo"]["qps"]), prices)}
        for c in curves
        if c.get("slo")
    ]
    target = float(sizing["target_qps"]) if sizing else 0.0
    sized = [
        {"operation": r["operation"], **figures(target, prices, nodes=int(r["replicas"]))}
        for r in (sizing["rows"] if sizing else [])
    ]
    return {"inputs": asdict(prices), "measured": measured, "sizing": sized}
