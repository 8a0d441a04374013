"""The whole machine's CPU use, for scripts/bench and scripts/profile."""
import os


def cpu_times():
    """Seconds so far, from /proc/stat: (used, stolen). Used: user, nice, system, irq and softirq time
    of every process on the machine. Stolen: `steal`, time the hypervisor gave this machine's CPUs
    to someone else while they had work; it is no process's CPU, and counting it as used made a
    report look dearer whenever a neighbour was busy."""
    with open("/proc/stat") as f:
        fields = f.readline().split()[1:]
    ticks = os.sysconf("SC_CLK_TCK")
    user, nice, system, _idle, _iowait, irq, softirq, steal = (int(x) for x in fields[:8])
    return (user + nice + system + irq + softirq) / ticks, steal / ticks


def machine_cpu():
    """Seconds of CPU used by everything on the machine so far (steal not included)."""
    return cpu_times()[0]
