"""Open-model accuracy: the achieved send rate against the target, and what the schedule saw (late, dropped, p99).

    python bench/bench_open_model.py --host URI [--rate 200 --seconds 30 --users 20]

Prints one JSON object. Target: achieved within 2 % of the target rate, nothing dropped.
"""

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--host", required=True)
    p.add_argument("--rate", type=float, default=200.0)
    p.add_argument("--seconds", type=int, default=30)
    p.add_argument("--users", type=int, default=20)
    a = p.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp)
        cmd = [
            sys.executable, "-m", "loadgen.cli", "run", "--host", a.host, "--arrival-rate", str(a.rate),
            "-u", str(a.users), "-t", f"{a.seconds}s", "--weights", "search=1", "--collection", "lg_bench_open",
            "--out", str(out),
        ]  # fmt: skip
        subprocess.run(cmd, check=True, capture_output=True, text=True)
        res = json.loads((out / "results.json").read_text())
    ol = res["open_loop"]
    searches = [m for m in res["requests"] if m["name"] == "search"]
    print(
        json.dumps(
            {
                "target_rate": ol["target_rate"],
                "achieved_rate": round(ol["achieved_rate"], 2),
                "error_pct": round(100 * (ol["achieved_rate"] - ol["target_rate"]) / ol["target_rate"], 2),
                "sent": ol["sent"],
                "late": ol["late"],
                "dropped": ol["dropped"],
                "p50_ms": {m["type"]: m["p50_ms"] for m in searches},
                "p99_ms": {m["type"]: m["p99_ms"] for m in searches},
                "service_p99_ms": {m["type"]: m.get("service", {}).get("p99_ms") for m in searches},
            }
        )
    )


if __name__ == "__main__":
    main()
