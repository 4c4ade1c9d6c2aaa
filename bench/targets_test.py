#!/usr/bin/env python3
"""bench/targets.py: each target passes, fails or is not measured from the rows it reads."""

import os
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import targets  # noqa: E402


def row(server, mode, connections, rps, p99=1.0):
    return {"server": server, "mode": mode, "connections": connections, "rps": rps, "p99_ms": p99}


class TargetsTest(unittest.TestCase):
    def verdicts(self, results, large=()):
        return {name: (value, result) for name, value, result in targets.targets(results, list(large))}

    def test_pass_fail_and_missing(self):
        results = [row("null", "hot", 8, 1000, 1.0), row("greylightd", "hot", 8, 850, 2.5),
                   row("null", "mixed", 64, 1000), row("greylightd", "mixed", 64, 590),
                   row("postgrey", "mixed", 64, 10), row("postgrey", "hot", 8, 20)]
        v = self.verdicts(results)
        self.assertEqual(v["hot, 8 conns: greylightd / null req/s >= 0.8"], ("0.85", "pass"))
        self.assertEqual(v["hot, 8 conns: greylightd p99 / null p99 <= 2"], ("2.50", "**fail**"))
        self.assertEqual(v["mixed, 64 conns: greylightd / null req/s >= 0.6"], ("0.59", "**fail**"))
        self.assertEqual(v["hot, 64 conns: greylightd / null req/s >= 0.8"], ("n/a", "not measured"))
        # The lowest of the LMDB rows against postgrey decides (hot 8: 42x), with the null
        # server's ratio in that row beside it, the most any server could reach there.
        self.assertEqual(v["every LMDB row: greylightd / postgrey req/s >= 50 (lowest row)"],
                         ("42x (hot, 8 conns; null server 50x)", "**fail**"))

    def test_large_database(self):
        large = [{"label": "empty", "rps8": 100, "rps64": 100, "anon_end_kb": 40000,
                  "first_answer_ms": 20},
                 {"label": "large", "rps8": 85, "rps64": 70, "anon_end_kb": 44000,
                  "first_answer_ms": 1200}]
        v = self.verdicts([], large)
        self.assertEqual(v["large database, mixed, 8 conns: req/s / empty database's >= 0.8"][1], "pass")
        self.assertEqual(v["large database, mixed, 64 conns: req/s / empty database's >= 0.8"][1],
                         "**fail**")
        self.assertEqual(v["large database: start-up to first answer < 1 s"], ("1200 ms", "**fail**"))
        self.assertEqual(v["large database: anonymous memory / empty database's <= 1.25"],
                         ("1.10", "pass"))

    def test_large_database_rounds_are_paired(self):
        # Each round's large figure is divided by the same round's empty one, and the median
        # of those ratios is the target's value: 0.90, 0.90 and 0.64 give 0.90, where the
        # ratio of the medians, taken from different rounds, would give 70 / 100 = 0.70.
        def line(label, round_number, rps, first=50):
            return {"label": label, "round": round_number, "rps8": rps, "rps64": rps,
                    "anon_start_kb": 1000, "anon_end_kb": 40000, "first_answer_ms": first,
                    "file_end_kb": 2048, "p99_8": 0.5, "p99_64": 2.0}
        large = [line("empty", 1, 100), line("large", 1, 90, 120),
                 line("large", 2, 54, 900), line("empty", 2, 60),
                 line("empty", 3, 110), line("large", 3, 70, 130),
                 line("large", 4, 70)]  # a round without its empty half is left out
        v = self.verdicts([], large)
        self.assertEqual(v["large database, mixed, 8 conns: req/s / empty database's >= 0.8"],
                         ("0.90", "pass"))
        self.assertEqual(v["large database: start-up to first answer < 1 s"], ("130 ms", "pass"))
        table = targets.large_table(large)
        self.assertEqual(len(table), 6)
        self.assertEqual(table[1], "| mixed, 8 connections, req/s (p99 ms) | 100 (0.5) / 60 (0.5) / "
                                   "110 (0.5) | 90 (0.5) / 54 (0.5) / 70 (0.5) | 0.90 |")
        self.assertEqual(table[0], "| start-up to first answer | 50 ms / 50 ms / 50 ms | "
                                   "120 ms / 900 ms / 130 ms | |")

if __name__ == "__main__":
    unittest.main()
