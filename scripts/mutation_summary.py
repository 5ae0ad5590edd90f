"""Share of mutants killed per module, from the results of the last ``mutmut run`` (``make mutation``).

"killed" counts mutants a test failed on (or that hung and timed out); "survived" ones no test noticed;
"no tests" ones sit in code the selected fast tests never run.
"""

from __future__ import annotations

import subprocess
import sys
from collections import Counter, defaultdict
from pathlib import Path


def main() -> int:
    mutmut = Path(sys.executable).with_name("mutmut")
    out = subprocess.run([str(mutmut), "results", "--all", "true"], capture_output=True, text=True, check=True).stdout
    by_module: dict[str, Counter[str]] = defaultdict(Counter)
    for line in out.splitlines():
        name, _, status = line.strip().rpartition(": ")
        if name:
            by_module[name.split(".x", 1)[0]][status] += 1
    print(f"{'module':<28} {'mutants':>8} {'killed':>8} {'survived':>9} {'no tests':>9} {'killed %':>9}")
    for module, counts in sorted(by_module.items()):
        killed = counts["killed"] + counts["timeout"]
        total = sum(counts.values())
        if counts["not checked"] == total:
            print(f"{module:<28} {total:>8}   not run (mutmut run NAME-PATTERN ran other modules only)")
            continue
        print(
            f"{module:<28} {total:>8} {killed:>8} {counts['survived']:>9} {counts['no tests']:>9} "
            f"{killed / total * 100:>8.0f}%"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
