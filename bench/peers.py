"""Runs each workload for each system in a fresh subprocess and reports wall time, CPU time and peak
memory (from wait4's rusage), medians over runs, with each peer's time as a multiple of Spine's.

Each system does the same work, written idiomatically for it: Spine projects through the CLI, Dagster
assets materialized in process (`dagster.materialize`), Prefect flows and tasks in its local ephemeral
mode, dbt models with the DuckDB adapter. Every run checks its output is really there and matches
Spine's (values for the chain and fan-out, row counts for the ETL, asset counts for `list`).

Writes bench/results/{results.csv,results.json,wall.png} and regenerates docs/benchmarks.md.
"""
import backfill_peers
import argparse, csv, json, os, platform, re, shutil, statistics, subprocess, sys, tempfile, textwrap, time
from datetime import datetime, timezone

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)

# name -> (shape, size)
WORKLOADS = {
    "chain10": ("chain", 10),
    "chain100": ("chain", 100),
    "chain1000": ("chain", 1000),
    "fanout1000": ("fanout", 1000),
    "etl1m": ("etl", 1_000_000),
    "etl10m": ("etl", 10_000_000),
    "coldstart": ("coldstart", 1),
    "list1000": ("list", 1000),
    "backfill365": ("backfill", 365),
    "backfill365each": ("backfill-each", 365),
}
DEFAULT_WORKLOADS = "chain100,chain1000,fanout1000,etl10m,coldstart,list1000,backfill365,backfill365each"

# Which systems take part in which shape. Prefect has no asset catalogue to list without a server and
# deployments; the floors exist only for the ETL.
SYSTEMS = {
    "chain": ["spine", "dagster", "dagster-mem", "prefect", "dbt"],
    "fanout": ["spine", "dagster", "dagster-mem", "prefect", "dbt"],
    "etl": ["spine", "dagster", "prefect", "dbt", "datafusion", "duckdb"],
    "coldstart": ["spine", "dagster", "prefect", "dbt"],
    "list": ["spine", "dagster", "dbt"],
    "backfill": ["spine", "dagster"],
    "backfill-each": ["spine", "dagster"],
}
DEFAULT_SYSTEMS = "spine,dagster,dagster-mem,prefect,dbt,datafusion,duckdb"

WHAT = {
    "chain": "wall time of one materialization of a chain of N one-row assets",
    "fanout": "wall time, 1 root -> N children -> 1 sink reading all N",
    "etl": "wall time: generate N events -> filter (75% kept) -> per-user features (100,000 users), each step persisted",
    "coldstart": "time from launching the command to the first step's code running (1-asset project)",
    "list": "wall time of listing the assets of a 1,000-asset project",
    "backfill": "wall time of backfilling N daily partitions of a one-row asset in one run (Dagster: single-run backfill policy)",
    "backfill-each": "wall time of backfilling N daily partitions of a one-row asset, a run per partition",
}

# The ETL, identical in every system: ids 0..N, user = id*7919 mod 100000 (7919 is prime: every user
# gets one id in each 100,000), amount = (id*104729 mod 99991)/100 in [0, 999.9], ts = one second per id
# from 2023-11-14. The filter keeps about 75% of the rows.
ETL_SQL = {
    "events": ("SELECT value AS id, (value * 7919) % 100000 AS user_id, "
               "CAST((value * 104729) % 99991 AS DOUBLE) / 100.0 AS amount, "
               "to_timestamp_seconds(1700000000 + value) AS ts FROM generate_series(0, {last})"),
    "filtered": "SELECT id, user_id, amount, ts FROM events WHERE amount >= 250.0",
    "user_features": ("SELECT user_id, COUNT(*) AS n, SUM(amount) AS total, AVG(amount) AS avg_amount, "
                      "MAX(amount) AS max_amount, MIN(ts) AS first_ts, MAX(ts) AS last_ts "
                      "FROM filtered GROUP BY user_id"),
}
ETL_TABLES = ["events", "filtered", "user_features"]


def py_json(code, *args):
    """Runs Python `code` in a child process and returns the JSON it prints. Keeps numpy and pyarrow
    out of the harness: a forked child's peak RSS starts at the harness's own (Linux counts the memory
    of the process image `exec` replaces), so a big harness would inflate small measurements."""
    q = subprocess.run([sys.executable, "-c", code, *map(str, args)], capture_output=True, text=True, check=True)
    return json.loads(q.stdout)


