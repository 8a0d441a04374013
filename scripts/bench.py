"""Driver for scripts/bench: Tipline's throughput, latency and cost beside the PostgreSQL ceiling.

Every figure is measured in this run on this machine, repeated (median, min-max), and written
into BENCHMARKS.md between the bench markers. What each section measures:

- ceiling:  pgbench, the reference script in ../shared/bench at batch 1 and 50 (1 and 4 clients),
            and Tipline's own claim statement plus a one-statement completion (bench/) at batch 50
            with 1, 2, 4 and 8 clients. Jobs/s = jobs completed / duration.
- queue:    no-op jobs (`tipline work --noop`: the same claim and fenced completion, ads not read)
            drained by 1, 2 and 4 worker processes; jobs/s and the ratio to the ceilings.
- pipeline: the realistic mix of scripts/chaos.py's generator drained by 1, 2 and 4 processes.
- latency:  reports trickled at 50/s into one idle worker; submit commit to outcome commit.
- cost:     peak RSS of a worker at --concurrency 8; transactions/s of an idle worker.
- intake:   `tipline submit --file` and HTTP POST /v1/reports (wrk, or a Python client).
- bulk:     (--bulk) one `tipline submit --file` of a 1 GiB file: rate, and peak RSS beside a small file's.
- growth:   (--growth) 1,000,000 reports in chunks of 100,000, first vs last chunk's drain rate and machine CPU per report; three runs.
"""
import argparse, datetime, json, os, platform, re, shlex, shutil, signal, statistics, subprocess, sys, tempfile, time
import urllib.parse, http.client, threading

ROOT = os.environ["TIPLINE_ROOT"]
# Set by scripts/bench; only TIPLINE_ROOT when it checks the arguments first (TIPLINE_CHECK_ARGS).
BIN = os.environ.get("TIPLINE_BIN", "")
ADMIN = os.environ.get("TIPLINE_ADMIN_URL", "")
PGBENCH = os.environ.get("TIPLINE_PGBENCH", "pgbench")
SHARED = os.path.normpath(os.path.join(ROOT, "..", "shared", "bench"))
HERE = os.path.join(ROOT, "bench")
sys.path.insert(0, os.path.join(ROOT, "scripts"))
from chaos import generate, noop_reports  # noqa: E402  (the inputs; chaos.py reads the same env)
from cpu import cpu_times, machine_cpu  # noqa: E402
from children import popen, run as run_children  # noqa: E402  (no server or worker outlives a failed run)

STATE = os.path.join(ROOT, ".tipline", "bench")
COMMANDS = []  # the exact commands, for the report (database URLs elided)


def url(db):
    """A URI for database `db` on the server of TIPLINE_ADMIN_URL."""
    parts = urllib.parse.urlsplit(ADMIN)
    return urllib.parse.urlunsplit(parts._replace(path="/" + db))


def psql(db, sql, variables=(), file=None):
    """Runs SQL (or a file) and returns rows as lists of strings."""
    cmd = ["psql", "-X", "-q", "-A", "-t", "-F", "\t", "-v", "ON_ERROR_STOP=1"]
    for k, v in variables:
        cmd += ["-v", f"{k}={v}"]
    cmd += [url(db) if db else ADMIN] + (["-f", file] if file else ["-c", sql])
    r = subprocess.run(cmd, capture_output=True, text=True)
    if r.returncode != 0:
        raise SystemExit(f"psql failed: {r.stderr.strip()}")
    return [line.split("\t") for line in r.stdout.splitlines() if line]


def scalar(db, sql):
    return psql(db, sql)[0][0]


def env(db):
    return {**os.environ, "DATABASE_URL": url(db)}


def tipline(args, db, check=True):
    r = subprocess.run([BIN] + args, env=env(db), capture_output=True, text=True)
    if check and r.returncode not in (0, 3):
        raise SystemExit(f"tipline {' '.join(args)} failed ({r.returncode}): {r.stderr.strip()[-2000:]}")
    return r


def drop_database(db):
    psql(None, f'DROP DATABASE IF EXISTS "{db}" WITH (FORCE)')


def fresh(db):
    drop_database(db)
    psql(None, f'CREATE DATABASE "{db}"')
    tipline(["migrate"], db)


def note(cmd):
    if cmd not in COMMANDS:
        COMMANDS.append(cmd)


def log(text):
    print(text, flush=True)


def stats(xs):
    xs = [x for x in xs if x is not None]
    return {"median": statistics.median(xs), "min": min(xs), "max": max(xs), "n": len(xs)} if xs else None


def fmt(s, digits=0, unit=""):
    if not s:
        return "n/a"
    f = (lambda x: f"{x:,.{digits}f}")
    if s["n"] == 1:
        return f"**{f(s['median'])}**{unit}"
    return f"**{f(s['median'])}**{unit} ({f(s['min'])}–{f(s['max'])})"


# ---------------------------------------------------------------------------------------------
# a. The ceiling


# The session settings `tipline work` connects with (`Queue.workerSessionSettings`): the Tipline-shape
# ceiling runs its statements under the same plans (QueueTests checks that the two lists match).
WORKER_PGOPTIONS = "-c enable_seqscan=off -c enable_hashjoin=off -c enable_mergejoin=off -c enable_sort=off -c plan_cache_mode=force_generic_plan -c jit=off"


def pgbench(db, script, clients, seconds, batch, pgoptions=None):
    cmd = [PGBENCH, "-n", "-M", "prepared", "-c", str(clients), "-j", str(clients), "-T", str(seconds),
           "-D", f"batch={batch}", "-f", script, url(db)]
    env = dict(os.environ)
    if pgoptions:
        env["PGOPTIONS"] = pgoptions
    note((f"PGOPTIONS='{pgoptions}' " if pgoptions else "")
         + " ".join(cmd[:-1]).replace(PGBENCH, "pgbench").replace(ROOT + "/", "").replace(os.path.dirname(ROOT) + "/", "../") + " $URL")
    r = subprocess.run(cmd, capture_output=True, text=True, env=env)
    if r.returncode != 0:
        raise SystemExit(f"pgbench failed: {r.stderr.strip()[-2000:]}")


