"""Bulk Data $export (FHIR Bulk Data Access IG) against a real server: the
three kick-off forms, parameter checks, polling, the manifest, every file
downloaded and checked line by line, _since and _type, Patient and Group
exports, authentication and ownership, DELETE, and a restart.

The server runs with CHARTKEEP_TEST_EXPORT_DELAY_MS (a test hook: each job
waits that long as "running" before it reads), so that status 202 with
X-Progress and a DELETE of a running job are seen every time, not only when
the machine happens to be slow."""
import json
import os
import re
import time

from harness import Failure, Suite, check

DELAY_MS = 400
ASYNC = {"Prefer": "respond-async"}
BULK = "http://hl7.org/fhir/uv/bulkdata/"

# The data: ids by type, and which Patient each resource belongs to.
PATIENTS = ["xp1", "xp2", "xp3"]
OBS = {"xo1": "xp1", "xo2": "xp1", "xo3": "xp2", "xo4": "xp3"}
ENC = {"xe1": "xp3"}
ORPHAN = "xo5"   # an Observation of xp4, a Patient that is deleted
NAMES = ["Exportova", "Bulkinski"]   # must never reach the server log


def patient(pid, family):
    return {"resourceType": "Patient", "id": pid, "name": [{"family": family}],
            "gender": "female", "birthDate": "1970-01-01"}


def observation(oid, pid, value=1):
    return {"resourceType": "Observation", "id": oid, "status": "final",
            "code": {"coding": [{"system": "http://loinc.org", "code": "8867-4"}]},
            "subject": {"reference": "Patient/" + pid},
            "valueQuantity": {"value": value, "unit": "/min"}}


def encounter(eid, pid):
    return {"resourceType": "Encounter", "id": eid, "status": "finished",
            "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode",
                      "code": "AMB"},
            "subject": {"reference": "Patient/" + pid}}


def group(gid, members):
    return {"resourceType": "Group", "id": gid, "type": "person", "actual": True,
            "member": [{"entity": {"reference": m}} for m in members]}


def put(s, res, **kw):
    r = s.put("/%s/%s" % (res["resourceType"], res["id"]), res, **kw)
    check(r.status in (200, 201), "PUT %s/%s: %r" % (res["resourceType"], res["id"], r))
    return r


def load(s):
    for i, pid in enumerate(PATIENTS):
        put(s, patient(pid, NAMES[i % 2]))
    put(s, patient("xp4", "Gone"))
    put(s, observation(ORPHAN, "xp4"))
    r = s.request("DELETE", "/Patient/xp4")
    check(r.status in (200, 204), "delete: %r" % r)
    for oid, pid in OBS.items():
        put(s, observation(oid, pid))
    for eid, pid in ENC.items():
        put(s, encounter(eid, pid))
    put(s, {"resourceType": "Practitioner", "id": "xdoc", "name": [{"family": "Doc"}]})
    put(s, {"resourceType": "Organization", "id": "xorg", "name": "Export Org"})
    # one member by absolute URL on this server, as some clients write them
    put(s, group("xg1", ["Patient/xp1", s.base + "/Patient/xp3", "Practitioner/xdoc"]))
    put(s, group("xg0", ["Practitioner/xdoc", "http://elsewhere.example/Patient/xp2"]))


# ---- helpers ---------------------------------------------------------------

def kickoff(s, path, headers=ASYNC, token="admin"):
    r = s.get(path, headers=headers, token=token)
    check(r.status == 202, "kick-off %s: %r" % (path, r))
    loc = r.header("Content-Location")
    m = re.match(re.escape(s.base) + r"/\$export-status/([0-9a-f]{32})$", loc or "")
    check(m, "Content-Location %r" % loc)
    check(not r.body or r.json["resourceType"] == "OperationOutcome", "kick-off body %r" % r)
    return m.group(1)


def status_path(job):
    return "/$export-status/" + job


