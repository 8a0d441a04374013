"""The processes a test driver starts (scripts/chaos.py, partition.py, failover.py): none may
outlive it, however it ends."""
import signal, subprocess

_started = []


def popen(*args, **kwargs):
    """subprocess.Popen, remembered so that `run` kills the process on the way out."""
    process = subprocess.Popen(*args, **kwargs)
    _started.append(process)
    return process


def run(main):
    """Runs main(); then every process started with `popen` that still runs is killed (a stopped
    one is continued first, to die), whether main returned, failed or exited."""
    try:
        main()
    finally:
        for process in _started:
            if process.poll() is None:
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