def ceiling(a, results):
    """Sets the ceiling up; returns one repetition of it, like `queue_only`."""
    ref_setup, ref_script = os.path.join(SHARED, "pgbench_setup.sql"), os.path.join(SHARED, "claim_complete.pgbench")
    ref = {}
    rate_seen = {}
    have_ref = os.path.exists(ref_script)
    if have_ref:
        drop_database("bench_ref")
        psql(None, 'CREATE DATABASE "bench_ref"')
    else:
        log(f"ceiling: {SHARED} not found; reference script skipped")
    fresh("bench_shape")
    psql("bench_shape", None, [("nrows", a.shape_rows)], os.path.join(HERE, "tipline_setup.sql"))
    note(f"psql -v nrows={a.shape_rows} -f bench/tipline_setup.sql $URL   # on a migrated database; bench/tipline_refill.sql before each run")
    shape = {}

    def repetition():
        if have_ref:
            for batch, clients in ((1, 1), (1, 4), (50, 1), (50, 4)):
                key = (batch, clients)
                guess = rate_seen.get(key, 60000 if batch == 50 else 6000)
                nrows = int(min(1_600_000, max(50_000, guess * a.seconds * 1.6)))
                psql("bench_ref", None, [("nrows", nrows)], ref_setup)
                note(f"psql -v nrows=N -f ../shared/bench/pgbench_setup.sql $URL   # N sized to the run, at most 1,600,000")
                pgbench("bench_ref", ref_script, clients, a.seconds, batch)
                done, ready = psql("bench_ref", "SELECT count(*) FILTER (WHERE status = 'done'), count(*) FILTER (WHERE status = 'ready') FROM jobs")[0]
                rate = int(done) / a.seconds
                rate_seen[key] = max(rate_seen.get(key, 0), rate)
                if int(ready) == 0:
                    log(f"  warning: reference batch {batch} x{clients} ran out of rows")
                ref.setdefault(f"b{batch}c{clients}", []).append(rate)
                log(f"ceiling ref batch {batch} clients {clients}: {rate:,.0f} jobs/s")
        for clients in (1, 2, 4, 8):
            psql("bench_shape", None, file=os.path.join(HERE, "tipline_refill.sql"))
            total = a.shape_rows
            pgbench("bench_shape", os.path.join(HERE, "tipline_claim_complete.pgbench"), clients, a.seconds, 50, WORKER_PGOPTIONS)
            left = int(scalar("bench_shape", "SELECT count(*) FROM jobs"))
            if left == 0:
                log(f"  warning: Tipline shape x{clients} ran out of jobs (raise --shape-rows)")
            rate = (total - left) / a.seconds
            shape.setdefault(f"c{clients}", []).append(rate)
            log(f"ceiling tipline-shape batch 50 clients {clients}: {rate:,.0f} jobs/s")
        # The drains that follow in the same minutes must not share the machine with autovacuum
        # cleaning up after these runs.
        for db, table in (("bench_shape", "reports"), ("bench_shape", "jobs")) + ((("bench_ref", "jobs"),) if have_ref else ()):
            psql(db, f"VACUUM {table}")
        psql(None, "CHECKPOINT")
        results["ceiling"] = {"reference": {k: stats(v) for k, v in ref.items()}, "shape": {k: stats(v) for k, v in shape.items()}}
    return repetition


# ---------------------------------------------------------------------------------------------
# b, c. Draining with worker processes


def write_jsonl(path, lines):
    with open(path, "w") as f:
        f.write(lines)


def submit(db, path, n):
    t = time.perf_counter()
    tipline(["submit", "--file", path, "--source", "bench"], db)
    elapsed = time.perf_counter() - t
    queued = int(scalar(db, "SELECT count(*) FROM jobs"))
    if queued != n:
        raise SystemExit(f"submit queued {queued} jobs, expected {n}")
    return n / elapsed


def drain(db, procs, n, a, extra=(), lanes=None):
    """Starts `procs` workers with --until-idle; returns reports/s from their start to the start of
    the last completing transaction (max processed_at): process start-up counts, the --until-idle
    exit (up to 0.5 s of polling an empty queue) does not; and the machine's CPU per report in
    µs, from their start to their exit (every process: the server, autovacuum, the workers)."""
    args = ["work", "--until-idle", "--concurrency", str(lanes or a.concurrency), "--batch", str(a.batch), "--log-level", "warning", *extra]
    note("tipline " + " ".join(args) + "   # N of these at once")
    cpu, t = machine_cpu(), time.time()
    logs = [open(os.path.join(STATE, f"worker-{i}.log"), "w+") for i in range(procs)]
    ps = [popen([BIN] + args + ["--name", f"bench-{i}"], env=env(db), stdout=subprocess.DEVNULL, stderr=logs[i])
          for i in range(procs)]
    for p, f in zip(ps, logs):
        if p.wait() != 0:
            f.seek(0)
            raise SystemExit(f"worker exited {p.returncode}: {f.read()[-2000:]}")
    cpu = machine_cpu() - cpu
    done, last = psql(db, "SELECT count(*), extract(epoch FROM max(processed_at)) FROM reports WHERE state = 'done'")[0]
    if int(done) != n:
        raise SystemExit(f"{done} reports done, expected {n}")
    return n / (float(last) - t), 1e6 * cpu / n


def best_lanes(out):
    """From each configuration's drains ((rate, CPU per item) pairs, keyed by processes and lanes):
    per process count, the --concurrency with the best median rate, its figures, the machine's CPU
    per item in its drains, and the other options' medians."""
    best = {}
    for procs in sorted({p for p, _ in out}):
        by_lanes = {lanes: stats([rate for rate, _ in v]) for (p, lanes), v in out.items() if p == procs}
        lanes = max(by_lanes, key=lambda l: by_lanes[l]["median"])
        best[str(procs)] = {**by_lanes[lanes], "lanes": lanes, "cpu": stats([cpu for _, cpu in out[(procs, lanes)]]),
                            "others": {str(l): v["median"] for l, v in by_lanes.items() if l != lanes}}
    return best


def queue_only(a, results):
    """Sets the queue-only section up; returns one repetition of it (every process count and lane
    option), to be run alternately with the pipeline's (see `main`)."""
    path = os.path.join(STATE, "noop.jsonl")
    write_jsonl(path, noop_reports(a.queue_jobs))
    out = {}

    def repetition():
        for procs in (1, 2, 4):
            for lanes in a.lane_options:
                fresh("bench_queue")
                submit("bench_queue", path, a.queue_jobs)
                rate, per_job = drain("bench_queue", procs, a.queue_jobs, a, ["--noop"], lanes)
                out.setdefault((procs, lanes), []).append((rate, per_job))
                log(f"queue-only {procs} process(es) x {lanes} lanes: {rate:,.0f} jobs/s, machine CPU {per_job:.0f} µs per job")
        results["queue"] = best_lanes(out)
        drop_database("bench_queue")  # no autovacuum left running into the next section
    return repetition


