"""The modelled senders of bench/delay_simulation.py: their addresses and names, their SPF
records (served by unbound), their messages and when and from where they retry.

Everything is drawn from random.Random instances seeded from the simulation's seed, so a
seed gives the same world and the same messages on every machine. The providers are
fictional (names under .example, addresses picked from ranges chosen for the model); the
behaviours are models of what operators report, not measurements:

  bigmail    (Gmail-like) a large pool: 48 /24 networks in one /17, verified names
             mail-<code>-f<host>.bigmail.example; retries about 5, 10, 20, 40, 80 and 160
             minutes after the first attempt, then every 4 hours, for 4 days, each from a
             random address of the pool. Consumer senders user<n>@bigmail.example; SPF
             include of the /17, "~all".
  cloudmail  (Office-365-like) customers' own domains (cust-<n>.example) sending through
             a pool of 64 /24 networks in one /16, verified names
             mail-<region><n>on<k>.outbound.protection.cloudmail.example; a new host every
             retry, every 15 minutes for 24 hours. SPF: each customer includes the /16.
  bulkmail   (Amazon-SES-like) customers' domains (shop-<n>.example), VERP bounce senders,
             a pool of 16 /24 networks in one /18 whose names spell the address
             (a-b-c-d.smtp-out.bulkmail.example, generic to --lookup-by=smart); retries
             after 5, 15, 35, 75 minutes then hourly for 14 hours, from random addresses.
  small      a small organisation's server with one address (mail.org-<n>.example, 15%
             without a verified name), Postfix's schedule (first retry after the next
             queue run, 5 to 16 minutes, then backoff doubling from 600 s to 4000 s) for 5
             days; SPF "ip4:<address>" (half), "a" (30%) or none (20%).
  reply      a reply to a local user's mail: the local user wrote to someone at bigmail
             (60%) or at a small organisation (40%) between 10 minutes and 2 days before;
             the reply is sent, and retried, as that platform sends.
  spam_once         a bot's single attempt, never retried.
  spam_botnet       a bot's attempt retried 2 or 3 times 5 to 30 minutes apart, each time
                    from another bot: half the time in the first bot's ISP.
  spam_one_address  a spam engine that retries from its one address like an MTA (Postfix's
                    schedule for a day): 12 spam domains with 8 addresses each and narrow
                    SPF records ("snowshoe").
  Bots are in 20 ISPs of 256 /24 networks each; 70% have verified generic names
  (dsl-a-b-c-d.pool.isp-<k>.example), 30% none. Spam senders: half forge a bigmail user
  (SPF softfail), a quarter use throwaway domains without SPF, a quarter their own
  domains with "v=spf1 +all" (a broad pass).
"""
import random

T0 = 1800000000  # the compat spec's base time
MINUTE, HOUR, DAY = 60, 3600, 86400
LOCAL_DOMAIN = "example.org"

MODEL_ORDER = ["bigmail", "cloudmail", "bulkmail", "small", "reply", "spam_once", "spam_botnet",
               "spam_one_address"]
LEGIT = {"bigmail": True, "cloudmail": True, "bulkmail": True, "small": True, "reply": True,
         "spam_once": False, "spam_botnet": False, "spam_one_address": False}
COUNT = {"bigmail": 900, "cloudmail": 500, "bulkmail": 400, "small": 500, "reply": 300,
         "spam_once": 1500, "spam_botnet": 700, "spam_one_address": 300}
SHORT = {"bigmail": "Gmail-like", "cloudmail": "O365-like", "bulkmail": "SES-like",
         "small": "small server", "reply": "reply", "spam_once": "spam once",
         "spam_botnet": "spam botnet", "spam_one_address": "spam one address"}
DESCRIPTIONS = {
    "bigmail": "Gmail-like: retries after about 5, 10, 20, 40, 80, 160 min, then every 4 h for "
               "4 days, each from a random address of 48 /24 networks, verified names, SPF pass",
    "cloudmail": "Office-365-like: customers' domains, a new host of 64 /24 networks every "
                 "retry, every 15 min for 24 h, names in one domain, SPF pass",
    "bulkmail": "Amazon-SES-like: customers' domains, VERP senders, names that spell the "
                "address (generic to smart), 16 /24 networks, retries for 14 h, SPF pass",
    "small": "a small server with one address, Postfix's retry schedule for 5 days, SPF pass "
             "(80%) or none",
    "reply": "a reply to a local user's mail, sent from Gmail-like (60%) or a small server",
    "spam_once": "spam engine that never retries (bots in 20 ISPs, generic or no names)",
    "spam_botnet": "spam engine that retries 2 or 3 times within the hour from random bots "
                   "(half of them in the first bot's ISP)",
    "spam_one_address": "spam engine that retries from its one address like an MTA, from "
                        "domains with narrow SPF records",
}


