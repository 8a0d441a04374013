"""The whole machine's CPU use, for scripts/bench and scripts/profile."""
import os


def machine_cpu():
    """Seconds of CPU used by everything on the machine so far (user, nice, system, irq, softirq, steal)."""
    with open("/proc/stat") as f:
        fields = f.readline().split()[1:]
    ticks = os.sysconf("SC_CLK_TCK")
    user, nice, system, _idle, _iowait, irq, softirq, steal = (int(x) for x in fields[:8])
    return (user + nice + system + irq + softirq + steal) / ticks