def poll(s, job, token="admin", timeout=60):
    """Poll until done; the manifest.  Every 202 must carry X-Progress and
    Retry-After."""
    end = time.time() + timeout
    while time.time() < end:
        r = s.get(status_path(job), token=token)
        if r.status == 200:
            check(r.header("Content-Type").startswith("application/fhir+json") or
                  r.header("Content-Type").startswith("application/json"), "manifest type")
            return r.json
        check(r.status == 202, "status: %r" % r)
        check(r.header("X-Progress"), "202 without X-Progress")
        check(r.header("Retry-After") and r.header("Retry-After").isdigit(), "202 without Retry-After")
        time.sleep(0.05)
    raise Failure("export %s did not finish in %ds" % (job, timeout))


def rel(s, url):
    check(url.startswith(s.base + "/"), "absolute URL on this server expected: %r" % url)
    return url[len(s.base):]


def download(s, manifest):
    """{type: [resources]} from every file of the manifest, each line checked."""
    got = {}
    check(manifest["requiresAccessToken"] is True, "requiresAccessToken")
    check(manifest["error"] == [], "error %r" % manifest["error"])
    check(re.match(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)$",
                   manifest["transactionTime"]), "transactionTime %r" % manifest["transactionTime"])
    for out in manifest["output"]:
        path = rel(s, out["url"])
        check(re.search(r"/\$export-file/[0-9a-f]{32}/%s-\d+\.ndjson$" % out["type"], path),
              "file url %r" % out["url"])
        r = s.get(path, headers={"Accept": "application/fhir+ndjson"})
        check(r.status == 200, "download %s: %r" % (path, r))
        check(r.header("Content-Type") == "application/fhir+ndjson", "file type %r" %
              r.header("Content-Type"))
        text = r.body.decode("utf-8")
        check(text.endswith("\n"), "file does not end with a line break")
        lines = text[:-1].split("\n")
        check(len(lines) == out["count"], "%s: %d lines, manifest says %d" % (path, len(lines),
                                                                            out["count"]))
        for line in lines:
            res = json.loads(line)
            check(res["resourceType"] == out["type"], "a %s in the %s file" %
                  (res["resourceType"], out["type"]))
            check("meta" in res and "versionId" in res["meta"], "resource without meta")
            got.setdefault(out["type"], []).append(res)
    return got


def ids(got, rtype):
    return sorted(r["id"] for r in got.get(rtype, []))


def export(s, path, token="admin"):
    job = kickoff(s, path, token=token)
    m = poll(s, job, token=token)
    return job, m, download(s, m)


# ---- tests ---------------------------------------------------------------

def t_capability(s):
    r = s.get("/metadata", token=None)
    check(r.status == 200, "metadata %r" % r)
    cs = r.json
    check(BULK + "CapabilityStatement/bulk-data" in cs.get("instantiates", []), "instantiates")
    rest = cs["rest"][0]
    check({"name": "export", "definition": BULK + "OperationDefinition/export"} in
          rest.get("operation", []), "system $export operation")
    by_type = {x["type"]: x for x in rest["resource"]}
    check({"name": "export", "definition": BULK + "OperationDefinition/patient-export"} in
          by_type["Patient"].get("operation", []), "Patient $export operation")
    check({"name": "export", "definition": BULK + "OperationDefinition/group-export"} in
          by_type["Group"].get("operation", []), "Group $export operation")


def t_kickoff_forms(s):
    for path in ("/$export", "/Patient/$export", "/Group/xg1/$export"):
        job = kickoff(s, path)
        poll(s, job)
    # Prefer may carry other tokens too
    kickoff(s, "/$export?_type=Organization", headers={"Prefer": "handling=lenient, respond-async"})


def t_head_starts_nothing(s):
    before = s.get("/$export?_type=Organization", headers=ASYNC)   # one job, to compare with
    check(before.status == 202, "kick-off %r" % before)
    h = s.request("HEAD", "/$export?_type=Organization", headers=ASYNC)
    check(h.status == 405, "HEAD of a kick-off: %r" % h)
    check(not h.header("Content-Location"), "HEAD started an export")


