"""Interaction sequences against a real server: versions, history, delete,
patch, transactions, authentication, concurrency, shutdown, and the CLI."""
import base64
import json
import os
import signal
import sqlite3
import subprocess
import tempfile
import threading

from harness import Failure, Server, Suite, check, subset
import conditional

PATIENT = {"resourceType": "Patient", "name": [{"family": "Flow", "given": ["Test"]}],
           "birthDate": "1980-05-17", "gender": "female"}


def create(s, res=PATIENT, **kw):
    r = s.post("/" + res["resourceType"], res, **kw)
    check(r.status == 201, "create: %r" % r)
    return r


def t_create_read(s):
    r = create(s)
    loc = r.header("Location")
    check(loc.startswith(s.base + "/Patient/") and loc.endswith("/_history/1"), "Location %r" % loc)
    check(r.header("ETag") == 'W/"1"', "ETag %r" % r.header("ETag"))
    check(r.header("Last-Modified", ) and r.header("Last-Modified").endswith("GMT"), "Last-Modified")
    body = r.json
    check(body["meta"]["versionId"] == "1" and "lastUpdated" in body["meta"], "meta %r" % body)
    pid = body["id"]
    g = s.get("/Patient/" + pid)
    check(g.status == 200 and g.json == body, "read differs from create")
    check(g.header("Content-Type").startswith("application/fhir+json"), "content type")
    v = s.get("/Patient/%s/_history/1" % pid)
    check(v.status == 200 and v.json == body, "vread")
    check(s.get("/Patient/%s/_history/2" % pid).status == 404, "vread of a missing version")
    check(s.get("/Patient/no-such-id").status == 404, "read of a missing id")
    h = s.request("HEAD", "/Patient/" + pid)
    check(h.status == 200 and not h.body and h.header("ETag") == 'W/"1"', "HEAD %r" % h)
    check(s.get("/NoSuchType/x").status == 404, "unknown type")


def t_server_ignores_client_id_and_meta(s):
    res = dict(PATIENT, id="client-chosen", meta={"versionId": "99", "lastUpdated": "2001-01-01T00:00:00Z",
                                                  "tag": [{"system": "http://x", "code": "y"}]})
    r = create(s, res)
    check(r.json["id"] != "client-chosen", "create kept the client's id")
    check(r.json["meta"]["versionId"] == "1", "create kept the client's versionId")
    check(r.json["meta"]["lastUpdated"] != "2001-01-01T00:00:00Z", "kept client's lastUpdated")
    check(r.json["meta"]["tag"] == [{"system": "http://x", "code": "y"}], "lost meta.tag")


def t_update_versions(s):
    pid = "flow-upd"
    r = s.put("/Patient/" + pid, dict(PATIENT, id=pid))
    check(r.status == 201 and r.header("ETag") == 'W/"1"', "create-on-update %r" % r)
    r = s.put("/Patient/" + pid, dict(PATIENT, id=pid))
    check(r.status == 200 and r.header("ETag") == 'W/"1"', "an identical update made a version")
    r = s.put("/Patient/" + pid, dict(PATIENT, id=pid, gender="male"))
    check(r.status == 200 and r.header("ETag") == 'W/"2"', "update %r" % r)
    r = s.put("/Patient/" + pid, dict(PATIENT, id=pid, gender="other"), headers={"If-Match": 'W/"1"'})
    check(r.status == 412, "stale If-Match: %r" % r)
    r = s.put("/Patient/" + pid, dict(PATIENT, id=pid, gender="other"), headers={"If-Match": 'W/"2"'})
    check(r.status == 200 and r.header("ETag") == 'W/"3"', "If-Match: %r" % r)
    r = s.put("/Patient/" + pid, dict(PATIENT, id=pid), headers={"If-Match": "garbage"})
    check(r.status == 400, "malformed If-Match: %r" % r)
    check(s.get("/Patient/%s/_history/2" % pid).json["gender"] == "male", "vread 2")


