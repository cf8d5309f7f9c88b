"""``loadgen operations``: every layer's table of operations, as the users run them (the README's table is this
command's output, and a test keeps it so)."""

from __future__ import annotations

import argparse
from typing import Any


def add_parser(sub: Any) -> None:
    ops = sub.add_parser("operations", help="every client layer's operations: weights, kinds, request names")
    layers = "pymilvus,langchain,llamaindex,retrieval,langchain-hybrid,llamaindex-hybrid"
    ops.add_argument("--layers", default=layers, help="comma-separated client layers")


def markdown(layers: list[str]) -> str:
    from loadgen import clients

    lines = [
        "| layer | operation | default weight | kind | sync request name | async request name |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for layer in layers:
        for op in clients.adapter(layer).operations.values():
            search = " (its search: `fanout`)" if op.search else ""
            lines.append(
                f"| {layer} | `{op.name}`{search} | {op.weight} | {op.kind} | `{op.request_name(False)}` | "
                f"`{op.request_name(True)}` |"
            )
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    print(markdown([x.strip() for x in args.layers.split(",") if x.strip()]))
    return 0
