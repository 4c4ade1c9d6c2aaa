#!/usr/bin/env python3
"""Writes N greylight records as Redis commands (RESP, for `redis-cli --pipe`), for
measuring the memory per record of a Redis or Redis Cluster store (docs/scaling.md).

    python3 bench/redis_records.py N [--plain] | redis-cli -p PORT --pipe

N triplets "<prefix>t:{tag}<network>/<sender>/<recipient>" = "first,last" and one client
record per ten triplets, keyed as greylightd keys them on a cluster (--plain: as on one
Redis, without the hash tag), with the TTL of a passed record (max-age 35 days). Random
client networks, senders and recipients of typical length; seed 1, so runs repeat."""
import random
import sys

WORDS = ["alice", "bob", "carol", "dave", "newsletter", "billing", "noreply", "info",
         "support", "team"]
DOMAINS = ["example.net", "example.org", "mail.example.com", "lists.example.info",
           "shop.example.de"]
TTL = 35 * 86400 + 1


def resp(*args):
    out = [f"*{len(args)}\r\n"]
    for arg in args:
        arg = str(arg)
        out.append(f"${len(arg.encode())}\r\n{arg}\r\n")
    return "".join(out)


def main():
    n = int(sys.argv[1])
    plain = "--plain" in sys.argv[2:]
    rnd = random.Random(1)
    write = sys.stdout.write
    for i in range(n):
        a, b, c = rnd.randrange(1, 224), rnd.randrange(256), rnd.randrange(256)
        tag = "" if plain else f"{{{a}.{b}.0.0}}"
        sender = f"{rnd.choice(WORDS)}{rnd.randrange(1000)}@{rnd.choice(DOMAINS)}"
        recipient = f"{rnd.choice(WORDS)}@{rnd.choice(DOMAINS)}"
        first = 1800000000 + rnd.randrange(86400)
        write(resp("SET", f"greylight:t:{tag}{a}.{b}.{c}.0/{sender}/{recipient}",
                   f"{first},{first + 300}", "EX", TTL))
        if i % 10 == 0:
            write(resp("SET", f"greylight:c:{tag}{a}.{b}.{c}.{rnd.randrange(1, 255)}",
                       f"{rnd.randrange(1, 9)},{first}", "EX", TTL))


if __name__ == "__main__":
    main()
