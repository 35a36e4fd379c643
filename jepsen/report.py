#!/usr/bin/env python3
"""report.py: draw report.html for one run of tuplekv's fault-injection
harness (Python 3 standard library only).

    python3 jepsen/report.py jepsen/store/<run>/

Reads history.jsonl, results.json, harness.json and status.jsonl from the
run directory and writes report.html next to them: one self-contained page
(inline SVG, no scripts from anywhere) with

  - the verdict, the run's configuration and counts;
  - the fault windows, one lane per fault kind;
  - a timeline of operations, one row per client worker (a retired process
    continues on its worker's row), each op a bar from invoke to completion
    coloured ok / fail / info, ops named by an anomaly outlined in black;
  - latency of every op over time (log scale) and throughput per second;
  - the leader over time and each node's state-machine clock against real
    time (a clock fault shows as a step; a step down would be a bug);
  - every anomaly with the history lines of the ops it names, the harness's
    own findings (crashes, sanitizer reports, clock checks) and the nemesis
    events.
Fault windows are shaded behind every time plot.
"""
import html
import json
import math
import os
import sys

W = 1200           # drawing width
LEFT = 110         # room for row labels
RIGHT = 20
COLORS = {"ok": "#2e9e4f", "fail": "#d6453d", "info": "#e8a33d"}
FAULT_COLORS = {
    "partition": "#6b8fd6", "kill": "#d65b5b", "pause": "#9a6bd6",
    "clock": "#d6b84a", "member": "#4ab8b0", "other": "#999999",
}
NODE_COLORS = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd",
               "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22"]
MAX_TOOLTIPS = 20000
MAX_ANOMALIES_SHOWN = 20


def esc(x):
    return html.escape(str(x), quote=True)


def load_jsonl(path):
    out = []
    if not os.path.exists(path):
        return out
    with open(path) as f:
        for line in f:
            line = line.strip()
            if line:
                try:
                    out.append(json.loads(line))
                except ValueError:
                    pass
    return out


def load_json(path, default):
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError):
        return default


def short(v, n=300):
    s = json.dumps(v, separators=(",", ":"))
    return s if len(s) <= n else s[: n - 3] + "..."


class Run:
    def __init__(self, d):
        self.dir = d
        self.lines = load_jsonl(os.path.join(d, "history.jsonl"))
        self.status = load_jsonl(os.path.join(d, "status.jsonl"))
        self.results = load_json(os.path.join(d, "results.json"), {})
        self.harness = load_json(os.path.join(d, "harness.json"), {})
        if not self.harness and "harness" in self.results:
            self.harness = self.results["harness"]
        self.config = self.harness.get("config", {})
        self.conc = int(self.config.get("concurrency", 1) or 1)
        self.ops = []
        self.faults = []
        self.nemesis = []
        self.by_index = {}
        self.pair_ops()
        self.pair_faults()
        self.marked = self.anomalous_indices()
        times = [l.get("time", 0) for l in self.lines if "time" in l]
        times += [s.get("t", 0) for s in self.status]
        self.t_end = max(times) / 1e9 if times else 1.0
        self.t_end = max(self.t_end, 1.0)

    def pair_ops(self):
        open_ops = {}
        for l in self.lines:
            self.by_index[l.get("index")] = l
            p = l.get("process")
            if not isinstance(p, int):
                self.nemesis.append(l)
                continue
            t = l.get("time", 0) / 1e9
            if l.get("type") == "invoke":
                op = {"process": p, "f": l.get("f"), "start": t, "end": None,
                      "type": None, "value": l.get("value"), "result": None,
                      "invoke": l.get("index"), "complete": None,
                      "error": None}
                open_ops[p] = op
                self.ops.append(op)
            else:
                op = open_ops.pop(p, None)
                if op is None:
                    continue
                op["end"] = t
                op["type"] = l.get("type")
                op["result"] = l.get("value")
                op["complete"] = l.get("index")
                op["error"] = l.get("error")
        for op in open_ops.values():
            op["end"] = None
            op["type"] = "info"
            op["error"] = "no completion in the history"

    def pair_faults(self):
        started = {}
        for l in self.nemesis:
            f = l.get("f", "")
            t = l.get("time", 0) / 1e9
            if f.startswith("start-"):
                kind = f[6:]
                started.setdefault(kind, []).append((t, l))
            elif f.startswith("stop-"):
                kind = f[5:]
                if started.get(kind):
                    t0, l0 = started[kind].pop(0)
                    self.faults.append((kind, t0, t, l0.get("value"), l.get("value")))
            elif f == "heal":
                for kind, lst in started.items():
                    for t0, l0 in lst:
                        self.faults.append((kind, t0, t, l0.get("value"), None))
                started = {}
        for kind, lst in started.items():
            for t0, l0 in lst:
                self.faults.append((kind, t0, last_time(self.lines), l0.get("value"), None))

    def anomalous_indices(self):
        marked = set()

        def walk(x, key=None):
            if isinstance(x, dict):
                for k, v in x.items():
                    walk(v, k)
            elif isinstance(x, list):
                for v in x:
                    walk(v, key)
            elif isinstance(x, int) and key in ("ops", "op", "index"):
                marked.add(x)
        walk(self.results.get("anomalies", {}))
        return marked

    def is_marked(self, op):
        return op["invoke"] in self.marked or op["complete"] in self.marked