def t_missing_prefer(s):
    for path in ("/$export", "/Patient/$export", "/Group/xg1/$export"):
        for h in ({}, {"Prefer": "return=minimal"}):
            r = s.get(path, headers=h)
            check(r.status == 400, "%s without respond-async: %r" % (path, r))
            check(r.json["resourceType"] == "OperationOutcome", "not an OperationOutcome")
            check("respond-async" in r.body.decode(), "the outcome does not say what is missing")


def t_bad_parameters(s):
    cases = [("_type=Patient,Frobnitz", "Frobnitz"), ("_type=", "_type"),
             ("_since=yesterday", "_since"), ("_since=2024-02-30T00:00:00Z", "_since"),
             ("_outputFormat=text/csv", "_outputFormat"),
             ("_typeFilter=Observation%3Fcode%3D1", "_typeFilter")]
    for path in ("/$export", "/Patient/$export", "/Group/xg1/$export"):
        for q, says in cases:
            r = s.get(path + "?" + q, headers=ASYNC)
            check(r.status == 400, "%s?%s: %r" % (path, q, r))
            check(r.json["resourceType"] == "OperationOutcome", "not an OperationOutcome")
            check(says in r.json["issue"][0]["diagnostics"], "%s?%s: %r does not name %s" %
                  (path, q, r.json["issue"][0]["diagnostics"], says))
    for fmt in ("application/fhir%2Bndjson", "application/ndjson", "ndjson"):
        poll(s, kickoff(s, "/$export?_type=Organization&_outputFormat=" + fmt))


def t_unknown_parameters(s):
    r = s.get("/$export?frobnicate=1", headers={"Prefer": "respond-async, handling=strict"})
    check(r.status == 400 and "frobnicate" in r.body.decode(), "strict: %r" % r)
    r = s.get("/$export?_type=Organization&frobnicate=1", headers=ASYNC)
    check(r.status == 202, "lenient: %r" % r)
    check(r.json and r.json["resourceType"] == "OperationOutcome" and
          "frobnicate" in r.body.decode(), "lenient: the ignored parameter is not reported: %r" % r)
    poll(s, rel(s, r.header("Content-Location")).split("/")[-1])


def t_system_export(s):
    job, m, got = export(s, "/$export")
    check(m["request"] == s.base + "/$export", "request %r" % m["request"])
    check(ids(got, "Patient") == PATIENTS, "Patients %r" % ids(got, "Patient"))  # not the deleted one
    check(ids(got, "Observation") == sorted(list(OBS) + [ORPHAN]), "Observations %r" %
          ids(got, "Observation"))
    check(ids(got, "Encounter") == sorted(ENC), "Encounters")
    check(ids(got, "Practitioner") == ["xdoc"] and ids(got, "Organization") == ["xorg"],
          "Practitioner/Organization")
    check(ids(got, "Group") == ["xg0", "xg1"], "Groups")
    # one file per type, types not repeated, nothing empty
    types = [o["type"] for o in m["output"]]
    check(len(types) == len(set(types)), "a type in more than one file: %r" % types)
    check(all(o["count"] > 0 for o in m["output"]), "an empty file in the manifest")
    # the files hold the current versions exactly as a read returns them
    for res in got["Observation"]:
        r = s.get("/Observation/" + res["id"])
        check(r.json == res, "Observation/%s differs from a read" % res["id"])


def t_type_filter(s):
    job, m, got = export(s, "/$export?_type=Observation,Patient")
    check(sorted(got) == ["Observation", "Patient"], "types %r" % sorted(got))
    check(m["request"] == s.base + "/$export?_type=Observation%2CPatient", "request %r" % m["request"])
    _, _, got = export(s, "/$export?_type=Observation&_type=Encounter")
    check(sorted(got) == ["Encounter", "Observation"], "repeated _type: %r" % sorted(got))
    _, m, got = export(s, "/$export?_type=Basic")
    check(m["output"] == [] and got == {}, "no Basic: output %r" % m["output"])