def mix_file(a):
    """The pipeline's mix (`a.reports` reports, seed 1), written once per run: a file an earlier run
    left may hold another size (a --quick run's 10,000 reports)."""
    path = os.path.join(STATE, "mix.jsonl")
    if not getattr(a, "mix_written", False):
        write_jsonl(path, generate(a.reports, 1))
        a.mix_written = True
    return path


def pipeline(a, results):
    """Sets the pipeline section up; returns one repetition of it, like `queue_only`."""
    path = mix_file(a)
    note(f"python3 -c 'from chaos import generate; ...' > mix.jsonl   # scripts/chaos.py's generator, {a.reports:,} reports, seed 1")
    note("tipline submit --file mix.jsonl --source bench")
    out, intake = {}, []

    def repetition():
        for procs in (1, 2, 4):
            for lanes in a.lane_options:
                fresh("bench_pipeline")
                intake.append(submit("bench_pipeline", path, a.reports))
                rate, per_report = drain("bench_pipeline", procs, a.reports, a, (), lanes)
                out.setdefault((procs, lanes), []).append((rate, per_report))
                log(f"pipeline {procs} process(es) x {lanes} lanes: {rate:,.0f} reports/s, machine CPU {per_report:.0f} µs per report "
                    f"(submit {intake[-1]:,.0f}/s)")
        results["pipeline"] = best_lanes(out)
        results["bulk_intake"] = stats(intake)
        counts = psql("bench_pipeline", """SELECT count(*) FILTER (WHERE outcome = 'no_contact'), count(*) FILTER (WHERE outcome = 'recorded'),
                                                  count(*) FILTER (WHERE outcome = 'escalated'),
                                                  (SELECT count(*) FROM offenders WHERE merged_into IS NULL), (SELECT count(*) FROM contacts)
                                             FROM reports""")[0]
        results["mix"] = dict(zip(["no_contact", "recorded", "escalated", "sellers", "contacts"], map(int, counts)))
        drop_database("bench_pipeline")
    return repetition


# ---------------------------------------------------------------------------------------------
# d. Latency

# Deferred constraint triggers run at COMMIT, after every statement of the transaction and just
# before its WAL flush: clock_timestamp() there is the commit moment of the submit and of the
# completion, on the server's clock, with the same flush after each.
STAMP_SQL = """
CREATE TABLE bench_commits (report_id bigint NOT NULL, kind text NOT NULL, at timestamptz NOT NULL);
CREATE FUNCTION bench_commit_stamp() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        INSERT INTO bench_commits VALUES (NEW.id, 'submit', clock_timestamp());
    ELSIF NEW.state = 'done' AND OLD.state <> 'done' THEN
        INSERT INTO bench_commits VALUES (NEW.id, 'done', clock_timestamp());
    END IF;
    RETURN NULL;
END $$;
CREATE CONSTRAINT TRIGGER bench_commit_stamp AFTER INSERT OR UPDATE ON reports
    DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION bench_commit_stamp();
"""


def sql_literal(s):
    return "'" + s.replace("'", "''") + "'"