def last_time(lines):
    times = [l.get("time", 0) for l in lines if "time" in l]
    return max(times) / 1e9 if times else 1.0


# ---------------------------------------------------------------------------
# SVG helpers
# ---------------------------------------------------------------------------

class Plot:
    def __init__(self, run, height, title):
        self.run = run
        self.h = height
        self.title = title
        self.parts = []

    def x(self, t):
        return LEFT + (W - LEFT - RIGHT) * (t / self.run.t_end)

    def add(self, s):
        self.parts.append(s)

    def shade_faults(self, top, bottom):
        for kind, t0, t1, _, _ in self.run.faults:
            c = FAULT_COLORS.get(kind, FAULT_COLORS["other"])
            x0, x1 = self.x(t0), self.x(t1)
            self.add('<rect x="%.1f" y="%d" width="%.1f" height="%d" fill="%s" '
                     'fill-opacity="0.13"/>' % (x0, top, max(x1 - x0, 1), bottom - top, c))

    def time_axis(self, y):
        step = nice_step(self.run.t_end / 12)
        t = 0.0
        while t <= self.run.t_end + 1e-9:
            x = self.x(t)
            self.add('<line x1="%.1f" y1="%d" x2="%.1f" y2="%d" stroke="#ccc"/>' % (x, 0, x, y))
            self.add('<text x="%.1f" y="%d" font-size="10" text-anchor="middle">%gs</text>'
                     % (x, y + 12, round(t, 3)))
            t += step

    def svg(self):
        return ('<h2>%s</h2><svg width="%d" height="%d" xmlns="http://www.w3.org/2000/svg" '
                'font-family="sans-serif">%s</svg>' % (esc(self.title), W, self.h + 16,
                                                        "".join(self.parts)))


def nice_step(x):
    if x <= 0:
        return 1
    e = 10 ** math.floor(math.log10(x))
    for m in (1, 2, 5, 10):
        if m * e >= x:
            return m * e
    return 10 * e


# ---------------------------------------------------------------------------
# panels
# ---------------------------------------------------------------------------