def t_since(s):
    # a marker write gives the server's clock; what is written from then on is newer
    r = put(s, observation("xo-mark", "xp2", 5))
    since = r.json["meta"]["lastUpdated"]
    time.sleep(0.01)
    put(s, observation("xo3", "xp2", 99))          # an update: a new version
    put(s, encounter("xe2", "xp2"))
    _, m, got = export(s, "/$export?_since=" + since.replace("+", "%2B"))
    check(ids(got, "Observation") == ["xo-mark", "xo3"], "since: Observations %r" % ids(got, "Observation"))
    check(ids(got, "Encounter") == ["xe2"], "since: Encounters %r" % ids(got, "Encounter"))
    check("Patient" not in got, "since: unchanged Patients exported")
    check([o["valueQuantity"]["value"] for o in got["Observation"] if o["id"] == "xo3"] == [99],
          "since: not the current version")
    # transactionTime works as the next _since: nothing new, nothing exported
    _, m2, got2 = export(s, "/$export?_since=" + m["transactionTime"].replace("+", "%2B"))
    check(all(r["meta"]["lastUpdated"] >= m["transactionTime"] for rs in got2.values() for r in rs),
          "exported something older than _since")
    # clean up for the tests that count
    for rid in ("xo-mark",):
        s.request("DELETE", "/Observation/" + rid)
    s.request("DELETE", "/Encounter/xe2")


def t_patient_export(s):
    _, m, got = export(s, "/Patient/$export")
    check(m["request"] == s.base + "/Patient/$export", "request %r" % m["request"])
    check(ids(got, "Patient") == PATIENTS, "Patients %r" % ids(got, "Patient"))
    # not the Observation of the deleted Patient: its compartment is gone
    check(ids(got, "Observation") == sorted(OBS), "Observations %r" % ids(got, "Observation"))
    check(ids(got, "Encounter") == sorted(ENC), "Encounters %r" % ids(got, "Encounter"))
    for t in ("Practitioner", "Organization"):
        check(t not in got, "%s is not in the Patient compartment but was exported" % t)
    _, _, got = export(s, "/Patient/$export?_type=Encounter")
    check(list(got) == ["Encounter"], "Patient export with _type: %r" % list(got))


def t_group_export(s):
    _, m, got = export(s, "/Group/xg1/$export")
    check(m["request"] == s.base + "/Group/xg1/$export", "request %r" % m["request"])
    members = ["xp1", "xp3"]
    check(ids(got, "Patient") == members, "Patients %r" % ids(got, "Patient"))
    check(ids(got, "Observation") == sorted(o for o, p in OBS.items() if p in members),
          "Observations %r" % ids(got, "Observation"))
    check(ids(got, "Encounter") == sorted(e for e, p in ENC.items() if p in members), "Encounters")
    check("Practitioner" not in got and "Organization" not in got, "outside the compartment")
    # a member added later counts from the next export on
    put(s, group("xg1", ["Patient/xp1", "Patient/xp2"]))
    _, _, got = export(s, "/Group/xg1/$export?_type=Patient,Observation")
    check(ids(got, "Patient") == ["xp1", "xp2"], "after the Group changed: %r" % ids(got, "Patient"))
    check(ids(got, "Observation") == ["xo1", "xo2", "xo3"], "after the Group changed: %r" %
          ids(got, "Observation"))
    put(s, group("xg1", ["Patient/xp1", "Patient/xp3", "Practitioner/xdoc"]))
    # no Patient members: nothing
    _, m, got = export(s, "/Group/xg0/$export")
    check(m["output"] == [], "Group without Patients: %r" % m["output"])
    # unknown or deleted Group: 404 at kick-off
    r = s.get("/Group/nope/$export", headers=ASYNC)
    check(r.status == 404, "unknown Group: %r" % r)
    put(s, group("xg-del", ["Patient/xp1"]))
    s.request("DELETE", "/Group/xg-del")
    r = s.get("/Group/xg-del/$export", headers=ASYNC)
    check(r.status == 404, "deleted Group: %r" % r)


