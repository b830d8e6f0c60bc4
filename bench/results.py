#!/usr/bin/env python3
"""bench/results.py — the small results tool of bench/run.sh (stdlib only).

  results.py bodies DIR                 write the HTTP request bodies
  results.py lateness STAMPS            p50/p99/max of start - ETA
  results.py sample ROOTPID OUT         until SIGTERM: every 0.5 s, the CPU
                                        used by processes that are NOT
                                        descendants of ROOTPID (the other
                                        helpers' builds and tests)
  results.py load OUT WINDOWS           that load per workload window
  results.py table FIGS META            print the readable table
  results.py record FIGS META DOC       write the recorded run into DOC
                                        (between its recorded-run markers)

FIGS is the TSV run.sh writes, one figure a line:
  name, value (or n/a), unit, ceiling name, ratio to it, reason if n/a.
Targets and peer figures (docs/BENCHMARKS.md) live here, in TARGETS, so the table says
which targets a run met.
"""
import json
import math
import os
import signal
import sys
import time

# figure -> (comparison, bound, what the target is, peers on this machine kind)
TARGETS = {
    "ceiling.nginx_return_202": (None, None, "", "~195k req/s, 2 nginx workers"),
    "ceiling.redis_zadd_p16": (None, None, "", "~404k ops/s"),
    "ceiling.redis_eval_zadd_hset": (None, None, "", "~92k ops/s"),
    "ceiling.redis_eval_zadd_hset_p16": (None, None, "", "~159k ops/s"),
    "http1.tasks_per_s": ("ratio>=", 0.5, ">= 50 % of return 202", ""),
    "http_batch100.tasks_per_s": (">=", 236000, ">= 2x push_bulk = 236k/s",
                                  "Sidekiq push_bulk ~118k/s"),
    "http_batch1000.tasks_per_s": (">=", 236000, ">= 2x push_bulk = 236k/s",
                                   "Sidekiq push_bulk ~118k/s"),
    "client_single.tasks_per_s": (None, None, "", "Sidekiq one call ~15k/s"),
    "client_many.tasks_per_s": (">=", 236000, ">= 2x push_bulk = 236k/s",
                                "Sidekiq push_bulk ~118k/s"),
    "worker.tasks_per_s": (">=", 100000, ">= 100k/s",
                           "Sidekiq ~18k/s, beanstalkd ~23k/s, BullMQ ~9k/s"),
    "worker.cpu_us_per_task": ("<=", 10, "<= 10 us", "Sidekiq ~87 us"),
    "worker.redis_cpu_us_per_task": ("<=", 6, "<= 6 us", "Sidekiq ~17 us"),
    "worker_b256.tasks_per_s": (">=", 100000, ">= 100k/s", ""),
    "worker_b256.cpu_us_per_task": ("<=", 10, "<= 10 us", ""),
    "worker_b256.redis_cpu_us_per_task": ("<=", 6, "<= 6 us", ""),
    "worker.rss_child_mib": ("<=", 10, "<= 10 MiB", "Sidekiq 86 MiB"),
    "worker.rss_master_mib": ("<=", 10, "<= 10 MiB", ""),
    "lateness.p50_ms": (None, None, "",
                        "Sidekiq 3300, BullMQ 19, Celery 1.9 ms"),
    "lateness.p99_ms": ("<=", 5, "<= 5 ms",
                        "Sidekiq 5600, BullMQ 51, Celery 12 ms"),
    "lateness.max_ms": ("<=", 20, "<= 20 ms", ""),
    "memory.bytes_per_task": ("<=", 120, "<= 120 B",
                              "Sidekiq 265 B, BullMQ 372 B"),
    "client_many.redis_cpu_us_per_task": ("<=", 3, "<= 3 us", ""),
    # issue #12: the same bounds with 1,000,000 delayed tasks queued
    "deep.bytes_per_task": ("<=", 120, "<= 120 B", ""),
    "deep.lateness_p99_ms": ("<=", 2, "<= 2 ms", ""),
    "deep.lateness_max_ms": ("<=", 5, "<= 5 ms", ""),
    # "near zero" made concrete: no polling means a sleeper costs nothing
    # until a timeout or a wake; allow a few commands/s for the fleet
    "idle.redis_cmds_per_s": ("<=", 5, "near zero (<= 5/s)", ""),
    "idle.worker_cpu_pct": ("<=", 0.1, "near zero (<= 0.1 %)", ""),
    "idle.redis_cpu_pct": ("<=", 0.5, "near zero (<= 0.5 %)", ""),
}

