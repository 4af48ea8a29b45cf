"""access: the access-control matrix, generated from the route table and the
policy table, so that a new route, group or rule cannot be added without
being covered.

- The routes come from `static const struct route routes[]` in
  src/server/server.c (method, pattern, action, public flag, export op): the
  suite fails if it finds fewer than 20, so a change of format cannot make it
  test nothing.
- The policy comes from `chartkeep policy show --json`; the server runs with
  the built-in defaults (no tests/api/test.policy).
- Every non-public route: no token, an expired token and a revoked token are
  401.
- Every role x a representative type of each policy group (and AuditEvent) x
  every route: 403 exactly when the policy denies the route's action on the
  type, never 403 when it allows it, never a 5xx; a 403 for an existing id
  and for a missing one have the same body (a refusal never says whether a
  record exists).
- patient/ scopes: a token restricted to one patient's Observations does not
  read another patient's.
- AuditEvent: no role creates, updates, patches or deletes it.

What the policy says a request needs beyond the route's own action on its
type (documented in policy.h and docs/internals/privacy.md) is checked too:
a compartment search needs search on the compartment's type, a batch entry
its own action.  Where the server does not enforce that yet the case prints
"KNOWN GAP: ..." and counts neither as passed nor as failed (GAPS below);
when the server is fixed the case simply passes.
"""
import json
import os
import re
import time
import urllib.parse

from harness import Failure, Server, Suite, check

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SERVER_C = os.path.join(ROOT, "src", "server", "server.c")
PW = "correct horse battery staple"
MIN_ROUTES = 20

ACTIONS = {"PA_READ": "read", "PA_VREAD": "vread", "PA_SEARCH": "search", "PA_HISTORY": "history",
           "PA_CREATE": "create", "PA_UPDATE": "update", "PA_PATCH": "patch",
           "PA_DELETE": "delete", "PA_BATCH": "batch", "PA_OPERATION": "operation",
           "PA_CAPABILITIES": "capabilities"}
WRITES = ("create", "update", "patch", "delete")


# ---- the route table ----------------------------------------------------------

class Route:
    def __init__(self, fields):
        f = [x.strip() for x in fields] + ["0"] * 8
        self.method = f[0].strip('"')
        self.pattern = f[1].strip('"')
        self.action = ACTIONS.get(f[3])          # None: no policy action (auth routes)
        self.public = f[4] == "true"
        self.export_op = f[5] if f[5] != "0" else None
        self.export_level = f[6] if f[6] != "0" else None

    @property
    def name(self):
        return "%s %s" % (self.method, self.pattern)

    def literal_type(self):
        """A pattern naming its type ("/Patient/$export"), or None."""
        first = self.pattern.strip("/").split("/")[0]
        return first if first[:1].isupper() else None

    def owner_checked(self):
        """Export status, file and cancel: the job's owner decides, not the policy."""
        return self.export_op in ("FHIR_EXPORT_STATUS", "FHIR_EXPORT_CANCEL", "FHIR_EXPORT_FILE")


def parse_routes(path=SERVER_C):
    src = open(path).read()
    m = re.search(r"static const struct route routes\[\]\s*=\s*\{(.*?)\n\};", src, re.S)
    check(m, "no 'static const struct route routes[]' in %s" % path)
    body = re.sub(r"/\*.*?\*/", "", m.group(1), flags=re.S)
    # { "METHOD", "PATTERN", rest }: the pattern's own braces are inside its quotes
    # (later fields may be quoted strings too: an operation's resource type)
    entries = re.findall(r'\{\s*("[A-Z]+")\s*,\s*("[^"]*")\s*,((?:[^{}"]|"[^"]*")*)\}', body)
    rows = len(re.findall(r'\{\s*"[A-Z]+"\s*,', body))
    check(len(entries) == rows, "parsed %d of the %d rows of routes[] in %s: teach parse_routes "
          "the new row's format" % (len(entries), rows, path))
    routes = [Route([m, p] + rest.split(",")) for m, p, rest in entries]
    check(len(routes) >= MIN_ROUTES, "parsed %d routes from %s, expected at least %d: did the "
          "table's format change?" % (len(routes), path, MIN_ROUTES))
    for r in routes:
        check(r.method in ("GET", "POST", "PUT", "PATCH", "DELETE") and r.pattern.startswith("/"),
              "unparsed route %r %r" % (r.method, r.pattern))
        check(r.public or r.action, "route %s: unknown action" % r.name)
        for ph in re.findall(r"\{\w+\}", r.pattern):
            check(ph in ("{type}", "{id}", "{vid}", "{ctype}"),
                  "route %s: placeholder %s is new to access.py: teach build() to fill it" % (r.name, ph))
    return routes


