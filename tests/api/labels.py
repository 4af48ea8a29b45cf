"""Sensitivity labels and break-the-glass, with the built-in clearances:
a clinician (clearance R, no 42 CFR Part 2), a coder (clearance N, Part 2
allowed, may not break the glass) and a privacy officer (everything)."""
import json
import sqlite3

from harness import Suite, check

CONF = "http://terminology.hl7.org/CodeSystem/v3-Confidentiality"
ACT = "http://terminology.hl7.org/CodeSystem/v3-ActCode"
CODE = {"coding": [{"system": "http://loinc.org", "code": "11506-3"}], "text": "progress note"}


def patient(pid, label=None):
    p = {"resourceType": "Patient", "id": pid, "name": [{"family": "Labelova"}]}
    if label:
        p["meta"] = {"security": [{"system": CONF, "code": label}]}
    return p


def obs(oid, pid, security=None):
    o = {"resourceType": "Observation", "id": oid, "status": "final", "code": CODE,
         "subject": {"reference": "Patient/" + pid}}
    if security:
        o["meta"] = {"security": [security]}
    return o


def load(s):
    for res in (patient("lab-p1"), patient("lab-p2", "R"), patient("lab-p3", "V"),
                obs("lab-o1", "lab-p1"), obs("lab-o2", "lab-p1", {"system": ACT, "code": "ETH"}),
                obs("lab-o3", "lab-p2"), obs("lab-o4", "lab-p3")):
        r = s.put("/%s/%s" % (res["resourceType"], res["id"]), res)
        check(r.status in (200, 201), "load %s: %r" % (res["id"], r))
    for name, role in (("cli", "clinician"), ("cod", "coder"), ("po", "privacy_officer")):
        s.add_user(name, role)
        s.tokens[name] = s.issue_token(name)


def ids(bundle):
    return sorted(e["resource"]["id"] for e in bundle.get("entry", []) if e["search"]["mode"] == "match")


def t_reads(s):
    expect = {
        "cli": {"Observation/lab-o1": 200, "Observation/lab-o2": 403, "Observation/lab-o3": 200,
                "Observation/lab-o4": 403, "Patient/lab-p3": 403, "Patient/lab-p2": 200},
        "cod": {"Observation/lab-o1": 200, "Observation/lab-o2": 200, "Observation/lab-o3": 404,
                "Observation/lab-o4": 404, "Patient/lab-p2": 404, "Patient/lab-p3": 404},
        "po": {"Observation/lab-o2": 200, "Observation/lab-o4": 200, "Patient/lab-p3": 200},
    }
    for who, cases in expect.items():
        for path, status in cases.items():
            r = s.get("/" + path, token=who)
            check(r.status == status, "%s reading %s: %r (expected %d)" % (who, path, r, status))
            if status == 403:
                check("X-Break-Glass" in r.body.decode(), "403 says how to break the glass")
            if status == 404:
                # exactly what a record that does not exist gets
                none = s.get("/" + path.split("/")[0] + "/no-such-id", token=who)
                check(none.status == 404 and none.body.replace(b"no-such-id", path.split("/")[1].encode()) ==
                      r.body, "hidden differs from missing: %r vs %r" % (r, none))


def t_searches(s):
    q = "/Observation?code=http://loinc.org|11506-3&_total=accurate"
    r = s.get(q, token="cli")
    check(r.status == 200 and ids(r.json) == ["lab-o1", "lab-o3"], "clinician search %r" % r)
    check("total" not in r.json, "a total for a role that may not know it")
    notes = [i["diagnostics"] for e in r.json["entry"] if e["search"]["mode"] == "outcome"
             for i in e["resource"]["issue"]]
    check(any("limited to the records your role may see" in n for n in notes), "no notice %r" % notes)
    r = s.get(q, token="cod")
    check(r.status == 200 and ids(r.json) == ["lab-o1", "lab-o2"], "coder search %r" % r)
    r = s.get(q, token="po")
    check(r.status == 200 and ids(r.json) == ["lab-o1", "lab-o2", "lab-o3", "lab-o4"], "privacy officer %r" % r)
    check(r.json.get("total") == 4, "privacy officer total %r" % r.json.get("total"))
    # the notice is the same whether or not something was withheld
    r = s.get("/Observation?_id=lab-o1", token="cli")
    check(any(e["search"]["mode"] == "outcome" for e in r.json["entry"]), "notice only when withheld")
    # includes are filtered too
    r = s.get("/Observation?_id=lab-o4&_include=Observation:subject", token="po")
    check(len(r.json["entry"]) >= 2, "po include")
    r = s.get("/Patient?_id=lab-p3&_revinclude=Observation:subject", token="cli")
    check(r.status == 200 and not [e for e in r.json["entry"] if e["search"]["mode"] != "outcome"],
          "clinician sees the V patient through an include: %r" % r)


