#!/usr/bin/env python3
"""An independent check of Tern's frame vectors against the spec's CDDL.

Decodes every frame in spec/vectors/frames.json, and every plaintext (a CBOR
sequence of frames) in spec/vectors/packets.json, with the `cbor2` package,
and checks each frame against the CDDL block of spec/frames.md §3. Nothing
here comes from Tern's code: the frame type numbers, the field counts and
the field types are read from the CDDL text (and the type numbers are
cross-checked against the table of §3), so a change to the spec or to the
vectors that makes them disagree fails here.

Checked, per frame:
  * the CDDL: which rule the frame's type number selects (an unknown type
    fails), the array length (fixed fields, then the ACK's repeated ranges
    within their occurrence bounds), every field's type (`uint .size N`,
    `bool`, `bstr`, `tstr .size (lo..hi)`);
  * §2's encoding rules that CDDL cannot state: definite lengths, shortest
    heads, no tags. cbor2 decodes leniently, so the item is re-encoded with
    cbor2 (which writes shortest, definite-length heads) and must come back
    byte for byte;
  * the ACK range arithmetic of §4 and the MESSAGE end offset of §3.4;
  * for frames.json, that the vector's name starts with the §3 name of the
    frame type it decodes to.

As a self-test of the checker, the valid examples of spec/frames.md §7 must
pass and the refused ones (those given in full) must fail.

Usage: check_frames.py [--spec FILE] [--frames FILE] [--packets FILE]
                       [--no-examples]
Paths default to the repository's spec/. Prints one line per failure, then
`N passed, M failed`; exits 1 if anything failed, 2 on a usage or setup
error.
"""

import argparse
import io
import json
import os
import re
import sys

import cbor2

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


class SpecError(Exception):
    """The spec text does not have the shape this script reads."""


# ---------------------------------------------------------------------------
# The CDDL


def cddl_block(text):
    """The body of the ```cddl fenced block of frames.md."""
    m = re.search(r"```cddl\n(.*?)```", text, re.S)
    if not m:
        raise SpecError("no ```cddl block in the frames spec")
    return m.group(1)


def cddl_rules(block):
    """`name -> rhs` for every rule, comments stripped and continuation
    lines joined."""
    rules = {}
    current = None
    for raw in block.splitlines():
        line = raw.split(";", 1)[0].rstrip()
        if not line.strip():
            continue
        m = re.match(r"^([A-Za-z][\w-]*)\s*=\s*(.*)$", line)
        if m and not raw[0].isspace():
            current = m.group(1)
            rules[current] = m.group(2).strip()
        elif current is not None and raw[0].isspace():
            rules[current] += " " + line.strip()
        else:
            raise SpecError("cannot read CDDL line: %r" % raw)
    return rules


def split_top(s):
    """Splits at commas outside parentheses and brackets."""
    out, depth, cur = [], 0, ""
    for ch in s:
        if ch in "([":
            depth += 1
        elif ch in ")]":
            depth -= 1
        if ch == "," and depth == 0:
            out.append(cur.strip())
            cur = ""
        else:
            cur += ch
    if cur.strip():
        out.append(cur.strip())
    return out


class Type:
    """A field type: kind is 'uint', 'bool', 'bstr' or 'tstr'; for uint
    `size` is the byte size, for strings `lo`/`hi` bound the length."""

    def __init__(self, kind, size=None, lo=None, hi=None):
        self.kind, self.size, self.lo, self.hi = kind, size, lo, hi

    def __repr__(self):
        return "%s(size=%s, %s..%s)" % (self.kind, self.size, self.lo, self.hi)


def parse_type(expr, rules, depth=0):
    expr = expr.strip()
    if depth > 8:
        raise SpecError("CDDL type %r nests too deep" % expr)
    m = re.match(r"^uint\s+\.size\s+(\d+)$", expr)
    if m:
        return Type("uint", size=int(m.group(1)))
    if expr == "uint":
        return Type("uint", size=8)
    m = re.match(r"^(bstr|tstr)(?:\s+\.size\s+\((\d+)\.\.(\d+)\))?$", expr)
    if m:
        lo = int(m.group(2)) if m.group(2) else 0
        hi = int(m.group(3)) if m.group(3) else None
        return Type(m.group(1), lo=lo, hi=hi)
    if expr == "bool":
        return Type("bool")
    if expr in rules:
        return parse_type(rules[expr], rules, depth + 1)
    raise SpecError("unknown CDDL type %r" % expr)


