"""reports/region_summary: reads the CSV export Spine makes of marts/customer_lifetime_value
(input_format: csv → $SPINE_INPUT_MARTS__CUSTOMER_LIFETIME_VALUE) and writes JSON lines."""
import csv
import json
import os
from collections import defaultdict

src = os.environ["SPINE_INPUT_MARTS__CUSTOMER_LIFETIME_VALUE"]
totals = defaultdict(lambda: {"customers": 0, "lifetime_value": 0.0, "orders": 0})
with open(src, newline="") as f:
    for row in csv.DictReader(f):
        t = totals[row["region"]]
        t["customers"] += 1
        t["orders"] += int(row["orders"])
        t["lifetime_value"] += float(row["lifetime_value"] or 0)

with open(os.path.join(os.environ["SPINE_OUTPUT_DIR"], "summary.jsonl"), "w") as out:
    for region in sorted(totals):
        t = totals[region]
        out.write(json.dumps({"region": region, "customers": t["customers"], "orders": t["orders"],
                              "lifetime_value": round(t["lifetime_value"], 2)}) + "\n")

print(json.dumps({"type": "check", "name": "five_regions", "passed": len(totals) == 5,
                  "severity": "warn", "message": f"{len(totals)} regions"}))
