#!/usr/bin/python3
"""Big-pool benchmark (run it with bench/refresh-bench.sh, which starts the lab).

One Ceph cluster, two libvirtds on it: the lab's with our module (URI in
LIBVIRT_STORAGE_URI) and one with libvirt's stock module (BENCH_STOCK_URI).
For each pool size (BENCH_SIZES, default "100 1000 10000") the Ceph pool "rbd"
is filled up to that many images (every tenth with 64 KiB written), then, in
each allocation mode (default; fast-diff: <refresh><volume allocation='default'/>),
both daemons time pool-start and pool-refresh of a libvirt pool on it, through
the libvirt API (no virsh start-up in the figures).  libvirtd's RSS is read
before the pool starts and after its refreshes.  Then single-volume operations
(vol-create-from a clone, vol-resize, vol-delete) in the biggest pool are timed
against the same in an empty Ceph pool ("rbd2").  Prints one table with ratios
and the issue's targets (MET/MISSED); writes it to the file given as argv[1].
"""
import os
import statistics
import sys
import time

import libvirt
import rados
import rbd

MiB = 1 << 20
SIZES = [int(s) for s in os.environ.get("BENCH_SIZES", "100 1000 10000").split()]
OURS_REPS = int(os.environ.get("BENCH_REPS", "5"))
OPS_REPS = int(os.environ.get("BENCH_OPS_REPS", "25"))


def env(name):
    v = os.environ.get(name)
    if not v:
        sys.exit(f"refresh-bench: {name} is not set (run bench/refresh-bench.sh)")
    return v


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def pool_xml(name, ceph_pool, fast_diff):
    refresh = "<refresh><volume allocation='default'/></refresh>" if fast_diff else ""
    return (f"<pool type='rbd'><name>{name}</name><source><name>{ceph_pool}</name>"
            f"<host name='127.0.0.1' port='{env('CEPH_MON_V2_PORT')}'/>"
            f"<auth username='admin' type='ceph'><secret uuid='{env('LAB_SECRET_ADMIN_UUID')}'/></auth>"
            f"</source>{refresh}</pool>")


def timed(fn):
    t0 = time.monotonic()
    fn()
    return time.monotonic() - t0


class Daemon:
    def __init__(self, label, uri, pid):
        self.label, self.pid = label, pid
        self.conn = libvirt.open(uri)

    def measure(self, ceph_pool, images, fast_diff, reps):
        """pool-start once, pool-refresh `reps` times: (start s, median refresh s, RSS growth KiB
        over the first refresh, RSS growth KiB over the start: libvirt's volume objects among it).
        Later refreshes grow libvirtd further, with either module, until every RPC worker thread's
        malloc arena has held the pool's volume objects once (measured: +9 MiB per refresh of
        10,000 images for the first five, then flat)."""
        name = f"bench-{self.label}-{images}-{'fd' if fast_diff else 'def'}"
        pool = self.conn.storagePoolDefineXML(pool_xml(name, ceph_pool, fast_diff), 0)
        try:
            rss0 = rss_kib(self.pid)
            start = timed(lambda: pool.create(0))
            rss_started = rss_kib(self.pid)
            got = pool.numOfVolumes()
            if got != images:
                sys.exit(f"refresh-bench: {self.label} lists {got} volumes of {images}")
            refreshes = [timed(lambda: pool.refresh(0))]
            rss1 = rss_kib(self.pid)
            refreshes += [timed(lambda: pool.refresh(0)) for _ in range(reps - 1)]
            return start, statistics.median(refreshes), rss1 - rss_started, rss_started - rss0
        finally:
            if pool.isActive():
                pool.destroy()
            pool.undefine()


def fill(io, want):
    have = len(rbd.RBD().list(io))
    for i in range(have, want):
        name = f"img{i:05d}"
        rbd.RBD().create(io, name, 64 * MiB if i % 3 else 1 << 30)
        if i % 10 == 0:
            with rbd.Image(io, name) as img:
                img.write(os.urandom(64 * 1024), 4 * MiB)


class OpsPool:
    """A pool on ceph_pool with a source volume that has a clone already (so that it keeps its
    snapshot: deleting the last clone removes it, and the next clone makes one again, ~1 s)."""

    def __init__(self, conn, ceph_pool, label):
        self.pool = conn.storagePoolCreateXML(pool_xml(f"ops-{label}", ceph_pool, False), 0)
        self.src = self.pool.createXML(f"<volume><name>ops-src</name><capacity>{64 * MiB}</capacity></volume>", 0)
        self.keep = self.pool.createXMLFrom(
            f"<volume><name>ops-keep</name><capacity>{64 * MiB}</capacity></volume>", self.src, 0)
        self.times = {"vol-create-from": [], "vol-resize": [], "vol-delete": []}

    def round(self, i, record):
        xml = f"<volume><name>ops-clone-{i}</name><capacity>{64 * MiB}</capacity></volume>"
        t0 = time.monotonic()
        vol = self.pool.createXMLFrom(xml, self.src, 0)
        t1 = time.monotonic()
        vol.resize(128 * MiB, 0)
        t2 = time.monotonic()
        vol.delete(0)
        t3 = time.monotonic()
        if record:
            self.times["vol-create-from"].append(t1 - t0)
            self.times["vol-resize"].append(t2 - t1)
            self.times["vol-delete"].append(t3 - t2)

    def medians(self):
        return {k: statistics.median(v) for k, v in self.times.items()}

    def close(self):
        self.keep.delete(0)
        self.src.delete(0)
        self.pool.destroy()


