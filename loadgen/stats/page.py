"""One HTML layout for the pages built from results documents: sections of text, links, charts and tables laid out as
one self-contained page (inline CSS, charts as data: URIs, no script, nothing fetched). ``loadgen report``'s page
(``loadgen.report.html``) and a run's own report.html (``loadgen.stats.run_page``) both use it. Every value is
escaped: request names and failure texts come from the server."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from html import escape

Table = tuple[tuple[str, ...], Sequence[tuple[str, ...]]]  # header, rows
Chart = Mapping[str, str]  # {"title": ..., "png": base64}

CSS = """
body { font-family: system-ui, sans-serif; margin: 2em auto; max-width: 1100px; color: #222; }
table { border-collapse: collapse; margin: 0.8em 0; font-size: 0.85em; }
th, td { border: 1px solid #ccc; padding: 3px 7px; text-align: left; }
td.n { text-align: right; font-variant-numeric: tabular-nums; }
th { background: #f3f3f3; }
tr.total td { font-weight: 600; background: #fafafa; }
figure { margin: 1em 0; }
figcaption { font-size: 0.85em; color: #555; }
img { max-width: 100%; }
.banner { background: #fff3cd; color: #664d03; padding: 8px 16px; border: 1px solid #ffe69c; }
"""


@dataclass
class Section:
    heading: str
    text: list[str] = field(default_factory=list)
    tables: list[Table] = field(default_factory=list)
    charts: list[str] = field(default_factory=list)  # keys into the chart dict (HTML only)
    links: list[tuple[str, str]] = field(default_factory=list)  # (href, text), relative to the page
    total_rows: int = 0  # the last rows of each table that are totals (set apart)
    anchor: str = ""  # the section's id, for a test or a link to find it


def _cell(text: str) -> str:
    numeric = bool(text) and text.lstrip("+-")[:1].isdigit()  # figures line up on the right, words on the left
    return f'<td class="n">{escape(text)}</td>' if numeric else f"<td>{escape(text)}</td>"


def table(header: tuple[str, ...], rows: Sequence[tuple[str, ...]], total_rows: int = 0) -> str:
    head = "".join(f"<th>{escape(h)}</th>" for h in header)
    first_total = len(rows) - total_rows
    body = "".join(
        ('<tr class="total">' if i >= first_total else "<tr>") + "".join(_cell(c) for c in row) + "</tr>"
        for i, row in enumerate(rows)
    )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def figure(chart: Chart) -> str:
    title = escape(chart["title"])
    return (
        f'<figure><img class="chart" alt="{title}" src="data:image/png;base64,{chart["png"]}">'
        f"<figcaption>{title}</figcaption></figure>"
    )


def _section(sec: Section, charts: Mapping[str, Sequence[Chart]]) -> list[str]:
    anchor = f' id="{escape(sec.anchor)}"' if sec.anchor else ""
    parts = [f"<h2{anchor}>{escape(sec.heading)}</h2>"]
    parts += [f"<p>{escape(t)}</p>" for t in sec.text]
    if sec.links:
        parts.append(
            "<p>" + " · ".join(f'<a href="{escape(href)}">{escape(text)}</a>' for href, text in sec.links) + "</p>"
        )
    parts += [figure(c) for key in sec.charts for c in charts.get(key, [])]
    parts += [table(h, rows, sec.total_rows) for h, rows in sec.tables]
    return parts


def render(
    title: str,
    intro: Sequence[str],
    sections: Sequence[Section],
    charts: Mapping[str, Sequence[Chart]] | None = None,
    banner: str = "",
) -> str:
    """The page: ``title``, an optional ``banner`` (a warning above everything), ``intro`` paragraphs, the sections."""
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8"><link rel="icon" href="data:,">',
        f"<title>{escape(title)}</title><style>{CSS}</style></head><body>",
        *([f'<div class="banner" id="loadgen-banner" role="alert">{escape(banner)}</div>'] if banner else []),
        f"<h1>{escape(title)}</h1>",
        *(f"<p>{escape(t)}</p>" for t in intro),
    ]
    for sec in sections:
        parts += _section(sec, charts or {})
    parts.append("</body></html>")
    return "\n".join(parts)