# ---- the policy ------------------------------------------------------------------

def load_policy(s):
    p = json.loads(s.cli("policy", "show", "--json").stdout)
    check(p["source"] == "", "policy show --json read a site file: %r" % p["source"])
    return p


def allowed(policy, role, action, rtype):
    r = policy["roles"][role]
    return action in (r["system"] if rtype is None else r["types"].get(rtype, []))


# Representative types, in order of preference: the first one a group holds
# represents it.  Each has a minimal fixture below; a new group with none of
# these makes the suite fail until one is added.
REPS = ["Observation", "DocumentReference", "Patient", "Invoice", "Appointment", "Basic",
        "Consent", "Provenance", "Practitioner", "Medication", "ValueSet",
        "BiologicallyDerivedProduct"]


def fixture(rtype, rid, pid="acc-Patient"):
    subj = {"reference": "Patient/" + pid}
    body = {
        "Patient": {"active": True},
        "Observation": {"status": "final", "code": {"text": "access"}, "subject": subj},
        "DocumentReference": {"status": "current", "subject": subj,
                              "content": [{"attachment": {"contentType": "text/plain",
                                                          "data": "YWNjZXNz"}}]},
        "Invoice": {"status": "draft", "subject": subj},
        "Appointment": {"status": "proposed",
                        "participant": [{"status": "needs-action", "actor": subj}]},
        "Basic": {"code": {"text": "access"}, "subject": subj},
        "Consent": {"status": "active",
                    "scope": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/consentscope",
                                          "code": "patient-privacy"}]},
                    "category": [{"coding": [{"system": "http://loinc.org", "code": "59284-0"}]}],
                    "patient": subj, "policyRule": {"text": "access"}},
        "Provenance": {"target": [subj], "recorded": "2020-01-01T00:00:00Z",
                       "agent": [{"who": {"reference": "Practitioner/acc-Practitioner"}}]},
        "Practitioner": {"active": True},
        "Medication": {"code": {"text": "access"}},
        "ValueSet": {"status": "draft"},
        "BiologicallyDerivedProduct": {"quantity": 1},
        "Group": {"type": "person", "actual": True, "member": [{"entity": subj}]},
        "AuditEvent": {"type": {"code": "rest"}, "recorded": "2020-01-01T00:00:00Z",
                       "agent": [{"requestor": True}], "source": {"observer": {"display": "x"}}},
    }[rtype]
    return dict({"resourceType": rtype, "id": rid}, **body)


def representatives(policy):
    reps = {}
    for g, info in policy["groups"].items():
        rep = [t for t in REPS if t in info["types"]]
        check(rep, "policy group %r has no representative type in access.py REPS: add one "
              "(and its fixture)" % g)
        reps[g] = rep[0]
    return reps


def fid(rtype):
    """The fixture's id; AuditEvent ids are the audit trail's sequence numbers."""
    return "1" if rtype == "AuditEvent" else "acc-" + rtype


def missing_id(rtype):
    return "999999" if rtype == "AuditEvent" else "acc-missing"


# ---- requests made from a route ----------------------------------------------------