def t_history(s):
    r = s.get("/Observation/lab-o3/_history", token="cod")
    none = s.get("/Observation/no-such-id/_history", token="cod")
    check(r.status == 404 and none.status == 404, "instance history of a hidden record %r" % r)
    r = s.get("/Observation/lab-o1/_history", token="cod")
    check(r.status == 200 and len(r.json["entry"]) == 1 and "total" not in r.json, "visible history %r" % r)
    r = s.get("/Observation/_history?_count=100", token="cod")
    got = sorted({e["resource"]["id"] for e in r.json.get("entry", []) if "resource" in e})
    check(r.status == 200 and "lab-o3" not in got and "lab-o4" not in got and "lab-o1" in got,
          "type history %r" % got)
    r = s.get("/_history?_count=100", token="po")
    got = {e["resource"]["id"] for e in r.json.get("entry", []) if "resource" in e}
    check({"lab-o3", "lab-o4", "lab-p3"} <= got, "privacy officer system history %r" % got)


def t_writes(s):
    # a coder may update Condition/Procedure but not Observation: use a clinician on a hidden one
    r = s.put("/Observation/lab-o4", obs("lab-o4", "lab-p3"), token="cli")
    check(r.status == 403 and "X-Break-Glass" in r.body.decode(), "clinician updating a V record %r" % r)
    r = s.request("DELETE", "/Observation/lab-o2", token="cli")
    check(r.status in (403, 404) and s.get("/Observation/lab-o2", token="po").status == 200,
          "clinician deleting a Part 2 record %r" % r)
    r = s.put("/Observation/lab-o1", obs("lab-o1", "lab-p1"), token="cli")
    check(r.status == 200, "clinician updating a visible record %r" % r)


def t_break_glass(s):
    r = s.get("/Observation/lab-o4", token="cod", headers={"X-Break-Glass": "need it"})
    none = s.get("/Observation/no-such-id", token="cod", headers={"X-Break-Glass": "need it"})
    check(r.status == 403 and "may not break the glass" in r.body.decode() and r.body == none.body,
          "a coder cannot break the glass: %r / %r" % (r, none))
    r = s.get("/Observation/lab-o4", token="cli", headers={"X-Break-Glass": " "})
    check(r.status == 400 or r.status == 403, "a blank reason: %r" % r)
    r = s.get("/Observation/lab-o4", token="cli",
              headers={"X-Break-Glass": "unresponsive in the emergency department"})
    check(r.status == 200 and r.json["id"] == "lab-o4", "break the glass: %r" % r)
    # the grant lasts: the patient's other records, without the header
    r = s.get("/Patient/lab-p3", token="cli")
    check(r.status == 200, "grant in force: %r" % r)
    # but only for that patient
    r = s.get("/Observation/lab-o2", token="cli")
    check(r.status == 403, "grant leaked to another patient: %r" % r)
    # the privacy officer's report
    r = s.get("/privacy/break-glass?since=2000-01-01", token="po")
    check(r.status == 200, "report %r" % r)
    g = r.json["grants"]
    check(len(g) == 1 and g[0]["user"] == "cli" and g[0]["patient"] == "Patient/lab-p3" and
          g[0]["reason"] == "unresponsive in the emergency department", "report %r" % g)
    r = s.get("/privacy/break-glass", token="cli")
    check(r.status == 403, "a clinician reading the report: %r" % r)
    # audited with the reason
    c = sqlite3.connect(s.db)
    try:
        rows = [json.loads(e) for (e,) in c.execute("SELECT entry FROM audit_log ORDER BY seq")]
    finally:
        c.close()
    et = [x for x in rows if x["purposeOfEvent"][0]["coding"][0]["code"] == "ETREAT"]
    check(et and any(a.get("purposeOfUse", [{}])[0].get("text") == "unresponsive in the emergency department"
                     for x in et for a in x["agent"]), "break-the-glass not in the audit trail")