def etl_expected(n):
    """Row counts of the three ETL steps, computed here independently of every system."""
    return py_json(textwrap.dedent('''
        import json, sys, numpy as np
        n = int(sys.argv[1])
        ids = np.arange(n, dtype=np.int64)
        keep = (ids * 104729) % 99991 >= 25000
        users = np.unique(((ids * 7919) % 100000)[keep])
        print(json.dumps({"events": n, "filtered": int(keep.sum()), "user_features": int(len(users))}))
    '''), n)


def expected(shape, n):
    if shape == "chain":
        return n
    if shape == "fanout":
        return sum(1 + i for i in range(n))
    if shape == "etl":
        return etl_expected(n)
    if shape in ("list", "backfill", "backfill-each"):
        return n
    return None

# ---------------------------------------------------------------- Spine


def spine_project(d, shape, n):
    os.makedirs(os.path.join(d, "assets"))
    with open(os.path.join(d, "spine.toml"), "w") as f:
        f.write('[project]\nname = "bench"\n[defaults]\nconcurrency = 2\n')
    lines = ["assets:"]
    if shape in ("chain", "list"):
        for i in range(n):
            q = "SELECT 1 AS v" if i == 0 else f"SELECT v + 1 AS v FROM c{i-1}"
            lines.append(f'  - key: c{i}\n    kind: sql\n    query: "{q}"')
    elif shape == "fanout":
        lines.append('  - key: root\n    kind: sql\n    query: "SELECT 1 AS v"')
        for i in range(n):
            lines.append(f'  - key: child{i}\n    kind: sql\n    query: "SELECT v + {i} AS v FROM root"')
        union = " UNION ALL ".join(f"SELECT v FROM child{i}" for i in range(n))
        lines.append(f'  - key: sink\n    kind: sql\n    query: "SELECT SUM(v) AS total FROM ({union})"')
    elif shape == "etl":
        for key in ETL_TABLES:
            q = ETL_SQL[key].format(last=n - 1)
            lines.append(f'  - key: {key}\n    kind: sql\n    query: "{q}"')
    elif shape == "coldstart":
        # DataFusion's now() is the instant the step's query starts executing.
        lines.append('  - key: first\n    kind: sql\n    query: "SELECT CAST(now() AS BIGINT) AS t"')
    with open(os.path.join(d, "assets", "a.yaml"), "w") as f:
        f.write("\n".join(lines) + "\n")


def spine_sql(spine_bin, d, query):
    q = subprocess.run([spine_bin, "sql", "--json", query], cwd=d, capture_output=True, text=True, check=True)
    return json.loads(q.stdout)


def run_spine(d, shape, n, a):
    if shape.startswith("backfill"):
        return backfill_peers.run_spine(d, shape, n, a, measure, spine_sql)
    spine_project(d, shape, n)
    if shape == "list":
        w, c, m, out = measure([a.spine, "list"], d)
        return w, c, m, len([l for l in out.splitlines() if re.match(r"^c\d+\b", l.strip())])
    t0 = time.time_ns()
    w, c, m, _ = measure([a.spine, "materialize"], d)
    if shape == "chain":
        return w, c, m, spine_sql(a.spine, d, f'SELECT v AS r FROM "c{n-1}"')[0]["r"]
    if shape == "fanout":
        return w, c, m, spine_sql(a.spine, d, 'SELECT total AS r FROM "sink"')[0]["r"]
    if shape == "etl":
        union = " UNION ALL ".join(f"SELECT '{t}' AS t, COUNT(*) AS n FROM {t}" for t in ETL_TABLES)
        return w, c, m, {r["t"]: r["n"] for r in spine_sql(a.spine, d, union)}
    if shape == "coldstart":
        t = spine_sql(a.spine, d, "SELECT t FROM first")[0]["t"]
        return (t - t0) / 1e9, c, m, None

# ---------------------------------------------------------------- Dagster