def build(route, rtype, rid, ctype=None, job=None, fname=None):
    """(method, path, body, headers) for a route with its placeholders filled."""
    lit = route.literal_type()
    t = lit or rtype
    path = route.pattern
    if route.export_op:
        path = path.replace("{id}", job or rid).replace("{vid}", fname or "x.ndjson")
    path = (path.replace("{type}", t or "").replace("{id}", rid).replace("{vid}", "1")
            .replace("{ctype}", ctype or ""))
    body, headers = None, {}
    if route.action == "batch":
        body = {"resourceType": "Bundle", "type": "batch",
                "entry": [{"request": {"method": "GET", "url": "%s/%s" % (rtype, rid)}}]}
    elif route.method == "POST" and path.endswith("/_search"):
        body, headers = b"", {"Content-Type": "application/x-www-form-urlencoded"}
    elif route.method == "POST" and "/$" in route.pattern:
        body = {"resourceType": "Parameters"}     # an operation's input
    elif route.method == "POST":
        body = fixture(t, None)
        del body["id"]
    elif route.method == "PUT":
        body = fixture(t, rid)
        if "{id}" not in route.pattern:
            path += "?_id=" + rid
    elif route.method == "PATCH":
        body = json.dumps([{"op": "test", "path": "/id", "value": rid}]).encode()
        headers = {"Content-Type": "application/json-patch+json"}
    elif route.method == "DELETE" and "{id}" not in route.pattern and not route.export_op:
        path += "?_id=" + rid
    if route.export_op == "FHIR_EXPORT_KICKOFF":
        headers["Prefer"] = "respond-async"
    return route.method, path, body, headers


def needs(route, rtype, ctype=None):
    """What the policy must allow for the request: [(action, type or None)]."""
    if route.pattern.endswith("/$access-log") or route.pattern == "/privacy/break-glass":
        return [("search", "AuditEvent")]      # decided as a search of the audit trail
    if route.pattern.startswith("/mpi/"):
        return [(route.action, "Patient")]      # the MPI's report: decided on Patient
    lit = route.literal_type()
    if lit:
        return [(route.action, lit)]
    if "{type}" in route.pattern:
        need = [(route.action, rtype)]
        if ctype:
            need.append((route.action, ctype))  # the hits are of ctype
        return need
    return [(route.action, None)]               # the system level


# ---- known gaps: what the policy promises and the server does not do yet -----------

def gap_of(s, route, role, need, policy, r):
    """A KNOWN GAP message if the answer r deviates only in a known way, else None."""
    door = need[0]
    if "{ctype}" in route.pattern and allowed(policy, role, *door) and r.status == 200:
        return ("a compartment search (GET %s) returns resources of a type the role may not "
                "search: server.c decides search on the compartment's type only (policy.h: "
                "decide again per hit type)" % route.pattern)
    return None


# ---- the tests ---------------------------------------------------------------------

class Gaps:
    def __init__(self):
        self.seen = {}

    def add(self, label, msg):
        self.seen.setdefault(msg, []).append(label)

    def report(self, name):
        for msg, labels in self.seen.items():
            print("KNOWN GAP: %s [%d case(s): %s%s]" % (msg, len(labels), "; ".join(labels[:4]),
                                                       "; ..." if len(labels) > 4 else ""),
                  flush=True)
        print("suite %s: %d known gap case(s), not counted" % (name, sum(len(v) for v in self.seen.values())),
              flush=True)


def t_unauthenticated(s, route, method, path, body, headers):
    for tok, what in ((None, "no token"), ("expired", "an expired token"),
                      ("revoked", "a revoked token"), ("ck_not-a-real-token", "an unknown token")):
        r = s.request(method, path, body=body, headers=headers, token=tok)
        check(r.status == 401, "%s with %s: %r" % (route.name, what, r))


def t_matrix_case(s, policy, gaps, label, route, role, rtype, ctype):
    need = needs(route, rtype, ctype)
    deny = not all(allowed(policy, role, a, t) for a, t in need)
    t = route.literal_type() or rtype
    rid = fid(t) if t else "x"
    method, path, body, headers = build(route, rtype, rid, ctype)
    r = s.request(method, path, body=body, headers=headers, token=role)
    check(r.status < 500 or r.status == 501, "%s: a server error %r" % (path, r))
    if deny and r.status != 403:
        msg = gap_of(s, route, role, need, policy, r)
        if msg:
            gaps.add(label, msg)
            return "gap"
        raise Failure("%s %s as %s: %d, but the policy denies %s" % (method, path, role, r.status,
                                                                     need))
    if not deny:
        check(r.status != 403, "%s %s as %s: 403, but the policy allows %s: %s" % (
            method, path, role, need, r.body[:200]))
        return answer_types(policy, gaps, label, route, role, r)
    # a refusal does not say whether the record exists
    if "{id}" in route.pattern:
        lit = route.literal_type()
        method, path2, body, headers = build(route, rtype, missing_id(lit or rtype), ctype)
        r2 = s.request(method, path2, body=body, headers=headers, token=role)
        check(r2.status == 403 and r2.body == r.body,
              "403 differs for an existing and a missing id: %r vs %r" % (r, r2))
    return None