def fault_panel(run):
    kinds = ["partition", "kill", "pause", "clock", "member"]
    extra = sorted({k for k, *_ in run.faults if k not in kinds})
    kinds = [k for k in kinds if any(f[0] == k for f in run.faults)] + extra
    lane = 18
    p = Plot(run, max(len(kinds), 1) * lane + 4, "Faults")
    p.time_axis(p.h)
    if not kinds:
        p.add('<text x="%d" y="14" font-size="12">no faults</text>' % LEFT)
    for i, k in enumerate(kinds):
        y = i * lane + 2
        p.add('<text x="4" y="%d" font-size="11">%s</text>' % (y + 12, esc(k)))
        for kind, t0, t1, v0, v1 in run.faults:
            if kind != k:
                continue
            x0, x1 = p.x(t0), p.x(t1)
            c = FAULT_COLORS.get(k, FAULT_COLORS["other"])
            label = short(v0, 120) if v0 is not None else ""
            p.add('<rect x="%.1f" y="%d" width="%.1f" height="%d" fill="%s" fill-opacity="0.7">'
                  '<title>%s %.2fs-%.2fs %s</title></rect>'
                  % (x0, y, max(x1 - x0, 2), lane - 4, c, esc(k), t0, t1, esc(label)))
            if x1 - x0 > 60 and isinstance(v0, dict):
                txt = v0.get("kind") or v0.get("target") or ""
                if "nodes" in v0:
                    txt += " " + ",".join(str(n) for n in v0["nodes"])
                elif "node" in v0:
                    txt += " n%s" % v0["node"]
                    if "skew_s" in v0:
                        txt += " %+ds" % v0["skew_s"]
                elif "remove" in v0:
                    txt += "remove n%s" % v0["remove"]
                p.add('<text x="%.1f" y="%d" font-size="9" fill="#fff">%s</text>'
                      % (x0 + 2, y + 10, esc(txt)))
    return p.svg()


def timeline_panel(run):
    rows = {}
    for op in run.ops:
        rows.setdefault(op["process"] % run.conc, []).append(op)
    slots = sorted(rows)
    row_h = 16
    p = Plot(run, len(slots) * row_h + 4, "Operations (one row per worker; "
             "outlined: named by an anomaly)")
    p.shade_faults(0, p.h)
    p.time_axis(p.h)
    tooltips = len(run.ops) <= MAX_TOOLTIPS
    for r, slot in enumerate(slots):
        y = r * row_h + 2
        p.add('<text x="4" y="%d" font-size="11">worker %s</text>' % (y + 11, esc(slot)))
        for op in rows[slot]:
            end = op["end"] if op["end"] is not None else run.t_end
            x0, x1 = p.x(op["start"]), p.x(end)
            c = COLORS.get(op["type"], "#888")
            marked = run.is_marked(op)
            attrs = ' stroke="#000" stroke-width="2"' if marked else ""
            tip = ""
            if tooltips or marked:
                tip = "<title>%s</title>" % esc(
                    "p%s %s %s %.1f ms (lines %s-%s)\nvalue: %s\nresult: %s%s" % (
                        op["process"], op["f"], op["type"],
                        (end - op["start"]) * 1000, op["invoke"], op["complete"],
                        short(op["value"]), short(op["result"]),
                        ("\nerror: " + op["error"]) if op["error"] else ""))
            p.add('<rect x="%.2f" y="%d" width="%.2f" height="%d" fill="%s"%s>%s</rect>'
                  % (x0, y, max(x1 - x0, 0.8), row_h - 4, c, attrs, tip))
    return p.svg()


