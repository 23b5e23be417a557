#!/usr/bin/python3
"""Where the time of one vol-create-from (same pool, clone) goes: run it with
bench/breakdown.sh, which starts the lab.

A pool on the lab's Ceph pool "rbd" whose <rbd:config_opts> turn on the Ceph
client's debug log (debug_ms=1: every message to the monitor and the OSD with
its object and op names; debug_rbd=20: librbd's request steps) into a file; a
1 GiB source with 64 MiB of data; two untimed requests (the first makes the
module's snapshot, and its clone stays, as in clone-bench); then BENCH_BD_REPS
(5) timed virStorageVolCreateXMLFrom calls on one connection, each clone
deleted afterwards, outside the window.  libvirtd logs its RPC and storage
debug lines meanwhile (virt-admin, set by breakdown.sh).

For each timed request the Ceph client log between the call's start and end
is cut out (timestamps) and every op the module sent is listed: time, object,
op names, latency to its reply; also mon commands and librbd's image
opens/closes.  Writes, into the directory argv[1]:
  requests.txt   per request: client-side ms, op counts
  timeline.txt   the last request, op by op, interleaved with libvirtd's log lines
  summary.txt    op counts by object kind and op name over the requests (per request)
"""
import collections
import datetime
import os
import re
import statistics
import sys
import time

import libvirt
import rados
import rbd

MiB = 1 << 20
GiB = 1 << 30
REPS = int(os.environ.get("BENCH_BD_REPS", "10"))
SNAPS = int(os.environ.get("BENCH_BD_SNAPS", "0"))  # user snapshots on the source (row 3: 50)


def env(name):
    v = os.environ.get(name)
    if not v:
        sys.exit(f"breakdown: {name} is not set (run bench/breakdown.sh)")
    return v


OUT = sys.argv[1]
CLIENT_LOG = os.path.join(OUT, "ceph-client.log")
DEBUG_OPTS = {
    "log_file": CLIENT_LOG,
    "log_coarse_timestamps": "false",
    "debug_ms": "1",
    "debug_rbd": "20",
    "debug_objecter": "0",
    "debug_rados": "0",
    "debug_monc": "0",
}


def pool_xml(name, debug=True):
    opts = "".join(f"<rbd:option name='{k}' value='{v}'/>" for k, v in DEBUG_OPTS.items()) if debug else ""
    return (f"<pool type='rbd' xmlns:rbd='http://libvirt.org/schemas/storagepool/rbd/1.0'>"
            f"<name>{name}</name><source><name>rbd</name>"
            f"<host name='127.0.0.1' port='{env('CEPH_MON_V2_PORT')}'/>"
            f"<auth username='admin' type='ceph'><secret uuid='{env('LAB_SECRET_ADMIN_UUID')}'/></auth>"
            f"</source><rbd:config_opts>{opts}</rbd:config_opts></pool>")


def vol_xml(name):
    return (f"<volume><name>{name}</name><capacity unit='bytes'>{GiB}</capacity>"
            f"<target><format type='raw'/></target></volume>")


TS = re.compile(r"^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d+)([+-]\d{4}) ")


def ts_of(line):
    m = TS.match(line)
    if not m:
        return None
    d = datetime.datetime.strptime(m.group(1) + m.group(2), "%Y-%m-%dT%H:%M:%S.%f%z")
    return d.timestamp()


SEND = re.compile(r" -- (\S+) --> \S+ -- (osd_op|mon_command|mon_subscribe|mon_get_version|ping|"
                  r"watch_notify|osd_backoff|\w+)\((.*?)\) v\d+ -- ")
OSD_OP = re.compile(r"^\S+:(\d+) \S+ \S+:::([^:]+):(\w+) \[(.*)\] snapc")
REPLY = re.compile(r" -- (\S+) <== \S+ \S+ \d+ ==== osd_op_reply\((\d+) (\S+) \[(.*?)\] .*? = (-?\d+)\s*\(?([^)]*)\)? v\d+ ====")
MON_CMD = re.compile(r"cmd=\[(.*?)\]")


