"""Driver for scripts/chaos: real `tipline` processes, real signals, a real PostgreSQL restart."""
import argparse, collections, json, os, random, signal, struct, subprocess, sys, time

sys.path.insert(0, os.path.dirname(__file__))
from children import popen, run as run_children  # noqa: E402

BIN = os.environ.get("TIPLINE_BIN", "")
ADMIN = os.environ.get("TIPLINE_ADMIN_URL", "")
PORT = os.environ.get("TIPLINE_PG_PORT", "")


def url(db):
    return f"postgresql://postgres@127.0.0.1:{PORT}/{db}"


def psql(db, sql, retries=30):
    """Runs SQL and returns rows as lists of strings (retrying while the server restarts)."""
    for attempt in range(retries):
        r = subprocess.run(["psql", "-X", "-q", "-A", "-t", "-F", "\t", "-v", "ON_ERROR_STOP=1", url(db) if db else ADMIN, "-c", sql],
                           capture_output=True, text=True)
        if r.returncode == 0:
            return [line.split("\t") for line in r.stdout.splitlines() if line]
        time.sleep(0.5)
    raise SystemExit(f"psql failed: {r.stderr}")


def generate(n, seed):
    """Reports from repeat sellers (disguised contacts), skewed reporters, cross-links and no-contact reports."""
    rng = random.Random(seed)
    sellers = max(50, n // 12)
    tpl = ["出租微信 日租80元 V信: seller_{s}x", "空白号18元 扣扣：{q}", "实名微信出售 电话 {p3} {p4a} {p4b}",
           "高价回收微信号 联系 {p} 或 vx：seller_{s}x", "信息代查 开房记录 手机{p}", "批发QQ号 Q号 {q} 微信号：seller_{s}x"]
    lines = []
    for i in range(n):
        s = int(rng.random() ** 2.2 * sellers)
        p = str(13900000000 + s * 7919)
        if rng.random() < 0.03:
            text = f"群里有人卖号，没有留联系方式 {i}"
        else:
            text = rng.choice(tpl).format(s=s, q=2000000 + s * 37, p=p, p3=p[:3], p4a=p[3:7], p4b=p[7:])
            if rng.random() < 0.02:
                t = int(rng.random() ** 2.2 * sellers)
                text += f"；另一家 V信: seller_{t}x"
        day = rng.randrange(0, 90)
        lines.append(json.dumps({"external_id": f"c{i}", "channel": "app" if i % 3 else "hotline",
                                 "reporter": f"u{int(rng.random() ** 1.5 * max(100, n // 20))}", "text": text,
                                 "reported_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(1795132800 - day * 86400 - rng.randrange(86400)))},
                                ensure_ascii=False))
    return "\n".join(lines) + "\n"


def noop_reports(n):
    """Reports without contacts, for `tipline work --noop` (scripts/bench's queue-only section, scripts/profile --noop)."""
    return "".join(json.dumps({"external_id": f"n{i}", "channel": "app", "reporter": f"u{i % 100}", "text": f"noop {i}"}) + "\n"
                   for i in range(n))


def drop_database(db):
    psql(None, f'DROP DATABASE IF EXISTS "{db}" WITH (FORCE)')


def fresh(db):
    drop_database(db)
    psql(None, f'CREATE DATABASE "{db}"')
    run(["migrate"], db)


def run(args, db, check=True):
    r = subprocess.run([BIN] + args, env={**os.environ, "DATABASE_URL": url(db)}, capture_output=True, text=True)
    if check and r.returncode not in (0, 3):
        raise SystemExit(f"tipline {' '.join(args)} failed: {r.stderr}")
    return r


class Workers:
    def __init__(self, db, lease, logdir, batch):
        self.db, self.lease, self.logdir, self.batch, self.procs, self.n = db, lease, logdir, batch, [], 0

    def start(self):
        self.n += 1
        log = open(os.path.join(self.logdir, f"worker-{self.n}.log"), "w")
        name = f"chaos-{self.n}"
        p = popen([BIN, "work", "--name", name, "--lease", str(self.lease), "--concurrency", "2",
                              "--batch", str(self.batch), "--poll", "1", "--log-level", "notice"],
                             env={**os.environ, "DATABASE_URL": url(self.db)}, stdout=log, stderr=log)
        p.name = name
        self.procs.append(p)
        return p

    def alive(self):
        return [p for p in self.procs if p.poll() is None]

    def running(self, timeout=30, every=False):
        """Live workers that have registered (their signal handling is in place), waiting for one
        (with `every`, for all of them) if need be: a SIGTERM that lands while a process is still
        loading has nothing to handle it."""
        deadline = time.time() + timeout
        while True:
            registered = {r[0] for r in psql(self.db, "SELECT name FROM workers WHERE stopped_at IS NULL")}
            alive = self.alive()
            ready = [p for p in alive if p.name in registered]
            if (len(ready) == len(alive) if every else ready) or time.time() > deadline:
                return ready
            time.sleep(0.05)


def snapshot(db):
    """Sellers as frozensets of external ids with level and distinct reporters; link and report counts."""
    levels = dict(psql(db, "SELECT id::text, level FROM offenders WHERE merged_into IS NULL"))
    # A report names the offender it was placed on; a merged one resolves to its survivor.
    sellers = {frozenset(json.loads(ext)): (levels.get(off), reporters)
               for off, ext, reporters in psql(db, """
                   SELECT coalesce(o.merged_into, o.id), array_to_json(array_agg(r.external_id)), count(DISTINCT r.reporter_hash)
                     FROM reports r JOIN offenders o ON o.id = r.offender_id GROUP BY 1""")}
    counts = psql(db, """SELECT (SELECT count(*) FROM reports), (SELECT count(*) FROM reports WHERE state = 'done'),
                                (SELECT count(*) FROM reports WHERE state = 'dead'), (SELECT count(*) FROM jobs),
                                (SELECT coalesce(sum(cardinality(contact_ids)), 0) FROM reports), (SELECT count(*) FROM contacts)""")[0]
    return sellers, [int(c) for c in counts]


def ladder_check(db):
    """Recomputes, independently of the workers' code, what their levelling must agree with: each
    surviving seller's level from its reports (the most distinct reporters in a window of the
    ladder's length ending at one of them, both ends included: shared/DESIGN.md), and each kept
    history column (`offenders.history`: one tag byte 0x01, then per report the little-endian bits
    of a double, seconds since 2001-01-01, and the 32-byte reporter hash) against the seller's
    reports. Returns (sellers whose level differs, kept histories that differ, kept histories)."""
    window, *steps = [int(x) for x in psql(db, """SELECT window_days * 86400, review, restrict_at, suspend, refer
                                                     FROM ladder_policies ORDER BY id DESC LIMIT 1""")[0]]
    names = ["review", "restrict", "suspend", "refer"]
    reports = collections.defaultdict(list)
    for seller, at, reporter in psql(db, """SELECT coalesce(o.merged_into, o.id), extract(epoch FROM r.reported_at)::text,
                                                   encode(r.reporter_hash, 'hex')
                                              FROM reports r JOIN offenders o ON o.id = r.offender_id"""):
        reports[seller].append((round(float(at) * 1e6), reporter))
    levels = dict(psql(db, "SELECT id::text, level FROM offenders WHERE merged_into IS NULL"))
    wrong_levels = 0
    for seller, stamps in reports.items():
        stamps.sort()
        peak, start, inside = 0, 0, collections.Counter()
        for end, who in stamps:
            inside[who] += 1
            while stamps[start][0] < end - window * 1_000_000:
                inside[stamps[start][1]] -= 1
                if inside[stamps[start][1]] == 0:
                    del inside[stamps[start][1]]
                start += 1
            peak = max(peak, len(inside))
        level = "none"
        for name, threshold in zip(names, steps):
            if peak >= threshold:
                level = name
        wrong_levels += levels.get(seller) != level
    wrong_histories = 0
    kept = psql(db, """SELECT id::text, encode(history, 'hex') FROM offenders
                        WHERE merged_into IS NULL AND substr(history, 1, 1) = '\\x01'::bytea""")
    for seller, text in kept:
        raw = bytes.fromhex(text)
        entries = [(round((struct.unpack_from("<d", raw, i)[0] + 978307200) * 1e6), raw[i + 8:i + 40].hex())
                   for i in range(1, len(raw), 40)]
        wrong_histories += collections.Counter(entries) != collections.Counter(reports[seller])
    return wrong_levels, wrong_histories, len(kept)


def main():
    ap = argparse.ArgumentParser(prog="scripts/chaos", allow_abbrev=False)
    ap.add_argument("--reports", type=int, default=50000)
    ap.add_argument("--workers", type=int, default=4)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--lease", type=float, default=3)
    ap.add_argument("--batch", type=int, default=50, help="worker --batch (smaller means more transactions to interrupt)")
    ap.add_argument("--kills", type=int, default=0, help="SIGKILLs to inject (default: about one per 5,000 reports, at least 3)")
    a = ap.parse_args()
    if a.reports < 1 or a.workers < 1 or a.batch < 1 or a.kills < 0 or not a.lease > 0:
        raise SystemExit("--reports, --workers, --batch and --lease must be positive, --kills at least 0")
    if os.environ.get("TIPLINE_CHECK_ARGS"):
        return  # scripts/chaos checks the arguments before it starts a server or builds
    kills_wanted = a.kills or max(3, a.reports // 5000)
    logdir = os.path.join(os.environ["TIPLINE_ROOT"], ".tipline", "chaos-logs")
    os.makedirs(logdir, exist_ok=True)
    data = os.path.join(logdir, "reports.jsonl")
    with open(data, "w") as f:
        f.write(generate(a.reports, a.seed))
    print(f"chaos: {a.reports} reports, {a.workers} workers, lease {a.lease}s, seed {a.seed}", flush=True)

    # 1. The clean run: one worker, no faults.
    fresh("chaos_clean")
    run(["submit", "--file", data, "--source", "chaos"], "chaos_clean")
    t0 = time.time()
    run(["work", "--until-idle", "--concurrency", "2", "--batch", "50", "--log-level", "warning"], "chaos_clean")
    print(f"clean run: drained in {time.time() - t0:.1f}s", flush=True)
    clean, clean_counts = snapshot("chaos_clean")

    # 2. The chaos run. A quarter of the reports is held back and handed out in eighths whenever the
    # queue runs dry before every fault is in, so that a fast machine cannot finish the drain before
    # the plan (a run once drained 4,000 reports in 2.5 s and never got to its SIGSTOP). Grouping and
    # levels do not depend on the order reports arrive in, so the comparison with the clean run holds.
    fresh("chaos_run")
    lines = open(data).read().splitlines(keepends=True)
    held = len(lines) // 4
    reserve = lines[len(lines) - held:]
    step = max(1, held // 8)
    first = os.path.join(logdir, "reports-first.jsonl")
    with open(first, "w") as f:
        f.writelines(lines[:len(lines) - held])
    run(["submit", "--file", first, "--source", "chaos"], "chaos_run")
    submitted = len(lines) - held

    def submit_reserve(count):
        nonlocal reserve, submitted
        part, reserve = reserve[:count], reserve[count:]
        if not part:
            return 0
        path = os.path.join(logdir, "reports-more.jsonl")
        with open(path, "w") as f:
            f.writelines(part)
        run(["submit", "--file", path, "--source", "chaos"], "chaos_run")
        submitted += len(part)
        return len(part)
    workers = Workers("chaos_run", a.lease, logdir, a.batch)
    for _ in range(a.workers):
        workers.start()
    faults = {"sigkill": 0, "sigstop": 0, "pg_restart": 0, "sigterm": 0}
    problems = []
    rng = random.Random(a.seed)
    t0 = time.time()
    plan = ["sigkill"] * kills_wanted + ["sigstop", "pg_restart", "sigterm"]
    rng.shuffle(plan)

    def remaining():
        return int(psql("chaos_run", "SELECT count(*) FROM jobs")[0][0])

    # Spread the faults evenly over the first 70% of the drain.
    planned = len(plan)
    last_left, last_change = None, time.time()
    while plan:
        left = remaining()
        if left == 0:
            # Refilled, the next fault goes in at once: four workers drain a refill faster than a
            # submit process starts, so waiting for the next look at the queue could find it dry
            # again and spend the whole reserve with faults left (a run once never got to SIGSTOP).
            if not submit_reserve(step):
                break
            print(f"  the queue ran dry with {len(plan)} fault(s) to go: {step} more reports submitted", flush=True)
            done_fraction = 1.0
        else:
            # A drain that makes no progress for five minutes has stalled: fail instead of waiting for ever.
            if left != last_left:
                last_left, last_change = left, time.time()
            elif time.time() - last_change > 300:
                problems.append(f"the drain stalled with {left} jobs left before all faults were injected")
                break
            done_fraction = 1 - left / submitted
            if done_fraction < 0.7 * (planned - len(plan) + 1) / (planned + 1):
                time.sleep(0.1)
                continue
        fault = plan.pop()
        alive = workers.alive()
        victim = rng.choice(alive) if alive else workers.start()
        if fault == "sigkill":
            victim.send_signal(signal.SIGKILL)
            victim.wait()
            workers.start()
        elif fault == "sigstop":
            victim.send_signal(signal.SIGSTOP)
            time.sleep(a.lease + 2)
            victim.send_signal(signal.SIGCONT)
        elif fault == "pg_restart":
            # -l again: the restarted server must not write its log to our pipe.
            cmd = [os.environ["TIPLINE_PG_CTL"], "-D", os.environ["PGDATA_DIR"], "-l", os.environ["PG_LOG"], "-w", "-t", "60",
                   "-m", "immediate", "restart"]
            if os.environ.get("TIPLINE_PG_AS"):
                cmd = ["runuser", "-u", os.environ["TIPLINE_PG_AS"], "--"] + cmd
            # Under the start lock (scripts/lib.sh): a script starting the server meanwhile would
            # see none running, start one, and fail on the restart's postmaster.pid (or make it
            # fail). -o: the restarted postmaster must not inherit the lock.
            cmd = ["flock", "-o", "-x", os.environ["TIPLINE_PG_START_LOCK"]] + cmd
            subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        elif fault == "sigterm":
            ready = workers.running()
            victim = rng.choice(ready) if ready else victim
            victim.send_signal(signal.SIGTERM)
            t = time.time()
            try:
                code = victim.wait(timeout=30)
                if code != 0:
                    problems.append(f"SIGTERM: worker exited {code}, expected 0")
            except subprocess.TimeoutExpired:
                problems.append("SIGTERM: worker still running after 30 s")
                victim.kill()
            print(f"  SIGTERM: worker exited in {time.time() - t:.2f}s", flush=True)
            workers.start()
        faults[fault] += 1
        print(f"  {fault} at {done_fraction:.0%} drained", flush=True)

    submit_reserve(len(reserve))
    deadline = time.time() + max(300, a.reports / 50)
    while remaining() > 0:
        if time.time() > deadline:
            problems.append(f"queue not drained in time: {remaining()} jobs left")
            break
        if not workers.alive():
            workers.start()
        time.sleep(0.5)
    elapsed = time.time() - t0
    workers.running(every=True)  # a worker started a moment ago may not have installed its signal handlers yet
    for p in workers.alive():
        p.send_signal(signal.SIGTERM)
    for p in workers.procs:
        try:
            code = p.wait(timeout=30)
        except subprocess.TimeoutExpired:
            p.kill()
            problems.append("a worker did not exit within 30 s of SIGTERM at the end")
            continue
        if code not in (0, -signal.SIGKILL):
            problems.append(f"worker {p.args[3]} exited with {code} (log: {logdir}/worker-{p.args[3].split('-')[1]}.log)")

    chaos, chaos_counts = snapshot("chaos_run")
    names = ["reports", "done", "dead", "jobs left", "contact links", "contacts"]
    print(f"chaos run: drained in {elapsed:.1f}s; faults injected: " + ", ".join(f"{k} {v}" for k, v in faults.items()))
    print("invariants:")

    def check(ok, text):
        print(f"  [{'ok' if ok else 'VIOLATED'}] {text}")
        if not ok:
            problems.append(text)

    missing = [k for k, v in faults.items() if v == 0]
    check(not missing, "every kind of fault was injected" + (f" (never: {', '.join(missing)}; use more --reports)" if missing else ""))
    check(chaos_counts[1] + chaos_counts[2] == chaos_counts[0], f"every report done or dead ({chaos_counts[1]} done, {chaos_counts[2]} dead of {chaos_counts[0]})")
    check(chaos_counts[3] == 0, "no job left in the queue")
    for i, name in enumerate(names):
        if name in ("reports", "contact links", "contacts", "dead"):
            check(chaos_counts[i] == clean_counts[i], f"{name}: {chaos_counts[i]} (clean run {clean_counts[i]})")
    check(set(chaos) == set(clean), f"same grouping into sellers ({len(chaos)} sellers, clean run {len(clean)})")
    diff = [k for k in clean if k in chaos and chaos[k] != clean[k]]
    check(not diff, f"same level and distinct reporters for every seller ({len(diff)} differ)")
    for db in ("chaos_clean", "chaos_run"):
        wrong_levels, wrong_histories, kept = ladder_check(db)
        check(wrong_levels == 0, f"{db}: every seller's level is the one its reports earn ({wrong_levels} differ)")
        check(wrong_histories == 0, f"{db}: every kept seller history holds exactly the seller's reports ({wrong_histories} of {kept} differ)")
    dangling = psql("chaos_run", """
        SELECT (SELECT count(*) FROM reports r WHERE r.offender_id IS NOT NULL
                   AND NOT EXISTS (SELECT 1 FROM offenders o WHERE o.id = r.offender_id))
             + (SELECT count(*) FROM contacts c WHERE c.offender_id IS NOT NULL
                   AND NOT EXISTS (SELECT 1 FROM offenders o WHERE o.id = c.offender_id))
             + (SELECT count(*) FROM offenders a WHERE a.merged_into IS NOT NULL
                   AND NOT EXISTS (SELECT 1 FROM offenders o WHERE o.id = a.merged_into AND o.merged_into IS NULL))
             + (SELECT count(*) FROM escalations e WHERE NOT EXISTS (SELECT 1 FROM offenders o WHERE o.id = e.offender_id))
             + (SELECT count(*) FROM escalations e WHERE e.report_id IS NOT NULL
                   AND NOT EXISTS (SELECT 1 FROM reports r WHERE r.id = e.report_id))""")[0][0]
    check(dangling == "0", f"no row names a missing offender or report, and every merge names a survivor ({dangling} do not)")
    dup = psql("chaos_run", """SELECT count(*) FROM (SELECT offender_id, to_level FROM escalations
                               GROUP BY 1, 2 HAVING count(*) > 1) d""")[0][0]
    check(dup == "0", f"no level rise written twice for one offender ({dup} duplicates)")
    esc = psql("chaos_run", "SELECT count(*) FROM escalations")[0][0]
    esc_clean = psql("chaos_clean", "SELECT count(*) FROM escalations")[0][0]
    print(f"  [info] escalation rows: {esc} (clean run {esc_clean}; merges met in another order may pass through other intermediate offenders)")
    if problems:
        for problem in problems:
            print(f"  VIOLATED: {problem}")
        print(f"FAILED: {len(problems)} violation(s); worker logs in {logdir}; databases chaos_clean and chaos_run kept")
        sys.exit(1)
    print("chaos: all invariants hold")
    # Kept only for a failure's post-mortem: left on the server, each costs every later script
    # there (scripts/bench shares it) an autovacuum worker's visit per naptime.
    for db in ("chaos_clean", "chaos_run"):
        drop_database(db)


if __name__ == "__main__":
    run_children(main)
