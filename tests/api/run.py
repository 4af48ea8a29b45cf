#!/usr/bin/env python3
"""Black-box API tests against a real chartkeep server.

  run.py --bin build/chartkeep [--only cases|flows|examples|search|search-common|search-index|export|oauth|audit|labels|durability|access|attacks|transport|codes|mpi|mpi-accuracy|hl7]

Suites:
  cases       data-driven: tests/data/api/NNN-name.http (a request) and
              NNN-name.expect (status, headers, a JSON subset of the answer);
              every failing request must leave the database unchanged
  flows       create/read/update/history/delete/patch/transaction sequences
  examples    every official R4 example in tests/data/fhir-examples/ is stored
              and read back identical (numbers compared as text); the known
              invalid ones are rejected naming the element at fault; the
              AuditEvent ones are refused (only the server writes the trail)
  search      FHIR search cases against a fixed data set (tests/data/search/),
              paging flows (search_cases.py)
  search-common  the same search cases with every code counted as common, so
              the planner starts from other conditions: same answers
  search-index  the index tables after many writes equal a reindex from
              scratch; custom SearchParameters
  export      Bulk Data $export: kick-off forms, parameters, polling, manifest,
              every file checked, _since/_type, Patient and Group, auth and
              ownership, DELETE, restart (export.py)
  oauth       POST /auth/token (password, client_credentials, refresh_token and
              their errors), refresh rotation and reuse, lockout, /auth/revoke,
              the rate limit (429), chartkeep client, nothing secret in the log
              (oauth.py)
  audit       one AuditEvent per request, written before the answer; audit
              verify, and tampering with the table caught (audit.py)
  labels      sensitivity labels (meta.security) hide records from roles
              without clearance, in reads and searches; break-the-glass
              grants, their report and audit (labels.py)
  durability  SIGKILL in the middle of a stream of writes; every write that
              got a 2xx is there after a restart, and the database is sound
  access      the access-control matrix generated from routes[] (server.c) and
              `policy show --json`: 401 without a valid token, 403 exactly
              where the default policy says no, patient/ scopes, AuditEvent
              read-only; known gaps printed as "KNOWN GAP: ..." (access.py)
  attacks     SQL injection in every kind of search parameter, path traversal,
              header injection, oversized URLs and bodies, deep JSON, invalid
              UTF-8: never a 5xx, the database intact, nothing echoed in the
              log (attacks.py)
  transport   HTTPS (a certificate made with openssl), bad certificate files;
              oversized headers (431), slow clients cut off, the per-address
              connection limit (transport.py)
  hl7         HL7 v2 over MLLP: ACKs (original, enhanced, by version),
              the durable inbox, resends and collisions, malformed input,
              the FHIR mapping cases (tests/data/hl7v2/fhir/), the error
              queue and reprocess, hl7 send/parse (hl7.py)
  mpi         the master patient index: $merge / $unmerge (references of every
              type move and move back, history, refusals, policy, audit),
              $match, /mpi/report (mpi.py)
  mpi-accuracy  FEBRL data sets 1-3 imported as Patients, `mpi train` and
              `mpi scan`: precision, recall and F1 of the linked pairs against
              the true pairs, failing below the floors in mpi.py
Each suite ends with "suite NAME: N passed, M failed".
"""
import argparse
import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import Failure, Server, Suite, check, subset  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
DATA = os.path.join(ROOT, "tests", "data")


def start_server(binary, match=False):
    s = Server(binary, match=match).init()
    s.add_user("gone", "coder")
    s.tokens["expired"] = s.issue_token("gone", ttl=1)
    t0 = time.time()
    s.add_user("admin", "admin")
    s.add_user("tech", "him_technician")
    s.tokens["admin"] = s.issue_token("admin")
    s.tokens["revoked"] = s.issue_token("gone")
    s.cli("token", "revoke", "--db", s.db, "--token-stdin", stdin=s.tokens["revoked"] + "\n")
    time.sleep(max(0, 1.1 - (time.time() - t0)))  # the 1-second token has expired
    s.start()
    return s


# ---- data-driven cases ----------------------------------------------------

