"""Runs each workload for each system in a fresh subprocess and reports wall time, CPU time and peak
memory (from wait4's rusage), medians over runs, with Spine's ratio against each peer.

Each system does the same work, written idiomatically for it: Spine projects through the CLI, Dagster
assets materialized in process (`dagster.materialize`, default fs IO manager), Prefect flows and tasks in
its local ephemeral mode, dbt models with the DuckDB adapter. Every run checks its output is really there.
"""
import argparse, csv, json, os, shutil, statistics, subprocess, sys, tempfile, textwrap, time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)

WORKLOADS = {
    "chain10": ("chain", 10),
    "chain100": ("chain", 100),
    "chain1000": ("chain", 1000),
    "fanout1000": ("fanout", 1000),
}

# ---------------------------------------------------------------- per-system project generators


def spine_project(d, shape, n):
    os.makedirs(os.path.join(d, "assets"))
    with open(os.path.join(d, "spine.toml"), "w") as f:
        f.write('[project]\nname = "bench"\n[defaults]\nconcurrency = 2\n')
    lines = ["assets:"]
    if shape == "chain":
        for i in range(n):
            q = "SELECT 1 AS v" if i == 0 else f"SELECT v + 1 AS v FROM c{i-1}"
            lines.append(f'  - key: c{i}\n    kind: sql\n    query: "{q}"')
    else:
        lines.append('  - key: root\n    kind: sql\n    query: "SELECT 1 AS v"')
        for i in range(n):
            lines.append(f'  - key: child{i}\n    kind: sql\n    query: "SELECT v + {i} AS v FROM root"')
        union = " UNION ALL ".join(f"SELECT v FROM child{i}" for i in range(n))
        lines.append(f'  - key: sink\n    kind: sql\n    query: "SELECT SUM(v) AS total FROM ({union})"')
    with open(os.path.join(d, "assets", "a.yaml"), "w") as f:
        f.write("\n".join(lines) + "\n")


def expected(shape, n):
    return n if shape == "chain" else sum(1 + i for i in range(n))


DAGSTER = textwrap.dedent('''
    import sys, dagster as dg
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
    if shape == "chain":
        assets.append(leaf("c0"))
        for i in range(1, n):
            assets.append(plus(f"c{i}", f"c{i-1}", 1))
        last = f"c{n-1}"
    else:
        assets.append(leaf("root"))
        for i in range(n):
            assets.append(plus(f"child{i}", "root", i))
        @dg.asset(name="sink", ins={f"child{i}": dg.AssetIn(f"child{i}") for i in range(n)})
        def sink(**kw):
            return sum(kw.values())
        assets.append(sink)
        last = "sink"
    result = dg.materialize(assets, instance=dg.DagsterInstance.ephemeral())
    assert result.success
    print("RESULT", result.output_for_node(last))
''')

PREFECT = textwrap.dedent('''
    import sys
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
    @flow
    def pipeline():
        if shape == "chain":
            v = leaf()
            for _ in range(1, n):
                v = plus(v, 1)
            return v
        r = leaf()
        children = [plus(r, i) for i in range(n)]
        return total(*children)
    print("RESULT", pipeline())
''')


def dbt_project(d, shape, n):
    models = os.path.join(d, "models")
    os.makedirs(models)
    with open(os.path.join(d, "dbt_project.yml"), "w") as f:
        f.write("name: bench\nversion: '1.0'\nprofile: bench\nmodel-paths: ['models']\n"
                "models:\n  bench:\n    +materialized: table\n")
    with open(os.path.join(d, "profiles.yml"), "w") as f:
        f.write(f"bench:\n  target: dev\n  outputs:\n    dev:\n      type: duckdb\n      path: {d}/bench.duckdb\n      threads: 2\n")
    def model(name, sql):
        with open(os.path.join(models, name + ".sql"), "w") as f:
            f.write(sql + "\n")
    if shape == "chain":
        model("c0", "select 1 as v")
        for i in range(1, n):
            model(f"c{i}", f"select v + 1 as v from {{{{ ref('c{i-1}') }}}}")
        return f"c{n-1}", "v"
    model("root", "select 1 as v")
    for i in range(n):
        model(f"child{i}", f"select v + {i} as v from {{{{ ref('root') }}}}")
    union = " union all ".join(f"select v from {{{{ ref('child{i}') }}}}" for i in range(n))
    model("sink", f"select sum(v) as total from ({union})")
    return "sink", "total"

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