def t_patient_context(s):
    import urllib.parse
    body = urllib.parse.urlencode({"grant_type": "password", "username": "cli",
                                   "password": "correct horse battery staple",
                                   "scope": "patient/Observation.rs patient/Patient.rs", "patient": "lab-p1"})
    r = s.request("POST", "/auth/token", body=body.encode(), token=None,
                  headers={"Content-Type": "application/x-www-form-urlencoded"})
    check(r.status == 200 and r.json.get("patient") == "lab-p1", "token with a patient context %r" % r)
    s.tokens["ctx"] = r.json["access_token"]
    check(s.get("/Observation/lab-o1", token="ctx").status == 200, "in context")
    check(s.get("/Patient/lab-p1", token="ctx").status == 200, "the context patient")
    r = s.get("/Observation/lab-o3", token="ctx")
    none = s.get("/Observation/no-such-id", token="ctx")
    check(r.status == 403 and none.status == 403 and r.body == none.body,
          "another patient's record, a missing one: %r / %r" % (r, none))
    check(s.get("/Patient/lab-p2", token="ctx").status == 403, "another patient")
    r = s.get("/Observation?code=http://loinc.org|11506-3", token="ctx")
    check(r.status == 200 and ids(r.json) == ["lab-o1"], "search in context %r" % r)
    r = s.post("/Observation", obs("x", "lab-p1"), token="ctx")
    check(r.status == 403, "a write under patient/ read scopes %r" % r)


def t_patient_context_writes(s):
    """patient/ write scopes: a write stays in the context patient's
    compartment; what is outside it, or not there, is refused alike."""
    import urllib.parse
    body = urllib.parse.urlencode({"grant_type": "password", "username": "cli",
                                   "password": "correct horse battery staple",
                                   "scope": "patient/Observation.cruds patient/Patient.rus",
                                   "patient": "lab-p1"})
    r = s.request("POST", "/auth/token", body=body.encode(), token=None,
                  headers={"Content-Type": "application/x-www-form-urlencoded"})
    check(r.status == 200, "token %r" % r)
    s.tokens["ctxw"] = r.json["access_token"]
    o3_before = s.get("/Observation/lab-o3").json["meta"]["versionId"]

    new = obs("x", "lab-p1")
    del new["id"]
    r = s.post("/Observation", new, token="ctxw")
    check(r.status == 201, "create in context %r" % r)
    mine = r.json["id"]
    r = s.post("/Observation", dict(new, subject={"reference": "Patient/lab-p2"}), token="ctxw")
    check(r.status == 403, "create for another patient %r" % r)
    refused = r.body
    r = s.post("/Observation", {k: v for k, v in new.items() if k != "subject"}, token="ctxw")
    check(r.status == 403 and r.body == refused, "create naming no patient %r" % r)
    r = s.post("/Observation", dict(new, focus=[{"reference": "Patient/lab-p2"}]), token="ctxw")
    check(r.status == 403 and r.body == refused, "create naming another patient too %r" % r)

    o1 = s.get("/Observation/lab-o1").json
    o1["status"] = "amended"
    r = s.put("/Observation/lab-o1", o1, token="ctxw")
    check(r.status == 200, "update in context %r" % r)
    r = s.put("/Observation/lab-o1", dict(o1, subject={"reference": "Patient/lab-p2"}), token="ctxw")
    check(r.status == 403 and r.body == refused, "moving a record out of the context %r" % r)
    r = s.put("/Observation/lab-o3", obs("lab-o3", "lab-p1"), token="ctxw")
    check(r.status == 403 and r.body == refused, "taking another patient's record %r" % r)
    r = s.put("/Observation/no-such-obs", obs("no-such-obs", "lab-p1"), token="ctxw")
    check(r.status == 403 and r.body == refused, "update of a missing one %r" % r)

    patch = [{"op": "replace", "path": "/status", "value": "cancelled"}]
    hdr = {"Content-Type": "application/json-patch+json"}
    r = s.request("PATCH", "/Observation/lab-o3", body=json.dumps(patch).encode(), token="ctxw", headers=hdr)
    check(r.status == 403 and r.body == refused, "patch of another patient's %r" % r)
    r = s.request("PATCH", "/Observation/no-such-obs", body=json.dumps(patch).encode(), token="ctxw",
                  headers=hdr)
    check(r.status == 403 and r.body == refused, "patch of a missing one %r" % r)
    move = [{"op": "replace", "path": "/subject/reference", "value": "Patient/lab-p2"}]
    r = s.request("PATCH", "/Observation/" + mine, body=json.dumps(move).encode(), token="ctxw", headers=hdr)
    check(r.status == 403 and r.body == refused, "a patch moving it out %r" % r)
    r = s.request("PATCH", "/Observation/" + mine, body=json.dumps(patch).encode(), token="ctxw", headers=hdr)
    check(r.status == 200, "patch in context %r" % r)

    r = s.request("DELETE", "/Observation/" + mine, token="ctxw")
    check(r.status == 403 and b"may not delete" in r.body, "the role still decides %r" % r)

    # deletes: a role that may delete Tasks (workflow), under a patient context
    s.add_user("dirw", "him_director")
    body = urllib.parse.urlencode({"grant_type": "password", "username": "dirw",
                                   "password": "correct horse battery staple",
                                   "scope": "patient/Task.cruds", "patient": "lab-p1"})
    r = s.request("POST", "/auth/token", body=body.encode(), token=None,
                  headers={"Content-Type": "application/x-www-form-urlencoded"})
    check(r.status == 200, "director token %r" % r)
    s.tokens["dirw"] = r.json["access_token"]
    for tid, pid in (("lab-t1", "lab-p1"), ("lab-t2", "lab-p2")):
        task = {"resourceType": "Task", "id": tid, "status": "requested", "intent": "order",
                "for": {"reference": "Patient/" + pid}}
        check(s.put("/Task/" + tid, task).status == 201, "task %s" % tid)
    r = s.request("DELETE", "/Task/lab-t2", token="dirw")
    check(r.status == 403 and r.body == refused, "delete of another patient's %r" % r)
    r = s.request("DELETE", "/Task/no-such-task", token="dirw")
    check(r.status == 403 and r.body == refused, "delete of a missing one %r" % r)
    r = s.request("DELETE", "/Task/lab-t1", token="dirw")
    check(r.status in (200, 204), "delete in context %r" % r)
    check(s.get("/Task/lab-t2").status == 200, "another patient's Task deleted")

    r = s.put("/Patient/lab-p2", patient("lab-p2"), token="ctxw")
    check(r.status == 403, "another Patient %r" % r)
    r = s.post("/", {"resourceType": "Bundle", "type": "batch", "entry": [
        {"resource": new, "request": {"method": "POST", "url": "Observation"}},
        {"request": {"method": "GET", "url": "Observation/lab-o1"}}]}, token="ctxw")
    st = [e["response"]["status"][:3] for e in r.json.get("entry", [])] if r.status == 200 else r
    check(st == ["403", "200"], "a batch under a patient context: the write refused, the read done %r" % (st,))
    check(s.get("/Observation/lab-o3").json["meta"]["versionId"] == o3_before,
          "another patient's record changed")


