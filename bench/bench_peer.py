"""loadgen's library users against VectorDBBench on one Milvus, side by side: QPS and the generators' memory.

    python bench/bench_peer.py --host URI --peer-python /tmp/vdbb-venv/bin/python [--conc 1,5,10,20]
        [--seconds 15 --rounds 2] [--before DIR]

One dataset (20k x 64 random vectors, 200 queries, their exact top-100 neighbours, COSINE) in two collections of the
same server: VectorDBBench's own (its Milvus client, ``bench/vdbb_child.py``, run by ``--peer-python``: a venv with
``vectordb-bench`` installed, see bench/README.md) and loadgen's (``loadgen run --dataset`` with the same files, so
every search of ours is scored for recall). HNSW M 16, efConstruction 200, ef 128, k=100 on both sides. Per
concurrency and round, in turn: VectorDBBench's concurrent search runner (a process per concurrent caller), then
``loadgen run`` with that many ``PymilvusUser`` and ``AsyncPymilvusUser`` (``--before DIR``: also the same runs from
another checkout, e.g. ``git archive`` of main unpacked there). QPS: VectorDBBench's own figure, loadgen's results.json
``totals.qps``. Memory: the peak resident size of each side's processes (sampled every 0.25 s over the run; ours: the
``loadgen run`` process and Locust's, apart). Prints a table; writes bench/out/peer.json.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent


def _rss_kb(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def _children(pid: int) -> list[int]:
    try:
        found = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    except OSError:
        return []
    kids = [int(x) for x in found]
    return kids + [g for k in kids for g in _children(k)]


class Peak:
    """The largest resident size of a process (``own``) and of its descendants (summed), sampled in a thread."""

    def __init__(self, pid: int) -> None:
        self.pid, self.own, self.rest, self._on = pid, 0, 0, True
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()

    def _sample(self) -> None:
        while self._on:
            self.own = max(self.own, _rss_kb(self.pid))
            self.rest = max(self.rest, sum(_rss_kb(c) for c in _children(self.pid)))
            time.sleep(0.25)

    def stop(self) -> tuple[float, float]:
        self._on = False
        self._thread.join()
        return self.own / 1024, self.rest / 1024


def make_dataset(folder: Path) -> None:
    import numpy as np

    rng = np.random.default_rng(7)
    base = rng.random((20_000, 64), dtype=np.float32) - 0.5
    queries = rng.random((200, 64), dtype=np.float32) - 0.5
    unit = lambda m: m / np.linalg.norm(m, axis=1, keepdims=True)  # noqa: E731
    neighbors = np.argsort(-(unit(queries) @ unit(base).T), axis=1)[:, :100].astype(np.int64)
    np.save(folder / "base.npy", base)
    np.save(folder / "queries.npy", queries)
    np.save(folder / "neighbors.npy", neighbors)


def peer(python: str, what: str, *args: str) -> tuple[dict[str, Any], float]:
    proc = subprocess.Popen([python, str(HERE / "vdbb_child.py"), what, *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, cwd=args[1])  # fmt: skip  # its logs/ go there
    peak = Peak(proc.pid)
    out, err = proc.communicate(timeout=900)
    own, rest = peak.stop()
    if proc.returncode != 0:
        raise RuntimeError(f"VectorDBBench {what} failed:\n{err[-3000:]}")
    return json.loads(out.strip().splitlines()[-1]), own + rest


def ours(host: str, folder: Path, cls: str, conc: int, *, seconds: int, out: Path, checkout: Path) -> dict[str, Any]:
    args = [
        "run", "--host", host, "-f", str(checkout / "locustfiles" / "pymilvus_users.py"), "-u", str(conc),
        "-r", str(conc), "-t", f"{seconds}s", "--collection", "lg_peer", "--dataset", str(folder / "base.npy"),
        "--queries", str(folder / "queries.npy"), "--neighbors", str(folder / "neighbors.npy"), "--rows", "0",
        "--dim", "64", "--index-type", "HNSW", "--metric-type", "COSINE", "--top-k", "100",
        "--search-params", '{"ef": 128}', "--weights", "search=1,fanout=0", "--keep-data", "--out", str(out), cls,
    ]  # fmt: skip
    env = {**os.environ, "PYTHONPATH": str(checkout)}
    proc = subprocess.Popen([sys.executable, "-m", "loadgen.cli", *args], cwd=tempfile.gettempdir(), env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)  # fmt: skip
    peak = Peak(proc.pid)
    _, err = proc.communicate(timeout=600)
    wrapper, locust = peak.stop()
    if proc.returncode != 0:
        raise RuntimeError(f"loadgen run {cls} x{conc} failed:\n{err[-3000:]}")
    res = json.loads((out / "results.json").read_text())
    recall = next(iter(res.get("recall", {}).values()), {}).get("mean")
    return {"qps": res["totals"]["qps"], "recall": recall, "wrapper_mb": wrapper, "locust_mb": locust,
            "drivers": [e["driver"] for e in res["run"].get("drivers", [])]}  # fmt: skip


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--host", required=True)
    ap.add_argument("--peer-python", required=True, help="python of a venv with vectordb-bench installed")
    ap.add_argument("--conc", default="1,5,10,20")
    ap.add_argument("--seconds", type=int, default=15)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--before", default="", help="another checkout, run beside this one")
    ap.add_argument("--out", default=str(HERE / "out" / "peer.json"))
    a = ap.parse_args()
    checkouts = {"": ROOT, **({"@before": Path(a.before).resolve()} if a.before else {})}
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        make_dataset(folder)
        print("prepare:", peer(a.peer_python, "prepare", a.host, str(folder)), file=sys.stderr)
        raw: dict[str, dict[int, list[dict[str, Any]]]] = {}
        for r in range(a.rounds):
            for conc in [int(x) for x in a.conc.split(",")]:
                got, mb = peer(a.peer_python, "search", a.host, str(folder), str(conc), str(a.seconds))
                raw.setdefault("vdbb", {}).setdefault(conc, []).append({**got, "mb": mb})
                print(f"round {r + 1} x{conc} vdbb: {got['qps']:.0f} qps, {mb:.0f} MB", file=sys.stderr)
                for tag, checkout in checkouts.items():
                    for cls in ("PymilvusUser", "AsyncPymilvusUser"):
                        run_out = folder / f"{cls}{tag}-{conc}-{r}"
                        got = ours(a.host, folder, cls, conc, seconds=a.seconds, out=run_out, checkout=checkout)
                        raw.setdefault(cls + tag, {}).setdefault(conc, []).append(got)
                        print(f"round {r + 1} x{conc} {cls}{tag}: {got['qps']:.0f} qps, recall {got['recall']}, "
                              f"{got['wrapper_mb']:.0f} + {got['locust_mb']:.0f} MB", file=sys.stderr)  # fmt: skip
    rows = []
    for path, by_conc in raw.items():
        for conc, runs in sorted(by_conc.items()):
            base = raw["vdbb"][conc]
            ratios = [x["qps"] / b["qps"] for x, b in zip(runs, base, strict=True)]
            mb = [x.get("mb", x.get("wrapper_mb", 0) + x.get("locust_mb", 0)) for x in runs]
            rows.append({"path": path, "conc": conc, "qps": statistics.median(x["qps"] for x in runs),
                         "qps_vs_vdbb": ratios, "mb": statistics.median(mb), "runs": runs})  # fmt: skip
    Path(a.out).parent.mkdir(parents=True, exist_ok=True)
    Path(a.out).write_text(json.dumps({"rows": rows, "seconds": a.seconds, "rounds": a.rounds}, indent=2))
    print(f"{'path':<26} {'conc':>4} {'QPS':>7} {'x vdbb (per round)':>22} {'MB':>7}")
    for row in rows:
        ratios = " / ".join(f"{x:.2f}" for x in row["qps_vs_vdbb"])
        print(f"{row['path']:<26} {row['conc']:>4} {row['qps']:>7.0f} {ratios:>22} {row['mb']:>7.0f}")


if __name__ == "__main__":
    main()
