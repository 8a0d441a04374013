"""Driver for scripts/profile: one `tipline work --until-idle` drain per run, and where its time went.

For each run: a fresh database, migrated, the input submitted, VACUUM ANALYZE and a checkpoint,
pg_stat_statements reset; then one worker (or --procs of them at once) drains it under
/usr/bin/time while /proc/stat counts the whole machine's CPU. Printed per run: reports/s (from
the workers' start to the last outcome's `processed_at`), the workers' CPU and the highest peak
RSS, the machine's CPU (all processes: the server, autovacuum, the workers) in all and per item,
the time the hypervisor gave the CPUs to other guests meanwhile (steal, not counted as CPU), the
transactions committed and rolled back (a completion retried after a deadlock or a lock it could
not take is one rolled back), and
the statements that took the most time (with shared buffers hit and dirtied per call). With several binaries, their runs alternate and a
summary compares medians.
"""
import argparse, os, statistics, subprocess, sys, tempfile, time

ROOT = os.environ["TIPLINE_ROOT"]
# Set by scripts/profile; not when it checks the arguments first (TIPLINE_CHECK_ARGS).
ADMIN = os.environ.get("TIPLINE_ADMIN_URL", "")
sys.path.insert(0, os.path.join(ROOT, "scripts"))
from chaos import generate, noop_reports  # noqa: E402  (scripts/bench's inputs)
from cpu import cpu_times  # noqa: E402
from children import popen, run as run_children  # noqa: E402  (no worker outlives a failed run)

DB = "tipline_profile"


def url(db):
    import urllib.parse
    parts = urllib.parse.urlsplit(ADMIN)
    return urllib.parse.urlunsplit(parts._replace(path="/" + db))


def psql(db, sql):
    r = subprocess.run(["psql", "-X", "-q", "-A", "-t", "-F", "\t", "-v", "ON_ERROR_STOP=1", url(db) if db else ADMIN, "-c", sql],
                       capture_output=True, text=True)
    if r.returncode != 0:
        raise SystemExit(f"psql failed: {r.stderr.strip()}")
    return [line.split("\t") for line in r.stdout.splitlines() if line]


def drop_database():
    psql(None, f'DROP DATABASE IF EXISTS "{DB}" WITH (FORCE)')


def transactions():
    """Commits, rollbacks and deadlocks of the drain's database so far. A session's counts are in
    once its server process has exited, which it does just after its client: so this waits (up
    to 5 s) until none of the database's sessions is left."""
    for _ in range(50):
        if psql(None, f"SELECT count(*) FROM pg_stat_activity WHERE datname = '{DB}'")[0][0] == "0":
            break
        time.sleep(0.1)
    row = psql(None, f"SELECT xact_commit, xact_rollback, deadlocks FROM pg_stat_database WHERE datname = '{DB}'")[0]
    return [int(x) for x in row]


