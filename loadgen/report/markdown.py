"""The report as Markdown: the same sections as the HTML, without the charts."""

from __future__ import annotations

from typing import Any

from loadgen.report.document import sections


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def render(report: dict[str, Any]) -> str:
    lines = [
        f"# {report['title']}",
        "",
        f"Generated {report['generated']} by milvus-loadgen; charts in report.html.",
        "",
    ]
    for sec in sections(report):
        lines += [f"## {sec.heading}", ""]
        for text in sec.text:
            lines += [text, ""]
        for header, rows in sec.tables:
            lines.append("| " + " | ".join(map(_cell, header)) + " |")
            lines.append("|" + "---|" * len(header))
            lines += ["| " + " | ".join(map(_cell, row)) + " |" for row in rows]
            lines.append("")
    return "\n".join(lines)