def single_volume_ops(conn, empty_ceph_pool, big_ceph_pool):
    """Median seconds of vol-create-from (a clone), vol-resize and vol-delete in an empty pool and
    a big one, rounds interleaved (order alternating) so that drift hits both alike."""
    empty, big = OpsPool(conn, empty_ceph_pool, "empty"), OpsPool(conn, big_ceph_pool, "big")
    try:
        for i in range(OPS_REPS + 1):  # the first round warms up
            for p in ((empty, big) if i % 2 else (big, empty)):
                p.round(i, i > 0)
        return empty.medians(), big.medians()
    finally:
        empty.close()
        big.close()


def verdict(ok):
    return "MET" if ok else "MISSED"


def main():
    out_path = sys.argv[1] if len(sys.argv) > 1 else None
    cluster = rados.Rados(conffile=env("CEPH_CONF"), rados_id="admin")
    cluster.connect()
    io = cluster.open_ioctx("rbd")
    ours = Daemon("ours", env("LIBVIRT_STORAGE_URI"), int(env("LIBVIRTD_PID")))
    stock = Daemon("stock", env("BENCH_STOCK_URI"), int(env("BENCH_STOCK_PID")))
    lines, rows, checks = [], {}, []
    load0 = os.getloadavg()[0]
    for n in SIZES:
        t0 = time.monotonic()
        fill(io, n)
        print(f"# {n} images in Ceph pool rbd ({time.monotonic() - t0:.0f} s to make)", file=sys.stderr)
        for fd in (False, True):
            stock_reps = 3 if n <= 1000 else 1
            s = stock.measure("rbd", n, fd, stock_reps)
            o = ours.measure("rbd", n, fd, OURS_REPS)
            rows[(n, fd)] = (s, o)
            print(f"# {n} {'fast-diff' if fd else 'default'}: stock {s}, ours {o}", file=sys.stderr)

    lines.append(f"pool-start and pool-refresh, stock module vs ours, one cluster (load average {load0:.2f} at the start)")
    lines.append(f"{'images':>7} {'allocation':<10} {'op':<13} {'stock':>9} {'ours':>9} {'ratio':>7} "
                 f"{'µs/image stock':>15} {'ours':>7} {'RSS growth stock':>17} {'ours':>9}")
    lines.append("(RSS growth: of libvirtd, over the pool-start (libvirt's volume objects among it), "
                 "over the first refresh after it)")
    for (n, fd), (s, o) in rows.items():
        for i, op in ((0, "pool-start"), (1, "pool-refresh")):
            lines.append(f"{n:>7} {'fast-diff' if fd else 'default':<10} {op:<13} {s[i]:>8.3f}s {o[i]:>8.3f}s "
                         f"{o[i] / s[i]:>7.3f} {s[i] / n * 1e6:>15.0f} {o[i] / n * 1e6:>7.0f} "
                         f"{s[3 - i] / 1024:>13.1f} MiB {o[3 - i] / 1024:>5.1f} MiB")
    big = max(SIZES)
    for fd in (False, True):
        mode = "fast-diff" if fd else "default"
        if 1000 in SIZES:
            s, o = rows[(1000, fd)]
            checks.append((f"1,000 images, {mode}: ours <= 0.1x stock (refresh {o[1] / s[1]:.3f}, start {o[0] / s[0]:.3f})",
                           o[1] <= 0.1 * s[1] and o[0] <= 0.1 * s[0]))
        if big >= 10000:
            s, o = rows[(big, fd)]
            checks.append((f"{big:,} images, {mode}: ours <= 0.1x stock (refresh {o[1] / s[1]:.3f}, start {o[0] / s[0]:.3f})",
                           o[1] <= 0.1 * s[1] and o[0] <= 0.1 * s[0]))
            checks.append((f"{big:,} images, {mode}: ours <= 10 s (refresh {o[1]:.2f} s, start {o[0]:.2f} s)",
                           o[1] <= 10 and o[0] <= 10))
            if 1000 in SIZES:
                o1 = rows[(1000, fd)][1]
                checks.append((f"{big:,} vs 1,000 images, {mode}: ours <= 11x (refresh {o[1] / o1[1]:.1f}x)",
                               o[1] <= 11 * o1[1]))
            checks.append((f"{big:,} images, {mode}: libvirtd RSS growth over a refresh <= 32 MiB "
                           f"(ours {o[2] / 1024:.1f} MiB; over the start {o[3] / 1024:.1f}, stock's {s[3] / 1024:.1f})",
                           o[2] <= 32 * 1024))

    empty, full = single_volume_ops(ours.conn, "rbd2", "rbd")
    lines.append("")
    lines.append(f"single-volume operations with our module: empty pool vs a pool of {big:,} images "
                 f"(median of {OPS_REPS})")
    lines.append(f"{'op':<16} {'empty':>9} {f'{big} images':>12} {'ratio':>7}")
    for op in empty:
        r = full[op] / empty[op]
        lines.append(f"{op:<16} {empty[op] * 1000:>7.1f}ms {full[op] * 1000:>10.1f}ms {r:>7.3f}")
        checks.append((f"{op} in {big:,} images within 10% of an empty pool ({r:.3f})", r <= 1.10))
    lines.append("")
    lines.append(f"targets (load average {os.getloadavg()[0]:.2f} at the end):")
    for text, ok in checks:
        lines.append(f"  {verdict(ok):<6} {text}")
    table = "\n".join(lines)
    print(table)
    if out_path:
        with open(out_path, "w") as f:
            f.write(table + "\n")
    return 0 if all(ok for _, ok in checks) else 1


if __name__ == "__main__":
    sys.exit(main())