def t_delete(s):
    pid = create(s).json["id"]
    r = s.request("DELETE", "/Patient/" + pid)
    check(r.status == 200 and r.json["resourceType"] == "OperationOutcome", "delete %r" % r)
    check(r.header("ETag") == 'W/"2"', "delete ETag %r" % r.header("ETag"))
    g = s.get("/Patient/" + pid)
    check(g.status == 410, "read after delete: %r" % g)
    check(s.get("/Patient/%s/_history/1" % pid).status == 200, "old version after delete")
    check(s.get("/Patient/%s/_history/2" % pid).status == 410, "vread of the delete")
    r = s.request("DELETE", "/Patient/" + pid)
    check(r.status == 200, "second delete: %r" % r)
    r = s.request("DELETE", "/Patient/never-was")
    check(r.status == 200, "delete of nothing: %r" % r)
    r = s.request("DELETE", "/Patient/" + create(s).json["id"], headers={"Prefer": "return=minimal"})
    check(r.status == 204 and not r.body, "minimal delete: %r" % r)
    h = s.get("/Patient/%s/_history" % pid).json
    check(h["total"] == 2 and h["entry"][0]["request"]["method"] == "DELETE", "history of delete")
    check("resource" not in h["entry"][0], "a delete in history has no resource")
    r = s.put("/Patient/" + pid, dict(PATIENT, id=pid))
    check(r.status == 201 and r.header("ETag") == 'W/"3"', "re-create after delete: %r" % r)


def t_history_paging(s):
    pid = "flow-hist"
    for i in range(7):
        s.put("/Patient/" + pid, dict(PATIENT, id=pid, birthDate="19%02d-01-01" % (50 + i)))
    seen, url, pages = [], "/Patient/%s/_history?_count=3" % pid, 0
    while url:
        r = s.get(url)
        check(r.status == 200 and r.json["type"] == "history", "history page %r" % r)
        check(r.json["total"] == 7, "total %r" % r.json.get("total"))
        seen += [e["response"]["etag"] for e in r.json.get("entry", [])]
        nxt = [link["url"] for link in r.json["link"] if link["relation"] == "next"]
        url = nxt[0][len(s.base):] if nxt else None
        check(not nxt or nxt[0].startswith(s.base + "/Patient/" + pid + "/_history?"),
              "next link must be absolute under the type: %r" % nxt)
        pages += 1
    check(seen == ['W/"%d"' % v for v in range(7, 0, -1)], "versions newest first: %r" % seen)
    check(pages == 3, "pages %d" % pages)
    # paging stays right while data changes underneath
    first = s.get("/Patient/%s/_history?_count=2" % pid).json
    s.put("/Patient/" + pid, dict(PATIENT, id=pid, birthDate="2001-01-01"))
    nxt = [link["url"] for link in first["link"] if link["relation"] == "next"][0]
    page2 = s.get(nxt[len(s.base):]).json
    check([e["response"]["etag"] for e in page2["entry"]] == ['W/"5"', 'W/"4"'],
          "second page moved after a write")
    r = s.get("/Patient/%s/_history?_since=2999-01-01T00:00:00Z" % pid)
    check(r.status == 200 and not r.json.get("entry"), "_since in the future")
    check(s.get("/Patient/%s/_history?_since=yesterday" % pid).status == 400, "bad _since")
    check(s.get("/Patient/%s/_history?_count=-1" % pid).status == 400, "bad _count")
    check(s.get("/Patient/%s/_history?foo=1" % pid).status == 400, "unknown history parameter")
    t = s.get("/Patient/_history?_count=5")
    check(t.status == 200 and len(t.json["entry"]) == 5, "type history")
    check(all(e["fullUrl"].startswith(s.base + "/Patient/") for e in t.json["entry"]), "type history type")
    sysh = s.get("/_history?_count=3")
    check(sysh.status == 200 and len(sysh.json["entry"]) == 3, "system history")
    check(s.get("/Patient/never-was/_history").status == 404, "history of nothing")