DAGSTER = textwrap.dedent('''
    import os, sys, time
    import dagster as dg
    # Dagster orders a job's graph recursively: a 1000-deep chain needs more than Python's default.
    sys.setrecursionlimit(20000)
    shape, n = sys.argv[1], int(sys.argv[2])
    assets = []
    def leaf(name):
        @dg.asset(name=name)
        def a():
            return 1
        return a
    def plus(name, up, k):
        @dg.asset(name=name, ins={"up": dg.AssetIn(up)})
        def a(up):
            return up + k
        return a
    resources = {}
    if shape in ("chain", "list"):
        assets.append(leaf("c0"))
        for i in range(1, n):
            assets.append(plus(f"c{i}", f"c{i-1}", 1))
        last = f"c{n-1}"
    elif shape == "fanout":
        assets.append(leaf("root"))
        for i in range(n):
            assets.append(plus(f"child{i}", "root", i))
        @dg.asset(name="sink", ins={f"child{i}": dg.AssetIn(f"child{i}") for i in range(n)})
        def sink(**kw):
            return sum(kw.values())
        assets.append(sink)
        last = "sink"
    elif shape == "coldstart":
        @dg.asset
        def first():
            return time.time_ns()
        assets.append(first)
        last = "first"
    elif shape == "etl":
        import numpy as np, pandas as pd

        class ParquetIOManager(dg.ConfigurableIOManager):
            """Each asset is one Parquet file, written and read with pandas/pyarrow."""
            root: str
            def _path(self, key):
                return os.path.join(self.root, "/".join(key.path) + ".parquet")
            def handle_output(self, context, obj):
                obj.to_parquet(self._path(context.asset_key), index=False)
            def load_input(self, context):
                return pd.read_parquet(self._path(context.asset_key))

        @dg.asset
        def events():
            ids = np.arange(n, dtype=np.int64)
            return pd.DataFrame({
                "id": ids,
                "user_id": (ids * 7919) % 100000,
                "amount": ((ids * 104729) % 99991) / 100.0,
                "ts": pd.to_datetime(1700000000 + ids, unit="s"),
            })
        @dg.asset
        def filtered(events):
            return events[events["amount"] >= 250.0]
        @dg.asset
        def user_features(filtered):
            return filtered.groupby("user_id").agg(
                n=("id", "size"), total=("amount", "sum"), avg_amount=("amount", "mean"),
                max_amount=("amount", "max"), first_ts=("ts", "min"), last_ts=("ts", "max"),
            ).reset_index()
        assets += [events, filtered, user_features]
        resources["io_manager"] = ParquetIOManager(root=os.path.join(os.getcwd(), "out"))
        os.makedirs("out", exist_ok=True)
        last = None
    if shape == "list":
        defs = dg.Definitions(assets=assets)
    else:
        # "dagster": the instance DAGSTER_HOME configures (SQLite run, event-log and schedule storage:
        # what `dagster dev` and `dagster asset materialize` use, durable like Spine's run store);
        # "dagster-mem": an ephemeral in-memory instance, nothing recorded.
        instance = dg.DagsterInstance.ephemeral() if os.environ.get("BENCH_DAGSTER") == "mem" else dg.DagsterInstance.get()
        result = dg.materialize(assets, instance=instance, resources=resources)
        assert result.success
        print("RESULT", result.output_for_node(last) if last else 0)
''')


def etl_counts(folder):
    return py_json(textwrap.dedent('''
        import json, os, sys, pyarrow.parquet as pq
        print(json.dumps({t: pq.read_metadata(os.path.join(sys.argv[1], t + ".parquet")).num_rows
                          for t in sys.argv[2:]}))
    '''), folder, *ETL_TABLES)


def run_dagster(d, shape, n, a, mem=False):
    env = dict(os.environ, DAGSTER_HOME=d, BENCH_DAGSTER="mem" if mem else "home")
    if shape.startswith("backfill"):
        return run_python_peer(d, backfill_peers.DAGSTER, shape, n, env)
    if shape == "list":
        defs = os.path.join(d, "defs.py")
        with open(defs, "w") as f:
            f.write(f"import sys\nsys.argv = ['defs', 'list', '{n}']\n" + DAGSTER)
        w, c, m, out = measure([os.path.join(os.path.dirname(sys.executable), "dagster"), "asset", "list", "-f", defs], d, env)
        return w, c, m, len([l for l in out.splitlines() if re.match(r"^c\d+$", l.strip())])
    return run_python_peer(d, DAGSTER, shape, n, env)


def run_python_peer(d, script, shape, n, env):
    """Runs a Python peer's script (it prints `RESULT <value>`, the first step's clock for coldstart)."""
    t0 = time.time_ns()
    w, c, m, out = measure([sys.executable, "-c", script, shape, str(n)], d, env)
    got = int(out.split("RESULT")[-1].strip())
    if shape == "etl":
        return w, c, m, etl_counts(os.path.join(d, "out"))
    if shape == "coldstart":
        return (got - t0) / 1e9, c, m, None
    return w, c, m, got

# ---------------------------------------------------------------- Prefect

