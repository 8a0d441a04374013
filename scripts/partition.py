"""Driver for scripts/partition (see there)."""
import os, signal, subprocess, sys, time

sys.path.insert(0, os.path.dirname(__file__))
from children import popen, run as run_children, verdict  # noqa: E402

BIN = os.environ["TIPLINE_BIN"]
NS, HOST_IF = os.environ["TIPLINE_PART_NS"], os.environ["TIPLINE_PART_HOST_IF"]
PORT, HOST_IP = os.environ["TIPLINE_PART_PORT"], os.environ["TIPLINE_PART_HOST_IP"]
LOCAL = f"postgresql://postgres@127.0.0.1:{PORT}/partition"
REMOTE = f"postgresql://postgres@{HOST_IP}:{PORT}/partition"
LEASE = 3


def sql(q):
    out = subprocess.run(["psql", "-X", "-qAt", LOCAL, "-c", q], capture_output=True, text=True, check=True).stdout
    return out.strip()


def tipline(args, url, check=True):
    r = subprocess.run([BIN] + args, env={**os.environ, "DATABASE_URL": url}, capture_output=True, text=True)
    if check and r.returncode != 0:
        sys.exit(f"tipline {' '.join(args)}: {r.stderr}")
    return r


def wait_for(what, cond, timeout=60):
    end = time.time() + timeout
    while not cond():
        if time.time() > end:
            sys.exit(f"partition: timed out waiting until {what}")
        time.sleep(0.1)


def main():
    subprocess.run(["psql", "-X", "-q", f"postgresql://postgres@127.0.0.1:{PORT}/postgres", "-c", "CREATE DATABASE partition"], check=True)
    tipline(["migrate"], LOCAL)
    lines = []
    for i in range(200):
        marker = " [[tipline-fault:held]]" if i == 0 else ""
        lines.append('{"external_id":"p%d","channel":"app","reporter":"u%d","text":"出租微信 V信: part_%dx%s"}' % (i, i % 17, i % 23, marker))
    path = os.path.join(os.environ["TIPLINE_ROOT"], ".tipline", "partition.jsonl")
    open(path, "w").write("\n".join(lines) + "\n")
    tipline(["submit", "--file", path], LOCAL)

    log = open(os.path.join(os.environ["TIPLINE_ROOT"], ".tipline", "partition-cutoff.log"), "w")
    # The cut-off worker holds its batch until the link is back (the release file), however late
    # the link goes down; the rescuer, given no release file, does not hold.
    release = os.path.join(os.environ["TIPLINE_ROOT"], ".tipline", "partition-release")
    if os.path.exists(release):
        os.remove(release)
    cut = popen(["ip", "netns", "exec", NS, BIN, "work", "--fault-injection", "--lease", str(LEASE), "--batch", "200",
                            "--concurrency", "1", "--name", "cut-off", "--log-level", "notice"],
                           env={**os.environ, "DATABASE_URL": REMOTE, "TIPLINE_FAULT_RELEASE_FILE": release}, stdout=log, stderr=log)
    wait_for("the cut-off worker holds the batch", lambda: sql("SELECT count(*) FROM jobs WHERE state = 'running'") == "200")
    subprocess.run(["ip", "link", "set", HOST_IF, "down"], check=True)
    print("partition: link cut while the worker holds 200 jobs", flush=True)
    time.sleep(LEASE + 1)
    rescuer = tipline(["work", "--until-idle", "--lease", str(LEASE), "--name", "rescuer", "--fault-injection"], LOCAL)
    done = sql("SELECT count(*) FROM reports WHERE state = 'done' AND attempts = 2")
    print(f"partition: the rescuer completed {done} reports on their second attempt", flush=True)
    links_before = sql("SELECT coalesce(sum(cardinality(contact_ids)), 0) FROM reports") + "/" + sql("SELECT count(*) FROM escalations")
    subprocess.run(["ip", "link", "set", HOST_IF, "up"], check=True)
    print("partition: link restored", flush=True)
    open(release, "w").close()
    wait_for("the cut-off worker reports its lease lost",
             lambda: "lease lost before completion" in open(log.name).read(), timeout=120)
    cut.send_signal(signal.SIGTERM)
    code = cut.wait(timeout=60)
    links_after = sql("SELECT coalesce(sum(cardinality(contact_ids)), 0) FROM reports") + "/" + sql("SELECT count(*) FROM escalations")
    problems = []
    if done != "200":
        problems.append(f"{done} of 200 reports completed by the rescuer on attempt 2")
    if links_before != links_after:
        problems.append(f"the late completion changed contact links/escalations: {links_before} -> {links_after}")
    if sql("SELECT count(*) FROM jobs") != "0":
        problems.append("jobs left in the queue")
    if code != 0:
        problems.append(f"the cut-off worker exited {code} after SIGTERM")
    verdict("partition", problems, "the late completion was refused; nothing applied twice; the worker exited 0")
    silent_partition_during_a_call()