def t_patch(s):
    pid = create(s).json["id"]
    jp = {"Content-Type": "application/json-patch+json"}

    def patch(ops, headers=None):
        return s.request("PATCH", "/Patient/" + pid, body=json.dumps(ops).encode(),
                         headers=dict(jp, **(headers or {})))
    r = patch([{"op": "replace", "path": "/gender", "value": "male"},
               {"op": "add", "path": "/name/0/given/-", "value": "Middle"}])
    check(r.status == 200 and r.json["gender"] == "male" and r.header("ETag") == 'W/"2"', "patch %r" % r)
    check(r.json["name"][0]["given"] == ["Test", "Middle"], "patch add")
    check(patch([{"op": "test", "path": "/gender", "value": "female"}]).status == 422, "failed test")
    check(patch([{"op": "frobnicate", "path": "/x"}]).status == 400, "unknown op")
    check(patch([{"op": "replace", "path": "/birthDate", "value": "not-a-date"}]).status == 422,
          "patch to an invalid resource")
    check(patch([{"op": "replace", "path": "/id", "value": "other"}]).status == 422, "patch of the id")
    check(patch([{"op": "remove", "path": "/gender"}], {"If-Match": 'W/"1"'}).status == 412,
          "stale If-Match")
    r = s.request("PATCH", "/Patient/" + pid, body=b'[]', headers={"Content-Type": "application/fhir+json"})
    check(r.status == 415, "FHIRPath/other patch formats: %r" % r)
    r = s.request("PATCH", "/Patient/nope", body=b'[]', headers=jp)
    check(r.status == 404, "patch of nothing: %r" % r)
    check(s.get("/Patient/" + pid).header("ETag") == 'W/"2"', "failed patches changed the resource")


def t_prefer(s):
    r = s.post("/Patient", PATIENT, headers={"Prefer": "return=minimal"})
    check(r.status == 201 and not r.body and r.header("Location"), "minimal %r" % r)
    r = s.post("/Patient", PATIENT, headers={"Prefer": "return=OperationOutcome"})
    check(r.status == 201 and r.json["resourceType"] == "OperationOutcome", "outcome %r" % r)
    pid = r.header("Location").split("/")[-3]
    r = s.get("/Patient/%s?_pretty=true" % pid)
    check(r.status == 200 and b'\n  "resourceType"' in r.body, "_pretty")


def tx(entries, kind="transaction"):
    return {"resourceType": "Bundle", "type": kind, "entry": entries}


