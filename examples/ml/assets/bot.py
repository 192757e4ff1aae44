"""The support bot's intent classifier: reads a case (JSON) on stdin, prints its intent.

`--v2` is a "simplified" version that forgets refunds: the eval's gate holds it back.
"""
import json
import sys

case = json.load(sys.stdin)
text = case["question"].lower()
rules = [
    ("refund", ["refund", "money back"]),
    ("shipping", ["order", "deliver", "ship", "courier", "package"]),
    ("account", ["password", "log in", "login", "account"]),
]
if "--v2" in sys.argv:
    rules = rules[1:]
for intent, words in rules:
    if any(w in text for w in words):
        print(intent)
        break
else:
    print("other")
