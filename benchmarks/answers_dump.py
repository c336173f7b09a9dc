"""Every analytic answer a change should leave alone, written down to compare (issue 13).

A speed change claims "no answer moved": this writes, one JSON line per profile, the
analytic N*, every constraint's burst-aware ceiling and the notes — for the shipped
profiles under every enforcement of ``profile_variants.py`` (32) and every profile of
the hunt's records (``benchmarks/hunt/records.jsonl``, drawn again from its seed: 511) —
and compares two such files.

Run from the repository root::

    python benchmarks/answers_dump.py --out /tmp/before.jsonl     # ~1 min
    python benchmarks/answers_dump.py --out /tmp/after.jsonl
    python benchmarks/answers_dump.py --compare /tmp/before.jsonl /tmp/after.jsonl
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))


def _answer(name: str, prof: Any) -> dict[str, Any]:
    from capacity.analytic.model import analyze

    res = analyze(prof)
    return {"name": name, "n_star": res.burst_ceiling,
            "ceilings": {c.name: c.burst_ceiling for c in res.constraints},
            "notes": list(res.notes)}


def dump(out: Path) -> int:
    """Write every answer to ``out``; the number written."""
    import hunt
    from profile_variants import PROFILES, VARIANTS, variant

    from capacity.profile.loader import profile_from_dict

    rows = []
    for p in PROFILES:
        data = yaml.safe_load((ROOT / "profiles" / f"{p}.yaml").read_text())
        for v in VARIANTS:
            rows.append(_answer(f"{p}/{v}", profile_from_dict(variant(data, v))))
    records = ROOT / "benchmarks" / "hunt" / "records.jsonl"
    for line in records.read_text().splitlines():
        seed = int(json.loads(line)["seed"])
        _, data = hunt.drawn(seed)
        rows.append(_answer(f"hunt-{seed}", profile_from_dict(data)))
    out.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return len(rows)


def compare(a: Path, b: Path) -> int:
    """Print what differs between two dumps; the number of profiles that differ."""
    old = {r["name"]: r for r in map(json.loads, a.read_text().splitlines())}
    new = {r["name"]: r for r in map(json.loads, b.read_text().splitlines())}
    moved = 0
    for name in sorted(old.keys() | new.keys()):
        x, y = old.get(name), new.get(name)
        if x == y:
            continue
        moved += 1
        if x is None or y is None:
            print(f"{name}: only in {'the second' if x is None else 'the first'}")
            continue
        if x["n_star"] != y["n_star"]:
            print(f"{name}: N* {x['n_star']} -> {y['n_star']}")
        for c in sorted(x["ceilings"].keys() | y["ceilings"].keys()):
            if x["ceilings"].get(c) != y["ceilings"].get(c):
                print(f"{name}: {c} {x['ceilings'].get(c)} -> {y['ceilings'].get(c)}")
        for note in x["notes"]:
            if note not in y["notes"]:
                print(f"{name}: note gone: {note[:100]}")
        for note in y["notes"]:
            if note not in x["notes"]:
                print(f"{name}: note new: {note[:100]}")
    print(f"{len(old)} and {len(new)} profiles; {moved} differ")
    return moved


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, help="write every answer here (JSON lines)")
    ap.add_argument("--compare", type=Path, nargs=2, metavar=("BEFORE", "AFTER"))
    args = ap.parse_args(argv)
    if args.compare:
        compare(*args.compare)
        return 0
    if args.out is None:
        ap.error("give --out FILE or --compare BEFORE AFTER")
    print(f"{dump(args.out)} profiles written to {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
