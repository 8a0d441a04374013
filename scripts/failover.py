"""Driver for scripts/failover (see there)."""
import json, os, signal, subprocess, sys, time

sys.path.insert(0, os.path.dirname(__file__))
from chaos import generate  # noqa: E402  (the same report mix as scripts/chaos)
from children import popen, run as run_children  # noqa: E402

BIN = os.environ["TIPLINE_BIN"]
DIR, BINDIR = os.environ["TIPLINE_FO_DIR"], os.environ["TIPLINE_FO_BINDIR"]
P, S = os.environ["TIPLINE_FO_PRIMARY"], os.environ["TIPLINE_FO_STANDBY"]
MULTI = f"host=127.0.0.1,127.0.0.1 port={P},{S} dbname=failover user=postgres target_session_attrs=read-write connect_timeout=3"


def pg(*args):
    cmd = [os.path.join(BINDIR, "pg_ctl")] + list(args)
    if os.environ.get("TIPLINE_PG_AS"):
        cmd = ["runuser", "-u", os.environ["TIPLINE_PG_AS"], "--"] + cmd
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def sql(q, port=None):
    url = f"postgresql://postgres@127.0.0.1:{port}/failover" if port else MULTI
    for _ in range(40):
        r = subprocess.run(["psql", "-X", "-qAt", url, "-c", q], capture_output=True, text=True)
        if r.returncode == 0:
            return r.stdout.strip()
        time.sleep(0.5)
    sys.exit(f"failover: psql failed: {r.stderr}")


def spawn(args, log):
    return popen([BIN] + args, env={**os.environ, "DATABASE_URL": MULTI},
                            stdout=open(log, "w"), stderr=subprocess.STDOUT)


def main():
    state = os.path.join(os.environ["TIPLINE_ROOT"], ".tipline")
    subprocess.run(["psql", "-X", "-q", f"postgresql://postgres@127.0.0.1:{P}/postgres", "-c", "CREATE DATABASE failover"], check=True)
    subprocess.run([BIN, "migrate"], env={**os.environ, "DATABASE_URL": MULTI}, check=True, capture_output=True)
    first, second = generate(3000, 7), generate(3000, 8).replace('"external_id": "c', '"external_id": "d')
    open(os.path.join(state, "failover-1.jsonl"), "w").write(first)
    open(os.path.join(state, "failover-2.jsonl"), "w").write(second)
    subprocess.run([BIN, "submit", "--file", os.path.join(state, "failover-1.jsonl")], env={**os.environ, "DATABASE_URL": MULTI},
                   check=True, capture_output=True)
    workers = [spawn(["work", "--name", f"fo-{i}", "--lease", "3", "--batch", "10", "--poll", "1", "--log-level", "notice"],
                     os.path.join(state, f"failover-worker-{i}.log")) for i in range(2)]
    # A bulk intake running through the failover, in small transactions.
    intake = spawn(["submit", "--file", os.path.join(state, "failover-2.jsonl"), "--batch", "20"], os.path.join(state, "failover-intake.log"))
    deadline = time.time() + 300
    while int(sql("SELECT count(*) FROM reports WHERE state = 'done'", P)) < 600:
        if time.time() > deadline or all(w.poll() is not None for w in workers):
            sys.exit("failover: the workers did not complete 600 reports before the failover "
                     "(see .tipline/failover-worker-*.log)")
        time.sleep(0.1)
    pg("-D", os.path.join(DIR, "primary"), "-m", "immediate", "stop")
    pg("-D", os.path.join(DIR, "standby"), "-w", "promote")
    # The new primary inherited synchronous_standby_names from the old one and has no standby of
    # its own yet: without this, every commit would wait for ever (an operator's failover step too).
    subprocess.run(["psql", "-X", "-q", f"postgresql://postgres@127.0.0.1:{S}/postgres", "-c",
                    "ALTER SYSTEM SET synchronous_standby_names = ''", "-c", "SELECT pg_reload_conf()"],
                   check=True, capture_output=True)
    print("failover: primary stopped (immediate), standby promoted", flush=True)
    intake_code = intake.wait(timeout=300)
    deadline = time.time() + 300
    while sql("SELECT count(*) FROM jobs", S) != "0" or int(sql("SELECT count(*) FROM reports", S)) < 6000:
        if time.time() > deadline:
            break
        time.sleep(0.5)
    for w in workers:
        w.send_signal(signal.SIGTERM)
    codes = [w.wait(timeout=60) for w in workers]
    problems = []
    total = int(sql("SELECT count(*) FROM reports", S))
    done = int(sql("SELECT count(*) FROM reports WHERE state = 'done'", S))
    ext = subprocess.run([BIN, "extract", "--jsonl"], input="".join(
        json.dumps({"id": o["external_id"], "text": o["text"]}, ensure_ascii=False) + "\n"
        for o in map(json.loads, (first + second).splitlines())), capture_output=True, text=True).stdout
    expected_links = sum(len(json.loads(line)["contacts"]) for line in ext.splitlines())
    links = int(sql("SELECT coalesce(sum(cardinality(contact_ids)), 0) FROM reports", S))
    dup = sql("SELECT count(*) FROM (SELECT offender_id, to_level FROM escalations GROUP BY 1, 2 HAVING count(*) > 1) d", S)
    print(f"failover: {total} reports on the new primary, {done} done; {links} contact links (expected {expected_links}); "
          f"intake exited {intake_code}, workers {codes}")
    if intake_code != 0:
        problems.append(f"the intake exited {intake_code} (see .tipline/failover-intake.log)")
    if total != 6000:
        problems.append(f"{6000 - total} submitted reports missing after the failover")
    if done != total:
        problems.append(f"{total - done} reports not done")
    if links != expected_links:
        problems.append(f"contact links {links}, expected {expected_links}")
    if dup != "0":
        problems.append(f"{dup} level rises written twice")
    if any(c != 0 for c in codes):
        problems.append(f"workers exited {codes} after SIGTERM")
    for p in problems:
        print(f"failover: VIOLATED: {p}")
    sys.exit(1 if problems else 0)


if __name__ == "__main__":
    run_children(main)
