"""How good is compare's time-left estimate? Predicted vs actual remaining time at 25/50/75%.

Runs ``eegtune compare`` on synthetic data as a user would (a subprocess, no terminal, a
progress line every second), keeps every whole-run estimate with the time it was printed,
and, once the run has ended, compares each with the time that was really left.

    python benchmarks/eta.py [--trials 4] [--epochs 10] [--seeds 2] [--model eegnet ...]
        [--table compare_output.txt]
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
import time

LINE = re.compile(r"(\d+)% of about [\d,]+ epochs done, .* about ([\d:-]+) left for the whole run")


def seconds(text: str) -> float | None:
    if text == "-":
        return None
    parts = [int(p) for p in text.split(":")]
    while len(parts) < 3:
        parts.insert(0, 0)
    hours, minutes, secs = parts
    return 3600 * hours + 60 * minutes + secs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", action="append", help="repeatable (default: both networks)")
    parser.add_argument("--trials", type=int, default=4)
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--seeds", type=int, default=2)
    parser.add_argument("--table", help="also save compare's own output (its tables) here")
    args = parser.parse_args()
    models = args.model or ["eegnet", "deepconvnet"]
    picked = [a for m in models for a in ("--model", m)]
    with tempfile.TemporaryDirectory() as tmp:
        command = [
            sys.executable, "-m", "eegtune", "compare", *picked,
            "--dataset", "synthetic", "--trials", str(args.trials), "--epochs", str(args.epochs),
            "--seeds", str(args.seeds), "--device", "cpu", "--storage", f"{tmp}/c.journal",
            "--out", f"{tmp}/report", "--models-dir", f"{tmp}/models",
        ]  # fmt: skip
        env = {**os.environ, "EEGTUNE_PROGRESS_INTERVAL": "1"}
        started = time.monotonic()
        table = open(args.table, "w") if args.table else subprocess.DEVNULL  # noqa: SIM115
        proc = subprocess.Popen(command, stderr=subprocess.PIPE, stdout=table, text=True, env=env,
                                cwd=tmp)  # fmt: skip
        assert proc.stderr is not None
        seen: list[tuple[float, int, float | None]] = []
        for line in proc.stderr:
            match = LINE.search(line)
            if match:
                seen.append((time.monotonic() - started, int(match[1]), seconds(match[2])))
        proc.wait()
        total = time.monotonic() - started
        if args.table:
            table.close()  # type: ignore[union-attr]
    if proc.returncode != 0 or not seen:
        raise SystemExit(f"compare failed (exit {proc.returncode}) or printed no estimate")
    run = " ".join([*picked, f"--trials {args.trials} --epochs {args.epochs} --seeds {args.seeds}"])
    print(f"# compare {run} on synthetic data: {total:.0f} s, {len(seen)} estimates")
    print("| point of the run | elapsed | shown progress | predicted left | actual left | error |")
    print("|---|---|---|---|---|---|")
    for share in (0.25, 0.5, 0.75):
        at, shown, predicted = min(seen, key=lambda s: abs(s[0] - share * total))
        actual = total - at
        error = "-" if predicted is None else f"{100 * (predicted - actual) / actual:+.0f}%"
        shown_left = "-" if predicted is None else f"{predicted:.0f} s"
        print(f"| {100 * share:.0f}% | {at:.0f} s | {shown}% | {shown_left} | {actual:.0f} s "
              f"| {error} |")  # fmt: skip
    zero = [s for s in seen if s[2] == 0 and total - s[0] > 5]
    print(f"estimates of 0:00 more than 5 s before the end: {len(zero)}")


if __name__ == "__main__":
    main()
