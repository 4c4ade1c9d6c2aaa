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


if __name__ == "__main__":
    unittest.main()