class Rule:
    """One frame rule: its CDDL name, type number, fixed fields (name,
    Type) after the type, and an optional repeated group (min, max,
    [fields]). `literal` marks a rule that is a bare integer (PADDING)."""

    def __init__(self, name, number, fields, repeat=None, literal=False):
        self.name, self.number, self.fields = name, number, fields
        self.repeat, self.literal = repeat, literal


def parse_fields(elems, rules):
    fields = []
    for e in elems:
        m = re.match(r"^([A-Za-z][\w-]*)\s*:\s*(.+)$", e)
        if not m:
            raise SpecError("cannot read CDDL field %r" % e)
        fields.append((m.group(1), parse_type(m.group(2), rules)))
    return fields


def frame_rules(rules):
    """The frame rules named by the `frame` choice, by type number."""
    if "frame" not in rules:
        raise SpecError("no `frame` rule in the CDDL")
    names = [n.strip() for n in rules["frame"].split("/")]
    out = {}
    for name in names:
        rhs = rules.get(name)
        if rhs is None:
            raise SpecError("frame alternative %r has no rule" % name)
        if re.fullmatch(r"\d+", rhs):
            rule = Rule(name, int(rhs), [], literal=True)
        else:
            m = re.fullmatch(r"\[(.*)\]", rhs)
            if not m:
                raise SpecError("frame rule %s is not an array: %r" % (name, rhs))
            elems = split_top(m.group(1))
            if not elems or not re.fullmatch(r"\d+", elems[0]):
                raise SpecError("frame rule %s does not start with its type" % name)
            repeat = None
            rest = elems[1:]
            if rest:
                m = re.fullmatch(r"(\d*)\*(\d*)\s+([A-Za-z][\w-]*)", rest[-1])
                if m:
                    group = rules.get(m.group(3), "")
                    g = re.fullmatch(r"\((.*)\)", group)
                    if not g:
                        raise SpecError("repeated %r is not a group" % m.group(3))
                    lo = int(m.group(1)) if m.group(1) else 0
                    hi = int(m.group(2)) if m.group(2) else None
                    repeat = (lo, hi, parse_fields(split_top(g.group(1)), rules))
                    rest = rest[:-1]
            rule = Rule(name, int(elems[0]), parse_fields(rest, rules), repeat)
        if rule.number in out:
            raise SpecError("type %d defined twice" % rule.number)
        out[rule.number] = rule
    return out


def table_names(text):
    """`type number -> NAME` from the table of §3."""
    sec = re.search(r"## 3\. Frame types\n(.*?)\n## ", text, re.S)
    if not sec:
        raise SpecError("no section 3 in the frames spec")
    names = {}
    for m in re.finditer(r"^\|\s*(\d+)\s*\|\s*([A-Z_]+)\s*\|", sec.group(1), re.M):
        names[int(m.group(1))] = m.group(2)
    if not names:
        raise SpecError("no frame table in section 3")
    return names


def load_spec(path):
    with open(path, encoding="utf-8") as f:
        text = f.read()
    rules = cddl_rules(cddl_block(text))
    frames = frame_rules(rules)
    names = table_names(text)
    for number, rule in frames.items():
        table = names.get(number)
        if table is None or table.lower().replace("_", "-") != rule.name:
            raise SpecError(
                "CDDL rule %s has type %d, which the table of §3 calls %s"
                % (rule.name, number, table)
            )
    for number, name in names.items():
        if number not in frames:
            raise SpecError("table type %d (%s) has no CDDL rule" % (number, name))
    return text, frames, names


# ---------------------------------------------------------------------------
# Checking decoded frames


def is_uint(v):
    return type(v) is int and v >= 0