def latency_panel(run):
    h = 220
    p = Plot(run, h, "Latency (log scale) and throughput")
    p.shade_faults(0, h)
    p.time_axis(h)
    lats = [((op["end"] - op["start"]) * 1000, op) for op in run.ops if op["end"] is not None]
    if not lats:
        return p.svg()
    lo = max(min(l for l, _ in lats), 0.05)
    hi = max(max(l for l, _ in lats), lo * 10)
    llo, lhi = math.log10(lo), math.log10(hi)

    def y(ms):
        v = math.log10(max(ms, lo))
        return h - 4 - (h - 10) * (v - llo) / (lhi - llo)
    d = 10 ** math.floor(llo)
    while d <= hi:
        if d >= lo:
            p.add('<line x1="%d" y1="%.1f" x2="%d" y2="%.1f" stroke="#eee"/>'
                  % (LEFT, y(d), W - RIGHT, y(d)))
            p.add('<text x="%d" y="%.1f" font-size="10" text-anchor="end">%g ms</text>'
                  % (LEFT - 4, y(d) + 3, d))
        d *= 10
    for ms, op in lats:
        p.add('<circle cx="%.1f" cy="%.1f" r="1.6" fill="%s" fill-opacity="0.6"/>'
              % (p.x(op["start"]), y(ms), COLORS.get(op["type"], "#888")))
    # throughput: completions per second, by type
    secs = int(math.ceil(run.t_end)) + 1
    counts = {t: [0] * secs for t in COLORS}
    for op in run.ops:
        if op["end"] is not None and op["type"] in counts:
            counts[op["type"]][int(op["end"])] += 1
    peak = max(max(v) for v in counts.values()) or 1
    for t, v in counts.items():
        pts = " ".join("%.1f,%.1f" % (p.x(i + 0.5), h - 4 - (h - 10) * 0.35 * c / peak)
                       for i, c in enumerate(v))
        p.add('<polyline points="%s" fill="none" stroke="%s" stroke-width="1.2" '
              'stroke-dasharray="4,2"/>' % (pts, COLORS[t]))
    p.add('<text x="%d" y="12" font-size="10">dots: latency of each op at its invoke; '
          'dashed: completions per second (peak %d/s)</text>' % (LEFT + 4, peak))
    return p.svg()


def cluster_panel(run):
    if not run.status:
        return ""
    nodes = sorted({s["node"] for s in run.status})
    lane = 16
    top = lane + 8
    h = top + 160
    p = Plot(run, h, "Cluster: leader, and each node's state-machine clock minus real time")
    p.shade_faults(0, h)
    p.time_axis(h)
    p.add('<text x="4" y="%d" font-size="11">leader</text>' % (lane - 2))
    # leader lane: color by the node that says it is leader (highest term)
    samples = sorted((s for s in run.status if s.get("role") == "leader"),
                     key=lambda s: s["t"])
    for s in samples:
        t = s["t"] / 1e9
        c = NODE_COLORS[(s["node"] - 1) % len(NODE_COLORS)]
        p.add('<rect x="%.1f" y="2" width="%.1f" height="%d" fill="%s">'
              '<title>n%d leader, term %d</title></rect>'
              % (p.x(t), max(p.x(t + 0.2) - p.x(t), 1), lane - 4, c, s["node"], s["term"]))
    # sm time drift: sm_time_ms - (t_ms + base), base from the first sample
    first = min(run.status, key=lambda s: s["t"])
    base = first["sm_time"] - first["t"] / 1e6
    drifts = []
    for s in run.status:
        if s.get("sm_time", 0) > 0 and s.get("applied", 0) > 0:
            drifts.append((s, (s["sm_time"] - s["t"] / 1e6 - base) / 1000.0))
    if not drifts:
        return p.svg()
    dlo = min(d for _, d in drifts)
    dhi = max(d for _, d in drifts)
    if dhi - dlo < 2:
        dhi, dlo = dhi + 1, dlo - 1

    def y(d):
        return h - 4 - (h - top - 10) * (d - dlo) / (dhi - dlo)
    for v in (dlo, 0, dhi):
        if dlo <= v <= dhi:
            p.add('<line x1="%d" y1="%.1f" x2="%d" y2="%.1f" stroke="#eee"/>'
                  % (LEFT, y(v), W - RIGHT, y(v)))
            p.add('<text x="%d" y="%.1f" font-size="10" text-anchor="end">%+.1fs</text>'
                  % (LEFT - 4, y(v) + 3, v))
    for n in nodes:
        pts = sorted((s["t"] / 1e9, d) for s, d in drifts if s["node"] == n)
        c = NODE_COLORS[(n - 1) % len(NODE_COLORS)]
        # one line per stretch of answers: a gap (node down, paused,
        # unreachable) breaks it
        seg = []
        for i, (t, d) in enumerate(pts + [(None, None)]):
            if t is None or (seg and t - seg[-1][0] > 1.0):
                if seg:
                    p.add('<polyline points="%s" fill="none" stroke="%s" stroke-width="1.3"/>'
                          % (" ".join("%.1f,%.1f" % (p.x(a), y(b)) for a, b in seg), c))
                seg = []
            if t is not None:
                seg.append((t, d))
    legend = " ".join('<tspan fill="%s">n%d</tspan>' % (NODE_COLORS[(n - 1) % len(NODE_COLORS)], n)
                      for n in nodes)
    p.add('<text x="%d" y="%d" font-size="10">%s &#8212; state-machine time minus real time '
          '(s); flat when the leader clock is true</text>' % (LEFT + 4, top + 4, legend))
    return p.svg()


