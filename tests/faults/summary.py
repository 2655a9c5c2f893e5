"""Run the fault-injection and bad-input suites and print a quotable summary.

    OMP_NUM_THREADS=1 python tests/faults/summary.py              # 3 kill points per kind
    OMP_NUM_THREADS=1 python tests/faults/summary.py --count 5 --seed 7

Kill points come from a seeded generator, so a run can be repeated exactly. Each command
runs in a forked child (see fault_harness.py); the output of the commands goes to
``--out``/log.txt, the verdicts to stdout. Exit code 0 when every fault was survived and
every bad input got its clear message.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from bad_inputs import CASES, Workspace, run_case
from fault_harness import run_all


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--count", type=int, default=3, help="kill points per kind (1-3)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the kill points")
    parser.add_argument("--out", help="work folder (default: a new temporary folder)")
    args = parser.parse_args()
    folder = Path(args.out or tempfile.mkdtemp(prefix="clinfonce-faults-"))
    folder.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    lines: list[str] = []
    log_file = open(folder / "log.txt", "w")  # noqa: SIM115 - fds 1 and 2 point here below
    saved = os.dup(1), os.dup(2)
    try:  # the commands' own output (children included) goes to the log file
        os.dup2(log_file.fileno(), 1)
        os.dup2(log_file.fileno(), 2)
        with contextlib.redirect_stdout(log_file):
            outcomes = run_all(folder / "faults", args.seed, args.count, lines.append)
            workspace = Workspace(folder / "bad-inputs")
            verdicts = [run_case(case, workspace) for case in CASES]
    finally:
        sys.stdout.flush()
        os.dup2(saved[0], 1)
        os.dup2(saved[1], 2)
        log_file.close()
    print("\n".join(lines))
    for verdict in verdicts:
        print(f"{'clear   ' if verdict.clear else 'UNCLEAR '}  {verdict.case.name}")
    survived = sum(o.survived for o in outcomes)
    clear = sum(v.clear for v in verdicts)
    print(f"\nfaults injected: {len(outcomes)}, survived: {survived}")
    print(f"bad inputs tried: {len(verdicts)}, clear messages: {clear}")
    seconds = time.perf_counter() - start
    print(f"({seconds:.0f} s, seed {args.seed}; command output in {folder}/log.txt)")
    return 0 if survived == len(outcomes) and clear == len(verdicts) else 1


if __name__ == "__main__":
    sys.exit(main())