def run_once(binary, path, n, a):
    binary, _, extra = binary.partition("@@")
    env = {**os.environ, "DATABASE_URL": url(DB)}
    drop_database()
    psql(None, f'CREATE DATABASE "{DB}"')
    subprocess.run([binary, "migrate"], env=env, check=True, capture_output=True)
    psql(DB, "CREATE EXTENSION IF NOT EXISTS pg_stat_statements")
    if extra:
        psql(DB, open(extra).read())
    subprocess.run([binary, "submit", "--file", path, "--source", "profile"], env=env, check=True, capture_output=True)
    psql(DB, "CHECKPOINT")
    psql(DB, "VACUUM ANALYZE")
    psql(DB, "SELECT pg_stat_statements_reset()")
    psql(DB, "SELECT pg_stat_reset_shared('wal')")
    xacts0 = transactions()
    args = [binary, "work", "--until-idle", "--concurrency", str(a.lanes), "--batch", str(a.batch), "--log-level", "warning"]
    if a.noop:
        args.append("--noop")
    # Each worker's times and its stderr go to files of its own: a pipe read after another
    # worker's exit could fill up and stall its writer.
    timings = [tempfile.NamedTemporaryFile("r", suffix=".time") for _ in range(a.procs)]
    logs = [tempfile.TemporaryFile("w+") for _ in range(a.procs)]
    try:
        (cpu0, stolen0), t0 = cpu_times(), time.time()
        workers = [popen(["/usr/bin/time", "-f", "%U %S %M", "-o", timing.name] + args + ["--name", f"profile-{i}"],
                         group=True, env=env, stdout=subprocess.DEVNULL, stderr=log)
                   for i, (timing, log) in enumerate(zip(timings, logs))]
        codes = [w.wait() for w in workers]
        cpu1, stolen1 = cpu_times()
        for code, log in zip(codes, logs):
            if code != 0:
                log.seek(0)
                raise SystemExit(f"worker exited {code}: {log.read()[-2000:]}")
        times = [[float(x) for x in timing.read().split()[-3:]] for timing in timings]
    finally:
        for f in timings + logs:
            f.close()
    # A completion retried after a deadlock or a lock it could not wait for is a rollback.
    xacts = [after - before for after, before in zip(transactions(), xacts0)]
    user = sum(t[0] for t in times)
    system = sum(t[1] for t in times)
    rss_kb = max(t[2] for t in times)
    done, last = psql(DB, "SELECT count(*), extract(epoch FROM max(processed_at)) FROM reports WHERE state = 'done'")[0]
    if int(done) != n:
        raise SystemExit(f"{done} reports done, expected {n}")
    statements = psql(DB, f"""SELECT calls, round(total_exec_time), round(total_plan_time), rows,
                                     round(shared_blks_hit::numeric / greatest(calls, 1), 1),
                                     round(shared_blks_dirtied::numeric / greatest(calls, 1), 2),
                                     left(regexp_replace(query, '\\s+', ' ', 'g'), 100)
                                FROM pg_stat_statements WHERE dbid = (SELECT oid FROM pg_database WHERE datname = '{DB}')
                               ORDER BY total_exec_time + total_plan_time DESC LIMIT {a.statements}""")
    # The WAL the drain wrote (the whole server's: nothing else runs on it).
    wal = [float(x) for x in psql(DB, "SELECT wal_records, wal_fpi, wal_bytes FROM pg_stat_wal")[0]]
    # Row writes per table (HOT updates change no index), counted from the database's creation.
    writes = psql(DB, """SELECT relname, n_tup_ins, n_tup_upd, n_tup_hot_upd, n_tup_del FROM pg_stat_user_tables
                          WHERE n_tup_ins + n_tup_upd + n_tup_del > 0 ORDER BY relname""")
    # Autovacuum's work during the drain (the counters were zero after the database was created).
    maintenance = psql(DB, """SELECT relname, autoanalyze_count, autovacuum_count FROM pg_stat_user_tables
                               WHERE autoanalyze_count + autovacuum_count > 0 ORDER BY relname""")
    return {"rate": n / (float(last) - t0), "worker_cpu": user + system, "rss_mib": rss_kb / 1024,
            "machine_cpu": cpu1 - cpu0, "cpu_per_item": 1e6 * (cpu1 - cpu0) / n, "steal": stolen1 - stolen0, "statements": statements, "maintenance": maintenance,
            "wal_per_item": [x / n for x in wal], "writes": writes,
            "xacts": xacts}