def generated_body(spec):
    """@generate nested N | @generate size N | @generate entries N"""
    kind, n = spec.split()[1], int(spec.split()[2])
    if kind == "nested":
        return (b'{"resourceType":"Basic","code":{"text":"x"},"extension":' +
                b'[{"url":"http://x","extension":' * n + b'[]' + b'}]' * n + b'}')
    if kind == "size":
        pad = b"x" * n
        return b'{"resourceType":"Basic","code":{"text":"' + pad + b'"}}'
    if kind == "entries":
        e = ('{"request":{"method":"POST","url":"Basic"},'
             '"resource":{"resourceType":"Basic","code":{"text":"x"}}}')
        return ('{"resourceType":"Bundle","type":"batch","entry":[' +
                ",".join([e] * n) + ']}').encode()
    raise ValueError("unknown generator " + spec)


def parse_http(path):
    raw = open(path, "rb").read()
    head, _, body = raw.partition(b"\n\n")
    lines = head.decode().split("\n")
    method, target = lines[0].split(" ", 1)
    headers = {}
    for line in lines[1:]:
        if line.startswith("#") or not line.strip():
            continue
        k, _, v = line.partition(":")
        headers[k.strip()] = v.strip()
    if body.startswith(b"@generate"):
        body = generated_body(body.decode().strip())
    elif body.endswith(b"\n"):
        body = body[:-1]
    return method, target, headers, body if body or method in ("POST", "PUT", "PATCH") else None


def run_case(s, http_path):
    exp = json.load(open(http_path[:-5] + ".expect"))
    method, target, headers, body = parse_http(http_path)
    token = "admin"
    if "Authorization" in headers:
        token = None
        for name, tok in s.tokens.items():
            headers["Authorization"] = headers["Authorization"].replace("{{%s}}" % name, tok)
    if headers.pop("X-Test-No-Auth", None):
        token = None
    before = s.history_head()
    r = s.request(method, target, body=body, headers=headers, token=token)
    check(r.status == exp["status"], "status %d, expected %d: %s" % (r.status, exp["status"],
                                                                       r.body[:400]))
    for k, v in exp.get("headers", {}).items():
        got = r.header(k)
        check(got is not None, "no %s header" % k)
        why = subset(v, got)
        check(why is None, "header %s: %s" % (k, why))
    if "body" in exp:
        check(r.body, "empty body")
        why = subset(exp["body"], r.json)
        check(why is None, why)
    if exp.get("unchanged", r.status >= 400):
        check(s.history_head() == before, "a failed request changed the database")


def load_fixtures(s):
    path = os.path.join(DATA, "api", "_fixtures.ndjson")
    for line in open(path):
        if line.strip():
            res = json.loads(line)
            r = s.put("/%s/%s" % (res["resourceType"], res["id"]), res)
            check(r.status in (200, 201), "fixture %s: %r" % (res["id"], r))


def suite_cases(binary):
    suite = Suite("api-cases")
    s = start_server(binary)
    try:
        load_fixtures(s)
        d = os.path.join(DATA, "api")
        for f in sorted(os.listdir(d)):
            if f.endswith(".http"):
                suite.run(f[:-5], run_case, s, os.path.join(d, f))
    finally:
        s.cleanup()
    return suite.summary()


# ---- round trip of the official examples ----------------------------------

def as_text(raw):
    """JSON with numbers kept as their text, so 7.50 != 7.5."""
    return json.loads(raw, parse_float=lambda t: ("decimal", t), parse_int=lambda t: ("int", t))


def strip_meta(res, drop_id=False):
    res = dict(res)
    if drop_id:
        res.pop("id", None)
    meta = dict(res.get("meta", {}))
    meta.pop("versionId", None)
    meta.pop("lastUpdated", None)
    if meta:
        res["meta"] = meta
    else:
        res.pop("meta", None)
    return res


def roundtrip(s, path):
    raw = open(path, "rb").read()
    orig = as_text(raw)
    rt, rid = orig["resourceType"], orig.get("id")
    # create (server id) ...
    r = s.request("POST", "/" + rt, body=raw, headers={"Content-Type": "application/fhir+json"})
    check(r.status == 201, "create: %d %s" % (r.status, r.body[:300]))
    loc = r.header("Location")
    check(loc and "/_history/1" in loc, "create: Location %r" % loc)
    got = s.get(loc[len(s.base):].split("/_history")[0])
    check(got.status == 200, "read after create: %d" % got.status)
    check(strip_meta(as_text(got.body), True) == strip_meta(orig, True),
          "create: what was read back differs from what was sent")
    # ... and update-as-create with the example's own id
    if rid:
        r = s.request("PUT", "/%s/%s" % (rt, rid), body=raw,
                      headers={"Content-Type": "application/fhir+json"})
        check(r.status in (200, 201), "update: %d %s" % (r.status, r.body[:300]))
        got = s.get("/%s/%s" % (rt, rid))
        check(got.status == 200, "read after update: %d" % got.status)
        check(strip_meta(as_text(got.body)) == strip_meta(orig),
              "update: what was read back differs from what was sent")
        check(got.header("ETag") == r.header("ETag"), "ETag differs between update and read")