def t_transaction(s):
    uuid = "urn:uuid:2f1c6d3e-8a41-4c7e-9b2f-1d2e3f4a5b6c"
    b = tx([
        {"fullUrl": uuid, "resource": dict(PATIENT), "request": {"method": "POST", "url": "Patient"}},
        {"resource": {"resourceType": "Encounter", "status": "finished",
                      "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "IMP"},
                      "subject": {"reference": uuid}},
         "request": {"method": "POST", "url": "Encounter"}},
        {"resource": {"resourceType": "Patient", "id": "tx-put"}, "request": {"method": "PUT", "url": "Patient/tx-put"}},
    ])
    r = s.post("/", b)
    check(r.status == 200 and r.json["type"] == "transaction-response", "transaction %r" % r)
    e = r.json["entry"]
    check([x["response"]["status"] for x in e] == ["201 Created", "201 Created", "201 Created"], "statuses")
    pid = e[0]["resource"]["id"]
    check(e[1]["resource"]["subject"]["reference"] == "Patient/" + pid, "urn:uuid reference not rewritten")
    check(s.get("/Patient/" + pid).status == 200, "transaction patient")
    # all or nothing: the second entry is invalid, so the first is not written
    before = s.history_head()
    bad = tx([
        {"resource": dict(PATIENT, id="tx-none"), "request": {"method": "PUT", "url": "Patient/tx-none"}},
        {"resource": {"resourceType": "Patient", "birthDate": "1980-13-45"}, "request": {"method": "POST", "url": "Patient"}},
    ])
    r = s.post("/", bad)
    check(r.status == 400, "invalid entry: %r" % r)
    why = subset({"issue": [{"expression": ["Bundle.entry[1].resource.birthDate"]}]}, r.json)
    check(why is None, why)
    check(s.get("/Patient/tx-none").status == 404 and s.history_head() == before, "partial transaction")
    # a store-level failure (version conflict) rolls back too
    s.put("/Patient/tx-put", {"resourceType": "Patient", "id": "tx-put", "gender": "male"})
    conflict = tx([
        {"resource": dict(PATIENT, id="tx-none2"), "request": {"method": "PUT", "url": "Patient/tx-none2"}},
        {"resource": {"resourceType": "Patient", "id": "tx-put"}, "request": {"method": "PUT", "url": "Patient/tx-put", "ifMatch": 'W/"1"'}},
    ])
    r = s.post("/", conflict)
    check(r.status == 412, "conflict in a transaction: %r" % r)
    check(s.get("/Patient/tx-none2").status == 404, "transaction not rolled back")
    r = s.post("/", tx([{"resource": dict(PATIENT, id="d"), "request": {"method": "PUT", "url": "Patient/d"}},
                        {"resource": dict(PATIENT, id="d"), "request": {"method": "PUT", "url": "Patient/d"}}]))
    check(r.status == 400, "same resource twice: %r" % r)


def t_capabilities_search(s):
    """The CapabilityStatement lists the search parameters per type and names the ones we cannot do."""
    c = s.get("/metadata", token=None).json
    res = {r["type"]: r for r in c["rest"][0]["resource"]}
    check(len(res) == 146, "resource types %d" % len(res))
    obs = res["Observation"]
    check({"code": "search-type"} in obs["interaction"], "search-type interaction")
    params = {p["name"]: p for p in obs["searchParam"]}
    for name, typ in (("code", "token"), ("patient", "reference"), ("date", "date"),
                      ("value-quantity", "quantity"), ("code-value-quantity", "composite"),
                      ("combo-code", "token"), ("_lastUpdated", "date"), ("_has", "special")):
        check(name in params and params[name]["type"] == typ, "Observation %s: %r" % (name, params.get(name)))
    check(params["code"]["definition"] == "http://hl7.org/fhir/SearchParameter/clinical-code", "definition")
    check("Observation:patient" in obs["searchInclude"], "searchInclude %r" % obs["searchInclude"][:5])
    loc = res["Location"]
    check("near" not in {p["name"] for p in loc["searchParam"]}, "near listed as supported")
    check("near" in loc.get("documentation", ""), "near not named as unsupported")
    ops = {o["name"]: o["definition"] for o in res["Patient"].get("operation", [])}
    check(ops.get("everything") == "http://hl7.org/fhir/OperationDefinition/Patient-everything",
          "Patient $everything not declared: %r" % ops)
    check(c["rest"][0].get("compartment") == ["http://hl7.org/fhir/CompartmentDefinition/patient"],
          "patient compartment search not declared")
    # the CapabilityStatement is itself a valid resource
    r = s.post("/CapabilityStatement", {k: v for k, v in c.items() if k != "id"})
    check(r.status == 201, "metadata does not validate as a CapabilityStatement: %r" % r)