# ---------------------------------------------------------------------------
# tables
# ---------------------------------------------------------------------------

def verdict_html(run):
    v = run.results.get("valid", "unknown")
    cls = {True: "valid", False: "invalid"}.get(v, "unknown")
    text = {True: "VALID", False: "INVALID"}.get(v, "UNKNOWN")
    parts = ['<div class="verdict %s">%s</div>' % (cls, text)]
    types = run.results.get("anomaly_types") or []
    counts = run.results.get("anomaly_counts") or {}
    if types:
        parts.append("<p>Anomalies: %s</p>" % ", ".join(
            '<a href="#a-%s">%s</a> (%s)' % (esc(t), esc(t), esc(counts.get(t, "?")))
            for t in types))
    if run.results.get("error"):
        parts.append("<p>Checker error: %s</p>" % esc(run.results["error"]))
    for n in (run.results.get("notes") or []) + (run.harness.get("notes") or []):
        parts.append("<p class=note>%s</p>" % esc(n))
    return "".join(parts)


def config_html(run):
    c = run.config
    stats = run.harness.get("stats", {})
    rows = [
        ("workload", c.get("workload")),
        ("nemesis", ", ".join(c.get("nemesis", [])) or "none"),
        ("time", "%s s" % c.get("time_s")),
        ("rate / concurrency", "%s ops/s / %s processes" % (c.get("rate"), c.get("concurrency"))),
        ("nodes", c.get("nodes")),
        ("seed", c.get("seed")),
        ("snapshot threshold", c.get("snapshot_threshold")),
        ("ops", "%s invoked: %s ok, %s fail, %s info" % (
            stats.get("invokes"), stats.get("ok"), stats.get("fail"), stats.get("info"))),
        ("node starts", short(stats.get("node_starts"))),
        ("sm-time samples", "%s (backwards: %s, log-order violations: %s)" % (
            stats.get("status_samples"), stats.get("sm_time_backwards"),
            stats.get("sm_time_log_order_violations"))),
        ("checker stats", short(run.results.get("stats"), 600)),
        ("directory", run.dir),
    ]
    return "<table class=kv>%s</table>" % "".join(
        "<tr><th>%s</th><td>%s</td></tr>" % (esc(k), esc(v)) for k, v in rows)