PREFECT = textwrap.dedent('''
    import os, sys, time
    from prefect import flow, task
    shape, n = sys.argv[1], int(sys.argv[2])
    @task(persist_result=True)
    def leaf():
        return 1
    @task(persist_result=True)
    def plus(up, k):
        return up + k
    @task(persist_result=True)
    def total(*vals):
        return sum(vals)
    @task
    def first():
        return time.time_ns()

    # The ETL: each task writes its Parquet file and hands the path on, the usual Prefect pattern for
    # data too large to pass as a pickled result.
    @task
    def events(path):
        import numpy as np, pandas as pd
        ids = np.arange(n, dtype=np.int64)
        pd.DataFrame({
            "id": ids,
            "user_id": (ids * 7919) % 100000,
            "amount": ((ids * 104729) % 99991) / 100.0,
            "ts": pd.to_datetime(1700000000 + ids, unit="s"),
        }).to_parquet(path, index=False)
        return path
    @task
    def filtered(src, path):
        import pandas as pd
        df = pd.read_parquet(src)
        df[df["amount"] >= 250.0].to_parquet(path, index=False)
        return path
    @task
    def user_features(src, path):
        import pandas as pd
        pd.read_parquet(src).groupby("user_id").agg(
            n=("id", "size"), total=("amount", "sum"), avg_amount=("amount", "mean"),
            max_amount=("amount", "max"), first_ts=("ts", "min"), last_ts=("ts", "max"),
        ).reset_index().to_parquet(path, index=False)
        return path

    @flow
    def pipeline():
        if shape == "chain":
            v = leaf()
            for _ in range(1, n):
                v = plus(v, 1)
            return v
        if shape == "fanout":
            r = leaf()
            children = [plus(r, i) for i in range(n)]
            return total(*children)
        if shape == "coldstart":
            return first()
        out = os.path.join(os.getcwd(), "out")
        os.makedirs(out, exist_ok=True)
        p = events(os.path.join(out, "events.parquet"))
        p = filtered(p, os.path.join(out, "filtered.parquet"))
        user_features(p, os.path.join(out, "user_features.parquet"))
        return 0
    print("RESULT", pipeline())
''')


def run_prefect(d, shape, n, a):
    env = dict(os.environ, PREFECT_HOME=d, PREFECT_LOCAL_STORAGE_PATH=os.path.join(d, "results"),
               PREFECT_LOGGING_LEVEL="WARNING")
    return run_python_peer(d, PREFECT, shape, n, env)

# ---------------------------------------------------------------- dbt (DuckDB adapter)

DBT_ETL = {
    "events": ("{{{{ config(materialized='external', format='parquet') }}}}\n"
               "select range as id, (range * 7919) % 100000 as user_id, "
               "cast((range * 104729) % 99991 as double) / 100.0 as amount, "
               "make_timestamp((1700000000 + range) * 1000000) as ts from range({n})"),
    "filtered": ("{{ config(materialized='external', format='parquet') }}\n"
                 "select id, user_id, amount, ts from {{ ref('events') }} where amount >= 250.0"),
    "user_features": ("{{ config(materialized='external', format='parquet') }}\n"
                      "select user_id, count(*) as n, sum(amount) as total, avg(amount) as avg_amount, "
                      "max(amount) as max_amount, min(ts) as first_ts, max(ts) as last_ts "
                      "from {{ ref('filtered') }} group by user_id"),
}


def dbt_project(d, shape, n):
    models = os.path.join(d, "models")
    os.makedirs(models)
    with open(os.path.join(d, "dbt_project.yml"), "w") as f:
        f.write("name: bench\nversion: '1.0'\nprofile: bench\nmodel-paths: ['models']\n"
                "models:\n  bench:\n    +materialized: table\n")
    with open(os.path.join(d, "profiles.yml"), "w") as f:
        f.write(f"bench:\n  target: dev\n  outputs:\n    dev:\n      type: duckdb\n      path: {d}/bench.duckdb\n"
                f"      threads: 2\n      external_root: {d}/out\n")

    def model(name, sql):
        with open(os.path.join(models, name + ".sql"), "w") as f:
            f.write(sql + "\n")
    if shape in ("chain", "list"):
        model("c0", "select 1 as v")
        for i in range(1, n):
            model(f"c{i}", f"select v + 1 as v from {{{{ ref('c{i-1}') }}}}")
        return f"c{n-1}", "v"
    if shape == "fanout":
        model("root", "select 1 as v")
        for i in range(n):
            model(f"child{i}", f"select v + {i} as v from {{{{ ref('root') }}}}")
        union = " union all ".join(f"select v from {{{{ ref('child{i}') }}}}" for i in range(n))
        model("sink", f"select sum(v) as total from ({union})")
        return "sink", "total"
    if shape == "etl":
        os.makedirs(os.path.join(d, "out"))
        for t in ETL_TABLES:
            model(t, DBT_ETL[t].format(n=n) if t == "events" else DBT_ETL[t])
        return None, None
    model("first", "select epoch_ns(get_current_timestamp()) as t")
    return "first", "t"