def t_batch(s):
    b = tx([
        {"resource": dict(PATIENT), "request": {"method": "POST", "url": "Patient"}},
        {"resource": {"resourceType": "Patient", "gender": 7}, "request": {"method": "POST", "url": "Patient"}},
        {"request": {"method": "GET", "url": "Patient/flow-hist"}},
        {"request": {"method": "GET", "url": "Patient/none-such"}},
        {"request": {"method": "DELETE", "url": "Patient/tx-put"}},
        {"resource": {"resourceType": "Binary", "contentType": "application/json-patch+json",
                      "data": base64.b64encode(b'[{"op":"add","path":"/gender","value":"male"}]').decode()},
         "request": {"method": "PATCH", "url": "Patient/flow-upd"}},
    ], "batch")
    r = s.post("/", b)
    check(r.status == 200 and r.json["type"] == "batch-response", "batch %r" % r)
    st = [x["response"]["status"] for x in r.json["entry"]]
    check(st[0] == "201 Created" and st[1] == "400 Bad Request" and st[2] == "200 OK" and
          st[3] == "404 Not Found" and st[4] == "200 OK" and st[5] == "200 OK", "batch statuses %r" % st)
    check(r.json["entry"][1]["response"]["outcome"]["resourceType"] == "OperationOutcome", "batch outcome")
    check(s.get("/Patient/flow-upd").json["gender"] == "male", "batch patch")
    check(s.get("/Patient/tx-put").status == 410, "batch delete")


def t_auth(s):
    for tok, why in ((None, "no token"), ("expired", "expired"), ("revoked", "revoked"),
                     ("ck_not-a-real-token", "unknown")):
        r = s.get("/Patient/flow-upd", token=tok)
        check(r.status == 401, "%s: %r" % (why, r))
        check(r.header("WWW-Authenticate", ).startswith("Bearer"), "WWW-Authenticate")
        check(r.json["resourceType"] == "OperationOutcome", "401 body")
    r = s.get("/Patient/flow-upd", token=None, headers={"Authorization": "Basic YWxpY2U6eA=="})
    check(r.status == 401, "basic auth: %r" % r)
    r = s.get("/metadata", token=None)
    check(r.status == 200 and r.json["resourceType"] == "CapabilityStatement", "metadata")
    types = [x["type"] for x in r.json["rest"][0]["resource"]]
    check(len(types) == 146 and "Patient" in types and "DocumentReference" in types, "types listed")
    check(s.get("/_history", token=None).status == 401, "system history needs a token")
    check(s.post("/", tx([]), token=None).status == 401, "batch needs a token")


def t_negotiation(s):
    check(s.get("/metadata", token=None, headers={"Accept": "application/fhir+xml"}).status == 406, "xml")
    check(s.get("/metadata?_format=xml", token=None).status == 406, "_format=xml")
    r = s.get("/metadata?_format=json", token=None)
    check(r.status == 200, "_format=json")
    r = s.get("/metadata", token=None, headers={"Accept": "application/fhir+xml;q=1, application/fhir+json;q=0.9"})
    check(r.status == 200, "xml or json")
    check(s.request("DELETE", "/Patient").status == 400, "DELETE on a type needs criteria")
    check(s.request("PATCH", "/Patient").status == 405, "PATCH on a type")
    check(s.get("/no/such/endpoint/at/all/here").status == 404, "unknown endpoint")


def t_concurrent_writes(s):
    results, lock = [], threading.Lock()

    def worker(n):
        for i in range(15):
            r = s.post("/Observation", {"resourceType": "Observation", "status": "final",
                                         "code": {"text": "conc %d %d" % (n, i)}})
            with lock:
                results.append((r.status, r.json.get("id") if r.body else None))
    ts = [threading.Thread(target=worker, args=(n,)) for n in range(16)]
    [t.start() for t in ts]
    [t.join() for t in ts]
    check(all(st == 201 for st, _ in results), "not all created: %r" % set(st for st, _ in results))
    ids = [i for _, i in results]
    check(len(set(ids)) == 240, "ids not distinct")
    # racing updates with If-Match: exactly one wins each version
    s.put("/Basic/race", {"resourceType": "Basic", "id": "race", "code": {"text": "initial"}})
    wins = []

    def racer(n):
        r = s.put("/Basic/race", {"resourceType": "Basic", "id": "race", "code": {"text": str(n)}},
                  headers={"If-Match": 'W/"1"'})
        with lock:
            wins.append(r.status)
    ts = [threading.Thread(target=racer, args=(n,)) for n in range(10)]
    [t.start() for t in ts]
    [t.join() for t in ts]
    check(wins.count(200) == 1 and wins.count(412) == 9, "If-Match race: %r" % wins)


