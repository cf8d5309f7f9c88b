"""A report built from a real short sweep against the embedded Milvus, opened in headless Chromium."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest
from conftest import CHROMIUM, run_cli

from loadgen.milvus.server import ServerInfo


def open_in_chromium(browser: Any, page_file: Path) -> tuple[list[str], list[dict[str, float]], str]:
    """Console errors and page errors, every <img>'s natural size, and the page text."""
    errors: list[str] = []
    page = browser.new_page()
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.on("requestfailed", lambda r: errors.append(f"request failed: {r.url}"))
    page.goto(page_file.as_uri(), wait_until="load")
    images = page.eval_on_selector_all(
        "img", "els => els.map(e => ({w: e.naturalWidth, h: e.naturalHeight, complete: e.complete}))"
    )
    return errors, images, page.inner_text("body")


@pytest.mark.milvus
@pytest.mark.slow
@pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="needs Debian's chromium: make browser")
def test_report_from_a_real_sweep_opens_in_chromium(milvus: ServerInfo, browser: Any, tmp_path: Path) -> None:
    sweep_dir = tmp_path / "sweep"
    proc = run_cli(
        "run", "--host", milvus.uri, "--sweep-users", "1,4", "-t", "4s", "--rows", "1000", "--dim", "32",
        "--collection", "lg_report", "--weights", "search=4,insert=1", "--out", str(sweep_dir), timeout=240,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    # a "before" copy of the sweep, for the side-by-side diff
    shutil.copytree(sweep_dir / "users-4", tmp_path / "before")
    out = tmp_path / "report"
    proc = run_cli(
        "report", str(sweep_dir), "--out", str(out), "--slo-p99-ms", "500", "--target-qps", "2000",
        "--vectors", "1000000", "--dim", "768", "--index", "HNSW", "--baseline", str(tmp_path / "before"),
        timeout=120,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "report:" in proc.stdout

    doc = json.loads((out / "report.json").read_text())
    curves = {(c["type"], c["name"]): c for c in doc["analysis"]["curves"]}
    search = curves[("pymilvus-async", "search")]  # 1 user runs one class; 4 users run both
    assert [lv["level"] for lv in search["levels"]] == [1, 4]
    assert all(lv["qps"] > 0 and lv["error_rate"] == 0 for lv in search["levels"])
    assert search["slo"] is not None and search["slo"]["p99_ms"] <= 500  # local searches take a few ms
    assert doc["analysis"]["sync_vs_async"], "4 users ran both flavours"
    assert doc["sizing"]["memory"]["bytes_per_replica"] == 1_000_000 * (768 * 4 + 2 * 16 * 4)
    assert any(r["operation"] == "pymilvus-async search" and r["replicas"] >= 1 for r in doc["sizing"]["rows"])
    assert doc["diff"]["rows"] and all(r["level"] == 4 for r in doc["diff"]["rows"])

    errors, images, text = open_in_chromium(browser, out / "report.html")
    assert errors == []
    # per layer: QPS, latency, error rate; plus sync vs async and the diff
    assert len(images) >= 5
    assert all(img["complete"] and img["w"] > 0 and img["h"] > 0 for img in images), images
    assert "Sizing for 2000 QPS" in text and "Baseline vs candidate" in text
    md = (out / "report.md").read_text()
    assert "| pymilvus-async search |" in md and "milvus.io/docs" in md
    assert "the runs measured 1,000 vectors of dim 32" in md  # sized beyond what was measured: said so
