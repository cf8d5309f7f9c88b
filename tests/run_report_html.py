"""Reading a run's report.html back (``loadgen.stats.run_page``): its tables by section, as the cells' text."""

from __future__ import annotations

from html.parser import HTMLParser
from pathlib import Path
from typing import Any


class _Tables(HTMLParser):
    """Each table as a list of rows (header first), under the id of the ``h2`` before it; the page's links."""

    def __init__(self) -> None:
        super().__init__()
        self.section = ""
        self.tables: dict[str, list[list[list[str]]]] = {}
        self.links: list[str] = []
        self.title = ""
        self.banner = ""
        self._row: list[str] | None = None
        self._cell: list[str] | None = None
        self._in: str = ""

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if tag == "h2":
            self.section = a.get("id") or ""
        elif tag == "table":
            self.tables.setdefault(self.section, []).append([])
        elif tag == "tr":
            self._row = []
        elif tag in ("td", "th"):
            self._cell = []
        elif tag == "a" and a.get("href"):
            self.links.append(str(a["href"]))
        elif tag == "title" or (tag == "div" and a.get("role") == "alert"):
            self._in = tag

    def handle_endtag(self, tag: str) -> None:
        if tag in ("td", "th") and self._row is not None and self._cell is not None:
            self._row.append("".join(self._cell))
            self._cell = None
        elif tag == "tr" and self._row is not None:
            self.tables[self.section][-1].append(self._row)
            self._row = None
        elif tag in ("title", "div"):
            self._in = ""

    def handle_data(self, data: str) -> None:
        if self._cell is not None:
            self._cell.append(data)
        if self._in == "title":
            self.title += data
        elif self._in == "div":
            self.banner += data


def read(path: Path) -> _Tables:
    parser = _Tables()
    parser.feed(path.read_text())
    return parser


def rows(table: list[list[str]]) -> list[dict[str, str]]:
    """A table's body rows as {header: cell}."""
    header, *body = table
    return [dict(zip(header, row, strict=True)) for row in body]


def ms(value: Any) -> str:
    """A figure as the page (and the summary) prints it: milliseconds to the microsecond."""
    return f"{float(value):.3f}"


def check_same_figures(folder: Path) -> _Tables:
    """report.html beside results.json shows results.json's figures: every store call's row (requests, failures,
    latencies to the microsecond), its TOTAL over store calls only, and the flows apart from them."""
    import json

    from loadgen.stats import figures

    results = json.loads((folder / "results.json").read_text())
    page = read(folder / "report.html")
    (calls,) = page.tables["store-calls"]
    shown = rows(calls)
    total = shown.pop()
    assert total["name"] == "TOTAL", total
    store = [m for m in results["requests"] if not figures.is_flow(m)]
    assert [(r["type"], r["name"]) for r in shown] == [(m["type"], m["name"]) for m in store]
    for r, m in zip(shown, store, strict=True):
        assert (r["requests"], r["failures"]) == (str(m["requests"]), str(m["failures"])), (r, m)
        for key in ("avg", "p50", "p95", "p99", "p99.9", "max"):
            assert r[f"{key} ms"] == ms(m[f"{key.replace('.', '_')}_ms"]), (key, r, m)
    t = results["totals"]
    assert (total["requests"], total["failures"]) == (str(t["requests"]), str(t["failures"]))
    assert t["requests"] == sum(m["requests"] for m in store)  # no flow row in the TOTAL
    flows = [m for m in results["requests"] if figures.is_flow(m)]
    if flows:
        flow_rows = rows(page.tables["flows"][0])
        assert [(r["type"], r["name"], r["requests"], r["failures"], r["p50 ms"], r["p99 ms"]) for r in flow_rows] == [
            (m["type"], m["name"], str(m["requests"]), str(m["failures"]), ms(m["p50_ms"]), ms(m["p99_ms"]))
            for m in flows
        ]
    else:
        assert "flows" not in page.tables
    return page
