"""How fast does the command line answer? Wall time of ``eegtune --help`` and ``--version``.

Each run is a fresh process, as a user's shell starts it; the median and the fastest of
``--runs`` are printed. Python's own start (``python -c pass``) is measured beside them.

    python benchmarks/cli_startup.py [--runs 15]
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import time


def timed(command: list[str], runs: int) -> tuple[float, float]:
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        subprocess.run(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
        times.append(time.perf_counter() - started)
    return statistics.median(times), min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=15)
    args = parser.parse_args()
    script = shutil.which("eegtune")
    commands = {
        "python -c pass": [sys.executable, "-c", "pass"],
        "eegtune --version": [script or "eegtune", "--version"],
        "eegtune --help": [script or "eegtune", "--help"],
        "eegtune search --help": [script or "eegtune", "search", "--help"],
    }
    print("| command | median s | fastest s |")
    print("|---|---|---|")
    for name, command in commands.items():
        median, fastest = timed(command, args.runs)
        print(f"| `{name}` | {median:.3f} | {fastest:.3f} |")


if __name__ == "__main__":
    main()