def rejected(s, path, expect):
    raw = open(path, "rb").read()
    orig = json.loads(raw)
    r = s.request("PUT", "/%s/%s" % (orig["resourceType"], orig["id"]), body=raw,
                  headers={"Content-Type": "application/fhir+json"})
    check(r.status == expect["status"], "status %d, expected %d" % (r.status, expect["status"]))
    exprs = [e for i in r.json["issue"] for e in i.get("expression", [])]
    check(expect["expression"] in exprs, "expected an issue at %s, got %s" % (expect["expression"],
                                                                             exprs))


def refused(s, path):
    raw = open(path, "rb").read()
    r = s.request("POST", "/AuditEvent", body=raw, headers={"Content-Type": "application/fhir+json"})
    check(r.status == 403, "create AuditEvent: %d %s" % (r.status, r.body[:200]))
    rid = json.loads(raw).get("id")
    if rid:
        r = s.request("PUT", "/AuditEvent/" + rid, body=raw, headers={"Content-Type": "application/fhir+json"})
        check(r.status == 403, "update AuditEvent: %d %s" % (r.status, r.body[:200]))


def suite_examples(binary):
    suite = Suite("api-examples")
    s = start_server(binary)
    d = os.path.join(DATA, "fhir-examples")
    invalid = json.load(open(os.path.join(d, "INVALID.json")))
    try:
        for f in sorted(os.listdir(d)):
            if not f.endswith(".json") or f == "INVALID.json":
                continue
            if f in invalid:
                suite.run("invalid " + f, rejected, s, os.path.join(d, f), invalid[f])
            elif f.startswith("AuditEvent-"):
                # the server writes the audit trail; nobody else may
                suite.run("refused " + f, refused, s, os.path.join(d, f))
            else:
                suite.run(f, roundtrip, s, os.path.join(d, f))
        # no patient data in the server log: names from the examples never appear
        def log_clean():
            log = "".join(s.log)
            for word in ("Chalmers", "Peter James", "Pleasantville", "Windsor"):
                check(word not in log, "patient data (%r) in the server log" % word)
        suite.run("log has no patient data", log_clean)
    finally:
        s.cleanup()
    return suite.summary()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", default=os.path.join(ROOT, "build", "chartkeep"))
    ap.add_argument("--only")
    a = ap.parse_args()
    import access
    import attacks
    import flows
    import durability
    import audit
    import labels
    import export
    import oauth
    import search_cases
    import transport
    import codes
    import hl7
    import mpi
    suites = {
        "cases": suite_cases,
        "flows": lambda b: flows.suite(b, start_server),
        "examples": suite_examples,
        "search": lambda b: search_cases.suite(b, start_server),
        "search-common": lambda b: search_cases.suite(b, start_server, common_rows=1),
        "search-index": lambda b: search_cases.suite_index(b, start_server),
        "export": lambda b: export.suite(b, start_server),
        "oauth": oauth.suite,
        "audit": lambda b: audit.suite(b, start_server),
        "labels": lambda b: labels.suite(b, start_server),
        "durability": durability.suite,
        "access": access.suite,
        "attacks": lambda b: attacks.suite(b, start_server),
        "transport": transport.suite,
        "codes": lambda b: codes.suite(b, start_server),
        "hl7": hl7.suite,
        "mpi": lambda b: mpi.suite(b, start_server),
        "mpi-accuracy": mpi.suite_accuracy,
    }
    ok = True
    for name, fn in suites.items():
        if a.only and name not in a.only.split(","):
            continue
        try:
            ok = fn(a.bin) and ok
        except Failure as e:
            print("FAIL suite %s could not run: %s" % (name, e))
            print("suite %s: 0 passed, 1 failed" % name)
            ok = False
    # an instrumented server's reports, whichever suite's server wrote them
    with open(a.bin, "rb") as f:
        instrumented = b"__asan_init" in f.read()
    if instrumented:
        import harness
        for line in harness.SANITIZER_REPORTS[:20]:
            print("FAIL server sanitizer report: %s" % line)
        n = len(harness.SANITIZER_REPORTS)
        print("suite server-sanitizers: %d passed, %d failed" % (0 if n else 1, n))
        ok = ok and n == 0
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