def t_log_has_no_patient_data(s):
    s.post("/Patient", {"resourceType": "Patient", "name": [{"family": "Zyxwvutsky"}],
                        "birthDate": "1999-12-31"})
    s.post("/Patient", {"resourceType": "Patient", "name": [{"family": "Qwertyson"}],
                        "birthDate": "not a date"})
    log = "".join(s.log)
    for word in ("Zyxwvutsky", "Qwertyson", "1999-12-31", "not a date"):
        check(word not in log, "patient data %r in the log" % word)


def t_shutdown(binary, start_server):
    s = start_server(binary)
    try:
        statuses, stop = [], threading.Event()

        def writer():
            while not stop.is_set():
                try:
                    r = s.post("/Basic", {"resourceType": "Basic", "code": {"text": "x"}})
                    statuses.append(r.status)
                except OSError:
                    break
        ts = [threading.Thread(target=writer) for _ in range(4)]
        [t.start() for t in ts]
        import time
        time.sleep(0.5)
        rc = s.stop(signal.SIGTERM)
        stop.set()
        [t.join() for t in ts]
        check(rc == 0, "exit status %r after SIGTERM" % rc)
        # requests that began before the signal finish; later ones are told 503
        check(statuses.count(201) > 0 and set(statuses) <= {201, 503},
              "unexpected answers during shutdown: %r" % sorted(set(statuses)))
        check("event=stopped" in "".join(s.log), "no clean stop in the log")
        con = sqlite3.connect(s.db)
        check(con.execute("PRAGMA integrity_check").fetchone()[0] == "ok", "integrity")
        n = con.execute("SELECT count(*) FROM resource WHERE type='Basic'").fetchone()[0]
        check(n == statuses.count(201), "%d acknowledged, %d stored" % (statuses.count(201), n))
    finally:
        s.cleanup()


# ---- the CLI ---------------------------------------------------------------