def dbt_query(a, d, sql):
    py = os.path.join(os.path.dirname(a.dbt), "python")
    q = subprocess.run([py, "-c", f"import duckdb; print(duckdb.connect('{d}/bench.duckdb', read_only=True).execute({sql!r}).fetchall()[0][0])"],
                       capture_output=True, text=True, check=True)
    return int(float(q.stdout.strip()))


def run_dbt(d, shape, n, a):
    last, col = dbt_project(d, shape, n)
    env = dict(os.environ, DBT_SEND_ANONYMOUS_USAGE_STATS="false")
    common = ["--profiles-dir", d, "--project-dir", d]
    if shape == "list":
        w, c, m, out = measure([a.dbt, "ls", "--resource-type", "model", "--output", "name", *common], d, env)
        return w, c, m, len([l for l in out.splitlines() if re.match(r"^c\d+$", l.strip())])
    t0 = time.time_ns()
    w, c, m, _ = measure([a.dbt, "run", "--quiet", *common], d, env)
    if shape == "etl":
        return w, c, m, etl_counts(os.path.join(d, "out"))
    got = dbt_query(a, d, f"select {col} from {last}")
    if shape == "coldstart":
        return (got - t0) / 1e9, c, m, None
    return w, c, m, got

# ---------------------------------------------------------------- floors (ETL only, no orchestration)

DUCKDB_ETL = textwrap.dedent('''
    import sys, duckdb
    out, n = sys.argv[1], int(sys.argv[2])
    con = duckdb.connect()
    con.execute(f"""COPY (select range as id, (range * 7919) % 100000 as user_id,
        cast((range * 104729) % 99991 as double) / 100.0 as amount,
        make_timestamp((1700000000 + range) * 1000000) as ts from range({n}))
        TO '{out}/events.parquet' (FORMAT parquet)""")
    con.execute(f"""COPY (select id, user_id, amount, ts from read_parquet('{out}/events.parquet')
        where amount >= 250.0) TO '{out}/filtered.parquet' (FORMAT parquet)""")
    con.execute(f"""COPY (select user_id, count(*) as n, sum(amount) as total, avg(amount) as avg_amount,
        max(amount) as max_amount, min(ts) as first_ts, max(ts) as last_ts
        from read_parquet('{out}/filtered.parquet') group by user_id)
        TO '{out}/user_features.parquet' (FORMAT parquet)""")
''')


def run_datafusion(d, shape, n, a):
    out = os.path.join(d, "out")
    w, c, m, _ = measure([a.floor, out, str(n)], d)
    return w, c, m, etl_counts(out)


def run_duckdb(d, shape, n, a):
    out = os.path.join(d, "out")
    os.makedirs(out)
    py = os.path.join(os.path.dirname(a.dbt), "python")
    w, c, m, _ = measure([py, "-c", DUCKDB_ETL, out, str(n)], d)
    return w, c, m, etl_counts(out)


RUNNERS = {"spine": run_spine, "dagster": run_dagster, "dagster-mem": lambda *x: run_dagster(*x, mem=True), "prefect": run_prefect, "dbt": run_dbt,
           "datafusion": run_datafusion, "duckdb": run_duckdb}

# ---------------------------------------------------------------- measurement


def measure(cmd, cwd, env=None):
    """Runs cmd; returns (wall s, cpu s, peak MiB, stdout). Output goes to files, not pipes, so a chatty
    child cannot block on a full pipe while we wait for it."""
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        start = time.perf_counter()
        p = subprocess.Popen(cmd, cwd=cwd, env=env, stdout=out, stderr=err, text=True)
        _, status, ru = os.wait4(p.pid, 0)
        wall = time.perf_counter() - start
        p.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        stdout, stderr = out.read(), err.read()
    if p.returncode != 0:
        raise RuntimeError(f"{cmd[:3]} failed:\n{stdout[-2000:]}\n{stderr[-3000:]}")
    return wall, ru.ru_utime + ru.ru_stime, ru.ru_maxrss / 1024.0, stdout


