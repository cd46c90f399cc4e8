"""Redaction throughput and latency for 1 KB prompts: clean, and PII-heavy; plus a record.

    python bench/bench_redact.py [--n 20000] [--save]

Target (design): a clean 1 KB prompt costs well under 100 µs.
"""

from __future__ import annotations

import argparse
import gc
import random
import string
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent))
from common import percentiles, save, table
from provmark.redaction import Policy, Redactor, luhn_ok

CLEAN = (
    "You are a helpful assistant. Summarize the following meeting notes in 3 bullet points "
    "for a general audience, in a neutral tone, under 120 words. The committee met on "
    "Tuesday to discuss the budget for the next fiscal year; members raised concerns about "
    "rising costs in healthcare and education (roughly 12 percent above plan). After a long "
    "debate they agreed to postpone the vote until more data is available: the survey of "
    "2,400 households closes on 15 March. Note: keep each point short, avoid jargon, and do "
    "not speculate about outcomes. Also mention that the draft report, version 2.3, will be "
    "circulated next week, and that questions go to the secretariat. Format: plain text, no "
    "headings, no emoji, at most 3 sentences per bullet; cite page numbers like p. 14 where "
    "relevant. Finally, list any open actions with their owners and due dates, e.g. "
)


def _card(rng: random.Random) -> str:
    body = "4" + "".join(rng.choice(string.digits) for _ in range(14))
    num = next(body + d for d in string.digits if luhn_ok(body + d))
    return " ".join(num[i : i + 4] for i in range(0, 16, 4))


def _iban(rng: random.Random) -> str:
    bban = "".join(rng.choice(string.digits) for _ in range(18))
    check = 98 - int(bban + "131400") % 97  # D=13, E=14, "00"
    return f"DE{check:02d}{bban}"


def _pii_sentence(rng: random.Random) -> str:
    u = "".join(rng.choice(string.ascii_lowercase) for _ in range(6))
    key = "".join(rng.choice(string.ascii_letters + string.digits) for _ in range(32))
    return rng.choice(
        [
            f"Contact {u}.doe@example.com or +44 20 7946 {rng.randint(1000, 9999)}. ",
            f"Card {_card(rng)} exp 12/27, IBAN {_iban(rng)}. ",
            f"Login from 203.0.113.{rng.randint(1, 254)} and 2001:db8::{rng.randint(1, 999)}. ",
            f"Use api_key={key} or sk-proj-{key}. ",
            f"SSN {rng.randint(100, 599)}-{rng.randint(10, 99)}-{rng.randint(1000, 9999)}, "
            f"call ({rng.randint(200, 999)}) 555-{rng.randint(1000, 9999)}. ",
        ]
    )


def _clean(rng: random.Random) -> str:
    words = CLEAN.split(" ")
    k = rng.randrange(len(words))
    text = " ".join(words[k:] + words[:k])
    return (text * 2)[:1024]


def _pii(rng: random.Random) -> str:
    parts: list[str] = []
    while sum(map(len, parts)) < 1024:
        parts.append(_pii_sentence(rng))
    return "".join(parts)[:1024]


def _measure(fn: Callable[[Any], object], inputs: list[Any], n: int) -> dict[str, Any]:
    for x in inputs[:500]:  # warm up
        fn(x)
    gc.collect()
    gc.disable()
    samples: list[int] = []
    clock = time.perf_counter_ns
    try:
        t_all = clock()
        for i in range(n):
            x = inputs[i % len(inputs)]
            t0 = clock()
            fn(x)
            samples.append(clock() - t0)
        total = (clock() - t_all) / 1e9
    finally:
        gc.enable()
    p = percentiles(samples)
    return {"per_s": n / total, "p50_us": p["p50_us"], "p99_us": p["p99_us"], "max_us": p["max_us"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--n", type=int, default=20_000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--save", action="store_true", help="write bench/results/redact.json")
    opts = parser.parse_args()
    rng = random.Random(opts.seed)
    r = Redactor(Policy(), b"bench-key-0123456789abcdef")

    clean = [_clean(rng) for _ in range(200)]
    pii = [_pii(rng) for _ in range(200)]
    assert all(not r.redact_text(t).findings for t in clean), "clean prompts must be clean"
    findings = sum(len(r.redact_text(t).findings) for t in pii) / len(pii)
    record = {
        "input": {"snapshot": pii[0], "sha256": "ab" * 32},
        "params": {"temperature": 0.2, "max_tokens": 512, "api_key": "sk-" + "x" * 40},
        "actor": {"user_id": "u-123", "service": "summarizer"},
        "extra": {"customer": {"email": "jo@example.com", "tier": "gold"}, "note": clean[0]},
    }
    doc_policy = Policy.from_dict(
        {
            "fields": {
                "params.*": "keep",
                "params.api_key": "drop",
                "actor.user_id": "hash",
                "extra.customer": "encrypt",
                "input.sha256": "keep",
            }
        }
    )
    rd = Redactor(doc_policy, b"bench-key-0123456789abcdef")

    rows = [
        {"case": "clean 1 KB prompt", **_measure(r.redact_text, clean, opts.n)},
        {
            "case": f"PII-heavy 1 KB prompt (~{findings:.0f} findings)",
            **_measure(r.redact_text, pii, max(1, opts.n // 4)),
        },
        {
            "case": "record (1 KB PII snapshot + 1 KB note)",
            **_measure(rd.redact_document, [record], max(1, opts.n // 4)),
        },
    ]
    print(table("provmark.redaction (texts/s, latency µs)", rows))
    if opts.save:
        print(f"\nresults: {save('redact', {'rows': rows})}")


if __name__ == "__main__":
    main()