def kind_of(obj):
    for k in ("rbd_header.", "rbd_id.", "rbd_object_map.", "rbd_data.", "rbd_children", "rbd_directory",
              "rbd_trash", "rbd_info", "rbd_mirroring", "rbd_namespace", "rbdclone"):
        if obj.startswith(k):
            return k.rstrip(".") if k.endswith(".") else k
    if obj.endswith(".rbd"):
        return "NAME.rbd"  # a format-1 header: librbd looks for one before creating an image
    return obj


def op_names(ops):
    # "call rbd.get_size in=8b, call lock.get_info ...": the op names only
    names = []
    for part in re.split(r",\s*(?=[a-z])", ops):
        w = part.split()
        if not w:
            continue
        if w[0] == "call" and len(w) > 1:
            names.append("call " + w[1])
        else:
            names.append(w[0])
    return names


def parse_window(lines, t0, t1):
    """The ops sent in [t0, t1] with their replies; mon commands; librbd lines."""
    ops = {}
    order = []
    other = []
    for line in lines:
        t = ts_of(line)
        if t is None or t < t0 - 0.008 or t > t1 + 0.5:
            continue
        m = SEND.search(line)
        if m and t <= t1:
            addr, what, body = m.group(1), m.group(2), m.group(3)
            if what == "osd_op":
                o = OSD_OP.match(body)
                if o:
                    tid = (addr, o.group(1))
                    ops[tid] = {"t": t, "obj": o.group(2), "ops": op_names(o.group(4)), "lat": None, "rc": None}
                    order.append(tid)
                    continue
            if what == "mon_command":
                c = MON_CMD.search(body)
                other.append((t, "mon_command " + (c.group(1) if c else body[:80])))
            elif what not in ("ping",):
                other.append((t, what + " " + body[:100]))
            continue
        r = REPLY.search(line)
        if r:
            tid = (r.group(1), r.group(2))
            if tid in ops and ops[tid]["lat"] is None:
                ops[tid]["lat"] = (t - ops[tid]["t"]) * 1000
                ops[tid]["rc"] = int(r.group(5))
    return [ops[t] for t in order], other


# The steps of one request, recognised by the op that starts each (see
# /work/notes/19-breakdown.md for the functions that issue them).
STEP_NAMES = [
    ("A", "the source's view, read without opening it (rbd_id get_id, one header read): the driver's "
          "refreshVol(source) and Source::open"),
    ("B", "clone_image: SnapshotLock::take (lock.lock), the snapshot's checks (header, object map, "
          "snapshot info)"),
    ("C", "Source::sniff: the head and tail reads"),
    ("D", "clone_image: rbd_clone3 (librbd: parent name->id, parent open, child create, child open, attach, close)"),
    ("E", "clone_image returns: ~SnapshotLock (lock.unlock)"),
    ("F", "driver refreshVol(new volume): its view (rbd_id get_id, one header read)"),
]


def steps_of(ops, src, new):
    """Index of the first op of each step A..F, or None when the sequence is not the expected one."""
    def first(pred, after=-1):
        return next((i for i, o in enumerate(ops) if i > after and pred(o)), None)
    if not ops or ops[0]["obj"] != "rbd_id." + src:
        return None
    lock = first(lambda o: o["ops"] == ["call lock.lock"])
    if lock is None:
        return None
    sniff = first(lambda o: o["obj"].startswith("rbd_data.") and o["ops"] == ["read"], lock)
    clone = first(lambda o: o["ops"] == ["call rbd.dir_get_id"], lock)
    unlock = first(lambda o: o["ops"] == ["call lock.unlock"], lock)
    if sniff is None or clone is None or unlock is None or unlock + 1 >= len(ops):
        return None
    if ops[unlock + 1]["obj"] != "rbd_id." + new:
        return None
    starts = {"A": 0, "B": lock, "C": sniff, "D": clone, "E": unlock, "F": unlock + 1}
    order = [starts[k] for k, _ in STEP_NAMES]
    return starts if order == sorted(order) else None


