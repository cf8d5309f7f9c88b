"""The report as one self-contained HTML page: inline CSS, charts as data: URIs, no script, nothing fetched."""

from __future__ import annotations

from collections.abc import Sequence
from html import escape
from typing import Any

from loadgen.report.document import sections
from loadgen.report.plots import Chart

CSS = """
body { font-family: system-ui, sans-serif; margin: 2em auto; max-width: 1100px; color: #222; }
table { border-collapse: collapse; margin: 0.8em 0; font-size: 0.85em; }
th, td { border: 1px solid #ccc; padding: 3px 7px; text-align: left; }
td.n { text-align: right; font-variant-numeric: tabular-nums; }
th { background: #f3f3f3; }
figure { margin: 1em 0; }
figcaption { font-size: 0.85em; color: #555; }
img { max-width: 100%; }
"""


def _cell(text: str) -> str:
    numeric = bool(text) and text.lstrip("+-")[:1].isdigit()  # figures line up on the right, words on the left
    return f'<td class="n">{escape(text)}</td>' if numeric else f"<td>{escape(text)}</td>"


def _table(header: tuple[str, ...], rows: Sequence[tuple[str, ...]]) -> str:
    head = "".join(f"<th>{escape(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(_cell(c) for c in row) + "</tr>" for row in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _figure(chart: Chart) -> str:
    title = escape(chart["title"])
    return (
        f'<figure><img class="chart" alt="{title}" src="data:image/png;base64,{chart["png"]}">'
        f"<figcaption>{title}</figcaption></figure>"
    )


def render(report: dict[str, Any], charts: dict[str, list[Chart]]) -> str:
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8"><link rel="icon" href="data:,">',
        f"<title>{escape(report['title'])}</title><style>{CSS}</style></head><body>",
        f"<h1>{escape(report['title'])}</h1>",
        f"<p>Generated {escape(report['generated'])} by milvus-loadgen.</p>",
    ]
    for sec in sections(report):
        parts.append(f"<h2>{escape(sec.heading)}</h2>")
        parts += [f"<p>{escape(t)}</p>" for t in sec.text]
        parts += [_figure(c) for key in sec.charts for c in charts.get(key, [])]
        parts += [_table(h, rows) for h, rows in sec.tables]
    parts.append("</body></html>")
    return "\n".join(parts)