def run_once(system, shape, n, spine_bin, python, dbt):
    d = tempfile.mkdtemp(prefix=f"bench-{system}-")
    try:
        want = expected(shape, n)
        if system == "spine":
            spine_project(d, shape, n)
            w, c, m, _ = measure([spine_bin, "materialize"], d)
            last = f"c{n-1}" if shape == "chain" else "sink"
            col = "v" if shape == "chain" else "total"
            q = subprocess.run([spine_bin, "sql", "--json", f'SELECT {col} AS r FROM "{last}"'], cwd=d, capture_output=True, text=True, check=True)
            got = json.loads(q.stdout)[0]["r"]
        elif system == "dagster":
            env = dict(os.environ, DAGSTER_HOME=d)
            w, c, m, out = measure([python, "-c", DAGSTER, shape, str(n)], d, env)
            got = int(out.split("RESULT")[-1].strip())
        elif system == "prefect":
            env = dict(os.environ, PREFECT_HOME=d, PREFECT_LOCAL_STORAGE_PATH=os.path.join(d, "results"),
                       PREFECT_LOGGING_LEVEL="WARNING")
            w, c, m, out = measure([python, "-c", PREFECT, shape, str(n)], d, env)
            got = int(out.split("RESULT")[-1].strip())
        elif system == "dbt":
            last, col = dbt_project(d, shape, n)
            env = dict(os.environ, DBT_SEND_ANONYMOUS_USAGE_STATS="false")
            w, c, m, _ = measure([dbt, "run", "--profiles-dir", d, "--project-dir", d, "--quiet"], d, env)
            dbt_python = os.path.join(os.path.dirname(dbt), "python")
            q = subprocess.run([dbt_python, "-c", f"import duckdb; print(duckdb.connect('{d}/bench.duckdb').execute('select {col} from {last}').fetchall()[0][0])"], capture_output=True, text=True, check=True)
            got = int(float(q.stdout.strip()))
        else:
            raise ValueError(system)
        if got != want:
            raise RuntimeError(f"{system} {shape}{n}: output {got}, expected {want}")
        return w, c, m
    finally:
        shutil.rmtree(d, ignore_errors=True)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--spine", required=True)
    ap.add_argument("--dbt", required=True, help="dbt executable (its own virtual environment)")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--workloads", default="chain100,chain1000,fanout1000")
    ap.add_argument("--systems", default="spine,dagster,prefect,dbt")
    ap.add_argument("--out", default=os.path.join(HERE, "results"))
    a = ap.parse_args()
    os.makedirs(a.out, exist_ok=True)
    rows = []
    for wl in a.workloads.split(","):
        shape, n = WORKLOADS[wl]
        for system in a.systems.split(","):
            samples = [run_once(system, shape, n, a.spine, sys.executable, a.dbt) for _ in range(a.runs)]
            med = lambda i: statistics.median(s[i] for s in samples)
            rows.append({"workload": wl, "system": system, "wall_s": med(0), "cpu_s": med(1), "peak_mib": med(2), "runs": a.runs})
            print(f"  {wl:<12} {system:<8} {med(0):8.2f} s", file=sys.stderr, flush=True)
    spine = {r["workload"]: r for r in rows if r["system"] == "spine"}
    for r in rows:
        s = spine.get(r["workload"])
        r["spine_speedup"] = (r["wall_s"] / s["wall_s"]) if s else None
    hdr = f"{'workload':<12} {'system':<8} {'wall (s)':>9} {'cpu (s)':>8} {'peak MiB':>9} {'peer/spine':>10}"
    print(hdr)
    for r in rows:
        ratio = "" if r["system"] == "spine" or r["spine_speedup"] is None else f"{r['spine_speedup']:.1f}x"
        print(f"{r['workload']:<12} {r['system']:<8} {r['wall_s']:9.2f} {r['cpu_s']:8.2f} {r['peak_mib']:9.0f} {ratio:>10}")
    with open(os.path.join(a.out, "results.json"), "w") as f:
        json.dump(rows, f, indent=2)
    with open(os.path.join(a.out, "results.csv"), "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0].keys()))
        w.writeheader()
        w.writerows(rows)
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        wls = list(dict.fromkeys(r["workload"] for r in rows))
        systems = list(dict.fromkeys(r["system"] for r in rows))
        fig, ax = plt.subplots(figsize=(8, 4))
        width = 0.8 / len(systems)
        for j, s in enumerate(systems):
            vals = [next((r["wall_s"] for r in rows if r["workload"] == wl and r["system"] == s), 0) for wl in wls]
            ax.bar([i + j * width for i in range(len(wls))], vals, width, label=s)
        ax.set_xticks([i + width * (len(systems) - 1) / 2 for i in range(len(wls))], wls)
        ax.set_yscale("log")
        ax.set_ylabel("wall time (s, log scale)")
        ax.legend()
        fig.tight_layout()
        fig.savefig(os.path.join(a.out, "wall.png"), dpi=120)
    except ImportError:
        print("matplotlib missing: no chart", file=sys.stderr)


if __name__ == "__main__":
    main()