def t_cli(binary, start_server):
    tmp = tempfile.mkdtemp(prefix="ck-cli-")
    s = Server(binary, tmp=tmp)

    def run(*args, stdin=None):
        return subprocess.run([binary] + list(args), input=stdin, capture_output=True, text=True)
    try:
        db = os.path.join(tmp, "a.db")
        check(run("init", "--db", db).returncode == 0, "init")
        p = run("init", "--db", db)
        check(p.returncode == 1 and "already exists" in p.stderr and len(p.stderr.splitlines()) == 1,
              "init over an existing file: %r" % p.stderr)
        p = run("user", "add", "--db", db, "--username", "x", "--role", "wizard", "--password-stdin",
                stdin="correct horse battery\n")
        check(p.returncode == 2 and "unknown role" in p.stderr, "bad role: %r" % p.stderr)
        p = run("user", "add", "--db", db, "--username", "x", "--role", "coder", "--password-stdin",
                stdin="short\n")
        check(p.returncode == 1 and "too short" in p.stderr, "short password: %r" % p.stderr)
        p = run("user", "add", "--db", db, "--username", "x", "--role", "coder", "--password-stdin",
                stdin="password1234\n")
        check(p.returncode == 1 and "common" in p.stderr, "common password: %r" % p.stderr)
        p = run("user", "add", "--db", db, "--username", "x", "--role", "coder", "--password-stdin",
                stdin="correct horse battery\n")
        check(p.returncode == 0, "user add: %r" % p.stderr)
        p = run("user", "add", "--db", db, "--username", "x", "--role", "coder", "--password-stdin",
                stdin="correct horse battery\n")
        check(p.returncode == 1 and "already exists" in p.stderr, "duplicate user: %r" % p.stderr)
        p = run("token", "issue", "--db", db, "--username", "nobody")
        check(p.returncode == 1 and "no user" in p.stderr, "token for nobody: %r" % p.stderr)
        p = run("token", "issue", "--db", db, "--username", "x", "--ttl", "0")
        check(p.returncode == 2, "ttl 0: %r" % p.stderr)
        p = run("token", "issue", "--db", db, "--username", "x", "--ttl", "60")
        check(p.returncode == 0 and p.stdout.startswith("ck_"), "token issue: %r" % p.stdout)
        p = run("serve", "--db", db, "--listen", "nonsense")
        check(p.returncode == 1 and "HOST:PORT" in p.stderr, "bad listen: %r" % p.stderr)
        p = run("serve", "--db", os.path.join(tmp, "missing.db"))
        check(p.returncode == 1 and "no database" in p.stderr, "missing db: %r" % p.stderr)
        p = run("import", "--db", db, "--bogus")
        check(p.returncode == 2 and "unknown option" in p.stderr, "unknown option: %r" % p.stderr)
        p = run("frobnicate")
        check(p.returncode == 2, "unknown command")
        for c in ("init", "user", "token", "serve", "import", "export", "demo", "check"):
            p = run(c, "--help")
            check(p.returncode == 0 and "usage: chartkeep " + c in p.stdout, "%s --help" % c)

        # import: NDJSON keeps ids; a bad line is reported with file:line; exit 1
        nd = os.path.join(tmp, "in.ndjson")
        with open(nd, "w") as f:
            f.write(json.dumps({"resourceType": "Patient", "id": "imp-1", "gender": "male"}) + "\n")
            f.write(json.dumps({"resourceType": "Observation", "id": "imp-2", "status": "final",
                                "code": {"text": "x"}, "subject": {"reference": "Patient/imp-1"}}) + "\n")
            f.write('{"resourceType":"Patient","id":"imp-3","birthDate":"1999-02-30"}\n')
            f.write("\n")
            f.write('{"resourceType": "Patient", "id": \n')
        p = run("import", "--db", db, nd)
        check(p.returncode == 1, "import with bad lines: rc %d" % p.returncode)
        check("in.ndjson:3: Patient.birthDate: not a valid date" in p.stderr, "line 3: %r" % p.stderr)
        check("in.ndjson:5: malformed JSON" in p.stderr, "line 5: %r" % p.stderr)
        check("imported 2 resources" in p.stdout and "2 errors" in p.stdout, "summary %r" % p.stdout)
        # a transaction bundle is all or nothing
        bundle = os.path.join(tmp, "tx.json")
        with open(bundle, "w") as f:
            json.dump(tx([{"resource": {"resourceType": "Patient", "id": "imp-4"},
                           "request": {"method": "PUT", "url": "Patient/imp-4"}},
                          {"resource": {"resourceType": "Patient", "id": "imp-5", "active": "yes"},
                           "request": {"method": "PUT", "url": "Patient/imp-5"}}]), f)
        p = run("import", "--db", db, bundle)
        check(p.returncode == 1 and "Bundle.entry[1].resource.active" in p.stderr, "tx import %r" % p.stderr)
        # export and re-import elsewhere keeps ids and content
        p = run("export", "--db", db)
        check(p.returncode == 0, "export")
        lines = [json.loads(x) for x in p.stdout.splitlines()]
        check(sorted(x["id"] for x in lines) == ["imp-1", "imp-2"], "export %r" % [x["id"] for x in lines])
        p2 = run("export", "--db", db, "--type", "Observation")
        check(len(p2.stdout.splitlines()) == 1, "export --type")
        check(run("export", "--db", db, "--type", "Nope").returncode == 2, "export of an unknown type")
        out = os.path.join(tmp, "out.ndjson")
        with open(out, "w") as f:
            f.write(p.stdout)
        db2 = os.path.join(tmp, "b.db")
        run("init", "--db", db2)
        p = run("import", "--db", db2, out)
        check(p.returncode == 0 and "imported 2 resources" in p.stdout, "re-import %r" % p.stdout)
        again = run("export", "--db", db2).stdout.splitlines()
        strip = lambda r: {k: v for k, v in r.items() if k != "meta"}  # noqa: E731
        check(sorted(json.dumps(strip(json.loads(x)), sort_keys=True) for x in again) ==
              sorted(json.dumps(strip(x), sort_keys=True) for x in lines), "re-import differs")
        p = run("check", "--db", db2)
        check(p.returncode == 0 and p.stdout.startswith("ok"), "check")
    finally:
        s.cleanup()


