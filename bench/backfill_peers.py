"""The backfill workloads of bench/run.sh: one daily-partitioned asset of one small row per partition,
N partitions from 2025-01-01, backfilled end to end in a fresh project.

- `backfill` (one run): Spine's `assets backfill events` (all partitions in one run, one step each);
  Dagster's single-run backfill (`BackfillPolicy.single_run()`, one run over the partition range, as
  its backfill daemon launches it), with an IO manager writing one file per partition.
- `backfill-each` (a run per partition): `assets backfill events --per-run 1`; Dagster's default
  policy, one `materialize(partition_key=…)` per partition against its durable instance, in one
  process (generous to Dagster: its daemon launches each run in a process of its own).

Both check that every partition is stored once (Spine: rows of the Delta table; Dagster: files).
"""
import os
import textwrap

DAGSTER = textwrap.dedent('''
    import datetime as dt, os, pickle, sys
    import dagster as dg
    shape, n = sys.argv[1], int(sys.argv[2])
    start = dt.date(2025, 1, 1)
    parts = dg.DailyPartitionsDefinition(start_date=start.isoformat(),
                                         end_date=(start + dt.timedelta(days=n)).isoformat())

    class PerPartitionIO(dg.ConfigurableIOManager):
        """Each partition one pickle file; a single-run backfill hands a dict of them."""
        root: str
        def handle_output(self, context, obj):
            keys = context.asset_partition_keys
            values = obj if isinstance(obj, dict) else {keys[0]: obj}
            os.makedirs(self.root, exist_ok=True)
            for k, v in values.items():
                with open(os.path.join(self.root, k + ".pkl"), "wb") as f:
                    pickle.dump(v, f)
        def load_input(self, context):
            raise NotImplementedError

    if shape == "backfill":
        @dg.asset(partitions_def=parts, backfill_policy=dg.BackfillPolicy.single_run())
        def events(context):
            return {k: [{"day": k, "n": 1}] for k in context.partition_keys}
    else:
        @dg.asset(partitions_def=parts)
        def events(context):
            return [{"day": context.partition_key, "n": 1}]

    instance = dg.DagsterInstance.get()
    resources = {"io_manager": PerPartitionIO(root=os.path.join(os.getcwd(), "out"))}
    keys = parts.get_partition_keys()
    if shape == "backfill":
        r = dg.materialize([events], instance=instance, resources=resources,
                           tags={"dagster/asset_partition_range_start": keys[0],
                                 "dagster/asset_partition_range_end": keys[-1]})
        assert r.success
    else:
        for k in keys:
            assert dg.materialize([events], instance=instance, resources=resources, partition_key=k).success
    print("RESULT", len(os.listdir("out")))
''')


def spine_project(d, n):
    os.makedirs(os.path.join(d, "assets"))
    with open(os.path.join(d, "spine.toml"), "w") as f:
        f.write('[project]\nname = "bench"\n[defaults]\nconcurrency = 2\n')
    # `end` is exclusive: 2025-01-01 plus n days.
    import datetime as dt
    end = (dt.date(2025, 1, 1) + dt.timedelta(days=n)).isoformat()
    with open(os.path.join(d, "assets", "events.yaml"), "w") as f:
        f.write("key: events\nkind: sql\npartitions:\n"
                f"  daily: {{start: 2025-01-01, end: {end}}}\n"
                "query: SELECT '{{ partition_key }}' AS day, 1 AS n\n")


def run_spine(d, shape, n, a, measure, spine_sql):
    spine_project(d, n)
    cmd = [a.spine, "backfill", "events"] + (["--per-run", "1"] if shape == "backfill-each" else [])
    w, c, m, _ = measure(cmd, d)
    rows = spine_sql(a.spine, d, "SELECT COUNT(*) AS r, COUNT(DISTINCT day) AS days FROM events")[0]
    return w, c, m, rows["r"] if rows["r"] == rows["days"] else -rows["r"]
