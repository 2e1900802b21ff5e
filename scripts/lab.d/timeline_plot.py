#!/usr/bin/python3
"""The picture of a demo run: one SVG timeline drawn from what scripts/demo
recorded (a "run record", below), with matplotlib (Debian's
python3-matplotlib). Pure: a record in, an SVG file out; no lab needed, so
tests/integration/test_demo_timeline.py draws recorded and synthetic runs.

    timeline_plot.py RUN.json [-o OUT.svg]             one run
    timeline_plot.py A.json B.json -o OUT.svg          runs stacked, same scales
                                                       (vipproxy vs haproxy-keepalived)

Top panel: acknowledged writes per second, one line per node that answered
them (where the Director's writes landed), the fault instants (vertical
lines, named), and each client-visible outage shaded with its length.
Bottom panel: which node held the VIP over time (a red band: nobody).

Run record (version 1), every time in seconds since "t0" (CLOCK_MONOTONIC):
  {"version": 1, "frontend": "vipproxy", "title": "...", "started": "ISO date",
   "end": 190.2,
   "scenarios": [{"name": "1. planned switchover", "fault": 12.3,
                  "writer": [10.1, 40.2],                     # the writer ran then
                  "outages": [[12.2, 13.5], [50.0, null]],    # null: did not resume
                  "outage_s": 1.3, "missing": 0,              # null: unknown
                  "missing_after_rejoin": 0}],                # optional (node death)
   "acks": {"catalog01": [10.15, 10.2, ...], "catalog02": [...]},
   "vip": [[0.0, ["catalog01"]], [45.1, []], [46.0, ["catalog02"]]],  # on change
   "events": [[12.3, "fault: ..."], ...]}                     # optional, not drawn
Elements carry ids (SVG <g id=...>) a test or a person can look for:
writes-NODE, fault-N, outage-N-M, vip-NODE, vip-none-K (prefixed rK- for the
K-th run when several are drawn).
"""
import argparse
import json
import math
import os
import sys

NODE_COLORS = ["#1f77b4", "#ff7f0e", "#2ca02c", "#9467bd", "#8c564b"]


def _matplotlib():
    import matplotlib
    matplotlib.use("svg")
    matplotlib.rcParams["svg.hashsalt"] = "vipproxy-demo"  # stable ids between runs
    matplotlib.rcParams["font.family"] = "DejaVu Sans"
    import matplotlib.pyplot as plt
    return plt


def nodes_of(run):
    names = set(run.get("acks", {}))
    for _, holders in run.get("vip", []):
        names.update(holders)
    return sorted(names)


def rate_series(times, windows, bin_s=1.0):
    """Writes per second in 1 s bins, only inside the writer's windows
    (NaN between them: no client was writing, which is not an outage).
    Returns (x, y) for a step plot (where="post")."""
    xs, ys = [], []
    times = sorted(times)
    i = 0
    for start, end in sorted(windows):
        if end is None or end <= start:
            continue
        nbins = max(1, int(math.ceil((end - start) / bin_s)))
        counts = [0] * nbins
        while i < len(times) and times[i] < start:
            i += 1
        j = i
        while j < len(times) and times[j] <= end:
            k = min(nbins - 1, int((times[j] - start) / bin_s))
            counts[k] += 1
            j += 1
        i = j
        for k, c in enumerate(counts):
            width = min(bin_s, end - (start + k * bin_s))
            xs.append(start + k * bin_s)
            ys.append(c / width if width > 0.2 else c / bin_s)
        xs.append(end)
        ys.append(ys[-1] if ys else 0)
        xs.append(end)
        ys.append(float("nan"))
    return xs, ys


def vip_spans(run):
    """[(start, end, holders)] from the change samples, closed at run end."""
    samples = sorted(run.get("vip", []), key=lambda s: s[0])
    end = run.get("end") or (samples[-1][0] if samples else 0)
    out = []
    for k, (t, holders) in enumerate(samples):
        t_next = samples[k + 1][0] if k + 1 < len(samples) else end
        if t_next > t:
            out.append((t, t_next, list(holders)))
    return out