def t_absolute_self_references(s):
    """A reference to this server's own base is stored relative, so search,
    chains and includes follow it; another server's stays as it came."""
    pid = create(s).json["id"]
    obs = {"resourceType": "Observation", "status": "final",
           "code": {"coding": [{"system": "http://loinc.org", "code": "8310-5"}]},
           "subject": {"reference": "%s/Patient/%s" % (s.base, pid)},
           "performer": [{"reference": "http://elsewhere.example/fhir/Practitioner/1"}]}
    r = s.post("/Observation", obs)
    check(r.status == 201, "create: %r" % r)
    check(r.json["subject"]["reference"] == "Patient/" + pid, "stored %r" % r.json["subject"])
    check(r.json["performer"][0]["reference"] == "http://elsewhere.example/fhir/Practitioner/1",
          "a foreign reference was changed: %r" % r.json["performer"])
    oid = r.json["id"]
    g = s.get("/Observation?subject=Patient/%s&_include=Observation:subject" % pid)
    ids = sorted(e["resource"]["resourceType"] + "/" + e["resource"]["id"] for e in g.json.get("entry", []))
    check(ids == sorted(["Observation/" + oid, "Patient/" + pid]), "search/include %r" % ids)
    # a version suffix is kept; a path that is not Type/id is left alone
    obs["subject"]["reference"] = "%s/Patient/%s/_history/1" % (s.base, pid)
    obs["focus"] = [{"reference": "%s/metadata/x" % s.base}]
    r = s.post("/Observation", obs)
    check(r.status == 201 and r.json["subject"]["reference"] == "Patient/%s/_history/1" % pid,
          "versioned %r" % r)
    check(r.json["focus"][0]["reference"] == "%s/metadata/x" % s.base, "non-resource path %r" % r.json)
    # in a transaction too
    b = {"resourceType": "Bundle", "type": "transaction", "entry": [
        {"resource": {k: v for k, v in obs.items() if k != "focus"},
         "request": {"method": "POST", "url": "Observation"}}]}
    b["entry"][0]["resource"]["subject"] = {"reference": "%s/Patient/%s" % (s.base, pid)}
    r = s.post("/", b)
    check(r.status == 200, "transaction %r" % r)
    loc = r.json["entry"][0]["response"]["location"]
    g = s.get("/" + loc.split("/_history")[0].split(s.base + "/")[-1])
    check(g.json["subject"]["reference"] == "Patient/" + pid, "transaction stored %r" % g.json["subject"])


def suite(binary, start_server):
    st = Suite("api-flows")
    s = start_server(binary)
    order = [t_create_read, t_server_ignores_client_id_and_meta, t_update_versions, t_delete,
             t_history_paging, t_patch, t_prefer, t_transaction, t_batch, t_capabilities_search,
             t_auth, t_negotiation, t_absolute_self_references,
             t_concurrent_writes, t_log_has_no_patient_data] + conditional.TESTS
    try:
        for fn in order:
            st.run(fn.__name__[2:], fn, s)
    finally:
        s.cleanup()
    st.run("shutdown", t_shutdown, binary, start_server)
    st.run("cli", t_cli, binary, start_server)
    return st.summary()
