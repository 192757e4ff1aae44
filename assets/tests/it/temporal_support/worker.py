"""A small Temporal worker for the `kind: temporal` tests, with the Python SDK: `worker.py ADDRESS QUEUE`.

SumAmounts(rows) waits for the signal `finish`, then returns each customer's total amount as rows;
the query `received` answers how many rows it was given. Prints "ready" once it polls its queue.
"""
import asyncio
import sys

from temporalio import workflow
from temporalio.client import Client
from temporalio.worker import Worker


@workflow.defn(name="SumAmounts")
class SumAmounts:
    def __init__(self):
        self._go = False
        self._rows = 0

    @workflow.run
    async def run(self, rows: list) -> list:
        self._rows = len(rows)
        await workflow.wait_condition(lambda: self._go)
        totals = {}
        for r in rows:
            totals[r["customer"]] = totals.get(r["customer"], 0) + r["amount"]
        return [{"customer": c, "total": t} for c, t in sorted(totals.items())]

    @workflow.signal
    def finish(self) -> None:
        self._go = True

    @workflow.query
    def received(self) -> int:
        return self._rows


async def main(address, queue):
    client = await Client.connect(address)
    async with Worker(client, task_queue=queue, workflows=[SumAmounts]):
        print("ready", flush=True)
        await asyncio.Event().wait()


if __name__ == "__main__":
    # The workflow sandbox imports this file again: only the script itself runs the worker.
    asyncio.run(main(sys.argv[1], sys.argv[2]))