def anomalies_html(run):
    an = run.results.get("anomalies") or {}
    if not an:
        return ""
    out = ["<h2>Anomalies</h2>"]
    for t in sorted(an):
        items = an[t] if isinstance(an[t], list) else [an[t]]
        out.append('<h3 id="a-%s">%s (%d)</h3>' % (esc(t), esc(t), len(items)))
        for a in items[:MAX_ANOMALIES_SHOWN]:
            out.append("<pre>%s</pre>" % esc(json.dumps(a, indent=1)[:6000]))
            idx = []

            def walk(x, key=None):
                if isinstance(x, dict):
                    for k, v in x.items():
                        walk(v, k)
                elif isinstance(x, list):
                    for v in x:
                        walk(v, key)
                elif isinstance(x, int) and key in ("ops", "op", "index"):
                    idx.append(x)
            walk(a)
            lines = []
            for i in sorted(set(idx)):
                l = run.by_index.get(i)
                if l is None:
                    continue
                # show the op's invoke line too
                if l.get("type") != "invoke":
                    for op in run.ops:
                        if op["complete"] == i and op["invoke"] in run.by_index:
                            lines.append(run.by_index[op["invoke"]])
                            break
                lines.append(l)
            if lines:
                out.append("<p>history lines:</p><pre class=hist>%s</pre>" % esc(
                    "\n".join(json.dumps(l, separators=(",", ":"))[:1000] for l in lines)))
        if len(items) > MAX_ANOMALIES_SHOWN:
            out.append("<p>... %d more in results.json</p>" % (len(items) - MAX_ANOMALIES_SHOWN))
    return "".join(out)


def nemesis_html(run):
    if not run.nemesis:
        return ""
    rows = "".join("<tr><td>%.3f</td><td>%s</td><td><code>%s</code></td></tr>" % (
        l.get("time", 0) / 1e9, esc(l.get("f")), esc(short(l.get("value"), 400)))
        for l in run.nemesis)
    return ("<h2>Nemesis events</h2><table class=list><tr><th>time (s)</th><th>f</th>"
            "<th>value</th></tr>%s</table>" % rows)


def files_html(run):
    names = sorted(os.listdir(run.dir))
    links = " ".join('<a href="%s">%s</a>' % (esc(n), esc(n)) for n in names
                     if os.path.isfile(os.path.join(run.dir, n)))
    return "<h2>Files</h2><p>%s</p>" % links


CSS = """
body { font-family: sans-serif; margin: 16px; color: #222; }
h1 { font-size: 20px; } h2 { font-size: 16px; margin-top: 24px; } h3 { font-size: 14px; }
.verdict { display: inline-block; padding: 4px 12px; font-weight: bold; color: #fff;
           border-radius: 4px; font-size: 18px; }
.valid { background: #2e9e4f; } .invalid { background: #d6453d; } .unknown { background: #888; }
table.kv th { text-align: left; padding-right: 12px; vertical-align: top; }
table.kv td { font-family: monospace; font-size: 12px; }
table.list td, table.list th { font-size: 12px; padding: 1px 8px; text-align: left; }
pre { background: #f6f6f6; padding: 6px; font-size: 11px; overflow-x: auto; max-height: 400px; }
pre.hist { background: #fff7e6; }
.note { color: #555; font-style: italic; }
.legend span { display: inline-block; padding: 0 8px; margin-right: 6px; color: #fff; font-size: 12px; }
"""


def main():
    if len(sys.argv) != 2:
        print(__doc__.strip().split("\n\n")[1], file=sys.stderr)
        return 64
    d = sys.argv[1].rstrip("/")
    run = Run(d)
    title = "tuplekv %s: %s" % (run.config.get("workload", "?"), os.path.basename(os.path.abspath(d)))
    legend = "".join('<span style="background:%s">%s</span>' % (c, t) for t, c in COLORS.items())
    legend += "".join('<span style="background:%s">%s</span>' % (c, t)
                      for t, c in FAULT_COLORS.items() if t != "other")
    body = [
        "<h1>%s</h1>" % esc(title),
        verdict_html(run),
        config_html(run),
        '<p class="legend">%s</p>' % legend,
        fault_panel(run),
        timeline_panel(run),
        latency_panel(run),
        cluster_panel(run),
        anomalies_html(run),
        nemesis_html(run),
        files_html(run),
    ]
    page = ("<!DOCTYPE html><html><head><meta charset=\"utf-8\"><title>%s</title>"
            "<style>%s</style></head><body>%s</body></html>" % (esc(title), CSS, "\n".join(body)))
    out = os.path.join(d, "report.html")
    with open(out, "w") as f:
        f.write(page)
    return 0


if __name__ == "__main__":
    sys.exit(main())