def answer_types(policy, gaps, label, route, role, r):
    """A Bundle answer holds only resources the role may read: hits of other
    types than the request's are decided again (policy.h)."""
    if r.status != 200 or not r.body.startswith(b'{"resourceType":"Bundle"'):
        return None
    bad = sorted({e["resource"]["resourceType"] for e in r.json.get("entry", [])
                  if "resource" in e and e.get("search", {}).get("mode") != "outcome"
                  and not allowed(policy, role, "read", e["resource"]["resourceType"])})
    if not bad:
        return None
    gaps.add("%s (got %s)" % (label, ",".join(bad)),
             "a Bundle answer to %s %s holds resources of types the role may not read: hits of "
             "another type than the request's are not decided again per type (policy.h)" % (
                 route.method, route.pattern))
    return "gap"


# _revinclude from the Patient: each type's reference to its patient
REVINCLUDE = {"Observation": "subject", "DocumentReference": "subject", "Invoice": "subject",
              "Appointment": "actor", "Basic": "subject", "Consent": "patient",
              "Provenance": "target"}


def t_revinclude(s, policy, gaps, label, role, rtype):
    """Patient?_revinclude=T:param by a role that may search Patient: no T
    it may not read."""
    r = s.get("/Patient?_id=acc-Patient&_revinclude=%s:%s" % (rtype, REVINCLUDE[rtype]), token=role)
    check(r.status < 500, "_revinclude %r" % r)
    if not allowed(policy, role, "search", "Patient"):
        check(r.status == 403, "_revinclude by %s who may not search Patient: %r" % (role, r))
        return None
    check(r.status == 200, "_revinclude as %s: %r" % (role, r))
    got = [e["resource"]["resourceType"] for e in r.json.get("entry", [])]
    check("Patient" in got, "_revinclude as %s: no Patient %r" % (role, got))
    if rtype in got and not allowed(policy, role, "read", rtype):
        gaps.add(label, "_revinclude returns resources of a type the role may not read "
                 "(Patient?_revinclude=T:param): included resources are not decided per type")
        return "gap"
    return None


def t_batch_entry(s, policy, gaps, label, role, rtype):
    """A batch is allowed at the door; each entry is decided with its own action."""
    r = s.post("/", {"resourceType": "Bundle", "type": "batch",
                     "entry": [{"request": {"method": "GET", "url": "%s/%s" % (rtype, fid(rtype))}}]},
               token=role)
    check(r.status == 200, "batch as %s: %r" % (role, r))
    st = r.json["entry"][0]["response"]["status"]
    if allowed(policy, role, "read", rtype):
        check(not st.startswith("403"), "batch read of %s as %s: %s" % (rtype, role, st))
    elif not st.startswith("403"):
        gaps.add(label, "a batch entry (POST /) reading a type the role may not read is "
                 "answered (200, or 404/410 revealing existence) instead of 403: entries are "
                 "not decided one by one")
        return "gap"
    return None


def t_owner_checked(s, policy, routes, roles, owner, job, fname):
    """Export status/file/cancel: the owner is served; anyone else gets the
    same 404 as for a job that does not exist (never 403: that would say it
    exists)."""
    for route in routes:
        if not route.owner_checked() or route.method == "DELETE":
            continue
        for role in roles:
            m, path, body, h = build(route, None, job, job=job, fname=fname)
            r = s.request(m, path, body=body, headers=h, token=role)
            check(r.status < 500, "%s as %s: %r" % (path, role, r))
            if role == owner:
                check(r.status in (200, 202), "%s as its owner %s: %r" % (path, role, r))
                continue
            m, path2, body, h = build(route, None, "0" * 32, job="0" * 32, fname=fname)
            r2 = s.request(m, path2, body=body, headers=h, token=role)
            check(r.status == 404 and r2.status == 404 and r.body == r2.body,
                  "%s as %s (not the owner): %r; missing job: %r" % (path, role, r, r2))
    for route in routes:
        if route.owner_checked() and route.method == "DELETE":
            for role in roles:
                if role != owner:
                    m, path, body, h = build(route, None, job, job=job)
                    r = s.request(m, path, body=body, headers=h, token=role)
                    check(r.status == 404, "cancel by %s (not the owner): %r" % (role, r))
            m, path, body, h = build(route, None, job, job=job)
            r = s.request(m, path, body=body, headers=h, token=owner)
            check(r.status in (200, 202, 204), "cancel by the owner: %r" % r)


