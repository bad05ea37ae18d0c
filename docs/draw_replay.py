#!/usr/bin/env python3
"""Replays qaward reviewer draws from docs/draw.md alone (Python 3 standard library only).

    python3 docs/draw_replay.py docs/draw-vectors.json     # check the published vectors
    python3 docs/draw_replay.py docs/entropy-vectors.json  # check the entropy vectors (2a)
    python3 docs/draw_replay.py record.json                # check one exported record_json

An exported record is {"prepared": <text>, "entropy": ..., "outcome": {...}, "entropy_parts":
[...], "public_value": ...}; a vectors file is a list of {"prepared", "entropy", "expected"}; an
entropy vectors file a list of {"draw", "inputs_hash", "parties", "parts", "public_value",
"entropy"}.
"""
import hashlib
import json
import sys

ALGORITHM = "qaward-draw-v1"


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


class Stream:
    def __init__(self, draw: str, inputs_hash: str, entropy: str):
        parts = [ALGORITHM, draw, inputs_hash, entropy]
        self.seed = hashlib.sha256(b"\x00".join(p.encode("utf-8") for p in parts)).digest()
        self.k = 0

    def u64(self) -> int:
        d = hashlib.sha256(self.seed + self.k.to_bytes(8, "big")).digest()
        self.k += 1
        return int.from_bytes(d[:8], "big")

    def below(self, n: int) -> int:
        r = (2**64) % n
        while True:
            x = self.u64()
            if r == 0 or x <= 2**64 - 1 - r:
                return x % n


def joined(fields) -> str:
    return sha256_hex(b"\x00".join(f.encode("utf-8") for f in fields))


def commitment(draw_name: str, party: str, secret: str) -> str:
    """Section 2a: a party's commitment to its secret."""
    return joined(["qaward-entropy-commit-v1", draw_name, party, secret.lower()])


def entropy_of(draw_name, inputs_hash, parties, fixes_public_value, parts, public_value):
    """Section 2a: the entropy of every party's reveal and the public value, or None when a
    reveal is missing, does not match its commitment, or the public value is not as announced."""
    if fixes_public_value != (public_value is not None):
        return None
    by_party = {p["party"]: p for p in parts}
    if len(by_party) != len(parts) or set(by_party) != {p["party"] for p in parties}:
        return None
    fields = ["qaward-entropy-v1", draw_name, inputs_hash]
    for party in parties:
        part = by_party[party["party"]]
        secret = part.get("secret")
        if not secret or commitment(draw_name, party["party"], secret) != part["commitment"]:
            return None
        fields += [party["party"], secret.lower()]
    fields.append(public_value or "")
    return joined(fields)


def meets(have: str, need: str) -> bool:
    return have.startswith(need)


def deficit(p, group) -> int:
    d = 0
    for need in p["specialities"]:
        have = sum(1 for e in group if any(meets(s, need["code"]) for s in e["specialities"]))
        d += max(0, need["min"] - have)
    if p["leader_required"] and not any(e["leader"] for e in group):
        d += 1
    return d


def draw(prepared_text: str, entropy: str):
    p = json.loads(prepared_text)
    pool, size, backups = p["pool"], p["size"], p["backups"]
    for need in p["specialities"]:
        have = sum(1 for e in pool if any(meets(s, need["code"]) for s in e["specialities"]))
        if have < need["min"]:
            return {"error": f"{have} eligible reviewers with speciality {need['code']} after recusal, {need['min']} needed"}
    if len(pool) < size:
        return {"error": f"{len(pool)} eligible reviewers after recusal, {size} needed"}
    if p["leader_required"] and not any(e["leader"] for e in pool):
        return {"error": "no eligible reviewer is qualified to lead the group"}
    if len(pool) - size < backups:
        return {"error": f"{len(pool) - size} eligible reviewers left for the backup list, {backups} backups requested"}
    inputs_hash = sha256_hex(prepared_text.encode("utf-8"))
    stream = Stream(p["draw"], inputs_hash, entropy)
    n = len(pool)
    order = list(range(n))
    members, passed = [], []
    for i in range(n):
        if len(members) == size and len(passed) >= backups:
            break
        j = i + stream.below(n - i)
        order[i], order[j] = order[j], order[i]
        c = pool[order[i]]
        if len(members) < size and deficit(p, members + [c]) <= size - (len(members) + 1):
            members.append(c)
        else:
            passed.append(c)
    if len(members) < size:
        return {"error": "the speciality and leader needs cannot all be met in a group of this size"}
    leader = next((m for m in members if m["leader"]), members[0])
    return {
        "members": [m["id"] for m in members],
        "leader": leader["id"],
        "backups": [b["id"] for b in passed[:backups]],
    }