def run_once(system, wl, shape, n, a, want, scratch):
    # Folders are removed only when the whole suite is done: on ext4, creating files soon after
    # deleting many (up to minutes after) is markedly slower, which would penalize whoever runs next.
    d = tempfile.mkdtemp(prefix=f"{wl}-{system}-", dir=scratch)
    # Flush what earlier runs left dirty, so no system's fsync (or writeback) pays for another's files.
    os.sync()
    w, c, m, got = RUNNERS[system](d, shape, n, a)
    if want is not None and got != want:
        raise RuntimeError(f"{system} {wl}: output {got}, expected {want}")
    if shape == "coldstart" and not 0 < w < 120:
        raise RuntimeError(f"{system} {wl}: first step at {w:.3f} s after launch: clock mismatch?")
    return w, c, m


def fmt_time(s):
    return f"{s * 1000:.0f} ms" if s < 1 else f"{s:.2f} s"


def table(rows):
    hdr = f"{'workload':<11} {'system':<10} {'time':>9} {'cpu (s)':>8} {'peak MiB':>9} {'time vs spine':>14} {'mem vs spine':>13}"
    lines = [hdr]
    for r in rows:
        t = "" if r["system"] == "spine" or r["time_ratio"] is None else f"{r['time_ratio']:.2f}x"
        mem = "" if r["system"] == "spine" or r["mem_ratio"] is None else f"{r['mem_ratio']:.1f}x"
        lines.append(f"{r['workload']:<11} {r['system']:<10} {fmt_time(r['time_s']):>9} {r['cpu_s']:8.2f} {r['peak_mib']:9.0f} {t:>14} {mem:>13}")
    return "\n".join(lines)


def chart(rows, out):
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("matplotlib missing: no chart", file=sys.stderr)
        return
    wls = list(dict.fromkeys(r["workload"] for r in rows))
    systems = list(dict.fromkeys(r["system"] for r in rows))
    fig, ax = plt.subplots(figsize=(10, 4.5))
    width = 0.8 / len(systems)
    for j, s in enumerate(systems):
        xs, vals = [], []
        for i, wl in enumerate(wls):
            v = next((r["time_s"] for r in rows if r["workload"] == wl and r["system"] == s), None)
            if v is not None:
                xs.append(i + j * width)
                vals.append(v)
        ax.bar(xs, vals, width, label=s)
    ax.set_xticks([i + width * (len(systems) - 1) / 2 for i in range(len(wls))], wls)
    ax.set_yscale("log")
    ax.set_ylabel("time (s, log scale; lower is better)")
    ax.legend(ncols=3, fontsize="small")
    fig.tight_layout()
    fig.savefig(os.path.join(out, "wall.png"), dpi=120)


# ---------------------------------------------------------------- docs/benchmarks.md


def sh(cmd):
    try:
        return subprocess.run(cmd, capture_output=True, text=True, timeout=60).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "?"


def machine():
    cpu = "?"
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next((l.split(":", 1)[1].strip() for l in f if l.startswith("model name")), "?")
        with open("/proc/meminfo") as f:
            mem = int(next(l.split()[1] for l in f if l.startswith("MemTotal"))) / 1024 / 1024
    except (OSError, StopIteration):
        mem = 0
    fs = sh(["df", "-T", tempfile.gettempdir()]).splitlines()[-1:]
    fs = fs[0].split()[1] if fs else "?"
    return f"{os.cpu_count()} × {cpu}, {mem:.0f} GiB RAM, Linux {platform.release()}, {fs} temp folder"


def versions(a):
    from importlib.metadata import version, PackageNotFoundError

    def v(p):
        try:
            return version(p)
        except PackageNotFoundError:
            return "?"
    lock = open(os.path.join(ROOT, "Cargo.lock")).read()

    def crate(name):
        m = re.search(r'name = "' + name + r'"\nversion = "([^"]+)"', lock)
        return m.group(1) if m else "?"
    py = os.path.join(os.path.dirname(a.dbt), "python")
    dbt_v = sh([py, "-c", "from importlib.metadata import version as v; print(v('dbt-core'), v('dbt-duckdb'), v('duckdb'))"]).split()
    dbt_v += ["?"] * (3 - len(dbt_v))
    rev = sh(["git", "-C", ROOT, "rev-parse", "--short", "HEAD"])
    spine_v = (sh([a.spine, "--version"]).split() or ["?"])[-1]
    return [
        ("Spine", f"{spine_v} (git {rev}), DataFusion {crate('datafusion')}, delta-rs {crate('deltalake')}, release build"),
        ("Dagster", v("dagster")), ("Prefect", v("prefect")),
        ("dbt-core / dbt-duckdb / DuckDB", " / ".join(dbt_v)),
        ("pandas / pyarrow / numpy", f"{v('pandas')} / {v('pyarrow')} / {v('numpy')}"),
        ("Python", platform.python_version()),
    ]