def t_export(s):
    import time
    o5 = obs("lab-o5", "lab-p1", {"system": ACT, "code": "PSYTHPN"})
    o5["code"] = {"text": "psychotherapy session"}
    check(s.put("/Observation/lab-o5", o5).status == 201, "psychotherapy note")
    s.add_user("dir", "him_director")
    s.tokens["dir"] = s.issue_token("dir")
    r = s.get("/$export?_type=Observation,Patient", token="dir", headers={"Prefer": "respond-async"})
    check(r.status == 202, "kick-off %r" % r)
    status = r.header("Content-Location")[len(s.base):]
    for _ in range(100):
        r = s.get(status, token="dir")
        if r.status != 202:
            break
        time.sleep(0.1)
    check(r.status == 200, "manifest %r" % r)
    got = set()
    for out in r.json["output"]:
        f = s.get(out["url"][len(s.base):], token="dir")
        got |= {json.loads(line)["id"] for line in f.body.decode().splitlines() if line.strip()}
    check({"lab-o1", "lab-o2", "lab-o3", "lab-p1", "lab-p2"} <= got, "exported %r" % sorted(got))
    check(not ({"lab-o4", "lab-o5", "lab-p3"} & got), "hidden records exported: %r" % sorted(got))


def suite(binary, start_server):
    st = Suite("labels")
    s = start_server(binary)
    try:
        st.run("load", load, s)
        st.run("reads", t_reads, s)
        st.run("searches", t_searches, s)
        st.run("history", t_history, s)
        st.run("writes", t_writes, s)
        st.run("break the glass", t_break_glass, s)
        st.run("patient context", t_patient_context, s)
        st.run("patient context writes", t_patient_context_writes, s)
        st.run("bulk export", t_export, s)
    finally:
        s.cleanup()
    return st.summary()
