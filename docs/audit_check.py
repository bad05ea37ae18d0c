#!/usr/bin/env python3
"""An independent check of qaward's audit log, from docs/audit.md alone (issue 22, item 3).

    python3 docs/audit_check.py docs/audit-vectors.json
        every valid case must hold and every invalid one be refused
    python3 docs/audit_check.py checkpoint FILE PUBLIC_KEY_FILE
        does the checkpoint in FILE verify under the key (audit-key.pub)?
    python3 docs/audit_check.py records FILE PUBLIC_KEY_FILE
        FILE is a ProveAuditRecords answer as JSON (GET /v1/audit/{service}/records): is every
        record's content what its row hash says, and its leaf in the signed checkpoint?

Merkle hashing is RFC 9162 section 2.1; signatures are Ed25519 (RFC 8032), checked with the
`cryptography` package.
"""
import hashlib
import json
import sys

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

LEAF_LABEL = b"qaward-audit-leaf-v1"
HEADER = "qaward audit checkpoint v1"


def sha256(b):
    return hashlib.sha256(b).digest()


def leaf_data(seq, row_hash_hex):
    return LEAF_LABEL + b"\x00" + seq.to_bytes(8, "big") + bytes.fromhex(row_hash_hex)


def leaf_hash(data):
    return sha256(b"\x00" + data)


def node(left, right):
    return sha256(b"\x01" + left + right)


def mth(leaves):
    n = len(leaves)
    if n == 0:
        return sha256(b"")
    if n == 1:
        return leaves[0]
    k = 1
    while k * 2 < n:
        k *= 2
    return node(mth(leaves[:k]), mth(leaves[k:]))


def verify_inclusion(leaf, index, size, proof, root):
    # RFC 9162 section 2.1.3.2
    if index >= size:
        return False
    fn, sn, r = index, size - 1, leaf
    for p in proof:
        if sn == 0:
            return False
        if fn % 2 == 1 or fn == sn:
            r = node(p, r)
            while fn % 2 == 0 and fn != 0:
                fn >>= 1
                sn >>= 1
        else:
            r = node(r, p)
        fn >>= 1
        sn >>= 1
    return sn == 0 and r == root


def verify_consistency(first, second, first_root, second_root, proof):
    # RFC 9162 section 2.1.4.2
    if first == 0 or first > second:
        return False
    if first == second:
        return not proof and first_root == second_root
    if not proof:
        return False
    path = list(proof)
    if first & (first - 1) == 0:
        path.insert(0, first_root)
    fn, sn = first - 1, second - 1
    while fn % 2 == 1:
        fn >>= 1
        sn >>= 1
    fr = sr = path[0]
    for c in path[1:]:
        if sn == 0:
            return False
        if fn % 2 == 1 or fn == sn:
            fr = node(c, fr)
            sr = node(c, sr)
            while fn % 2 == 0 and fn != 0:
                fn >>= 1
                sn >>= 1
        else:
            sr = node(sr, c)
        fn >>= 1
        sn >>= 1
    return fr == first_root and sr == second_root and sn == 0


def row_hash(prev_hash, at_micros, actor, role, action, resource, reason, detail):
    # docs/audit.md section 1: each field as its length (8 bytes big-endian) and its bytes.
    out = b""
    fields = [prev_hash.encode(), at_micros.to_bytes(8, "big", signed=True)]
    fields += [f.encode() for f in (actor, role, action, resource, reason, detail)]
    for f in fields:
        out += len(f).to_bytes(8, "big") + f
    return hashlib.sha256(out).hexdigest()


def check_records(path, key_path):
    answer = json.load(open(path))
    key = public_key(open(key_path).read())
    cp = parse_checkpoint(answer["checkpoint"]["text"])
    if not signed(cp, key):
        print("NOT SIGNED: the checkpoint does not verify under the key")
        return 1
    failed = []
    for r in answer.get("records", []):
        seq = int(r["seq"])
        content = row_hash(r.get("prevHash", ""), int(r.get("atMicros", 0)), r.get("actor", ""),
                           r.get("role", ""), r.get("action", ""), r.get("resource", ""),
                           r.get("reason", ""), r.get("detail", ""))
        proof = [bytes.fromhex(h) for h in r.get("inclusionProof", [])]
        leaf = leaf_hash(leaf_data(seq, r["rowHash"]))
        if content != r["rowHash"]:
            failed.append("record %d: its content does not hash to its row hash" % seq)
        elif not verify_inclusion(leaf, seq - 1, cp["size"], proof, cp["root"]):
            failed.append("record %d: not included in the checkpoint" % seq)
    if failed:
        print("MISMATCH\n" + "\n".join(failed))
        return 1
    print("PROVED: %d records in %s's log of %d records, root %s"
          % (len(answer.get("records", [])), cp["origin"], cp["size"], cp["root"].hex()))
    return 0


