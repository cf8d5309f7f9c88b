"""Locust's own ``--html`` report for a run stopped by Ctrl-C or SIGTERM before its run time ended.

The run's report.html is loadgen's (``loadgen.stats.run_page``, written with results.json at ``quitting``, after the
users have stopped): it says the run was stopped early from results.json's ``run.partial``, which ``stopped_early``
sets. Locust's own report (``loadgen run`` keeps it as locust-report.html, for its charts) is written only when its
main greenlet ends or gets a KeyboardInterrupt, and then *before* ``quitting``: on SIGTERM (what ``loadgen run``
sends Locust on a Ctrl-C, and what Kubernetes sends a pod) its handler goes straight to ``shutdown()`` and no report
is written; on SIGINT the report misses the calls the users finish while they stop. So when the users were still
running at ``quitting`` (``shutdown.stop_users_first`` records that), the master writes Locust's report again once
they have stopped, from the same statistics as results.json, marked partial: in Locust's "Profile" header field, the
page title, and a banner above the page.
"""

from __future__ import annotations

import html
import logging
from pathlib import Path
from typing import Any

log = logging.getLogger("loadgen")

NOTE = "partial: stopped by a signal (Ctrl-C or SIGTERM) before its run time ended"
BANNER_ID = "loadgen-partial"


class _Stop:
    early = False  # the users were still running when Locust began to shut down


def mark_stopped_early() -> None:
    _Stop.early = True


def stopped_early() -> bool:
    return _Stop.early


def mark(page: str, note: str = NOTE) -> str:
    """Locust's report page with ``note`` in its title and as a banner above the page (outside React's root, so it
    shows whatever the page's script does)."""
    text = html.escape(note)
    banner = (
        f'<div id="{BANNER_ID}" role="alert" style="background:#fff3cd;color:#664d03;padding:8px 16px;'
        f'font-family:sans-serif;border-bottom:1px solid #ffe69c">{text}</div>'
    )
    page = page.replace("<title>Locust</title>", f"<title>Locust ({text})</title>", 1)
    return page.replace('<div id="root"></div>', banner + '<div id="root"></div>', 1)


def write(environment: Any, ours: Path | None = None) -> Path | None:
    """Rewrite ``--html`` as a partial report, if this run was stopped early and asked for one; the path, or None.
    ``ours``: the run's own report.html, just written: an ``--html`` naming that same file is left to it."""
    opts = environment.parsed_options
    if not _Stop.early or environment.runner is None or not getattr(opts, "html_file", None):
        return None
    from locust.html import get_html_report, process_html_filename

    process_html_filename(opts)  # {u}, {r}, {t} in the name, as Locust's own save does
    path = Path(opts.html_file)
    if ours is not None and path.resolve() == ours.resolve():
        return None
    profile = environment.profile
    environment.profile = f"{profile} ({NOTE})" if profile else NOTE  # the report's own field for a run label
    try:
        page = get_html_report(environment, show_download_link=False)
    finally:
        environment.profile = profile
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.partial.tmp")
    tmp.write_text(mark(page), encoding="utf-8")
    tmp.replace(path)
    log.info("partial report written to %s (the run was stopped before its run time ended)", path)
    return path