def t_auditevent_writes(s, policy, routes, role):
    for a in WRITES:
        check(not allowed(policy, role, a, "AuditEvent"), "the policy lets %s %s AuditEvent" % (role, a))
    for route in routes:
        if route.action in WRITES and "{type}" in route.pattern:
            m, path, body, h = build(route, "AuditEvent", "1")
            r = s.request(m, path, body=body, headers=h, token=role)
            check(r.status == 403, "%s %s as %s: %r" % (m, path, role, r))


def password_token(s, user, **fields):
    f = {"grant_type": "password", "username": user, "password": PW}
    f.update(fields)
    r = s.request("POST", "/auth/token", body=urllib.parse.urlencode(f).encode(), token=None,
                  headers={"Content-Type": "application/x-www-form-urlencoded"})
    check(r.status == 200, "password grant %r" % r)
    return r.json["access_token"]


def t_patient_scope(s, gaps):
    tok = password_token(s, "clinician", scope="patient/Observation.rs", patient="acc-Patient")
    r = s.get("/Observation/acc-other-obs", token=tok)
    check(r.status == 403, "another patient's Observation with patient/Observation.rs: %r" % r)
    r2 = s.get("/Observation/acc-missing", token=tok)
    check(r2.status in (403, 404), "a missing Observation: %r" % r2)
    def matches(resp):
        return [e for e in resp.json.get("entry", []) if e.get("search", {}).get("mode") == "match"]
    r = s.get("/Observation?subject=Patient/acc-other", token=tok)
    check(r.status == 403 or not matches(r), "a search of another patient's Observations: %r" % r)
    r = s.get("/Patient/acc-other/Observation", token=tok)
    check(r.status == 403 or not matches(r), "another patient's compartment: %r" % r)
    r = s.get("/Patient/acc-other", token=tok)
    check(r.status == 403, "Patient is not in the scopes: %r" % r)
    # inside the context the token should work
    r = s.get("/Observation/acc-Observation", token=tok)
    if r.status == 403:
        gaps.add("patient scope: own Observation",
                 "patient/ scopes are not served: a token with patient/Observation.rs and patient "
                 "acc-Patient cannot read that patient's own Observation (403; server.c calls "
                 "privacy_decide, which allows a patient-restricted request only on the Patient "
                 "itself, instead of privacy_decide_ex + privacy_in_patient_context)")
        return "gap"
    check(r.status == 200, "the context patient's own Observation: %r" % r)
    r = s.get("/Observation", token=tok)
    check(r.status == 200 and matches(r) and
          all(e["resource"]["subject"]["reference"] == "Patient/acc-Patient" for e in matches(r)),
          "a search returned another patient's Observations: %r" % r)
    return None


# ---- the suite ---------------------------------------------------------------------

def start(binary):
    s = Server(binary, policy=None).init()
    policy = load_policy(s)
    reps = representatives(policy)
    types = sorted(set(reps.values()) | {"Patient", "Practitioner", "Group"})
    lines = [fixture(t, fid(t)) for t in types]
    lines += [fixture("Patient", "acc-other"), fixture("Observation", "acc-other-obs", "acc-other")]
    path = os.path.join(s.tmp, "access-fixtures.ndjson")
    with open(path, "w") as f:
        f.write("".join(json.dumps(x) + "\n" for x in lines))
    s.cli("import", "--db", s.db, path)
    s.add_user("gone", "coder")
    s.tokens["expired"] = s.issue_token("gone", ttl=1)
    t0 = time.time()
    for role in policy["roles"]:
        s.add_user(role, role, PW)
        s.tokens[role] = s.issue_token(role)
    s.tokens["revoked"] = s.issue_token("gone")
    s.cli("token", "revoke", "--db", s.db, "--token-stdin", stdin=s.tokens["revoked"] + "\n")
    time.sleep(max(0, 1.1 - (time.time() - t0)))
    s.start()
    s.get("/metadata", token=None)   # an audited request exists: AuditEvent/1
    return s, policy, reps