class Attempt:
    __slots__ = ("time", "client_address", "client_name", "helo", "sender", "recipient")

    def __init__(self, time, client_address, client_name, helo, sender, recipient):
        self.time = int(time)
        self.client_address = client_address
        self.client_name = client_name
        self.helo = helo
        self.sender = sender
        self.recipient = recipient


class Outbound:
    """A local user's message to a remote address (announced to reply tracking)."""
    __slots__ = ("time", "local", "remote")

    def __init__(self, time, local, remote):
        self.time = int(time)
        self.local = local
        self.remote = remote


class Message:
    __slots__ = ("model", "legit", "attempts", "outbound")

    def __init__(self, model, attempts, outbound=None):
        self.model = model
        self.legit = LEGIT[model]
        self.attempts = attempts
        self.outbound = outbound


def inbound_request(attempt, index, number):
    """The request Postfix's smtpd sends for one delivery attempt (RCPT stage)."""
    return {
        "request": "smtpd_access_policy", "protocol_state": "RCPT", "protocol_name": "ESMTP",
        "client_address": attempt.client_address, "client_name": attempt.client_name,
        "reverse_client_name": attempt.client_name, "helo_name": attempt.helo,
        "sender": attempt.sender, "recipient": attempt.recipient, "recipient_count": "0",
        "queue_id": "", "instance": f"{index:x}.{number}", "size": "0", "etrn_domain": "",
        "policy_test_time": str(attempt.time),
    }


def outbound_request(outbound, world):
    """What the submission service's smtpd would send to greylightd's outbound listener for
    a local user's message (reply tracking). The outbound listener is another engineer's
    work in progress: this is a plain Postfix RCPT request from an authenticated local
    client, to be adjusted if the feature expects something else."""
    return {
        "request": "smtpd_access_policy", "protocol_state": "RCPT", "protocol_name": "ESMTPSA",
        "client_address": world.mua_address, "client_name": "unknown",
        "reverse_client_name": "unknown", "helo_name": "laptop", "sender": outbound.local,
        "recipient": outbound.remote, "recipient_count": "0", "queue_id": "",
        "instance": f"out.{outbound.time}.{outbound.local}", "size": "0", "etrn_domain": "",
        "sasl_method": "PLAIN", "sasl_username": outbound.local.split("@")[0],
        "policy_test_time": str(outbound.time),
    }


def postfix_schedule(rng, start, lifetime):
    """Attempt times of a Postfix-like queue: the next queue run, then doubling backoff."""
    times = [start]
    t = start + rng.uniform(5 * MINUTE, 16 * MINUTE)
    backoff = 600
    while t < start + lifetime:
        times.append(t)
        t += backoff * rng.uniform(0.9, 1.1)
        backoff = min(backoff * 2, 4000)
    return times