def main():
    os.makedirs(OUT, exist_ok=True)
    conn = libvirt.open(env("LIBVIRT_STORAGE_URI"))
    cluster = rados.Rados(conffile=env("CEPH_CONF"), rados_id="admin")
    cluster.connect()
    io = cluster.open_ioctx("rbd")
    src = "bd-source"
    rbd.RBD().create(io, src, GiB)
    with rbd.Image(io, src) as img:
        chunk = os.urandom(16 * MiB)
        for off in (0, 256 * MiB, 512 * MiB, GiB - 16 * MiB):
            img.write(chunk, off)
        for i in range(1, SNAPS + 1):
            img.create_snap(f"user-{i}")
    pool = conn.storagePoolCreateXML(pool_xml("bd"), 0)
    # The same requests through a pool without the debug log (its own connection), interleaved:
    # what they cost undisturbed.
    quiet = conn.storagePoolCreateXML(pool_xml("bdq", debug=False), 0)
    quiet_ms = []
    try:
        srcvol = pool.storageVolLookupByName(src)
        qsrc = quiet.storageVolLookupByName(src)
        for name in ("bd-keep", "bd-warm"):
            v = pool.createXMLFrom(vol_xml(name), srcvol, 0)
        v.delete(0)
        quiet.createXMLFrom(vol_xml("bdq-warm"), qsrc, 0).delete(0)
        windows = []
        for i in range(REPS):
            name = f"bd-{i}"
            t0 = time.time()
            v = pool.createXMLFrom(vol_xml(name), srcvol, 0)
            t1 = time.time()
            windows.append((name, t0, t1))
            time.sleep(0.3)
            v.delete(0)
            time.sleep(0.3)
            t0 = time.time()
            v = quiet.createXMLFrom(vol_xml(f"bdq-{i}"), qsrc, 0)
            quiet_ms.append((time.time() - t0) * 1000)
            time.sleep(0.3)
            v.delete(0)
            time.sleep(0.3)
    finally:
        pool.destroy()
        quiet.destroy()
    io.close()
    cluster.shutdown()
    time.sleep(0.5)

    with open(CLIENT_LOG, errors="replace") as f:
        lines = f.readlines()
    libvirt_lines = []
    with open(env("LIBVIRTD_LOG"), errors="replace") as f:
        for line in f:
            libvirt_lines.append(line)

    # libvirtd's own marks: the API entry and the driver's last line of the request.
    def libvirt_marks(name):
        entry = end = None
        for line in libvirt_lines:
            m = re.match(r"^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d+)([+-]\d{4}): ", line)
            if not m:
                continue
            t = datetime.datetime.strptime(m.group(1) + m.group(2), "%Y-%m-%d %H:%M:%S.%f%z").timestamp()
            if f"<name>{name}</name>" in line and "virStorageVolCreateXMLFrom" in line:
                entry = t
            elif f"Creating volume '{name}'" in line:
                end = t
        return entry, end

    per_req = []
    totals = collections.Counter()
    step_ms = collections.defaultdict(list)
    step_ops = collections.defaultdict(list)
    for name, t0, t1 in windows:
        ops, other = parse_window(lines, t0, t1)
        entry, end = libvirt_marks(name)
        st = steps_of(ops, src, name)
        if st and entry and end:
            keys = [k for k, _ in STEP_NAMES]
            for j, k in enumerate(keys):
                a = st[k]
                b = st[keys[j + 1]] if j + 1 < len(keys) else len(ops)
                t_a = entry if k == "A" else ops[a]["t"]
                t_b = ops[b]["t"] if b < len(ops) else end
                step_ms[k].append((t_b - t_a) * 1000)
                step_ops[k].append(b - a)
            step_ms["rpc"].append((t1 - t0 - (end - entry)) * 1000)
            step_ms["driver"].append((end - entry) * 1000)
        c = collections.Counter()
        for o in ops:
            c[(kind_of(o["obj"]), " + ".join(o["ops"]))] += 1
        totals.update(c)
        per_req.append((name, (t1 - t0) * 1000, ops, other, c))

    with open(os.path.join(OUT, "requests.txt"), "w") as f:
        f.write("request  client ms  osd ops  sum of op latencies ms  mon/other messages\n")
        for name, ms, ops, other, _ in per_req:
            lat = sum(o["lat"] or 0 for o in ops)
            f.write(f"{name:8} {ms:9.1f}  {len(ops):7}  {lat:22.1f}  {len(other)}\n")
        f.write(f"median client ms: {statistics.median(r[1] for r in per_req):.1f} (with the debug log); "
                f"without it (same requests, interleaved, own connection): "
                f"{' '.join(f'{x:.1f}' for x in quiet_ms)}, median {statistics.median(quiet_ms):.1f}\n")

    with open(os.path.join(OUT, "steps.txt"), "w") as f:
        n = len(step_ms["driver"])
        f.write(f"steps of one vol-create-from (same pool, clone), mean over {n} requests with the debug log "
                f"(Ceph log times are 4 ms coarse: means, not single values; a negative step is that clock against libvirt's)\n")
        f.write("| step | what | OSD ops | ms |\n|---|---|---|---|\n")
        f.write(f"| - | client -> libvirtd RPC, XML parse, createVol, reply (client total - driver) | 0 | "
                f"{statistics.mean(step_ms['rpc']) if n else 0:.1f} |\n")
        if not n:
            f.write("NO STEPS: no request's OSD ops matched the expected sequence (steps_of); the module's "
                    "order of operations changed: see timeline.txt and update STEP_NAMES and steps_of\n")
        for k, what in STEP_NAMES:
            if step_ms[k]:
                f.write(f"| {k} | {what} | {statistics.mean(step_ops[k]):.0f} | {statistics.mean(step_ms[k]):.1f} |\n")
        if n:
            f.write(f"| | driver total (API entry -> 'Creating volume') | "
                    f"{sum(statistics.mean(step_ops[k]) for k, _ in STEP_NAMES):.0f} | "
                    f"{statistics.mean(step_ms['driver']):.1f} |\n")

        # The ops of each step, from the last request whose steps were recognised.
        for name, t0, t1 in reversed(windows):
            ops, _ = parse_window(lines, t0, t1)
            st = steps_of(ops, src, name)
            if not st:
                continue
            f.write(f"\nthe ops of each step of request {name}:\n")
            keys = [k for k, _ in STEP_NAMES]
            for j, k in enumerate(keys):
                b = st[keys[j + 1]] if j + 1 < len(keys) else len(ops)
                f.write(f"{k}:\n")
                for o in ops[st[k]:b]:
                    f.write(f"    {o['obj']:48} {', '.join(o['ops'])}\n")
            break

    with open(os.path.join(OUT, "summary.txt"), "w") as f:
        f.write(f"OSD ops per request (mean over {len(per_req)} requests), by object kind and ops\n")
        for (kind, names), n in sorted(totals.items(), key=lambda kv: (-kv[1], kv[0])):
            f.write(f"{n / len(per_req):6.1f}  {kind:18} {names}\n")

    # The last request, op by op, with libvirtd's lines of the same window.
    name, ms, ops, other, _ = per_req[-1]
    t0 = windows[-1][1]
    t1 = windows[-1][2]
    events = []
    for o in ops:
        lat = f"{o['lat']:.2f}" if o["lat"] is not None else "?"
        events.append((o["t"], f"osd_op {o['obj']:44} [{', '.join(o['ops'])}] {lat} ms rc={o['rc']}"))
    for t, what in other:
        events.append((t, what))
    for line in libvirt_lines:
        m = re.match(r"^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d+)([+-]\d{4}): ", line)
        if not m:
            continue
        t = datetime.datetime.strptime(m.group(1) + m.group(2), "%Y-%m-%d %H:%M:%S.%f%z").timestamp()
        if t0 - 0.008 <= t <= t1:
            events.append((t, "libvirtd " + line[m.end():].strip()[:200]))
    for line in lines:
        t = ts_of(line)
        if t is None or not (t0 <= t <= t1) or " librbd" not in line:
            continue
        text = line.split(" librbd", 1)[1]
        if any(k in text for k in ("OpenRequest", "CloseRequest", "RefreshRequest: 0x", "CloneRequest",
                                   "CreateRequest", "ImageCtx::", "SnapshotCreate", "image_state",
                                   "ImageState")):
            events.append((t, "librbd" + text.strip()[:160]))
    events.sort(key=lambda e: e[0])
    with open(os.path.join(OUT, "timeline.txt"), "w") as f:
        f.write(f"request {name}: {ms:.1f} ms at the client; times relative to the call\n")
        for t, what in events:
            f.write(f"{(t - t0) * 1000:8.2f}  {what}\n")
    print(open(os.path.join(OUT, "requests.txt")).read())
    print(open(os.path.join(OUT, "steps.txt")).read())
    print(open(os.path.join(OUT, "summary.txt")).read())


if __name__ == "__main__":
    main()