def public_key(text):
    parts = text.split()
    raw = bytes.fromhex(parts[-1])
    key_id = hashlib.sha256(raw).hexdigest()[:16]
    if len(parts) == 3 and parts[1] != key_id:
        raise ValueError("the key id is not this key's")
    return key_id, Ed25519PublicKey.from_public_bytes(raw)


def parse_checkpoint(text):
    lines = text[:-1].split("\n") if text.endswith("\n") else None
    if not lines or len(lines) != 6 or lines[0] != HEADER:
        raise ValueError("not a checkpoint")
    fields = {}
    for line, name in zip(lines[1:], ["origin", "size", "root", "time", "signature"]):
        if not line.startswith(name + " "):
            raise ValueError("no %s line" % name)
        fields[name] = line[len(name) + 1:]
    key_id, sig = fields["signature"].split(" ", 1)
    size = int(fields["size"])
    if str(size) != fields["size"]:
        raise ValueError("size not canonical")
    body = "\n".join(lines[:5]) + "\n"
    return {"origin": fields["origin"], "size": size, "root": bytes.fromhex(fields["root"]),
            "time": int(fields["time"]), "key_id": key_id, "signature": sig, "body": body}


def signed(cp, key):
    import base64
    key_id, pk = key
    if cp["key_id"] != key_id:
        return False
    try:
        pk.verify(base64.b64decode(cp["signature"], validate=True), cp["body"].encode())
        return True
    except (InvalidSignature, ValueError):
        return False


def holds(v, case, key, cps):
    leaves_by_seq = {r["seq"]: r["row_hash"] for r in v["log"]}
    proof = [bytes.fromhex(h) for h in case.get("proof", [])]
    kind = case["kind"]
    if kind == "inclusion":
        cp = cps[case["checkpoint"]]
        seq = case["seq"]
        leaf = leaf_hash(leaf_data(seq, leaves_by_seq[seq]))
        return signed(cp, key) and verify_inclusion(leaf, seq - 1, cp["size"], proof, cp["root"])
    if kind == "consistency":
        to = cps[case["to"]]
        if "from" in case:
            size, root = cps[case["from"]]["size"], cps[case["from"]]["root"]
        else:
            size, root = case["from_size"], bytes.fromhex(case["from_root"])
        return signed(to, key) and verify_consistency(size, to["size"], root, to["root"], proof)
    if kind == "log":
        rows = v["log"] if case["rows"] == "log" else case["rows"]
        leaves = [leaf_hash(leaf_data(r["seq"], r["row_hash"])) for r in rows]
        cp = cps[case["checkpoint"]]
        return signed(cp, key) and cp["size"] <= len(leaves) and mth(leaves[:cp["size"]]) == cp["root"]
    if kind == "checkpoint":
        cp = parse_checkpoint(case["text"])
        against = cps[case["against"]]
        return signed(cp, key) and (cp["size"] != against["size"] or cp["root"] == against["root"])
    raise ValueError("unknown kind " + kind)


def check_vectors(path):
    v = json.load(open(path))
    key = public_key(v["public_key"])
    cps = [parse_checkpoint(t) for t in v["checkpoints"]]
    failed = []
    for row in v["log"]:
        data = leaf_data(row["seq"], row["row_hash"])
        if data.hex() != row["leaf_data"] or leaf_hash(data).hex() != row["leaf_hash"]:
            failed.append("leaf of row %d" % row["seq"])
    for case in v["valid"]:
        if not holds(v, case, key, cps):
            failed.append("valid case refused: %s" % json.dumps(case)[:80])
    for case in v["invalid"]:
        if holds(v, case, key, cps):
            failed.append("invalid case accepted: " + case["name"])
    if failed:
        print("MISMATCH\n" + "\n".join(failed))
        return 1
    print("MATCH: %d leaves, %d valid cases hold, %d invalid cases refused"
          % (len(v["log"]), len(v["valid"]), len(v["invalid"])))
    return 0


def main(argv):
    if len(argv) == 2:
        return check_vectors(argv[1])
    if len(argv) == 4 and argv[1] == "checkpoint":
        cp = parse_checkpoint(open(argv[2]).read())
        ok = signed(cp, public_key(open(argv[3]).read()))
        print("%s: %s of %d records, root %s" % ("SIGNED" if ok else "NOT SIGNED", cp["origin"],
                                                 cp["size"], cp["root"].hex()))
        return 0 if ok else 1
    if len(argv) == 4 and argv[1] == "records":
        return check_records(argv[2], argv[3])
    print(__doc__)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))
