"""`make bench-cliff`: workloads b and d across worker pool sizes and partition counts, as one table.

Each cell is a fresh stack started by bench/run.py (what `make run` starts, with only the worker's
concurrency and OBJECTS_PARTITIONS changed), one round per workload. It shows whether throughput falls
as the pool gets smaller or the partitions more numerous.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
LATEST = ROOT / "bench" / "results" / "latest.json"


def cell(threads: int, partitions: int, rounds: int) -> dict[str, float]:
    command = [sys.executable, str(ROOT / "bench" / "run.py"), "--only", "bd", "--rounds", str(rounds), "--no-chart"]
    command += ["--worker-concurrency", str(threads), "--partitions", str(partitions)]
    print(f"==> threads {threads}, partitions {partitions}", flush=True)
    subprocess.run(command, cwd=ROOT, check=True, stdout=subprocess.DEVNULL)
    summary = json.loads(LATEST.read_text())["summary"]
    return {row["workload"]: row["ops"] for row in summary if row["system"] == "django" and row["correct"]}


def main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--threads", default="1,2,4,8,16", help="worker pool sizes (default 1,2,4,8,16)")
    p.add_argument("--partitions", default="8,64", help="partition counts (default 8,64)")
    p.add_argument("--rounds", type=int, default=1, help="rounds per workload and cell (median kept)")
    args = p.parse_args(argv)
    threads = [int(t) for t in args.threads.split(",")]
    partitions = [int(n) for n in args.partitions.split(",")]
    results = [LATEST, LATEST.with_suffix(".md")]
    kept = {path: path.read_bytes() for path in results if path.exists()}
    rows = []
    try:
        for count in partitions:
            for size in threads:
                ops = cell(size, count, args.rounds)
                rows.append((size, count, ops.get("b"), ops.get("d")))
    finally:
        for path, content in kept.items():  # the results of record stay those of `make bench`
            path.write_bytes(content)
    print("\n| worker threads | partitions | b ops/s | d ops/s |\n|---|---|---|---|")
    for size, count, b, d in rows:
        print(f"| {size} | {count} | {b if b is not None else 'failed'} | {d if d is not None else 'failed'} |")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
