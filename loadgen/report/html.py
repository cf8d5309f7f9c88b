"""The report as one self-contained HTML page, laid out by ``loadgen.stats.page`` (the layout a run's own
report.html uses too): inline CSS, charts as data: URIs, no script, nothing fetched."""

from __future__ import annotations

from typing import Any

from loadgen.report.document import sections
from loadgen.report.plots import Chart
from loadgen.stats import page


def render(report: dict[str, Any], charts: dict[str, list[Chart]]) -> str:
    intro = [f"Generated {report['generated']} by milvus-loadgen."]
    return page.render(report["title"], intro, sections(report), charts)
