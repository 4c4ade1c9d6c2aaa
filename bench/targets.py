#!/usr/bin/env python3
"""Issue 15's targets against one run of bench/run.sh: a Markdown table, one row per target,
with the measured value and pass or fail (or "not measured" when a row is missing).

    python3 bench/targets.py RESULTS.jsonl [LARGE.jsonl]
    python3 bench/targets.py --large-table LARGE.jsonl

RESULTS.jsonl holds greylight-bench's JSON objects with a "server" key added, LARGE.jsonl
run.sh's large-database lines (labels "empty" and "large", and the round of each). The
large database is measured against the empty one round by round, side by side: its targets
are the median of the rounds' ratios. --large-table prints the rows of run.sh's
large-database table.
"""

import json
import statistics
import sys

# A large database's anonymous memory counts as independent of the record count when it is
# within this factor of the empty database's, after the same runs.
ANON_MEMORY_FACTOR = 1.25


def load(path):
    with open(path) as f:
        return [json.loads(line) for line in f if line.strip()]


def find(rows, server, mode, connections):
    for row in rows:
        if (row.get("server"), row.get("mode"), row.get("connections")) == (server, mode, connections):
            return row
    return None


def ratio(a, b):
    if a is None or b is None or b == 0:
        return None
    return a / b


def verdict(value, bound, at_least):
    if value is None:
        return "not measured"
    ok = value >= bound if at_least else value <= bound
    return "pass" if ok else "**fail**"


def targets(results, large):
    rows = []

    def add(name, value, bound, at_least, shown=None):
        text = "n/a" if value is None else (shown if shown is not None else f"{value:.2f}")
        rows.append((name, text, verdict(value, bound, at_least)))

    def field(row, key):
        return None if row is None else row.get(key)

    for connections in (8, 64):
        g, n = find(results, "greylightd", "hot", connections), find(results, "null", "hot", connections)
        add(f"hot, {connections} conns: greylightd / null req/s >= 0.8",
            ratio(field(g, "rps"), field(n, "rps")), 0.8, True)
        add(f"hot, {connections} conns: greylightd p99 / null p99 <= 2",
            ratio(field(g, "p99_ms"), field(n, "p99_ms")), 2.0, False)
    for connections in (8, 64):
        g, n = find(results, "greylightd", "mixed", connections), find(results, "null", "mixed", connections)
        add(f"mixed, {connections} conns: greylightd / null req/s >= 0.6",
            ratio(field(g, "rps"), field(n, "rps")), 0.6, True)
    lmdb = [r for r in results if r.get("server") == "greylightd"]
    worst = None
    for row in lmdb:
        mode, connections = row["mode"], row["connections"]
        p = find(results, "postgrey", mode, connections)
        value = ratio(row.get("rps"), field(p, "rps"))
        if value is not None and (worst is None or value < worst[0]):
            # The null server's own ratio in that row: the most any server could reach.
            bound = ratio(field(find(results, "null", mode, connections), "rps"), field(p, "rps"))
            worst = (value, mode, connections, bound)
    shown = None
    if worst:
        shown = f"{worst[0]:.0f}x ({worst[1]}, {worst[2]} conns"
        shown += f"; null server {worst[3]:.0f}x)" if worst[3] is not None else ")"
    add("every LMDB row: greylightd / postgrey req/s >= 50 (lowest row)",
        worst[0] if worst else None, 50, True, shown)
    for mode in ("hot", "mixed"):
        r, n = find(results, "greylightd-redis", mode, 64), find(results, "null", mode, 64)
        add(f"Redis, {mode}, 64 conns: greylightd / null req/s >= 0.4",
            ratio(field(r, "rps"), field(n, "rps")), 0.4, True)
    summary = large_summary(large)
    for connections in (8, 64):
        add(f"large database, mixed, {connections} conns: req/s / empty database's >= 0.8",
            summary[f"rps{connections}"], 0.8, True)
    first = summary["first_answer_ms"]
    add("large database: start-up to first answer < 1 s", first, 999.999, False,
        None if first is None else f"{first:.0f} ms")
    add(f"large database: anonymous memory / empty database's <= {ANON_MEMORY_FACTOR}",
        summary["anon_end_kb"], ANON_MEMORY_FACTOR, False)
    return rows


def large_rounds(large):
    """(empty, large) line pairs, one per round that measured both, in round order."""
    by_round = {}
    for line in large:
        by_round.setdefault(line.get("round", 1), {})[line.get("label")] = line
    return [(r["empty"], r["large"]) for _, r in sorted(by_round.items())
            if "empty" in r and "large" in r]


def median(values):
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None


def large_summary(large):
    """The large database's figures: the median over rounds of its ratio to the empty
    database's in the same round (throughput, memory) and of its start-up time."""
    pairs = large_rounds(large)
    summary = {key: median(ratio(big.get(key), empty.get(key)) for empty, big in pairs)
               for key in ("rps8", "rps64", "anon_start_kb", "anon_end_kb")}
    summary["first_answer_ms"] = median(big.get("first_answer_ms") for _, big in pairs)
    return summary


def large_table(large):
    """run.sh's large-database table: every round's figures, and the median ratio."""
    pairs = large_rounds(large)
    summary = large_summary(large)

    def each(label_index, render):
        return " / ".join(render(pair[label_index]) for pair in pairs)

    def shown(value):
        return "n/a" if value is None else f"{value:.2f}"

    def mib(kb):
        return "n/a" if kb is None else f"{kb // 1024} MiB"

    lines = ["| start-up to first answer | "
             + each(0, lambda l: f"{l.get('first_answer_ms')} ms") + " | "
             + each(1, lambda l: f"{l.get('first_answer_ms')} ms") + " | |"]
    for connections in (8, 64):
        rps, p99 = f"rps{connections}", f"p99_{connections}"
        lines.append(f"| mixed, {connections} connections, req/s (p99 ms) | "
                     + each(0, lambda l: f"{l.get(rps)} ({l.get(p99)})") + " | "
                     + each(1, lambda l: f"{l.get(rps)} ({l.get(p99)})") + f" | {shown(summary[rps])} |")
    for key, name in (("anon_start_kb", "anonymous memory after start"),
                      ("anon_end_kb", "anonymous memory after the runs")):
        lines.append(f"| {name} | " + each(0, lambda l: mib(l.get(key))) + " | "
                     + each(1, lambda l: mib(l.get(key))) + f" | {shown(summary[key])} |")
    lines.append("| file-backed memory after the runs (LMDB map) | "
                 + each(0, lambda l: mib(l.get("file_end_kb"))) + " | "
                 + each(1, lambda l: mib(l.get("file_end_kb"))) + " | |")
    return lines


def main(argv):
    if len(argv) == 3 and argv[1] == "--large-table":
        for line in large_table(load(argv[2])):
            print(line)
        return 0
    if len(argv) not in (2, 3):
        print(__doc__.strip(), file=sys.stderr)
        return 2
    results = load(argv[1])
    large = load(argv[2]) if len(argv) == 3 else []
    print("| target | measured | result |")
    print("|---|---:|---|")
    for name, value, result in targets(results, large):
        print(f"| {name} | {value} | {result} |")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
