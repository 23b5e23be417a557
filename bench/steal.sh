# shellcheck shell=bash
# Sourced by bench-lab.sh and run-all.sh.
# The CPU the hypervisor takes: this machine is a VM on a shared host, and while other guests
# run, its vCPUs wait ("steal" in /proc/stat).  Measured per step, it was 5-10 % in quiet rounds
# and 24-44 % in a slow one, where every download took 1.5-3.5 x as long (stream-bench, ours and
# the baselines alike).
# cpu_steal_now: "STOLEN TOTAL", the clock ticks stolen and all ticks so far, of every CPU.
cpu_steal_now() { awk '$1 == "cpu" {t = 0; for (i = 2; i <= 9; i++) t += $i; print $9, t; exit}' /proc/stat; }
# steal_pct STOLEN TOTAL: the percentage of the CPU time since then that the hypervisor took.
steal_pct() {
    local s t
    read -r s t < <(cpu_steal_now)
    awk -v s=$((s - $1)) -v t=$((t - $2)) 'BEGIN {printf "%d", (t > 0) ? 100 * s / t + 0.5 : 0}'
}