def _draw_run(ax, vax, run, colors, ymax, prefix=""):
    nodes = nodes_of(run)
    windows = [tuple(s["writer"]) for s in run.get("scenarios", []) if s.get("writer")]
    for node in nodes:
        xs, ys = rate_series(run.get("acks", {}).get(node, []), windows)
        if xs:
            (line,) = ax.step(xs, ys, where="post", color=colors[node], linewidth=1.4,
                              label=f"acknowledged on {node}")
            line.set_gid(f"{prefix}writes-{node}")
    for n, s in enumerate(run.get("scenarios", []), 1):
        fault = s.get("fault")
        if fault is not None:
            ln = ax.axvline(fault, color="#b00000", linewidth=1.2, linestyle="--")
            ln.set_gid(f"{prefix}fault-{n}")
            miss = s.get("missing")
            label = s.get("name", f"scenario {n}")
            sub = []
            if s.get("outage_s") is not None:
                sub.append(f"outage {s['outage_s']:.2f} s")
            elif s.get("writer"):
                sub.append("writes did not resume")
            if miss is not None:
                sub.append(f"{miss} acked write{'s' if miss != 1 else ''} missing")
            if s.get("missing_after_rejoin") is not None:
                sub.append(f"{s['missing_after_rejoin']} once the cut-off node rejoined")
            # Neighbouring labels alternate between two heights so they
            # do not run into each other.
            # Near the right end the label goes to the left of its line.
            right = fault > 0.8 * (run.get("end") or fault)
            lines = [label] + sub
            txt = ax.text(fault, ymax * (0.98 if n % 2 else 0.80),
                          "\n".join(f"{x} " if right else f" {x}" for x in lines),
                          rotation=0, va="top", ha="right" if right else "left", fontsize=7.5, color="#700000",
                          bbox={"facecolor": "white", "edgecolor": "none", "alpha": 0.75, "pad": 1})
            txt.set_gid(f"{prefix}fault-label-{n}")
        for m, (a, b) in enumerate(s.get("outages", []), 1):
            unresolved = b is None
            end = b if b is not None else (s.get("writer") or [a, a + 1])[1]
            span = ax.axvspan(a, end, color="#d62728", alpha=0.22, linewidth=0,
                              hatch="//" if unresolved else None)
            span.set_gid(f"{prefix}outage-{n}-{m}")
            ax.text((a + end) / 2, ymax * 0.55, f"{end - a:.2f} s" + (" (no recovery)" if unresolved else ""),
                    rotation=90, ha="center", va="center", fontsize=7, color="#7f0000")
    ax.set_ylim(0, ymax)
    ax.set_ylabel("acknowledged writes / s")
    ax.grid(True, axis="y", alpha=0.3)
    # The VIP holder, one row per node.
    rows = {node: k for k, node in enumerate(nodes)}
    none_k = 0
    held = {}  # node -> [(start, width)]: one element per node in the SVG
    for a, b, holders in vip_spans(run):
        if not holders:
            none_k += 1
            sp = vax.axvspan(a, b, color="#d62728", alpha=0.35, linewidth=0)
            sp.set_gid(f"{prefix}vip-none-{none_k}")
            continue
        for node in holders:
            held.setdefault(node, []).append((a, b - a))
    for node, spans in held.items():
        bars = vax.broken_barh(spans, (rows[node] - 0.35, 0.7), facecolors=colors[node])
        bars.set_gid(f"{prefix}vip-{node}")
    vax.set_yticks(range(len(nodes)))
    vax.set_yticklabels(nodes)
    vax.set_ylim(-0.6, max(len(nodes), 1) - 0.4)
    vax.set_ylabel("VIP on", rotation=0, ha="right", va="center")
    vax.set_xlabel("seconds since the lab was steady")
    for s in run.get("scenarios", []):
        if s.get("fault") is not None:
            vax.axvline(s["fault"], color="#b00000", linewidth=1.0, linestyle="--")


def draw(runs, path):
    """Draws one or more run records (stacked, same y scale) into an SVG at
    path. Returns path."""
    if isinstance(runs, dict):
        runs = [runs]
    plt = _matplotlib()
    all_nodes = sorted({n for r in runs for n in nodes_of(r)})
    colors = {n: NODE_COLORS[k % len(NODE_COLORS)] for k, n in enumerate(all_nodes)}
    peak = 1.0
    for r in runs:
        windows = [tuple(s["writer"]) for s in r.get("scenarios", []) if s.get("writer")]
        for times in r.get("acks", {}).values():
            _, ys = rate_series(times, windows)
            peak = max([peak] + [y for y in ys if y == y])
    ymax = peak * 1.9  # room for the fault labels
    xmax = max((r.get("end") or 0) for r in runs) or 1.0
    fig = plt.figure(figsize=(13, 5.2 * len(runs)))
    # Per run: the writes, the VIP strip, and an empty row that keeps the
    # next run's title off this run's time axis.
    grid = fig.add_gridspec(3 * len(runs), 1, height_ratios=[4, 1, 0.7] * len(runs), hspace=0.08)
    for k, run in enumerate(runs):
        ax = fig.add_subplot(grid[3 * k])
        vax = fig.add_subplot(grid[3 * k + 1], sharex=ax)
        _draw_run(ax, vax, run, colors, ymax, prefix=f"r{k + 1}-" if len(runs) > 1 else "")
        ax.set_xlim(0, xmax)
        ax.tick_params(labelbottom=False)
        title = run.get("title") or f"scripts/demo, frontend {run.get('frontend', '?')}"
        ax.set_title(title + (f" ({run['started']})" if run.get("started") else ""), fontsize=10, loc="left")
        handles, labels = ax.get_legend_handles_labels()
        from matplotlib.patches import Patch
        handles += [Patch(facecolor="#d62728", alpha=0.22, label="client-visible outage"),
                    plt.Line2D([], [], color="#b00000", linestyle="--", label="fault injected")]
        ax.legend(handles=handles, loc="upper left", bbox_to_anchor=(1.005, 1.0), fontsize=7.5, framealpha=0.9)
    fig.savefig(path, format="svg", bbox_inches="tight", metadata={"Date": None})
    plt.close(fig)
    return path


def main(argv=None):
    ap = argparse.ArgumentParser(prog="timeline_plot.py", description=__doc__.split("\n\n")[0])
    ap.add_argument("runs", nargs="+", help="run record(s) written by scripts/demo (demo-*.json)")
    ap.add_argument("-o", "--output", help="SVG to write (default: the first record's name, .svg)")
    a = ap.parse_args(argv)
    runs = []
    for p in a.runs:
        with open(p) as f:
            runs.append(json.load(f))
    out = a.output or os.path.splitext(a.runs[0])[0] + ".svg"
    print(draw(runs, out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