def replace_in_order(prepared_text: str, outcome, leavings):
    """Section 5: each leaving member's seat goes to the first remaining backup, in recorded
    order, with which the group has deficit 0; when the leader leaves, the section 4 leader rule
    picks again among those still seated, in draw order (members, then backups)."""
    p = json.loads(prepared_text)
    entry = {e["id"]: e for e in p["pool"]}
    sitting = list(outcome["members"])
    waiting = list(outcome["backups"])
    leader = outcome["leader"]
    out = []
    for leaving, reason in leavings:
        if leaving not in sitting:
            return {"error": f"{leaving} holds no seat when it is said to leave"}
        staying = [entry[m] for m in sitting if m != leaving and m in entry]
        joining = next((b for b in waiting if b in entry and deficit(p, staying + [entry[b]]) == 0), None)
        if joining is None:
            return {"error": f"no remaining backup keeps the needs when {leaving} leaves"}
        sitting = [m for m in sitting if m != leaving] + [joining]
        waiting = [b for b in waiting if b != joining]
        if leaving == leader:
            active = [i for i in outcome["members"] + outcome["backups"] if i in sitting]
            leader = next((i for i in active if entry[i]["leader"]), active[0] if active else "")
        out.append({"leaving": leaving, "reason": reason, "joining": joining, "leader": leader})
    return out


def check_replacements(prepared_text, outcome, recorded, label) -> bool:
    leavings = [(r["leaving"], r["reason"]) for r in recorded]
    got = replace_in_order(prepared_text, outcome, leavings)
    ok = got == recorded
    print(("MATCH   " if ok else "MISMATCH"), label, "replacements", "" if ok else f"got {got}, recorded {recorded}")
    return ok


def check(prepared_text, entropy, expected, label) -> bool:
    p = json.loads(prepared_text)
    pool_ok = sha256_hex("\n".join(e["id"] for e in p["pool"]).encode()) == p["pool_hash"]
    commit = p.get("entropy_commitment", "")
    commit_ok = not commit or sha256_hex(entropy.encode("utf-8")) == commit
    got = draw(prepared_text, entropy)
    ok = pool_ok and commit_ok and got == expected
    print(("MATCH   " if ok else "MISMATCH"), label, "" if ok else f"got {got}, recorded {expected}")
    return ok


def check_entropy_vector(v) -> bool:
    got = entropy_of(v["draw"], v["inputs_hash"], v["parties"], v["fixes_public_value"], v["parts"], v["public_value"])
    ok = got == v["entropy"]
    print(("MATCH   " if ok else "MISMATCH"), v["name"], "" if ok else f"got {got}, expected {v['entropy']}")
    return ok


def check_record_entropy(data) -> bool:
    """A record of a draw with parties: its entropy is the hash of their checked reveals."""
    p = json.loads(data["prepared"])
    if not p.get("entropy_parties") or data.get("entropy") is None:
        return True
    got = entropy_of(p["draw"], data["inputs_hash"], p["entropy_parties"], p.get("fixes_public_value", False),
                     data.get("entropy_parts") or [], data.get("public_value"))
    ok = got is not None and got == data["entropy"]
    print(("MATCH   " if ok else "MISMATCH"), data.get("draw", "the draw"), "entropy of the parties' reveals",
          "" if ok else f"got {got}, recorded {data['entropy']}")
    return ok


def main(path: str) -> int:
    data = json.load(open(path, encoding="utf-8"))
    if isinstance(data, list) and data and "parts" in data[0]:
        results = [check_entropy_vector(v) for v in data]
    elif isinstance(data, list):
        results = [check(v["prepared"], v["entropy"], v["expected"], v["name"]) for v in data]
        for v in data:
            if v.get("leavings") is not None:
                leavings = [(x["leaving"], x["reason"]) for x in v["leavings"]]
                got = replace_in_order(v["prepared"], v["expected"], leavings)
                ok = got == v["replacements"]
                print(("MATCH   " if ok else "MISMATCH"), v["name"], "replacements", "" if ok else f"got {got}")
                results.append(ok)
    else:
        results = [check_record_entropy(data)]
        results.append(check(data["prepared"], data["entropy"], data["outcome"], data.get("draw", path)))
        if data.get("replacements") and data.get("outcome"):
            results.append(check_replacements(data["prepared"], data["outcome"], data["replacements"], data.get("draw", path)))
    return 0 if all(results) else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1] if len(sys.argv) > 1 else "docs/draw-vectors.json"))