def suite(binary):
    st = Suite("access")
    gaps = Gaps()
    counts = {}
    s = None
    try:
        routes = parse_routes()
        s, policy, reps = start(binary)
        roles = list(policy["roles"])
        check(set(roles) >= {"clinician", "admin", "privacy_officer"}, "roles %r" % roles)
        types = list(dict.fromkeys(list(reps.values()) + ["AuditEvent"]))

        def run(label, fn, *args):
            res = [None]

            def go():
                res[0] = fn(*args)
            before = st.passed
            st.run(label, go)
            if res[0] == "gap":
                st.passed = before   # neither passed nor failed

        def count(kind):
            counts[kind] = counts.get(kind, 0) + 1

        # public routes answer without a token (the OAuth ones authenticate their own way)
        for route in routes:
            if route.public and route.action:
                r = s.request(route.method, route.pattern, token=None)
                run("public " + route.name, check, r.status == 200, "%s: %r" % (route.name, r))
                count("public")

        # 401 for every non-public route
        for route in routes:
            if route.public:
                continue
            m, path, body, h = build(route, "Observation", fid("Observation"), "Observation",
                                     job="0" * 32)
            run("401 " + route.name, t_unauthenticated, s, route, m, path, body, h)
            count("401 routes")

        # the matrix: deletes last, so that every other request finds its fixture
        ordered = ([r for r in routes if r.method != "DELETE"] +
                   [r for r in routes if r.method == "DELETE"])
        for route in ordered:
            if route.public or route.owner_checked() or route.action == "batch":
                continue
            if "{ctype}" in route.pattern:
                combos = [("Patient", c) for c in types]
            elif "{type}" in route.pattern:
                combos = [(t, None) for t in types]
            else:
                combos = [(route.literal_type(), None)]
            for role in roles:
                for rtype, ctype in combos:
                    label = "%s as %s on %s" % (route.name, role, ctype or rtype or "system")
                    run(label, t_matrix_case, s, policy, gaps, label, route, role, rtype, ctype)
                    count("matrix")

        # batch: allowed at the door, each entry decided on its own
        for route in routes:
            if route.action == "batch":
                for role in roles:
                    for t in types:
                        label = "batch entry as %s on %s" % (role, t)
                        run(label, t_batch_entry, s, policy, gaps, label, role, t)
                        count("batch entries")

        # _revinclude: the included types are the role's too
        for role in roles:
            for t in types:
                if t in REVINCLUDE:
                    label = "_revinclude %s as %s" % (t, role)
                    run(label, t_revinclude, s, policy, gaps, label, role, t)
                    count("_revinclude")

        # export jobs belong to who started them
        owner = [r for r in roles if allowed(policy, r, "operation", None)]
        if owner and any(r.owner_checked() for r in routes):
            def exports():
                r = s.get("/$export?_type=Practitioner", token=owner[0],
                          headers={"Prefer": "respond-async"})
                check(r.status == 202, "kick-off %r" % r)
                job = r.header("Content-Location").rsplit("/", 1)[1]
                for _ in range(200):
                    r = s.get("/$export-status/" + job, token=owner[0])
                    if r.status == 200:
                        break
                    time.sleep(0.05)
                check(r.status == 200 and r.json["output"], "export did not finish: %r" % r)
                fname = r.json["output"][0]["url"].rsplit("/", 1)[1]
                t_owner_checked(s, policy, routes, roles, owner[0], job, fname)
            run("export jobs are their owner's", exports)
            count("owner-checked")

        for role in roles:
            run("AuditEvent writes refused for " + role, t_auditevent_writes, s, policy, routes, role)
            count("AuditEvent")

        run("patient/ scope keeps to its patient", lambda: t_patient_scope(s, gaps))
        count("patient scope")
    finally:
        if s:
            s.cleanup()
    print("access: generated cases: %s" % ", ".join("%s %d" % kv for kv in counts.items()),
          flush=True)
    gaps.report("access")
    return st.summary()
