"""kill -9 of the daemon during card runs, many times over (the test suite does it 10 times).

Runs ``tests/gateway/issuance/test_crash.py`` once per seed, each with
``--kills`` kills during a ``--cards`` card run, and prints one line per run and
a summary. A run passes when every application got exactly one good card, the
stock reconciled and the platform accepted each 回盘 once (the test's checks).

    python bench/crash.py --runs 5 --kills 30 --cards 50
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TEST = "tests/gateway/issuance/test_crash.py"


def main() -> int:
    """Run the crash test over several seeds; exit 1 if any run failed."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3, help="runs, one seed each (%(default)s)")
    parser.add_argument("--kills", type=int, default=30, help="kills per run (%(default)s)")
    parser.add_argument("--cards", type=int, default=50, help="cards per run (%(default)s)")
    parser.add_argument("--first-seed", type=int, default=1, help="seed of the first run")
    args = parser.parse_args()
    failed = 0
    for run in range(args.runs):
        seed = args.first_seed + run
        env = {
            **os.environ,
            "BRANCHD_REQUIRE_PARTS": "1",
            "BRANCHD_CRASH_SEED": str(seed),
            "BRANCHD_CRASH_KILLS": str(args.kills),
            "BRANCHD_CRASH_CARDS": str(args.cards),
        }
        started = time.monotonic()
        result = subprocess.run(  # noqa: S603 - our own test file with this interpreter
            [sys.executable, "-m", "pytest", TEST, "-q", "-p", "no:cacheprovider"],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            check=False,
        )
        seconds = time.monotonic() - started
        verdict = "held" if result.returncode == 0 else "FAILED"
        print(f"seed {seed}: {args.kills} kills, {args.cards} cards: {verdict} ({seconds:.0f} s)")
        if result.returncode != 0:
            failed += 1
            print(result.stdout[-4000:])
    print(f"{args.runs - failed} of {args.runs} runs held ({args.runs * args.kills} kills in all)")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
