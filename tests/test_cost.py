"""Money from the prices given (``loadgen.report.cost``): the figures follow from the inputs shown, and the report's
section prices each SLO-held rate on the measured nodes and each sized operation on its replicas."""

from __future__ import annotations

import argparse

import pytest

from loadgen.errors import LoadgenError
from loadgen.report import cost


def test_cost_per_million_queries_and_qps_per_dollar() -> None:
    prices = cost.Prices(node_hour=2.0, nodes=3, generator_hour=0.5, generators=2)
    c = cost.figures(500.0, prices)
    # 3 nodes at 2/h = 6/h serve 500 x 3,600 = 1.8 million queries an hour
    assert c["serving_per_hour"] == 6.0 and c["per_million_queries"] == pytest.approx(6.0 / 1.8)
    assert c["qps_per_dollar_hour"] == pytest.approx(500 / 6.0) and c["generator_per_hour"] == 1.0
    assert cost.figures(500.0, prices, nodes=6)["per_million_queries"] == pytest.approx(12.0 / 1.8)
    assert cost.figures(0.0, prices)["per_million_queries"] is None  # nothing held: no price per query
    text = cost.line(c, "at the SLO")
    assert text.startswith("cost at the SLO: 3 node(s) x 2 USD/h = 6 USD/h; at 500 req/s: 3.333 USD per million")
    assert "2 pod(s) x 0.5 USD/h = 1 USD/h while testing, not included" in text
    assert "pod" not in cost.line(c, "x", generator=False)


def test_the_report_section_prices_measured_and_sized_rates() -> None:
    curves = [{"type": "pymilvus", "name": "search", "slo": {"qps": 360.0}},
              {"type": "pymilvus", "name": "insert", "slo": None}]  # fmt: skip
    sizing = {"target_qps": 1000.0, "rows": [{"operation": "pymilvus search", "replicas": 4}]}
    s = cost.section(cost.Prices(1.0, nodes=2), curves, sizing)
    (measured,) = s["measured"]
    assert measured["operation"] == "pymilvus search" and measured["per_million_queries"] == pytest.approx(
        2.0 / (360 * 3600) * 1e6
    )
    (sized,) = s["sizing"]
    assert (sized["nodes"], sized["serving_per_hour"], sized["qps"]) == (4, 4.0, 1000.0)


def _args(**given: object) -> argparse.Namespace:
    base = {"price_per_node_hour": None, "nodes": 1, "price_per_generator_hour": None, "generators": 1,
            "currency": "USD"}  # fmt: skip
    return argparse.Namespace(**{**base, **given})


@pytest.mark.parametrize(
    ("given", "message"),
    [
        ({"price_per_node_hour": 0.0}, "--price-per-node-hour must be positive and --nodes at least 1"),
        ({"price_per_node_hour": 1.0, "nodes": 0}, "--nodes at least 1"),
        ({"price_per_generator_hour": 1.0}, "--price-per-generator-hour needs --price-per-node-hour"),
        ({"price_per_node_hour": 1.0, "price_per_generator_hour": -1.0}, "must be 0 or more"),
    ],
)
def test_bad_prices_are_one_line(given: dict[str, object], message: str) -> None:
    with pytest.raises(LoadgenError, match=message):
        cost.prices(_args(**given))
    assert cost.prices(_args()) is None