class World:
    def __init__(self, seed):
        rng = random.Random(f"world-{seed}")
        self.seed = seed
        self.days = 3
        self.local_users = 100
        self.mua_address = "192.168.1.10"
        self.bigmail_networks = rng.sample(range(128, 256), 48)  # 209.85.X.0/24
        self.bigmail_codes = {n: rng.choice("abcdefghijklmnopqrstuvwxyz") +
                              rng.choice("abcdefghijklmnopqrstuvwxyz") + str(rng.randint(1, 9))
                              for n in self.bigmail_networks}
        self.cloudmail_networks = rng.sample(range(0, 256), 64)  # 40.107.X.0/24
        self.cloudmail_customers = 150
        self.bulkmail_networks = rng.sample(range(0, 64), 16)  # 54.240.X.0/24
        self.bulkmail_customers = 80
        self.small_orgs = 300
        self.small_address = {}
        self.small_spf = {}
        self.small_named = {}
        for n in range(self.small_orgs):
            self.small_address[n] = f"185.{10 + n // 200}.{n % 200}.{rng.randint(2, 250)}"
            self.small_spf[n] = rng.choices(["ip4", "a", "none"], [50, 30, 20])[0]
            self.small_named[n] = rng.random() >= 0.15
        self.isps = 20
        self.snowshoe_domains = 12
        self.promo_domains = 40

    # -- DNS ---------------------------------------------------------------------------
    def unbound_zones(self):
        """unbound local-zone/local-data lines: every modelled SPF record; any other name
        under .example does not exist (NXDOMAIN: SPF none)."""
        lines = ['local-zone: "ready.test." static', 'local-data: "ready.test. 60 IN A 127.0.0.1"',
                 'local-zone: "example." static']

        def txt(name, text):
            lines.append(f"local-data: '{name}. 3600 IN TXT \"{text}\"'")

        txt("bigmail.example", "v=spf1 include:_netblocks.bigmail.example ~all")
        txt("_netblocks.bigmail.example", "v=spf1 ip4:209.85.128.0/17 ~all")
        txt("spf.protection.cloudmail.example", "v=spf1 ip4:40.107.0.0/16 -all")
        for n in range(self.cloudmail_customers):
            txt(f"cust-{n}.example", "v=spf1 include:spf.protection.cloudmail.example -all")
        txt("spf.bulkmail.example", "v=spf1 ip4:54.240.0.0/18 -all")
        for n in range(self.bulkmail_customers):
            txt(f"shop-{n}.example", "v=spf1 include:spf.bulkmail.example ~all")
        for n in range(self.small_orgs):
            if self.small_spf[n] == "ip4":
                txt(f"org-{n}.example", f"v=spf1 ip4:{self.small_address[n]} -all")
            elif self.small_spf[n] == "a":
                txt(f"org-{n}.example", f"v=spf1 a:mail.org-{n}.example -all")
                lines.append(f'local-data: "mail.org-{n}.example. 3600 IN A {self.small_address[n]}"')
        for k in range(self.snowshoe_domains):
            txt(f"snow-{k}.example", f"v=spf1 ip4:198.18.{k}.0/24 -all")
        for k in range(self.promo_domains):
            txt(f"promo-{k}.example", "v=spf1 +all")
        return lines

    # -- senders -----------------------------------------------------------------------
    def local_user(self, rng):
        return f"u{rng.randrange(self.local_users)}@{LOCAL_DOMAIN}"

    def bigmail_host(self, rng):
        network = rng.choice(self.bigmail_networks)
        host = rng.randint(1, 254)
        return f"209.85.{network}.{host}", f"mail-{self.bigmail_codes[network]}-f{host}.bigmail.example"

    def bigmail_attempts(self, rng, start, sender, recipient):
        offsets = [0] + [m * MINUTE * rng.uniform(0.8, 1.2) for m in (5, 10, 20, 40, 80, 160)]
        t = offsets[-1]
        while t < 4 * DAY:
            t += 4 * HOUR * rng.uniform(0.8, 1.2)
            offsets.append(t)
        attempts = []
        for offset in offsets:
            address, name = self.bigmail_host(rng)
            attempts.append(Attempt(start + offset, address, name, name, sender, recipient))
        return attempts

    def cloudmail_attempts(self, rng, start, recipient):
        customer = rng.randrange(self.cloudmail_customers)
        sender = f"staff{rng.randrange(8)}.x@cust-{customer}.example"
        attempts = []
        t = 0.0
        while t < DAY:
            network = rng.choice(self.cloudmail_networks)
            host = rng.randint(1, 254)
            name = (f"mail-{rng.choice(['dbeur', 'ameur', 'veeur', 'bnnam', 'conam'])}"
                    f"{rng.randint(1, 9)}on{rng.randint(2000, 2999)}"
                    ".outbound.protection.cloudmail.example")
            attempts.append(Attempt(start + t, f"40.107.{network}.{host}", name, name, sender,
                                    recipient))
            t += 15 * MINUTE * rng.uniform(0.8, 1.2)
        return attempts

    def bulkmail_attempts(self, rng, start, recipient):
        customer = rng.randrange(self.bulkmail_customers)
        sender = f"bounce-{rng.randrange(10**6, 10**7)}@shop-{customer}.example"
        offsets = [0, 5 * MINUTE, 15 * MINUTE, 35 * MINUTE, 75 * MINUTE]
        while offsets[-1] + HOUR < 14 * HOUR:
            offsets.append(offsets[-1] + HOUR)
        attempts = []
        for offset in offsets:
            address = f"54.240.{rng.choice(self.bulkmail_networks)}.{rng.randint(1, 254)}"
            name = address.replace(".", "-") + ".smtp-out.bulkmail.example"
            attempts.append(Attempt(start + offset * rng.uniform(0.95, 1.05), address, name, name,
                                    sender, recipient))
        return attempts

    def small_attempts(self, rng, start, org, sender, recipient):
        address = self.small_address[org]
        name = f"mail.org-{org}.example" if self.small_named[org] else "unknown"
        return [Attempt(t, address, name, f"mail.org-{org}.example", sender, recipient)
                for t in postfix_schedule(rng, start, 5 * DAY)]

    def bot(self, rng, isp=None):
        isp = rng.randrange(self.isps) if isp is None else isp
        address = f"100.{64 + isp}.{rng.randrange(256)}.{rng.randint(1, 254)}"
        if rng.random() < 0.7:
            name = f"dsl-{address.replace('.', '-')}.pool.isp-{isp}.example"
            helo = name
        else:
            name, helo = "unknown", f"[{address}]"
        return isp, address, name, helo

    def spam_sender(self, rng):
        kind = rng.random()
        if kind < 0.5:
            return f"user{rng.randrange(3000)}@bigmail.example"  # forged: SPF softfail
        if kind < 0.75:
            return f"offer{rng.randrange(100)}@deal-{rng.randrange(10**5)}.example"  # no SPF
        return f"news@promo-{rng.randrange(self.promo_domains)}.example"  # +all: broad

    # -- messages ----------------------------------------------------------------------
    def messages(self, scale):
        messages = []
        for model in MODEL_ORDER:
            rng = random.Random(f"messages-{self.seed}-{model}")
            for _ in range(max(1, round(COUNT[model] * scale))):
                start = T0 + rng.uniform(0, self.days * DAY)
                messages.append(self.message(model, rng, start))
        return messages

    def message(self, model, rng, start):
        recipient = self.local_user(rng)
        if model == "bigmail":
            sender = f"user{rng.randrange(3000)}@bigmail.example"
            return Message(model, self.bigmail_attempts(rng, start, sender, recipient))
        if model == "cloudmail":
            return Message(model, self.cloudmail_attempts(rng, start, recipient))
        if model == "bulkmail":
            return Message(model, self.bulkmail_attempts(rng, start, recipient))
        if model == "small":
            org = rng.randrange(self.small_orgs)
            sender = f"person{rng.randrange(3)}@org-{org}.example"
            return Message(model, self.small_attempts(rng, start, org, sender, recipient))
        if model == "reply":
            wrote = start - rng.uniform(10 * MINUTE, 2 * DAY)
            if rng.random() < 0.6:
                remote = f"friend{rng.randrange(3000)}@bigmail.example"
                attempts = self.bigmail_attempts(rng, start, remote, recipient)
            else:
                org = rng.randrange(self.small_orgs)
                remote = f"contact{rng.randrange(3)}@org-{org}.example"
                attempts = self.small_attempts(rng, start, org, remote, recipient)
            return Message(model, attempts, Outbound(wrote, recipient, remote))
        if model == "spam_once":
            _, address, name, helo = self.bot(rng)
            return Message(model, [Attempt(start, address, name, helo, self.spam_sender(rng),
                                           recipient)])
        if model == "spam_botnet":
            sender = self.spam_sender(rng)
            isp, address, name, helo = self.bot(rng)
            attempts = [Attempt(start, address, name, helo, sender, recipient)]
            t = start
            for _ in range(rng.choice([2, 3])):
                t += rng.uniform(5 * MINUTE, 30 * MINUTE)
                _, address, name, helo = self.bot(rng, isp if rng.random() < 0.5 else None)
                attempts.append(Attempt(t, address, name, helo, sender, recipient))
            return Message(model, attempts)
        if model == "spam_one_address":
            k = rng.randrange(self.snowshoe_domains)
            host = rng.randrange(8)
            address = f"198.18.{k}.{10 + host}"
            name = f"mail{host}.snow-{k}.example"
            sender = f"news{rng.randrange(10**4)}@snow-{k}.example"
            return Message(model, [Attempt(t, address, name, name, sender, recipient)
                                   for t in postfix_schedule(rng, start, DAY)])
        raise ValueError(model)