def silent_partition_during_a_call():
    """A worker waiting inside a call (its completion blocked on a row lock held here) when the
    network goes silent must notice within about 30 s (TCP keepalives and tcp_user_timeout),
    not after the kernel's two hours, and finish the report once the network is back."""
    tipline(["submit", "--text", "出租微信 V信: silent_1x", "--reporter", "u-silent", "--external-id", "q1"], LOCAL)
    holder = popen(["psql", "-X", "-q", LOCAL], stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True)
    holder.stdin.write("BEGIN;\nSELECT id FROM reports WHERE external_id = 'q1' FOR UPDATE;\n")
    holder.stdin.flush()
    wait_for("the report row is held", lambda: sql("SELECT count(*) FROM pg_stat_activity WHERE state = 'idle in transaction'") == "1")
    log_path = os.path.join(os.environ["TIPLINE_ROOT"], ".tipline", "partition-silent.log")
    log = open(log_path, "w")
    worker = popen(["ip", "netns", "exec", NS, BIN, "work", "--concurrency", "1", "--name", "silent", "--log-level", "debug"],
                              env={**os.environ, "DATABASE_URL": REMOTE}, stdout=log, stderr=log)
    wait_for("the worker's completion waits for the row lock", lambda: sql("SELECT count(*) FROM pg_locks WHERE NOT granted") != "0")
    subprocess.run(["ip", "link", "set", HOST_IF, "down"], check=True)
    cut_at = time.time()
    print("partition: link cut while the worker waits inside its completion", flush=True)
    problems = []
    end = cut_at + 90
    noticed = None
    while time.time() < end and noticed is None:
        noticed = next((line for line in open(log_path).read().splitlines() if "completion retried" in line), None)
        time.sleep(0.5)
    if noticed is None:
        problems.append("the worker did not notice the silent network within 90 s")
    else:
        print(f"partition: the worker noticed after {time.time() - cut_at:.0f} s: {noticed.strip()[:200]}", flush=True)
    subprocess.run(["ip", "link", "set", HOST_IF, "up"], check=True)
    holder.stdin.write("ROLLBACK;\n")
    holder.stdin.close()
    holder.wait(timeout=30)
    print("partition: link restored and the row lock released", flush=True)
    end = time.time() + 120
    while time.time() < end and sql("SELECT state FROM reports WHERE external_id = 'q1'") != "done":
        time.sleep(0.2)
    state = sql("SELECT state FROM reports WHERE external_id = 'q1'")
    if state != "done":
        problems.append(f"report q1 is {state}, not done, 120 s after the network came back")
    worker.send_signal(signal.SIGTERM)
    code = worker.wait(timeout=60)
    if code != 0:
        problems.append(f"the worker exited {code} after SIGTERM")
    verdict("partition", problems, "a silent network was noticed inside a call, and the report was done once it came back")


if __name__ == "__main__":
    run_children(main)