BEGIN = "<!-- recorded-run:begin (bench/run.sh --record writes this part) -->"
END = "<!-- recorded-run:end -->"


def msgpack(o):
    """The few msgpack types the request bodies need (no library needed)."""
    if isinstance(o, bool) or o is None:
        return {None: b"\xc0", False: b"\xc2", True: b"\xc3"}[o]
    if isinstance(o, int):
        if 0 <= o < 128:
            return bytes([o])
        if 0 <= o < 1 << 32:
            return b"\xce" + o.to_bytes(4, "big")
        return b"\xd3" + o.to_bytes(8, "big", signed=True)
    if isinstance(o, str):
        b = o.encode()
        if len(b) < 32:
            return bytes([0xa0 | len(b)]) + b
        return b"\xd9" + bytes([len(b)]) + b if len(b) < 256 else \
            b"\xda" + len(b).to_bytes(2, "big") + b
    if isinstance(o, list):
        head = bytes([0x90 | len(o)]) if len(o) < 16 else \
            b"\xdc" + len(o).to_bytes(2, "big")
        return head + b"".join(msgpack(x) for x in o)
    if isinstance(o, dict):
        head = bytes([0x80 | len(o)]) if len(o) < 16 else \
            b"\xde" + len(o).to_bytes(2, "big")
        return head + b"".join(msgpack(k) + msgpack(v) for k, v in o.items())
    raise TypeError(type(o))


def bodies(d):
    """body<n>.json and body<n>.msgpack: one task, and arrays of 100 and
    1,000 (small args: a short string and a small integer)."""
    def task(i):
        return {"func": "bench.noop", "args": ["hello", i]}
    docs = {1: task(1)}
    for n in (100, 1000):
        docs[n] = [task(i) for i in range(n)]
    for n, doc in docs.items():
        with open(os.path.join(d, "body%d.json" % n), "w") as f:
            json.dump(doc, f, separators=(",", ":"))
        with open(os.path.join(d, "body%d.msgpack" % n), "wb") as f:
            f.write(msgpack(doc))


def percentile(sorted_vals, p):
    """Nearest-rank percentile."""
    if not sorted_vals:
        return float("nan")
    k = max(1, math.ceil(p / 100.0 * len(sorted_vals)))
    return sorted_vals[k - 1]


def lateness(path):
    vals, etas = [], []
    wmax = 0     # the slowest open + write + close of a line (us)
    with open(path) as f:
        for line in f:
            parts = line.split()
            if len(parts) not in (2, 3):
                continue
            eta_ms, start_us = int(parts[0]), int(parts[1])
            if len(parts) == 3:
                wmax = max(wmax, int(parts[2]))
            vals.append(start_us / 1000.0 - eta_ms)
            etas.append((start_us / 1000.0 - eta_ms, eta_ms))
    vals.sort()
    etas.sort(reverse=True)
    if not vals:
        print("n=0 p50_ms=n/a p99_ms=n/a max_ms=n/a min_ms=n/a")
        return
    # the latest five: ms late @ ETA (unix s.ms), to set beside the slowlog
    print("n=%d p50_ms=%.2f p99_ms=%.2f max_ms=%.2f min_ms=%.2f "
          "write_max_ms=%.2f worst=%s" % (
        len(vals), percentile(vals, 50), percentile(vals, 99), vals[-1],
        vals[0], wmax / 1000.0, ",".join("%.1f@%.3f" % (l, e / 1000.0) for l, e in etas[:5])))