def t_auth_and_ownership(s):
    job, m, _ = export(s, "/$export?_type=Patient")
    f = rel(s, m["output"][0]["url"])
    for path in (status_path(job), f):
        r = s.get(path, token=None)
        check(r.status == 401, "%s without a token: %r" % (path, r))
        check(r.header("WWW-Authenticate"), "401 without WWW-Authenticate")
        r = s.get(path, token="not-a-token")
        check(r.status == 401, "%s with a bad token: %r" % (path, r))
        r = s.get(path, token="tech")
        check(r.status == 404, "%s as another user: %r" % (path, r))
    r = s.request("DELETE", status_path(job), token="tech")
    check(r.status == 404, "DELETE as another user: %r" % r)
    check(s.get(status_path(job)).status == 200, "another user's DELETE removed the job")
    r = s.get("/$export", headers=ASYNC, token=None)
    check(r.status == 401, "kick-off without a token: %r" % r)
    # another user's own job is theirs alone
    job2 = kickoff(s, "/$export?_type=Organization", token="tech")
    poll(s, job2, token="tech")
    check(s.get(status_path(job2)).status == 404, "admin sees tech's job")


def t_path_traversal(s):
    job, m, _ = export(s, "/$export?_type=Patient")
    bad = ["/$export-file/%s/..%%2F..%%2Fapi.db" % job, "/$export-file/%s/..%%2F%s" % (job, job),
           "/$export-file/%s/Patient-1.ndjson%%2F.." % job, "/$export-file/%s/%%2Fetc%%2Fpasswd" % job,
           "/$export-file/%s/Patient-01.ndjson" % job, "/$export-file/%s/Patient-9.ndjson" % job,
           "/$export-file/%s/.." % job, "/$export-file/..%%2F%s/Patient-1.ndjson" % job,
           "/$export-file/%s/Patient-1.ndjson" % job.upper(), "/$export-status/..%2F..%2Fetc",
           "/$export-file/%s/Group-1.ndjson" % job]
    for path in bad:
        r = s.get(path)
        check(r.status in (400, 404), "%s: %r" % (path, r))
        check(not r.body or b"resourceType\":\"OperationOutcome" in r.body, "%s served data" % path)
    r = s.get("/$export-file/%s/Patient-1.ndjson" % job)
    check(r.status == 200, "the real file: %r" % r)
    h = s.request("HEAD", "/$export-file/%s/Patient-1.ndjson" % job)
    check(h.status == 200 and not h.body and h.header("Content-Length") == str(len(r.body)),
          "HEAD of a file: %r %r" % (h, h.header("Content-Length")))


def t_progress_and_delete(s):
    job = kickoff(s, "/$export")
    r = s.get(status_path(job))      # the job waits DELAY_MS before it reads
    check(r.status == 202, "status of a running job: %r" % r)
    check(re.match(r"^(queued|\d+ resources written)$", r.header("X-Progress") or ""),
          "X-Progress %r" % r.header("X-Progress"))
    check((r.header("Retry-After") or "").isdigit(), "Retry-After %r" % r.header("Retry-After"))
    # a running job is its owner's alone too
    check(s.get(status_path(job), token="tech").status == 404, "another user sees a running job")
    check(s.request("DELETE", status_path(job), token="tech").status == 404,
          "another user deletes a running job")
    check(s.get(status_path(job)).status == 202, "the running job is gone after another's DELETE")
    r = s.request("DELETE", status_path(job))
    check(r.status == 202, "DELETE of a running job: %r" % r)
    check(s.get(status_path(job)).status == 404, "status after DELETE")
    check(s.request("DELETE", status_path(job)).status == 404, "second DELETE")
    # a finished job: DELETE removes it and its files
    job, m, _ = export(s, "/$export?_type=Patient")
    f = rel(s, m["output"][0]["url"])
    check(s.request("DELETE", status_path(job)).status == 202, "DELETE of a done job")
    check(s.get(status_path(job)).status == 404, "status after DELETE of a done job")
    check(s.get(f).status == 404, "file after DELETE")
    d = os.path.join(s.db + ".exports", job)
    check(not os.path.exists(d), "the job's directory is still there")
    # a queued job behind a running one
    a = kickoff(s, "/$export?_type=Organization")
    b = kickoff(s, "/$export?_type=Organization")
    r = s.get(status_path(b))
    check(r.status == 202 and r.header("X-Progress") == "queued", "queued: %r %r" %
          (r, r.header("X-Progress")))
    check(s.request("DELETE", status_path(b)).status == 202, "DELETE of a queued job")
    poll(s, a)
    check(s.get(status_path(b)).status == 404, "a deleted queued job ran")