def check_value(field, t, v):
    if t.kind == "uint":
        if not is_uint(v):
            return "%s: %r is not an unsigned integer" % (field, v)
        if v >= 1 << (8 * t.size):
            return "%s: %d does not fit %d bytes" % (field, v, t.size)
    elif t.kind == "bool":
        if type(v) is not bool:
            return "%s: %r is not a bool" % (field, v)
    elif t.kind == "bstr":
        if type(v) is not bytes:
            return "%s: %r is not a byte string" % (field, v)
    elif t.kind == "tstr":
        if type(v) is not str:
            return "%s: %r is not a text string" % (field, v)
    if t.kind in ("bstr", "tstr"):
        n = len(v) if t.kind == "bstr" else len(v.encode("utf-8"))
        if n < t.lo or (t.hi is not None and n > t.hi):
            return "%s: %d bytes, outside %s..%s" % (field, n, t.lo, t.hi)
    return None


def check_arithmetic(rule, item):
    """§4's ACK ranges and §3.4's MESSAGE end, which CDDL cannot state."""
    if rule.name == "ack":
        largest, first = item[2], item[3]
        if first > largest:
            return "ack: first range below 0"
        smallest = largest - first
        pairs = item[4:]
        for i in range(0, len(pairs), 2):
            gap, length = pairs[i], pairs[i + 1]
            if gap + 2 > smallest:
                return "ack: gap below 0"
            top = smallest - gap - 2
            if length > top:
                return "ack: range below 0"
            smallest = top - length
    if rule.name == "message":
        if item[2] + len(item[4]) > (1 << 64) - 1:
            return "message: ends past 2^64 - 1"
    return None


def check_frame(frames, item):
    """None if `item` (decoded) is a valid frame, else why not; and the
    rule it matched."""
    if type(item) is int:
        for rule in frames.values():
            if rule.literal and item == rule.number:
                return None, rule
        return "top-level integer %d is not a frame" % item, None
    if type(item) is not list:
        return "top-level %s is not a frame" % type(item).__name__, None
    if not item or not is_uint(item[0]):
        return "array without a type number", None
    rule = frames.get(item[0])
    if rule is None or rule.literal:
        return "unknown frame type %d" % item[0], None
    fixed = 1 + len(rule.fields)
    if rule.repeat is None:
        if len(item) != fixed:
            return "%s: %d elements, not %d" % (rule.name, len(item), fixed), rule
    else:
        lo, hi, group = rule.repeat
        extra = len(item) - fixed
        if extra < 0 or extra % len(group):
            return "%s: %d elements" % (rule.name, len(item)), rule
        k = extra // len(group)
        if k < lo or (hi is not None and k > hi):
            return "%s: %d repeated groups, outside %s..%s" % (rule.name, k, lo, hi), rule
    for (field, t), v in zip(rule.fields, item[1:fixed]):
        why = check_value(field, t, v)
        if why:
            return "%s.%s" % (rule.name, why), rule
    if rule.repeat is not None:
        group = rule.repeat[2]
        for i, v in enumerate(item[fixed:]):
            field, t = group[i % len(group)]
            why = check_value(field, t, v)
            if why:
                return "%s.%s" % (rule.name, why), rule
    return check_arithmetic(rule, item), rule


def decode_sequence(data):
    """The items of a CBOR sequence, each with its own bytes; raises on
    bytes that do not decode."""
    fp = io.BytesIO(data)
    dec = cbor2.CBORDecoder(fp)
    out = []
    while fp.tell() < len(data):
        start = fp.tell()
        item = dec.decode()
        out.append((item, data[start : fp.tell()]))
    return out


def check_plaintext(frames, data):
    """(ok, why, [rules]) for a CBOR sequence of frames."""
    try:
        items = decode_sequence(data)
    except Exception as e:  # cbor2 raises several types
        return False, "does not decode: %s: %s" % (type(e).__name__, e), []
    matched = []
    for item, raw in items:
        why, rule = check_frame(frames, item)
        if why:
            return False, why, matched
        try:
            again = cbor2.dumps(item)
        except Exception as e:
            return False, "does not re-encode: %s" % e, matched
        if again != raw:
            return (
                False,
                "not in the unique encoding (definite lengths, shortest heads, no "
                "tags): %s re-encodes as %s" % (raw.hex(), again.hex()),
                matched,
            )
        matched.append(rule)
    return True, None, matched