def slowlog(path):
    """Summary of `redis-cli --json SLOWLOG GET n`: calls over the log's
    threshold, the slowest first (a script's own commands show with
    client ?:0, its EVALSHA separately)."""
    with open(path, encoding="utf-8", errors="replace") as f:
        entries = json.load(f)
    rows = []
    for e in entries:
        args = e[3]
        if not args or args[0].upper() == "HELLO":
            continue
        name = args[0].upper()
        if name in ("EVALSHA", "EVAL") and len(args) > 3:
            what = "%s:%s" % (name, args[3])
        else:
            what = "%s:%s" % (name, args[1] if len(args) > 1 else "")
        if e[4].startswith("?"):
            what = "(in script) " + what
        rows.append((e[2], e[1], what))
    rows.sort(reverse=True)
    print("n=%d max_us=%s slowest: %s" % (
        len(rows), rows[0][0] if rows else 0,
        "; ".join("%d us at %d %s" % r for r in rows[:8])))


def proc_snapshot():
    """pid -> (ppid, comm, utime+stime jiffies) for every process."""
    snap = {}
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % d) as f:
                data = f.read()
        except OSError:
            continue
        # comm may hold spaces and parentheses: split at the last ')'
        lp, rp = data.index("("), data.rindex(")")
        comm = data[lp + 1:rp]
        rest = data[rp + 2:].split()
        snap[int(d)] = (int(rest[1]), comm, int(rest[11]) + int(rest[12]))
    return snap


def cpu_busy():
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:]]
    idle = v[3] + v[4]
    return sum(v[:8]) - idle, sum(v[:8])


def sample(root, out):
    stop = []
    signal.signal(signal.SIGTERM, lambda *a: stop.append(1))
    me = os.getpid()
    prev, prev_busy = proc_snapshot(), cpu_busy()
    with open(out, "w") as f:
        while not stop:
            time.sleep(0.5)
            snap, busy = proc_snapshot(), cpu_busy()
            ours = set()
            for pid in snap:
                p, seen = pid, 0
                while p > 1 and seen < 64:
                    if p == root or p == me:
                        ours.add(pid)
                        break
                    p = snap[p][0] if p in snap else 0
                    seen += 1
            ours_j, others = 0, {}
            for pid, (ppid, comm, j) in snap.items():
                d = j - prev[pid][2] if pid in prev else 0
                if d <= 0:
                    continue
                if pid in ours:
                    ours_j += d
                else:
                    others[comm] = others.get(comm, 0) + d
            total = busy[0] - prev_busy[0]
            wall = busy[1] - prev_busy[1]
            other_j = max(0, total - ours_j)
            top = ",".join("%s:%d" % kv for kv in
                           sorted(others.items(), key=lambda kv: -kv[1])[:5])
            f.write("%.3f %d %d %s\n" % (time.time(), other_j, wall, top))
            f.flush()
            prev, prev_busy = snap, busy


def load_summary(out, windows):
    """Per window: others' share of all cores, and who they were."""
    samples = []
    with open(out) as f:
        for line in f:
            p = line.split()
            if len(p) >= 3:
                samples.append((float(p[0]), int(p[1]), int(p[2]),
                                p[3] if len(p) > 3 else ""))
    wins = []
    with open(windows) as f:
        for line in f:
            p = line.split()
            if len(p) == 3:
                wins.append((p[0], float(p[1]), float(p[2])))
    ncpu = os.cpu_count() or 1
    for name, a, b in wins:
        o = w = 0
        who = {}
        for t, oj, wj, top in samples:
            if a <= t <= b + 0.5:
                o += oj
                w += wj
                for kv in filter(None, top.split(",")):
                    k, _, v = kv.rpartition(":")
                    who[k] = who.get(k, 0) + int(v)
        if w == 0:
            continue
        names = " ".join(k for k, _ in sorted(who.items(),
                                              key=lambda kv: -kv[1])[:4])
        print("%s: others used %.2f of %d cores (%.0f %%) %s" % (
            name, ncpu * o / w, ncpu, 100.0 * o / w,
            ("[" + names + "]") if names else ""))


