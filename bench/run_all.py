"""Runs every benchmark against one embedded Milvus and writes bench/out/results.json. Not part of CI."""

import json
import subprocess
import sys
from pathlib import Path

from loadgen.milvus.server import EmbeddedMilvus

HERE = Path(__file__).resolve().parent


def run(script: str, *args: str) -> dict:
    proc = subprocess.run([sys.executable, str(HERE / script), *args], capture_output=True, text=True, check=True)
    return json.loads(proc.stdout[proc.stdout.index("{") :])


def main() -> None:
    out = HERE / "out"
    out.mkdir(exist_ok=True)
    results = {"bridge": run("bench_bridge.py")}
    with EmbeddedMilvus(out / "milvus", die_with_parent=True) as info:
        results["sync_user_vs_raw"] = run("bench_sync_user.py", "--host", info.uri, *sys.argv[1:])
        results["open_model"] = run("bench_open_model.py", "--host", info.uri)
        results["timed_client"] = run("bench_timed_client.py", "--host", info.uri)
    results["k8s_workers"] = run("bench_k8s_workers.py")  # starts its own Milvus
    (out / "results.json").write_text(json.dumps(results, indent=2))
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
