"""Per-file figures of the last ``make mutation`` run, read from mutmut's ``mutants/**/*.py.meta``.

Equivalent mutants (a change no test can observe because behaviour does not change) are
listed with their reason in ``tests/mutation_equivalent.txt`` and counted apart. The exit code is 1
when the surviving share in ``processors/`` is above the goal (issue 13: at most 10 %).

    python -m tests.mutation_report [--survivors]
"""

from __future__ import annotations

import json
import sys
from collections import Counter
from pathlib import Path

GOAL = 0.10
EQUIVALENT_FILE = Path(__file__).with_name("mutation_equivalent.txt")
STATUS: dict[int | None, str] = {
    1: "killed",
    3: "killed",
    0: "survived",
    5: "no tests",
    33: "no tests",
    34: "skipped",
    36: "timeout",
}
STATUS |= {24: "timeout", -24: "timeout", 152: "timeout", 255: "timeout", 37: "type check", None: "not run"}
COLUMNS = ("killed", "survived", "equivalent", "timeout", "no tests", "not run", "other")


def equivalent_mutants(path: Path = EQUIVALENT_FILE) -> dict[str, str]:
    """``name  reason`` per line (``#`` comments): mutants proven equivalent, never survivors."""
    listed: dict[str, str] = {}
    for line in path.read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            name, _, reason = line.partition(" ")
            listed[name] = reason.strip()
    return listed


def classify(exit_code: int | None, name: str, equivalent: dict[str, str]) -> str:
    status = STATUS.get(exit_code, "other")
    return "equivalent" if status == "survived" and name in equivalent else status


def tally(root: Path, equivalent: dict[str, str]) -> tuple[dict[str, Counter[str]], list[str]]:
    """Counts per source file and the names of the surviving (non-equivalent) mutants."""
    per_file: dict[str, Counter[str]] = {}
    survivors: list[str] = []
    for meta in sorted(root.glob("**/*.py.meta")):
        codes: dict[str, int | None] = json.loads(meta.read_text())["exit_code_by_key"]
        if not codes:
            continue
        counts = per_file.setdefault(str(meta.relative_to(root)).removesuffix(".meta"), Counter())
        for name, code in codes.items():
            status = classify(code, name, equivalent)
            counts[status if status in COLUMNS else "other"] += 1
            if status == "survived":
                survivors.append(name)
    return per_file, survivors


def survived_share(counts: Counter[str]) -> float:
    """Survivors over the mutants the tests could judge (killed, survived, timeout)."""
    judged = counts["killed"] + counts["survived"] + counts["timeout"]
    return counts["survived"] / judged if judged else 0.0


def render(per_file: dict[str, Counter[str]]) -> str:
    lines = [f"{'file':32}" + "".join(f"{c:>11}" for c in COLUMNS) + f"{'survived %':>12}"]
    for name, counts in per_file.items():
        row = "".join(f"{counts[c]:>11}" for c in COLUMNS)
        lines.append(f"{name:32}{row}{survived_share(counts):>11.1%}")
    return "\n".join(lines)


def processors_total(per_file: dict[str, Counter[str]]) -> Counter[str]:
    total: Counter[str] = Counter()
    for name, counts in per_file.items():
        if name.startswith("processors/"):
            total += counts
    return total


def main(argv: list[str]) -> int:
    per_file, survivors = tally(Path("mutants"), equivalent_mutants())
    print(render(per_file))
    share = survived_share(processors_total(per_file))
    print(f"\nprocessors/: {share:.1%} of judged mutants survive (goal <= {GOAL:.0%})")
    if "--survivors" in argv:
        print("\n".join(["", "surviving mutants (mutmut show NAME):", *survivors]))
    return 0 if share <= GOAL else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