def t_files_layout(s):
    job, m, _ = export(s, "/$export?_type=Observation")
    d = os.path.join(s.db + ".exports", job)
    st = os.stat(d)
    check(st.st_mode & 0o777 == 0o700, "job directory mode %o" % (st.st_mode & 0o777))
    for o in m["output"]:
        p = os.path.join(d, o["url"].rsplit("/", 1)[1])
        check(os.stat(p).st_mode & 0o777 == 0o600, "file mode")


def t_log_clean(s):
    log = "".join(s.log)
    for word in NAMES:
        check(word not in log, "patient data (%r) in the server log" % word)
    for rid in ("xp1", "xo1", "xe1"):
        check("=" + rid not in log and "/" + rid not in log, "a resource id (%s) in the log" % rid)


def t_restart(s):
    """A finished job answers after a restart; one running at shutdown is failed."""
    job, m, _ = export(s, "/$export?_type=Patient")
    running = kickoff(s, "/$export")              # still in its start delay
    check(s.get(status_path(running)).status == 202, "not running")
    rc = s.stop()
    check(rc == 0, "server exit status %r" % rc)
    s.start()
    r = s.get(status_path(job))
    check(r.status == 200, "finished job after a restart: %r" % r)
    m2 = r.json
    check(m2["transactionTime"] == m["transactionTime"] and
          [(o["type"], o["count"]) for o in m2["output"]] ==
          [(o["type"], o["count"]) for o in m["output"]], "manifest changed over the restart")
    got = download(s, m2)   # the URLs now name the new port
    check(ids(got, "Patient") == PATIENTS, "files after the restart")
    r = s.get(status_path(running))
    check(r.status == 500, "a job running at shutdown, after the restart: %r" % r)
    check(r.json["resourceType"] == "OperationOutcome" and "again" in r.body.decode(),
          "failed job outcome %r" % r)
    check(s.get(status_path(running), token="tech").status == 404, "failed job, other user")


def t_clean_exit(s):
    """Shutdown with export jobs behind it: exit status 0 and, in a sanitizer
    build, no report in the log."""
    poll(s, kickoff(s, "/Group/xg1/$export"))
    rc = s.stop()
    check(rc == 0, "server exit status %r" % rc)
    log = "".join(s.log)
    check("Sanitizer" not in log and "runtime error" not in log, "sanitizer report in the log")


def suite(binary, start_server):
    st = Suite("api-export")
    os.environ["CHARTKEEP_TEST_EXPORT_DELAY_MS"] = str(DELAY_MS)
    try:
        s = start_server(binary)
    finally:
        del os.environ["CHARTKEEP_TEST_EXPORT_DELAY_MS"]
    os.environ["CHARTKEEP_TEST_EXPORT_DELAY_MS"] = str(DELAY_MS)  # for the restart
    try:
        s.tokens["tech"] = s.issue_token("tech")
        st.run("load", load, s)
        for fn in (t_capability, t_kickoff_forms, t_head_starts_nothing, t_missing_prefer, t_bad_parameters,
                   t_unknown_parameters, t_system_export, t_type_filter, t_since,
                   t_patient_export, t_group_export, t_auth_and_ownership, t_path_traversal,
                   t_progress_and_delete, t_files_layout, t_restart, t_log_clean, t_clean_exit):
            st.run(fn.__name__[2:], fn, s)
    finally:
        del os.environ["CHARTKEEP_TEST_EXPORT_DELAY_MS"]
        s.cleanup()
    return st.summary()
