"""Decision throughput of the shipped policy packs (events per second, one core).

    .venv/bin/python bench/policy_bench.py [--events 200000] [--packs cn-secrecy,babu,capco-basic]

Builds a realistic mix of events (files on local disk and in channels, markings, copies and
deletions with and without approvals, device histories, posture and attestation states), then
decides each once with `PolicySet.evaluate` and prints the rate; then again rendering every
violation to its JSON form (rationales are rendered lazily, on first access). The target is ≥ 50,000 events/s.
"""
from __future__ import annotations

import argparse
import random
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from policies.approvals import Approval, ApprovalRegister
from policies.engine import PolicySet, load_policy
from policies.model import (
    Actor,
    AttestationFacts,
    DeviceFacts,
    Event,
    FileFacts,
    Host,
    Location,
    MarkingFacts,
    Sighting,
)

LEVELS = [None, None, None, "internal", "confidential", "secret", "top_secret"]
LOCS = ["local_disk"] * 6 + ["classified_medium", "removable_medium", "mail_outbox", "im_transfer",
                              "cloud_sync", "upload_staging", "network_share", "print_spool",
                              "publication_gate"]
OPS = ["create"] * 4 + ["modify", "copy", "move", "delete", "print", "send", "observe"]


def make_events(n: int, seed: int = 7) -> list[Event]:
    rnd = random.Random(seed)
    out: list[Event] = []
    hashes = [f"{i:064x}" for i in range(50)]
    for i in range(n):
        r = rnd.random()
        host = (Host("classified", rnd.choice(["confidential", "secret", "top_secret"]), f"h{i % 40}")
                if rnd.random() < 0.5 else Host("unclassified", None, f"u{i % 40}"))
        actor = Actor(f"user{i % 30}", ("领导秘书",) if i % 7 == 0 else ("办公室",))
        if r < 0.70:
            lv = rnd.choice(LEVELS)
            markings = (MarkingFacts(level=lv, text="机密★10年", period={"years": 10}),) if lv else ()
            f = FileFacts(path=f"/d/{i}.docx", sha256=rnd.choice(hashes), mode=rnd.choice([0o600, 0o640, 0o644]),
                          owner="root", group=rnd.choice(["root", "staff"]), markings=markings,
                          known_copies=rnd.choice([1, 1, 1, 2]))
            loc = rnd.choice(LOCS)
            out.append(Event("file", rnd.choice(OPS), host, Location(loc, "USB-1" if "medium" in loc else None,
                                                                      "secret" if loc == "classified_medium" else None),
                             actor, f))
        elif r < 0.88:
            lv = rnd.choice(["confidential", "secret", "top_secret", "internal"])
            m = MarkingFacts(level=lv, text=rnd.choice(["机密★10年", "秘密", "SECRET//NOFORN", "机密·5年"]),
                             period=rnd.choice([None, {"years": 5}]), declassify_date=rnd.choice([None, "2025-01-01"]),
                             nonstandard=rnd.random() < 0.2, declassified=rnd.random() < 0.05)
            f = FileFacts(path=f"/d/{i}.txt", markings=(m,))
            out.append(Event("marking", "create", host, Location(rnd.choice(LOCS)), actor, f, m))
        elif r < 0.94:
            s = tuple(Sighting(f"h{j}", rnd.choice(["classified", "unclassified"])) for j in range(rnd.randint(1, 6)))
            out.append(Event("device", rnd.choice(["mount", "observe"]), host, Location(), actor,
                             device=DeviceFacts(f"USB-{i}", rnd.random() < 0.5, "secret", s)))
        elif r < 0.97:
            h = Host("classified", "secret", f"h{i}", ("wlan0",) if rnd.random() < 0.2 else (),
                     ("hci0",) if rnd.random() < 0.1 else (), rnd.random() < 0.1)
            out.append(Event("posture", "observe", h))
        else:
            att = AttestationFacts(rnd.choice(["ok", "ok", "missing", "overdue"]), "2026-05-01",
                                   tuple(rnd.sample([f"babu-{k}" for k in range(1, 9)], rnd.choice([0, 0, 1]))))
            out.append(Event("attestation", "observe", actor=actor, attestation=att))
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--packs", default="cn-secrecy,babu,capco-basic")
    ap.add_argument("--events", type=int, default=200_000)
    args = ap.parse_args()
    base = load_policy(args.packs.split(","))
    reg = ApprovalRegister.of([Approval(f"A{i}", k, f"{i:064x}", "*", "*", "2099-12-31", "bench")
                               for i, k in zip(range(0, 50, 3), ["copy", "transfer", "destroy"] * 20, strict=False)])
    policy = PolicySet(base.composed, reg)
    events = make_events(args.events)
    ctx = policy.context("2026-06-01")
    for ev in events[:2000]:  # warm-up (also fills the lazily cached derived facts of these events)
        policy.evaluate(ev, ctx)
    # fresh events, built before timing: their lazily derived facts are computed in the loop
    events = make_events(args.events, seed=11)
    n = violations = 0
    start = time.perf_counter()
    for ev in events:
        violations += len(policy.evaluate(ev, ctx))
    n = len(events)
    elapsed = time.perf_counter() - start
    print(f"packs: {args.packs}  rules: {len(policy.rules)}  events: {n}  violations: {violations}")
    print(f"decisions: {n / elapsed:,.0f} events/s")
    # the same, rendering every violation to its JSON form (rationales zh+en, subject)
    events = make_events(args.events // 4, seed=13)
    start = time.perf_counter()
    for ev in events:
        for v in policy.evaluate(ev, ctx):
            v.to_dict()
    elapsed = time.perf_counter() - start
    print(f"decisions with rendered violations: {len(events) / elapsed:,.0f} events/s")


if __name__ == "__main__":
    main()