def targets(rows):
    get = lambda wl, s: next((r for r in rows if r["workload"] == wl and r["system"] == s), None)
    out = []

    def verdict(ok):
        return "**met**" if ok else "**missed**"
    for wl in ("chain100", "chain1000", "fanout1000"):
        d, s, dm = get(wl, "dagster"), get(wl, "spine"), get(wl, "dagster-mem")
        if d and s:
            extra = f" (in-memory instance: {dm['time_ratio']:.1f}×)" if dm else ""
            out.append(f"- {wl}: Spine ≥ 50× faster than Dagster — {d['time_ratio']:.1f}×{extra} — {verdict(d['time_ratio'] >= 50)}")
    d, s = get("etl10m", "dagster"), get("etl10m", "spine")
    if d and s:
        out.append(f"- etl10m: Spine ≥ 5× faster than Dagster — {d['time_ratio']:.1f}× — {verdict(d['time_ratio'] >= 5)}; "
                   f"peak memory ≤ ¼ of Dagster's — {s['peak_mib']:.0f} vs {d['peak_mib']:.0f} MiB ({s['peak_mib'] / d['peak_mib']:.2f}) — "
                   f"{verdict(s['peak_mib'] * 4 <= d['peak_mib'])}")
    f = get("etl10m", "datafusion")
    if f and s:
        over = s["time_s"] / f["time_s"] - 1
        out.append(f"- etl10m: within 10% of the plain DataFusion program — Spine {fmt_time(s['time_s'])} vs "
                   f"{fmt_time(f['time_s'])} ({over:+.0%}) — {verdict(over <= 0.10)}")
    for wl in ("backfill365", "backfill365each"):
        s, d = get(wl, "spine"), get(wl, "dagster")
        if s:
            vs = f", Dagster {fmt_time(d['time_s'])} ({d['time_ratio']:.1f}×)" if d else ""
            limit = " under 2 s" if wl == "backfill365" else ""
            ok = s["time_s"] < 2 if wl == "backfill365" else True
            out.append(f"- {wl}: 365 daily partitions backfilled{limit} — {fmt_time(s['time_s'])}{vs}"
                       + (f" — {verdict(ok)}" if limit else ""))
    s = get("coldstart", "spine")
    if s:
        out.append(f"- cold start under 50 ms — {fmt_time(s['time_s'])} — {verdict(s['time_s'] < 0.05)}")
    return out


