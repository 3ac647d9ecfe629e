"""Prints test accuracy by number of solution steps for every cached score entry.

Usage: python3 tools/accuracy_by_steps.py CACHE_DIR

For each score entry, reads the synthetic problems' `family` field (one
`>`-joined operation per step) from the test.jsonl of the prepare-data entry
named in its manifest, then groups its test.csv outcomes by step count.
"""

import csv
import glob
import json
import os
import sys
from collections import defaultdict


def main() -> None:
    cache = sys.argv[1] if len(sys.argv) > 1 else "cache"

    def steps_of(prepare_key: str) -> dict:
        steps = {}
        with open(os.path.join(cache, "v1/prepare-data", prepare_key, "test.jsonl")) as file:
            for line in file:
                example = json.loads(line)
                family = dict(example["extra"]).get("family")
                if family:
                    steps[example["id"]] = family.count(">") + 1
        return steps

    for entry in sorted(glob.glob(os.path.join(cache, "v1/score/*/"))):
        with open(os.path.join(entry, "checkpoint.json")) as file:
            checkpoint = json.load(file)
        with open(os.path.join(entry, "manifest.json")) as file:
            entry_prepare = json.load(file)["upstream"]["prepare-data"]
        steps = steps_of(entry_prepare)
        entry_prepare = entry_prepare[:12]
        by_steps = defaultdict(list)
        with open(os.path.join(entry, "test.csv")) as file:
            for row in csv.DictReader(file):
                if row["id"] in steps:
                    by_steps[steps[row["id"]]].append(row["outcome"] == "correct")
        if not by_steps:
            continue
        cells = ", ".join(
            f"{steps} step(s): {sum(v) / len(v):.3f} of {len(v)}" for steps, v in sorted(by_steps.items())
        )
        print(f"{checkpoint['run']} {checkpoint['label']} (prepare-data {entry_prepare}): {cells}")


if __name__ == "__main__":
    main()