def read_figs(path):
    figs = []
    with open(path) as f:
        for line in f:
            p = line.rstrip("\n").split("\t")
            p += [""] * (6 - len(p))
            figs.append({"name": p[0], "value": p[1], "unit": p[2],
                         "ceiling": p[3], "ratio": p[4], "reason": p[5]})
    return figs


def verdict(fig):
    t = TARGETS.get(fig["name"])
    if not t or t[0] is None:
        return ""
    if fig["value"] == "n/a":
        return "n/a"
    op, bound = t[0], t[1]
    try:
        v = float(fig["ratio"] if op == "ratio>=" else fig["value"])
    except ValueError:
        return "?"
    ok = v >= bound if op in (">=", "ratio>=") else v <= bound
    return "met" if ok else "MISSED"


def fmt_value(v):
    try:
        x = float(v)
    except ValueError:
        return v
    if x >= 1000 and x == int(x):
        return "{:,}".format(int(x))
    return v


def table_lines(figs):
    head = ["figure", "value", "unit", "ceiling ratio", "target", "met?",
            "peers (same machine kind)"]
    rows = []
    for f in figs:
        t = TARGETS.get(f["name"], (None, None, "", ""))
        if f["value"] == "n/a":
            value, unit = "n/a", f["reason"]
        else:
            value, unit = fmt_value(f["value"]), f["unit"]
        ratio = ""
        if f["ratio"]:
            ratio = "%s of %s" % (f["ratio"], f["ceiling"].replace("ceiling.", ""))
        rows.append([f["name"], value, unit, ratio, t[2], verdict(f), t[3]])
    return head, rows


def print_table(figs_path, meta_path):
    head, rows = table_lines(read_figs(figs_path))
    widths = [max(len(str(r[i])) for r in rows + [head]) for i in range(len(head))]
    line = "  ".join(h.ljust(w) for h, w in zip(head, widths))
    print(line)
    print("-" * len(line))
    for r in rows:
        print("  ".join(str(c).ljust(w) for c, w in zip(r, widths)).rstrip())
    print()
    with open(meta_path) as f:
        sys.stdout.write(f.read())


def md_escape(s):
    return str(s).replace("|", "\\|")


def record(figs_path, meta_path, doc):
    head, rows = table_lines(read_figs(figs_path))
    out = [BEGIN, ""]
    with open(meta_path) as f:
        for line in f:
            line = line.rstrip("\n")
            if line:
                k, _, v = line.partition(": ")
                out.append("- **%s**: %s" % (k, md_escape(v)))
    out.append("")
    out.append("| " + " | ".join(head) + " |")
    out.append("|" + "|".join("---" for _ in head) + "|")
    for r in rows:
        out.append("| " + " | ".join(md_escape(c) for c in r) + " |")
    out += ["", END]
    block = "\n".join(out)

    text = ""
    if os.path.exists(doc):
        with open(doc) as f:
            text = f.read()
    if BEGIN in text and END in text:
        pre = text[:text.index(BEGIN)]
        post = text[text.index(END) + len(END):]
        text = pre + block + post
    else:
        text = (text or "# Benchmarks\n") + "\n## Recorded run\n\n" + block + "\n"
    tmp = doc + ".tmp"
    with open(tmp, "w") as f:
        f.write(text)
    os.replace(tmp, doc)


def main(argv):
    if len(argv) >= 3 and argv[1] == "bodies":
        bodies(argv[2])
    elif len(argv) >= 3 and argv[1] == "slowlog":
        slowlog(argv[2])
    elif len(argv) >= 3 and argv[1] == "lateness":
        lateness(argv[2])
    elif len(argv) >= 4 and argv[1] == "sample":
        sample(int(argv[2]), argv[3])
    elif len(argv) >= 4 and argv[1] == "load":
        load_summary(argv[2], argv[3])
    elif len(argv) >= 4 and argv[1] == "table":
        print_table(argv[2], argv[3])
    elif len(argv) >= 5 and argv[1] == "record":
        record(argv[2], argv[3], argv[4])
    else:
        sys.stderr.write(__doc__)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
