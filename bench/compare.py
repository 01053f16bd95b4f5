"""Two checkouts of the broker measured in turn with the exchange bench: medians of alternate runs.

    git worktree add --detach ../broker-before <commit>      # the code to compare against
    (cd ../broker-before && python3 -m venv .venv &&
        .venv/bin/pip install -q -c constraints.txt -e '.[dev]')
    .venv/bin/python -m bench.compare --before ../broker-before --runs 3

Each round runs ``python -m bench.exchange_bench`` of the "before" checkout, then of this one (the
order alternates each round, so neither always runs on a warmer or cooler machine), each with its
own virtual environment. Printed: per round and per concurrency level the throughput and p50, then
the median over the rounds for each side and the ratio after/before. Shared machines are noisy:
compare only figures taken in the same invocation.
"""

from __future__ import annotations

import argparse
import re
import statistics
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parents[1]
LINE = re.compile(
    r"c=(\d+)\s+broker\s+([\d.]+) req/s p50\s+([\d.]+) ms"
    r".*direct\s+([\d.]+) req/s p50\s+([\d.]+) ms"
)

Figures = dict[int, tuple[float, float, float]]
"""By concurrency level: broker req/s, broker p50 ms, direct p50 ms."""


def run_bench(checkout: Path, levels: str, seconds: float) -> Figures:
    python = checkout / ".venv" / "bin" / "python"
    command = [str(python), "-m", "bench.exchange_bench", "--levels", levels]
    command += ["--seconds", f"{seconds:g}"]
    done = subprocess.run(command, cwd=checkout, capture_output=True, text=True, check=False)
    figures: Figures = {}
    for match in LINE.finditer(done.stdout):
        level = int(match.group(1))
        figures[level] = (float(match.group(2)), float(match.group(3)), float(match.group(5)))
    if done.returncode != 0 or not figures:
        sys.stderr.write(done.stdout[-2000:] + done.stderr[-2000:])
        raise SystemExit(f"the bench failed in {checkout} (exit {done.returncode})")
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--before", type=Path, required=True, help="checkout to compare against")
    parser.add_argument("--after", type=Path, default=HERE, help="checkout measured (this one)")
    parser.add_argument("--runs", type=int, default=3, help="rounds (each runs both sides)")
    parser.add_argument("--levels", default="1,32,128", help="concurrency levels")
    parser.add_argument("--seconds", type=float, default=6.0, help="measured seconds per level")
    args = parser.parse_args()
    if not 1 <= args.runs <= 10:
        parser.error("--runs must be in [1, 10]")
    sides = {"before": args.before.resolve(), "after": args.after.resolve()}
    taken: dict[str, list[Figures]] = {"before": [], "after": []}
    for round_no in range(args.runs):
        order = ["before", "after"] if round_no % 2 == 0 else ["after", "before"]
        for side in order:
            figures = run_bench(sides[side], args.levels, args.seconds)
            taken[side].append(figures)
            shown = "  ".join(
                f"c={lv}: {rps:.0f} req/s p50 {p50:.2f} ms (+{p50 - direct:.2f})"
                for lv, (rps, p50, direct) in sorted(figures.items())
            )
            print(f"round {round_no + 1} {side:<6} {shown}", flush=True)
    print()
    print("median over rounds       before              after               after/before")
    for level in sorted(taken["before"][0]):
        med = {
            side: (
                statistics.median(f[level][0] for f in runs),
                statistics.median(f[level][1] - f[level][2] for f in runs),
            )
            for side, runs in taken.items()
        }
        (b_rps, b_add), (a_rps, a_add) = med["before"], med["after"]
        print(
            f"c={level:<4} req/s           {b_rps:8.0f}            {a_rps:8.0f}"
            f"            {a_rps / b_rps:6.3f}"
        )
        print(f"       added p50 ms    {b_add:8.2f}            {a_add:8.2f}")


if __name__ == "__main__":
    main()