def write_docs(rows, a, argv, started, elapsed):
    md = ["<!-- Generated by bench/run.sh (bench/peers.py); edit bench/notes.md, not this file. -->",
          "# Benchmarks: Spine, Dagster, Prefect and dbt side by side", "",
          "Every system runs the same workloads on the same machine in the same run, each in a fresh process and "
          "a fresh temporary folder, written idiomatically for it (see [bench/README.md](../bench/README.md)). "
          "Times are medians; *time vs spine* is the peer's median divided by Spine's (above 1: Spine is faster), "
          "*mem vs spine* the same for peak memory (max RSS of the process tree's largest process).", "",
          "```sh", "bench/run.sh" + (" " + " ".join(argv) if argv else ""), "```", "",
          f"- Run: {started:%Y-%m-%d %H:%M} UTC, {a.runs} run(s) per system and workload, {elapsed / 60:.0f} min "
          "beyond the release build",
          f"- Machine: {machine()}"]
    md += [f"- {k}: {v}" for k, v in versions(a)]
    md += ["", "| workload | system | time | CPU (s) | peak MiB | time vs spine | mem vs spine |", "|---|---|---|---|---|---|---|"]
    for r in rows:
        t = "" if r["system"] == "spine" or r["time_ratio"] is None else f"{r['time_ratio']:.2f}×"
        mem = "" if r["system"] == "spine" or r["mem_ratio"] is None else f"{r['mem_ratio']:.1f}×"
        md.append(f"| {r['workload']} | {r['system']} | {fmt_time(r['time_s'])} | {r['cpu_s']:.2f} | {r['peak_mib']:.0f} | {t} | {mem} |")
    md += ["", "What each workload measures:", ""]
    md += [f"- **{wl}**: {WHAT[WORKLOADS[wl][0]].replace('N ', f'{WORKLOADS[wl][1]:,} ')}"
           for wl in dict.fromkeys(r["workload"] for r in rows)]
    chart_src = os.path.join(a.out, "wall.png")
    if os.path.exists(chart_src):
        os.makedirs(os.path.join(ROOT, "docs", "img"), exist_ok=True)
        shutil.copyfile(chart_src, os.path.join(ROOT, "docs", "img", "benchmarks.png"))
        md += ["", "![time per workload and system, log scale](img/benchmarks.png)"]
    md += ["", "## Targets", ""]
    md += targets(rows) or ["- (no workload with a target in this run)"]
    notes = os.path.join(HERE, "notes.md")
    if os.path.exists(notes):
        md += ["", open(notes).read().rstrip()]
    with open(os.path.join(ROOT, "docs", "benchmarks.md"), "w") as f:
        f.write("\n".join(md) + "\n")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--spine", required=True, help="release `assets` binary")
    ap.add_argument("--floor", required=True, help="release `etl-floor` binary (plain DataFusion)")
    ap.add_argument("--dbt", required=True, help="dbt executable (its own virtual environment, with duckdb)")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--workloads", default=DEFAULT_WORKLOADS)
    ap.add_argument("--systems", default=DEFAULT_SYSTEMS)
    ap.add_argument("--out", default=os.path.join(HERE, "results"))
    ap.add_argument("--no-docs", action="store_true", help="do not regenerate docs/benchmarks.md")
    a = ap.parse_args()
    a.spine, a.floor, a.dbt = (os.path.abspath(x) for x in (a.spine, a.floor, a.dbt))
    # The user-facing command line (bench/run.sh passes the binaries itself).
    shown = [f"--{k} {getattr(a, k)}" for k, d in (("runs", 3), ("workloads", DEFAULT_WORKLOADS), ("systems", DEFAULT_SYSTEMS))
             if getattr(a, k) != d]
    for wl in a.workloads.split(","):
        if wl not in WORKLOADS:
            sys.exit(f"unknown workload {wl!r}; known: {', '.join(WORKLOADS)}")
    wanted = a.systems.split(",")
    for s in wanted:
        if s not in RUNNERS:
            sys.exit(f"unknown system {s!r}; known: {', '.join(RUNNERS)}")
    os.makedirs(a.out, exist_ok=True)
    started = datetime.now(timezone.utc)
    t_start = time.perf_counter()
    rows = []
    scratch = tempfile.mkdtemp(prefix="spine-bench-")
    try:
        measure_all(a, wanted, scratch, rows)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    spine = {r["workload"]: r for r in rows if r["system"] == "spine"}
    for r in rows:
        s = spine.get(r["workload"])
        r["time_ratio"] = (r["time_s"] / s["time_s"]) if s else None
        r["mem_ratio"] = (r["peak_mib"] / s["peak_mib"]) if s else None
    elapsed = time.perf_counter() - t_start
    report(rows, a, shown, started, elapsed)


def measure_all(a, wanted, scratch, rows):
    for wl in a.workloads.split(","):
        shape, n = WORKLOADS[wl]
        want = expected(shape, n)
        systems = [s for s in SYSTEMS[shape] if s in wanted]
        # Runs are interleaved (every system once, then again) so that drift in the machine's speed
        # during the suite falls on all systems alike.
        by_system = {s: [] for s in systems}
        for _ in range(a.runs):
            for system in systems:
                by_system[system].append(run_once(system, wl, shape, n, a, want, scratch))
        for system in systems:
            samples = by_system[system]
            med = lambda i: statistics.median(s[i] for s in samples)
            rows.append({"workload": wl, "system": system, "time_s": med(0), "cpu_s": med(1), "peak_mib": med(2),
                         "runs": a.runs, "samples_s": [round(s[0], 4) for s in samples]})
            print(f"  {wl:<11} {system:<10} {fmt_time(med(0)):>9}  (runs: {', '.join(fmt_time(s[0]) for s in samples)})",
                  file=sys.stderr, flush=True)


def report(rows, a, shown, started, elapsed):
    print(table(rows))
    print("\n".join(targets(rows)))
    with open(os.path.join(a.out, "results.json"), "w") as f:
        json.dump(rows, f, indent=2)
    with open(os.path.join(a.out, "results.csv"), "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=[k for k in rows[0].keys() if k != "samples_s"], extrasaction="ignore")
        w.writeheader()
        w.writerows(rows)
    chart(rows, a.out)
    if not a.no_docs:
        write_docs(rows, a, shown, started, elapsed)
        print(f"wrote docs/benchmarks.md and {os.path.relpath(a.out, ROOT)}/ in {elapsed / 60:.1f} min", file=sys.stderr)


if __name__ == "__main__":
    main()
