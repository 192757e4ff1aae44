"""raw/customers: deterministic customers as CSV, using only the Python standard library.

Spine passes SPINE_OUTPUT_DIR (write files there) and reads JSON lines on stdout as log, metadata and
check messages (see docs/guide/command-assets.md).
"""
import csv
import json
import os

n = int(os.environ.get("CUSTOMERS", "100000"))
out_dir = os.environ["SPINE_OUTPUT_DIR"]
regions = ["north", "south", "east", "west", "central"]
first = ["ana", "ben", "chen", "dara", "eli", "fatima", "goran", "hana", "ivan", "jun"]
last = ["smith", "garcia", "kim", "nowak", "okafor", "rossi", "singh", "tanaka"]

with open(os.path.join(out_dir, "customers.csv"), "w", newline="") as f:
    w = csv.writer(f)
    w.writerow(["customer_id", "first_name", "last_name", "email", "region", "signed_up"])
    for i in range(1, n + 1):
        fn, ln = first[i % len(first)], last[(i * 7) % len(last)]
        day = 1 + (i * 13) % 28
        month = 1 + (i * 5) % 12
        w.writerow([i, fn.title(), ln.title(), f" {fn}.{ln}{i}@Example.COM ", regions[(i * 3) % 5], f"2024-{month:02d}-{day:02d}"])

print(json.dumps({"type": "log", "level": "info", "message": f"generated {n} customers"}))
print(json.dumps({"type": "metadata", "data": {"generator": "generate_customers.py", "customers": n}}))
print(json.dumps({"type": "check", "name": "has_customers", "passed": n > 0, "severity": "error"}))
