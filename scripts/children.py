"""The processes a test driver or benchmark starts (scripts/chaos.py, partition.py, failover.py,
bench.py, profile.py): none may outlive it, however it ends."""
import os, signal, subprocess, sys

_started = []


def popen(*args, group=False, **kwargs):
    """subprocess.Popen, remembered so that `run` kills the process on the way out. With `group`,
    the process leads a process group of its own, and `run` kills the whole group: for a wrapper
    such as /usr/bin/time, whose child a kill of the wrapper alone would leave running."""
    process = subprocess.Popen(*args, start_new_session=group, **kwargs)
    _started.append((process, group))
    return process


def run(main):
    """Runs main(); then every process started with `popen` that still runs is killed (a stopped
    one is continued first, to die), whether main returned, failed or exited."""
    # A SIGTERM (a CI timeout, a kill of the script's group) ends main() through the same clean-up:
    # by default it would end Python at once, and processes in groups of their own would stay.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    try:
        main()
    finally:
        for process, group in _started:
            if group and process.returncode is None:
                # Not reaped yet (so its id is not reused), perhaps exited and left its children: the
                # group outlives the leader.
                for sig in (signal.SIGCONT, signal.SIGKILL):
                    try:
                        os.killpg(process.pid, sig)
                    except ProcessLookupError:
                        break
                process.wait()
            elif process.poll() is None:
                process.send_signal(signal.SIGCONT)
                process.kill()
                process.wait()


def verdict(name, problems, success):
    """Prints each problem as `NAME: VIOLATED: ...` and exits 1, or prints `NAME: SUCCESS`."""
    for problem in problems:
        print(f"{name}: VIOLATED: {problem}")
    if problems:
        raise SystemExit(1)
    print(f"{name}: {success}")