def latency(a, results):
    mix = [json.loads(line) for line in generate(a.latency_reports, 2).splitlines()]
    p50s, p99s, maxs, all_ms = [], [], [], []
    for rep in range(a.reps):
        fresh("bench_latency")
        psql("bench_latency", STAMP_SQL)
        worker = popen([BIN, "work", "--log-level", "warning", "--name", "bench-idle"], env=env("bench_latency"),
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        note("tipline work   # one idle worker, defaults (--concurrency 2, --poll 5)")
        wait_for(lambda: scalar("bench_latency", "SELECT count(*) FROM workers WHERE stopped_at IS NULL") == "1", 30)
        time.sleep(1)
        feeder = popen(["psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", url("bench_latency")], stdin=subprocess.PIPE,
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        # The clock starts once psql has connected: before, the reports written while it connected
        # went in together (the first three within 4 ms), not at the steady rate.
        feeder.stdin.write("\\o /dev/null\n\\echo connected\n")  # query results to /dev/null, the echo to us
        feeder.stdin.flush()
        if feeder.stdout.readline().strip() != "connected":
            raise SystemExit(f"feeder failed: {feeder.stderr.read()}")
        t0 = time.perf_counter()
        for i, r in enumerate(mix):
            delay = t0 + i / a.rate - time.perf_counter()
            if delay > 0:
                time.sleep(delay)
            feeder.stdin.write(
                "BEGIN;\n"
                "WITH inserted AS (INSERT INTO reports (source, external_id, channel, reporter_hash, body, reported_at) "
                f"VALUES ('bench', {sql_literal(r['external_id'])}, {sql_literal(r['channel'])}, sha256({sql_literal(r['reporter'])}::bytea), "
                f"{sql_literal(r['text'])}, {sql_literal(r['reported_at'])}) RETURNING id) "
                "INSERT INTO jobs (report_id, max_attempts) SELECT id, 5 FROM inserted;\n"
                "SELECT pg_notify('tipline_jobs', '');\nCOMMIT;\n")
            feeder.stdin.flush()
        feeder.stdin.close()
        if feeder.wait() != 0:
            raise SystemExit(f"feeder failed: {feeder.stderr.read()}")
        wait_for(lambda: scalar("bench_latency", "SELECT count(*) FROM jobs") == "0", 60)
        worker.send_signal(signal.SIGTERM)
        worker.wait(timeout=30)
        ms = sorted(float(x[0]) for x in psql("bench_latency", """
            SELECT extract(epoch FROM d.at - s.at) * 1000 FROM bench_commits s
              JOIN bench_commits d ON d.report_id = s.report_id AND d.kind = 'done' WHERE s.kind = 'submit'"""))
        if len(ms) != len(mix):
            raise SystemExit(f"latency: {len(ms)} outcomes for {len(mix)} reports")
        p50, p99 = ms[len(ms) // 2], ms[min(len(ms) - 1, int(len(ms) * 0.99))]
        p50s.append(p50); p99s.append(p99); maxs.append(ms[-1]); all_ms += ms
        log(f"latency at {a.rate}/s: p50 {p50:.2f} ms, p99 {p99:.2f} ms, max {ms[-1]:.2f} ms")
    results["latency"] = {"p50": stats(p50s), "p99": stats(p99s), "max": stats(maxs), "reports": len(mix), "rate": a.rate}


def wait_for(cond, timeout):
    deadline = time.time() + timeout
    while not cond():
        if time.time() > deadline:
            raise SystemExit("timed out waiting")
        time.sleep(0.05)


# ---------------------------------------------------------------------------------------------
# f. Cost


def cost(a, results):
    path = mix_file(a)
    rss = []
    for rep in range(a.reps):
        fresh("bench_cost")
        submit("bench_cost", path, a.reports)
        args = ["work", "--until-idle", "--concurrency", "8", "--batch", str(a.batch), "--log-level", "warning"]
        note("/usr/bin/time -f %M tipline " + " ".join(args))
        r = subprocess.run(["/usr/bin/time", "-f", "%M", BIN] + args, env=env("bench_cost"), capture_output=True, text=True)
        if r.returncode != 0:
            raise SystemExit(f"worker failed: {r.stderr[-2000:]}")
        rss.append(int(r.stderr.strip().splitlines()[-1]) / 1024)
        log(f"peak RSS at --concurrency 8: {rss[-1]:.1f} MiB")
    fresh("bench_idle")
    if os.environ.get("TIPLINE_PG_LOG"):
        psql(None, "ALTER DATABASE bench_idle SET log_statement = 'all'")
    worker = popen([BIN, "work", "--log-level", "warning", "--name", "bench-idle"], env=env("bench_idle"),
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    note(f"tipline work   # idle, defaults; pg_stat_database.xact_commit of its database over {a.idle_seconds} s")
    wait_for(lambda: scalar("bench_idle", "SELECT count(*) FROM workers WHERE stopped_at IS NULL") == "1", 30)
    time.sleep(6)  # start-up done, first heartbeat past
    count = "SELECT xact_commit + xact_rollback FROM pg_stat_database WHERE datname = 'bench_idle'"
    pids = [row[0] for row in psql(None, "SELECT pid FROM pg_stat_activity WHERE datname = 'bench_idle'")]
    server_log = os.environ.get("TIPLINE_PG_LOG")
    offset = os.path.getsize(server_log) if server_log and os.access(server_log, os.R_OK) else None
    before = int(scalar(None, count))
    time.sleep(a.idle_seconds)
    after = int(scalar(None, count))
    statements = None
    if offset is not None:
        # log_statement = 'all' for this database only (set before the worker connected): count the
        # statements its sessions sent during the window, by kind.
        with open(server_log, errors="replace") as f:
            f.seek(offset)
            lines = [x for x in f.read().splitlines() if any(f"[{pid}]" in x for pid in pids)]
        sent = [re.sub(r"\s+", " ", x.split(": ", 2)[-1])[:60] for x in lines if re.search(r"LOG:  (statement|execute [^:]*):", x)]
        statements = {"per_second": len(sent) / a.idle_seconds, "kinds": {}}
        for x in sent:
            statements["kinds"][x] = statements["kinds"].get(x, 0) + 1
    worker.send_signal(signal.SIGTERM)
    worker.wait(timeout=30)
    tps = (after - before) / a.idle_seconds
    log(f"idle worker: {tps:.2f} transactions/s")
    if statements:
        log(f"idle worker: {statements['per_second']:.2f} statements/s: {statements['kinds']}")
    results["cost"] = {"rss_mib": stats(rss), "idle_tps": tps, "idle_seconds": a.idle_seconds, "idle_statements": statements}


# ---------------------------------------------------------------------------------------------
# g. HTTP intake


def http_intake(a, results):
    rates, lat = [], []
    use_wrk = shutil.which("wrk") is not None
    for rep in range(a.reps):
        fresh("bench_http")
        token = tipline(["token", "create", "--source", "bench", "--channel", "app"], "bench_http").stdout.strip()
        port = free_port()
        server = popen([BIN, "serve", "--port", str(port), "--db-connections", "4", "--log-level", "warning"],
                                  env=env("bench_http"), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        note(f"tipline serve --port PORT --db-connections 4 --log-level warning   # token from: tipline token create --source bench --channel app")
        wait_for(lambda: healthy(port), 30)
        if use_wrk:
            cmd = ["wrk", "-t2", "-c8", f"-d{a.seconds}s", "--latency", "-s", os.path.join(HERE, "post_report.lua"),
                   f"http://127.0.0.1:{port}/v1/reports", "--", token, f"r{rep}"]
            note(f"wrk -t2 -c8 -d{a.seconds}s --latency -s bench/post_report.lua http://127.0.0.1:PORT/v1/reports -- TOKEN PREFIX")
            r = subprocess.run(cmd, capture_output=True, text=True)
            m = re.search(r"requests in ([\d.]+)(m?s)", r.stdout)
            elapsed = float(m.group(1)) * (0.001 if m.group(2) == "ms" else 1) if m else a.seconds
            p99 = re.search(r"99%\s+([\d.]+)(us|ms|s)", r.stdout)
            if p99:
                lat.append(float(p99.group(1)) * {"us": 0.001, "ms": 1, "s": 1000}[p99.group(2)])
        else:
            note(f"python3 (8 threads, http.client keep-alive) for {a.seconds} s")
            elapsed = python_load(port, token, 8, a.seconds)
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=30)
        n = int(scalar("bench_http", "SELECT count(*) FROM reports"))
        rates.append(n / elapsed)
        log(f"HTTP intake: {rates[-1]:,.0f} reports/s ({n} reports)")
    results["http"] = {"rate": stats(rates), "p99_ms": stats(lat), "client": "wrk -t2 -c8" if use_wrk else "python, 8 threads"}


def free_port():
    import socket
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def healthy(port):
    try:
        c = http.client.HTTPConnection("127.0.0.1", port, timeout=1)
        c.request("GET", "/healthz")
        return c.getresponse().status == 200
    except OSError:
        return False


def python_load(port, token, conc, seconds):
    stop = time.time() + seconds

    def run(i):
        c, n = http.client.HTTPConnection("127.0.0.1", port), 0
        while time.time() < stop:
            body = json.dumps({"external_id": f"p{i}-{n}", "reporter": f"u{n % 50}", "text": f"出租微信 V信: seller_{n % 300}x"})
            c.request("POST", "/v1/reports", body, {"Content-Type": "application/json", "Authorization": "Bearer " + token})
            c.getresponse().read()
            n += 1
    t = time.time()
    threads = [threading.Thread(target=run, args=(i,)) for i in range(conc)]
    [x.start() for x in threads]
    [x.join() for x in threads]
    return time.time() - t


# ---------------------------------------------------------------------------------------------
# g'. Bulk import of a large hotline file: rate and peak memory against a small file


def write_bulk_file(path, target_bytes):
    """Appends chunks of the generator's mix (fresh external ids per chunk) until the file holds
    `target_bytes`; returns the number of lines."""
    lines, chunk = 0, 0
    with open(path, "w") as f:
        while f.tell() < target_bytes:
            text = generate(200_000, 100 + chunk).replace('{"external_id": "c', '{"external_id": "b%d-' % chunk)
            f.write(text)
            lines += text.count("\n")
            chunk += 1
    return lines


def timed_submit(db, path):
    """Runs `tipline submit --file` under /usr/bin/time: (seconds, peak RSS in MiB)."""
    r = subprocess.run(["/usr/bin/time", "-f", "%e %M", BIN, "submit", "--file", path, "--source", "bench"],
                       env=env(db), capture_output=True, text=True)
    if r.returncode != 0:
        raise SystemExit(f"submit failed: {r.stderr[-2000:]}")
    seconds, kib = r.stderr.strip().splitlines()[-1].split()
    return float(seconds), int(kib) / 1024


def bulk(a, results):
    small = mix_file(a)
    big = os.path.join(STATE, "bulk.jsonl")
    lines = write_bulk_file(big, a.bulk_bytes)
    size = os.path.getsize(big)
    log(f"bulk: {size / 2**20:,.0f} MiB, {lines:,} reports")
    fresh("bench_bulk")
    small_s, small_rss = timed_submit("bench_bulk", small)
    fresh("bench_bulk")
    note(f"/usr/bin/time -f '%e %M' tipline submit --file bulk.jsonl --source bench   # {size / 2**20:,.0f} MiB, {lines:,} reports")
    big_s, big_rss = timed_submit("bench_bulk", big)
    stored = int(scalar("bench_bulk", "SELECT count(*) FROM reports"))
    if stored != lines:
        raise SystemExit(f"bulk: {stored} reports stored, expected {lines}")
    os.remove(big)
    log(f"bulk: {lines / big_s:,.0f} reports/s, peak RSS {big_rss:.1f} MiB (small file: {small_rss:.1f} MiB)")
    results["bulk"] = {"bytes": size, "lines": lines, "seconds": big_s, "rate": lines / big_s, "rss_mib": big_rss,
                       "small_lines": a.reports, "small_rss_mib": small_rss}


# ---------------------------------------------------------------------------------------------
# e. Growth


def growth(a, results):
    """The growth run, `a.growth_reps` times, each into a fresh database: a single chunk is a few
    seconds of drain, and one slow spell of this shared machine moved the last-against-first ratio
    of a single run from 82% to 105% in the same hour."""
    n, chunk = a.growth_reports, a.growth_chunk
    lines = generate(n, 3).splitlines(keepends=True)
    path = os.path.join(STATE, "growth-chunk.jsonl")
    runs, times = [], []
    for rep in range(a.growth_reps):
        fresh("bench_growth")
        rates, submits, cpus = [], [], []
        for i in range(0, n, chunk):
            write_jsonl(path, "".join(lines[i:i + chunk]))
            t = time.perf_counter()
            tipline(["submit", "--file", path, "--source", "bench"], "bench_growth")
            submits.append(chunk / (time.perf_counter() - t))
            cpu, t = machine_cpu(), time.perf_counter()
            r = subprocess.run([BIN, "work", "--until-idle", "--concurrency", str(a.concurrency), "--batch", str(a.batch), "--log-level", "warning"],
                               env=env("bench_growth"), capture_output=True, text=True)
            if r.returncode != 0:
                raise SystemExit(f"worker failed: {r.stderr[-2000:]}")
            rates.append(chunk / (time.perf_counter() - t))
            cpus.append(1e6 * (machine_cpu() - cpu) / chunk)
            log(f"growth run {rep + 1}: reports {i + 1:,}-{i + chunk:,}: drained at {rates[-1]:,.0f}/s "
                f"({cpus[-1]:.0f} µs machine CPU per report), submitted at {submits[-1]:,.0f}/s")
        size = psql("bench_growth", "SELECT pg_size_pretty(pg_total_relation_size('jobs')), pg_size_pretty(pg_total_relation_size('reports'))")[0]
        for _ in range(3):
            t = time.perf_counter()
            tipline(["status"], "bench_growth")
            times.append((time.perf_counter() - t) * 1000)
        runs.append({"rates": rates, "submits": submits, "cpus": cpus, "jobs_size": size[0], "reports_size": size[1]})
        log(f"growth run {rep + 1}: last chunk at {100 * rates[-1] / rates[0]:.0f}% of the first; jobs {size[0]}")
    note(f"growth: {n:,} reports in chunks of {chunk:,}: tipline submit --file CHUNK, then tipline work --until-idle --concurrency {a.concurrency} --batch {a.batch}; tipline status")
    results["growth"] = {"reports": n, "chunk": chunk, "runs": runs, "status_ms": stats(times)}


# ---------------------------------------------------------------------------------------------
# The report


def sh(cmd):
    try:
        return subprocess.run(cmd, shell=True, capture_output=True, text=True).stdout.strip()
    except OSError:
        return ""


def machine():
    model = sh("lscpu | sed -n 's/^Model name: *//p'") or platform.processor()
    mem = sh("awk '/MemTotal/ {printf \"%.0f GiB\", $2/1048576}' /proc/meminfo")
    version = scalar(None, "SHOW server_version")
    settings = psql(None, """SELECT name, setting || coalesce(unit, '') FROM pg_settings
                              WHERE source NOT IN ('default', 'override', 'client', 'session')
                                AND name NOT IN ('lc_messages', 'lc_monetary', 'lc_numeric', 'lc_time', 'DateStyle', 'TimeZone',
                                                 'log_timezone', 'default_text_search_config', 'dynamic_shared_memory_type',
                                                 'listen_addresses', 'port', 'unix_socket_directories', 'application_name')
                              ORDER BY name""")
    commit = sh(f"git -C {shlex.quote(ROOT)} rev-parse --short HEAD")
    dirty = sh(f"git -C {shlex.quote(ROOT)} status --porcelain -- Sources Package.swift")
    return {"nproc": os.cpu_count(), "cpu": model, "memory": mem, "pg": version, "settings": settings,
            "commit": commit + (" + uncommitted changes" if dirty else ""), "swift": sh("swift --version 2>&1 | head -1"),
            "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
            "kernel": platform.release()}


def lane_list(a):
    *rest, last = [str(l) for l in a.lane_options]
    return f"{', '.join(rest)} and {last}" if rest else last


def lanes_cell(v):
    if not v or "lanes" not in v:
        return ""
    others = ", ".join(f"{l}: {m:,.0f}" for l, m in v.get("others", {}).items())
    return f"{v['lanes']}" + (f" ({others})" if others else "")


def ratio(x, y):
    return f"{100 * x / y:.0f}%" if x and y else "n/a"


def alternation_note(r):
    """The sentence saying which sections' repetitions alternated (see `main`), if more than one ran."""
    names = {"ceiling": "the ceiling", "queue": "the queue-only drains", "pipeline": "the pipeline"}
    ran = [names[n] for n in ("ceiling", "queue", "pipeline") if n in r]
    if len(ran) < 2:
        return ""
    listed = ", ".join(ran[:-1]) + " and " + ran[-1]
    return (f" The repetitions of {listed} alternate (one of each in turn), so that their ratios compare the same minutes"
            + ("; the ceiling's tables are vacuumed and checkpointed after each of its repetitions." if "ceiling" in r else "."))


CPU_NOTE = ("Machine CPU: the CPU time of every process on the machine (the server, autovacuum, the workers; `/proc/stat`, steal not counted) from the "
            "workers' start to their exit, per item drained, median over the repetitions of the configuration shown.")


def render(a, m, r):
    out = ["## scripts/bench (PostgreSQL ceiling, queue, pipeline, latency, cost, intake)", ""]
    out.append("Generated by `scripts/bench" + (" --quick" if a.quick else "") + (" --growth" if a.growth else "") + (" --bulk" if a.bulk else "") +
               "`; do not edit by hand. Figures: **median** (min–max) over "
               f"{a.reps} repetition(s), measured in one run on one machine; compare only figures from the same run." +
               alternation_note(r))
    out += ["", "| | |", "|---|---|",
            f"| Machine | {m['nproc']} cores (`nproc`), {m['cpu']}, {m['memory']} RAM, Linux {m['kernel']} |",
            f"| Steal | {m['steal']:.1f}% of the cores' time during the run went to other guests of the hypervisor (`/proc/stat`); "
            "a busy neighbour slows every figure, and moves the ratios when it comes and goes |",
            f"| PostgreSQL | {m['pg']}, same machine; non-default settings: " +
            ", ".join(f"`{k}={v}`" for k, v in m["settings"]) + " |",
            f"| Swift | {m['swift']}, `swift build -c release --product tipline` |",
            f"| Commit, date | `{m['commit']}`, {m['date']} |",
            f"| Workers | `--concurrency {a.concurrency} --batch {a.batch}` per process unless stated |", ""]
    c = r.get("ceiling")
    if c:
        out += ["### Ceiling: pgbench, jobs/s", "",
                f"`-n -M prepared -j C -T {a.seconds}`; jobs/s = jobs completed / {a.seconds} s; a fresh table for every run.", "",
                "| script | batch | 1 client | 2 clients | 4 clients | 8 clients |", "|---|---|---|---|---|---|"]
        ref = c["reference"]
        for b in (1, 50):
            if f"b{b}c1" in ref:
                out.append(f"| reference (`../shared/bench/claim_complete.pgbench`) | {b} | {fmt(ref.get(f'b{b}c1'))} | | {fmt(ref.get(f'b{b}c4'))} | |")
        s = c["shape"]
        out.append(f"| Tipline's claim + completion (`bench/tipline_claim_complete.pgbench`: the statements of a `--noop` worker, its session settings; {a.shape_rows:,} reports) | 50 | "
                   + " | ".join(fmt(s.get(f"c{k}")) for k in (1, 2, 4, 8)) + " |")
        out.append("")
    best_shape = max((v["median"] for v in (c or {}).get("shape", {}).values() if v), default=None)
    best_ref = max((v["median"] for k, v in (c or {}).get("reference", {}).items() if k.startswith("b50") and v), default=None)
    if "queue" in r:
        out += ["### Queue only: no-op jobs (`tipline work --noop`), jobs/s", "",
                f"{a.queue_jobs:,} jobs submitted with `tipline submit --file`, then drained by N `tipline work --until-idle --noop` "
                "processes (from their start to the start of the last completing transaction, `max(processed_at)`: process start-up counts, the `--until-idle` exit does not). Note: the Tipline-shape ceiling drains a larger table than this (its row count is in its table row), so the ratio flatters the queue a little. `--noop` claims and completes "
                "with the statements of any batch without contacts (the fence, outcomes and counters in one statement) and does not read the ads "
                "(outcome `no_contact`, no contacts, no grouping). "
                "Ratios against the best median of the same run's ceilings (Tipline shape: any client count; reference: batch 50).", "",
                f"Each process count ran with `--concurrency` {lane_list(a)} at `--batch {a.batch}` (the ceiling's batch); the best median is shown, the others in brackets. "
                f"{CPU_NOTE}", "",
                "| processes | `--concurrency` | jobs/s | machine CPU per job | vs Tipline-shape ceiling | vs reference batch 50 |", "|---|---|---|---|---|---|"]
        for k in ("1", "2", "4"):
            v = r["queue"].get(k)
            out.append(f"| {k} | {lanes_cell(v)} | {fmt(v)} | {fmt(v and v.get('cpu'), 0, ' µs')} | {ratio(v and v['median'], best_shape)} | "
                       f"{ratio(v and v['median'], best_ref)} |")
        out.append("")
    if "pipeline" in r:
        mix = r.get("mix", {})
        out += ["### Full pipeline: reports/s", "",
                f"{a.reports:,} reports from `scripts/chaos.py`'s generator (seed 1: repeat sellers with disguised phones, QQ and "
                f"WeChat ids, cross-links, 3% without contacts; result: {mix.get('sellers', 0):,} sellers, {mix.get('contacts', 0):,} contacts, "
                f"outcomes {mix.get('recorded', 0):,} recorded / {mix.get('escalated', 0):,} escalated / {mix.get('no_contact', 0):,} no contact), "
                f"fresh database per run, drained by N processes, each with `--concurrency` {lane_list(a)} at `--batch {a.batch}`; the best median is shown, the others in brackets. "
                f"{CPU_NOTE} The last column is the queue-only figure's machine CPU per job over this one's per report: where both drains keep "
                "the CPU busy, the pipeline's share of the queue-only rate comes close to it.", "",
                "| processes | `--concurrency` | reports/s | machine CPU per report | vs queue only | CPU per job (queue only) / per report |",
                "|---|---|---|---|---|---|"]
        for k in ("1", "2", "4"):
            v, q = r["pipeline"].get(k), r.get("queue", {}).get(k)
            cpu_v, cpu_q = (v or {}).get("cpu"), (q or {}).get("cpu")
            out.append(f"| {k} | {lanes_cell(v)} | {fmt(v)} | {fmt(cpu_v, 0, ' µs')} | {ratio(v and v['median'], q and q['median'])} | "
                       f"{ratio(cpu_q and cpu_q['median'], cpu_v and cpu_v['median'])} |")
        out.append("")
    if "latency" in r:
        l = r["latency"]
        out += ["### Latency at a steady rate", "",
                f"{l['reports']:,} reports of the same mix trickled at {l['rate']}/s into one idle `tipline work` (defaults), each in its own "
                "transaction shaped like `Intake.submit` (reports and jobs insert, `pg_notify('tipline_jobs', '')`, commit) from one "
                "long-lived `psql`. Measured on the server's clock: a deferred constraint trigger on `reports` (bench database only) "
                "records `clock_timestamp()` at the commit of the submit and at the commit of the outcome, each just before its WAL "
                "flush; the figure is the difference.", "",
                "| p50 | p99 | max |", "|---|---|---|",
                f"| {fmt(l['p50'], 2, ' ms')} | {fmt(l['p99'], 2, ' ms')} | {fmt(l['max'], 1, ' ms')} |", ""]
    if "cost" in r:
        co = r["cost"]
        out += ["### Cost", "", "| | |", "|---|---|",
                f"| Peak RSS, `tipline work --concurrency 8` draining the mix (`/usr/bin/time -f %M`) | {fmt(co['rss_mib'], 1, ' MiB')} |",
                f"| Idle worker's database (defaults), transactions/s (`pg_stat_database` commits + rollbacks over {co['idle_seconds']} s; they include autovacuum's, which visits each database every 10 s on the throwaway server: the statements below are the worker's own) | **{co['idle_tps']:.2f}**/s |"]
        st = co.get("idle_statements")
        if st:
            kinds = "; ".join(f"{n}× `{k.replace('|', '/')}`" for k, n in sorted(st["kinds"].items(), key=lambda kv: -kv[1]))
            out.append(f"| Idle worker, statements/s (`log_statement = 'all'` on its database only, server log lines of its sessions) | **{st['per_second']:.2f}**/s: {kinds} |")
        out.append("")
    if "bulk_intake" in r or "http" in r:
        out += ["### Intake", "", "| | reports/s |", "|---|---|"]
        if "bulk_intake" in r:
            out.append(f"| `tipline submit --file` of the mix ({a.reports:,} reports, 1,000 per transaction, whole process) | {fmt(r['bulk_intake'])} |")
        if "http" in r:
            h = r["http"]
            p99 = f", client-side p99 {fmt(h['p99_ms'], 1, ' ms')}" if h.get("p99_ms") else ""
            out.append(f"| HTTP `POST /v1/reports`, one report per request, {h['client']} keep-alive connections on 127.0.0.1 for {a.seconds} s, "
                       f"`tipline serve --db-connections 4`; rate = reports stored / duration{p99} | {fmt(h['rate'])} |")
        out.append("")
    if "bulk" in r:
        b = r["bulk"]
        out += ["### Bulk import of a large file", "",
                f"One `tipline submit --file` of {b['bytes'] / 2**20:,.0f} MiB of JSONL ({b['lines']:,} reports of the generator's mix), "
                "into an empty database, under `/usr/bin/time`; the small file is the pipeline's mix.", "",
                "| | |", "|---|---|",
                f"| Reports/s, whole process | **{b['rate']:,.0f}** ({b['seconds']:,.0f} s) |",
                f"| Peak RSS | **{b['rss_mib']:.1f}** MiB (the {b['small_lines']:,}-report file: {b['small_rss_mib']:.1f} MiB) |", ""]
    if "growth" in r:
        g = r["growth"]
        runs = g["runs"]
        out += ["### Growth", "",
                f"{g['reports']:,} reports of the generator's mix (seed 3) in chunks of {g['chunk']:,}: each chunk submitted, then drained "
                f"by one `tipline work --until-idle`; the stored reports, contacts and sellers grow, the job table is emptied by every drain. "
                f"{len(runs)} run(s), each into a fresh database; the ratio is each run's last chunk against its own first.", "",
                "| | |", "|---|---|",
                f"| First chunk drained | {fmt(stats([x['rates'][0] for x in runs]), 0, ' reports/s')} |",
                f"| Last chunk drained | {fmt(stats([x['rates'][-1] for x in runs]), 0, ' reports/s')} |",
                f"| Last chunk against the first | {fmt(stats([100 * x['rates'][-1] / x['rates'][0] for x in runs]), 0, '%')} |"]
        # The drain rate moves with this shared machine's spells; the CPU each report costs says
        # how much of a slower last chunk is a report costing more.
        out += [f"| Machine CPU per report, first chunk / last chunk (every process, `/proc/stat`, the worker's start to its exit) | "
                f"{fmt(stats([x['cpus'][0] for x in runs]), 0, ' µs')} / {fmt(stats([x['cpus'][-1] for x in runs]), 0, ' µs')} |",
                f"| First chunk's CPU per report against the last's | {fmt(stats([100 * x['cpus'][0] / x['cpus'][-1] for x in runs]), 0, '%')} |"]
        out += [f"| Every chunk, run {k + 1} | " + ", ".join(f"{x:,.0f}" for x in run["rates"]) + " |" for k, run in enumerate(runs)]
        out += [f"| `jobs` size at the end of each run (`pg_total_relation_size`) | " + ", ".join(x["jobs_size"] for x in runs) +
                f" (reports: {runs[-1]['reports_size']}) |",
                f"| `tipline status` wall time, whole process, {g['reports']:,} reports (3 calls after each run) | {fmt(g['status_ms'], 0, ' ms')} |", ""]
    out += ["### Commands", "", "`$URL` is a fresh database on the same server (the script makes one per run).", "", "```sh"]
    out += COMMANDS
    out += ["```", ""]
    return "\n".join(out)


def write_markdown(section):
    path = os.path.join(ROOT, "BENCHMARKS.md")
    text = open(path).read()
    start, end = "<!-- bench:start -->", "<!-- bench:end -->"
    block = f"{start}\n{section}\n{end}"
    if start in text and end in text:
        text = text[:text.index(start)] + block + text[text.index(end) + len(end):]
    else:
        text = text.rstrip("\n") + "\n\n" + block + "\n"
    with open(path, "w") as f:
        f.write(text)


def main():
    ap = argparse.ArgumentParser(prog="scripts/bench", allow_abbrev=False)
    ap.add_argument("--quick", action="store_true", help="small sizes, 1 repetition, 3 s pgbench runs (a smoke run)")
    ap.add_argument("--growth", action="store_true", help="also the 1,000,000-report growth run, three times (long; once with --quick)")
    ap.add_argument("--bulk", action="store_true", help="also the bulk import of a 1 GiB file (long; 64 MiB with --quick)")
    ap.add_argument("--only", default="", help="comma-separated: ceiling,queue,pipeline,latency,cost,intake,bulk,growth")
    ap.add_argument("--reps", type=int, help="repetitions of each section but growth and bulk (default 5; 1 with --quick)")
    ap.add_argument("--concurrency", type=int, default=2, help="worker lanes per process (default 2)")
    ap.add_argument("--lanes", default="1,2,4", help="--concurrency values tried for queue-only and pipeline; the best median per process count "
                    "is reported (default 1,2,4: on two cores, four processes of one lane each can beat four of two)")
    ap.add_argument("--batch", type=int, default=50, help="worker --batch (default 50, the ceiling's batch)")
    ap.add_argument("--no-write", action="store_true", help="print the section instead of writing BENCHMARKS.md (always so with --only or --quick)")
    a = ap.parse_args()
    q = a.quick
    # Five: on a shared machine single repetitions of the same drain spread by a third, and a
    # median of three moved the pipeline-to-queue ratios by several points from run to run.
    if (a.reps is not None and a.reps < 1) or a.concurrency < 1 or a.batch < 1:
        raise SystemExit("--reps, --concurrency and --batch must be positive")
    a.reps = a.reps or (1 if q else 5)
    try:
        a.lane_options = [int(x) for x in a.lanes.split(",") if x.strip()]
    except ValueError:
        a.lane_options = []
    if not a.lane_options or any(l < 1 for l in a.lane_options):
        raise SystemExit(f"--lanes {a.lanes!r}: expected comma-separated positive integers, e.g. 2,4")
    a.seconds = 3 if q else 10
    a.shape_rows = 250_000 if q else 1_000_000
    a.queue_jobs = 20_000 if q else 100_000
    a.reports = 10_000 if q else 50_000
    a.latency_reports = 150 if q else 1000
    a.rate = 50
    a.idle_seconds = 10 if q else 30
    a.growth_reports, a.growth_chunk = (100_000, 10_000) if q else (1_000_000, 100_000)
    a.growth_reps = 1 if q else 3
    a.bulk_bytes = (64 if q else 1024) * 2**20
    steps = [("ceiling", ceiling), ("queue", queue_only), ("pipeline", pipeline), ("latency", latency), ("cost", cost),
             ("intake", http_intake), ("bulk", bulk), ("growth", growth)]
    sections = {name for name, _ in steps}
    named = [x.strip() for x in a.only.split(",") if x.strip()]
    if unknown := [x for x in named if x not in sections]:
        raise SystemExit(f"--only {a.only!r}: no section named {', '.join(map(repr, unknown))} (sections: {', '.join(sorted(sections))})")
    if os.environ.get("TIPLINE_CHECK_ARGS"):
        return  # scripts/bench checks the arguments before it starts a server or builds
    # A partial or smoke run's figures would replace the whole table: they are printed instead.
    if (named or q) and not a.no_write:
        a.no_write = True
        log("bench: a partial (--only) or smoke (--quick) run: the section is printed, BENCHMARKS.md is left as it is")
    wanted = set(named) or {"ceiling", "queue", "pipeline", "latency", "cost", "intake"} | ({"growth"} if a.growth else set()) | ({"bulk"} if a.bulk else set())
    a.growth = "growth" in wanted
    a.bulk = "bulk" in wanted
    os.makedirs(STATE, exist_ok=True)
    m = machine()
    log(f"bench: {m['nproc']} cores, PostgreSQL {m['pg']}, commit {m['commit']}; sections: {', '.join(sorted(wanted))}")
    stolen, started = cpu_times()[1], time.time()
    results = {}
    # The repetitions of the ceiling, queue-only and pipeline sections alternate (ceiling, queue,
    # pipeline, ceiling, ...), so that their ratios compare figures from the same minutes: on a
    # shared machine a slow spell during one whole section skewed them.
    alternating = ["ceiling", "queue", "pipeline"]
    # Each section's databases are dropped as soon as it ends: the autovacuum launcher visits every
    # database of the server in turn (one worker start per naptime / databases), and the 1 GiB bulk
    # database or the ceiling's million-row tables have no business beside a later section.
    databases = {"ceiling": ["bench_ref", "bench_shape"], "queue": ["bench_queue"], "pipeline": ["bench_pipeline"],
                 "latency": ["bench_latency"], "cost": ["bench_cost", "bench_idle"], "intake": ["bench_http"],
                 "bulk": ["bench_bulk"], "growth": ["bench_growth"]}

    def drop(*sections):
        for db in (db for section in sections for db in databases[section]):
            drop_database(db)

    for name, step in steps:
        if name not in wanted:
            continue
        if name not in alternating:
            step(a, results)
            drop(name)
        elif name == next(n for n in alternating if n in wanted):
            repetitions = [s(a, results) for n, s in steps if n in alternating and n in wanted]
            for _ in range(a.reps):
                for repetition in repetitions:
                    repetition()
            drop(*alternating)
    m["steal"] = 100 * (cpu_times()[1] - stolen) / ((time.time() - started) * m["nproc"])
    log(f"bench: the hypervisor took {m['steal']:.1f}% of the cores' time during the run (steal)")
    with open(os.path.join(STATE, "results.json"), "w") as f:
        json.dump({"machine": m, "results": results}, f, indent=1, default=str)
    section = render(a, m, results)
    if a.no_write:
        print(section)
    else:
        write_markdown(section)
        log("bench: BENCHMARKS.md updated (between <!-- bench:start --> and <!-- bench:end -->)")


if __name__ == "__main__":
    run_children(main)