def main():
    ap = argparse.ArgumentParser(prog="scripts/profile", allow_abbrev=False)
    ap.add_argument("--bin", action="append", help="tipline binary; give it twice or more to compare builds (default: this checkout's release "
                         "build, which scripts/profile builds). PATH@@FILE.sql also runs that "
                         "SQL in each run's database after `tipline migrate` (a schema experiment: the same binary "
                         "with and without an index)")
    ap.add_argument("--noop", action="store_true", help="no-op jobs (`tipline work --noop`) instead of the report mix")
    ap.add_argument("--reports", type=int, help="input size (default 50,000 reports of the mix, or 100,000 no-op jobs)")
    ap.add_argument("--procs", type=int, default=1, help="worker processes draining at once (default 1)")
    ap.add_argument("--lanes", type=int, default=2, help="worker --concurrency, per process (default 2)")
    ap.add_argument("--batch", type=int, default=50, help="worker --batch (default 50)")
    ap.add_argument("--runs", type=int, default=1, help="runs per binary (default 1)")
    ap.add_argument("--statements", type=int, default=12, help="statements listed per run (default 12)")
    a = ap.parse_args()
    if a.runs < 1 or a.procs < 1 or a.lanes < 1 or a.batch < 1 or (a.reports is not None and a.reports < 1):
        raise SystemExit("--runs, --procs, --lanes, --batch and --reports must be positive")
    for binary in a.bin or []:
        path, _, sql = binary.partition("@@")
        if not os.access(path, os.X_OK):
            raise SystemExit(f"--bin {path}: not an executable file")
        if sql and not os.path.isfile(sql):
            raise SystemExit(f"--bin {binary}: no such SQL file: {sql}")
    if os.environ.get("TIPLINE_CHECK_ARGS"):
        return  # scripts/profile checks the arguments before it starts a server or builds
    a.bin = a.bin or [os.environ["TIPLINE_PROFILE_BIN"]]
    if "pg_stat_statements" not in "".join(row[0] for row in psql(None, "SHOW shared_preload_libraries")):
        raise SystemExit("the server does not load pg_stat_statements (shared_preload_libraries): unset DATABASE_URL to use scripts/profile's own")
    n = a.reports or (100_000 if a.noop else 50_000)
    path = os.path.join(ROOT, ".tipline", "profile-input.jsonl")
    with open(path, "w") as f:
        f.write(noop_reports(n) if a.noop else generate(n, 1))
    what = f"{n:,} no-op jobs" if a.noop else f"{n:,} reports of scripts/chaos.py's mix (seed 1)"
    workers = "one" if a.procs == 1 else f"{a.procs} at once:"
    print(f"profile: {what}, {workers} `tipline work --until-idle --concurrency {a.lanes} --batch {a.batch}` per run, {os.cpu_count()} cores")
    results = {b: [] for b in a.bin}
    for run in range(a.runs):
        for binary in a.bin:
            r = run_once(binary, path, n, a)
            results[binary].append(r)
            print(f"\n{binary} (run {run + 1}): {r['rate']:,.0f}/s; worker CPU {r['worker_cpu']:.2f} s (all processes), peak RSS {r['rss_mib']:.1f} MiB; "
                  f"machine CPU {r['machine_cpu']:.2f} s ({r['cpu_per_item']:.0f} µs per item); steal {r['steal']:.2f} s")
            commits, rollbacks, deadlocks = r["xacts"]
            print(f"  transactions: {commits:,} committed, {rollbacks:,} rolled back ({deadlocks:,} deadlocks)")
            records, fpi, wal_bytes = r["wal_per_item"]
            print(f"  WAL per item: {records:.1f} records, {fpi:.2f} full-page images, {wal_bytes:,.0f} bytes")
            print("  rows per item, inserted / updated (HOT) / deleted: " + "; ".join(
                f"{t} {int(i) / n:.2f} / {int(u) / n:.2f} ({int(h) / n:.2f}) / {int(d) / n:.2f}" for t, i, u, h, d in r["writes"]))
            print(f"  {'calls':>7} {'exec ms':>8} {'plan ms':>8} {'rows':>8} {'hits/call':>9} {'dirtied':>7}  statement")
            for calls, exec_ms, plan_ms, rows, hits, dirtied, query in r["statements"]:
                print(f"  {int(calls):>7} {int(float(exec_ms)):>8} {int(float(plan_ms)):>8} {int(rows):>8} {hits:>9} {dirtied:>7}  {query}")
            print("  autovacuum during the drain (analyses, vacuums): "
                  + (", ".join(f"{t} {a}, {v}" for t, a, v in r["maintenance"]) or "none"))
    if len(a.bin) > 1 or a.runs > 1:
        print("\nmedians (min-max):")
        for binary, rs in results.items():
            def m(key, digits=0):
                xs = [r[key] for r in rs]
                return f"{statistics.median(xs):,.{digits}f} ({min(xs):,.{digits}f}-{max(xs):,.{digits}f})"
            print(f"  {binary}: {m('rate')}/s; worker CPU {m('worker_cpu', 2)} s; machine CPU {m('machine_cpu', 2)} s, "
                  f"{m('cpu_per_item')} µs per item")
    drop_database()


if __name__ == "__main__":
    run_children(main)
