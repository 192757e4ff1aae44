"""raw/customers: writes a CSV into $SPINE_OUTPUT_DIR and reports metadata (JSON lines on stdout)."""
import csv
import json
import os

out = os.path.join(os.environ["SPINE_OUTPUT_DIR"], "customers.csv")
regions = ["north", "south", "east", "west"]
with open(out, "w", newline="") as f:
    w = csv.writer(f)
    w.writerow(["customer_id", "name", "region"])
    for i in range(1, 201):
        w.writerow([i, f"customer {i}", regions[i % 4]])
print(json.dumps({"type": "log", "level": "info", "message": "wrote 200 customers"}))
print(json.dumps({"type": "metadata", "data": {"source": "generated"}}))