# ---------------------------------------------------------------------------
# The inputs


def spec_examples(text):
    """(hex, should_pass, label) for the examples of §7 given in full."""
    sec = re.search(r"## 7\. Examples\n(.*)$", text, re.S)
    if not sec:
        raise SpecError("no section 7 in the frames spec")
    body = sec.group(1)
    split = body.find("Refused frames")
    if split < 0:
        raise SpecError("no refused frames in section 7")
    out = []
    for part, valid in ((body[:split], True), (body[split:], False)):
        for row in re.finditer(r"^\|(.*)\|\s*$", part, re.M):
            cells = [c.strip() for c in row.group(1).split("|")]
            cell = cells[-1] if valid else cells[0]
            m = re.fullmatch(r"`([0-9a-f ]+)`", cell)
            if not m:
                continue  # headers, separators, elided rows
            out.append((m.group(1).replace(" ", ""), valid, "§7 " + " ".join(cells[:2])))
    for m in re.finditer(r"`((?:[0-9a-f]{2} )+[0-9a-f]{2})`\.", body[:split]):
        out.append((m.group(1).replace(" ", ""), True, "§7 plaintext"))
    return out


def main(argv):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--spec", default=os.path.join(ROOT, "spec", "frames.md"))
    ap.add_argument("--frames", default=os.path.join(ROOT, "spec", "vectors", "frames.json"))
    ap.add_argument("--packets", default=os.path.join(ROOT, "spec", "vectors", "packets.json"))
    ap.add_argument("--no-examples", action="store_true", help="skip the §7 self-test")
    args = ap.parse_args(argv)

    try:
        text, frames, names = load_spec(args.spec)
        with open(args.frames, encoding="utf-8") as f:
            frame_vectors = json.load(f)
        packet_vectors = []
        if args.packets != "-":
            with open(args.packets, encoding="utf-8") as f:
                packet_vectors = json.load(f)
        examples = [] if args.no_examples else spec_examples(text)
    except (OSError, ValueError, SpecError) as e:
        print("setup error: %s" % e, file=sys.stderr)
        return 2

    passed = failed = 0

    def result(ok, label, why):
        nonlocal passed, failed
        if ok:
            passed += 1
        else:
            failed += 1
            print("FAIL %s: %s" % (label, why))

    seen_types = set()
    for v in frame_vectors:
        label = "frames.json %r" % v.get("name")
        try:
            data = bytes.fromhex(v["hex"])
        except (KeyError, ValueError, TypeError) as e:
            result(False, label, "no hex: %s" % e)
            continue
        ok, why, matched = check_plaintext(frames, data)
        if ok and len(matched) != 1:
            ok, why = False, "%d frames, not one" % len(matched)
        if ok:
            rule = matched[0]
            name = names[rule.number]
            if not str(v.get("name", "")).startswith(name):
                ok, why = False, "decodes as %s (type %d)" % (name, rule.number)
            seen_types.add(rule.number)
        result(ok, label, why)
    missing = sorted(set(frames) - seen_types)
    result(
        not missing,
        "frames.json coverage",
        "no vector for type(s) %s" % ", ".join("%d %s" % (t, names[t]) for t in missing),
    )

    for v in packet_vectors:
        label = "packets.json %r plaintext" % v.get("name")
        try:
            data = bytes.fromhex(v["plaintext"])
        except (KeyError, ValueError, TypeError) as e:
            result(False, label, "no plaintext: %s" % e)
            continue
        ok, why, _ = check_plaintext(frames, data)
        result(ok, label, why)

    for hexs, valid, label in examples:
        ok, why, _ = check_plaintext(frames, bytes.fromhex(hexs))
        if valid:
            result(ok, label, why)
        else:
            result(not ok, label, "accepted, but the spec refuses it")

    print("%d passed, %d failed" % (passed, failed))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
