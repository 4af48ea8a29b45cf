"""Conditional create, update and delete (R4 http.html#cond-update etc.), and
conditional entries and references in transactions.  Part of api-flows."""
import threading

from harness import check

MRN = "urn:oid:2.16.840.1.113883.19.5"


def patient(mrn, **kw):
    p = {"resourceType": "Patient", "identifier": [{"system": MRN, "value": mrn}],
         "name": [{"family": "Conditional"}]}
    p.update(kw)
    return p


def crit(mrn):
    return "identifier=%s%%7C%s" % (MRN, mrn)


def text(r):
    return r.body.decode("utf-8", "replace")


def delete(s, path, **kw):
    return s.request("DELETE", path, **kw)


def count(s, mrn):
    r = s.get("/Patient?%s&_total=accurate&_summary=count" % crit(mrn))
    check(r.status == 200, "count search %r" % r)
    return r.json["total"]


def t_conditional_create(s):
    h = {"If-None-Exist": crit("c-1")}
    r = s.post("/Patient", patient("c-1"), headers=h)
    check(r.status == 201, "first conditional create %r" % r)
    pid = r.json["id"]
    r = s.post("/Patient", patient("c-1", gender="male"), headers=h)
    check(r.status == 200 and r.json["id"] == pid and "gender" not in r.json,
          "second conditional create must answer with the match: %r" % r)
    check(r.header("ETag") == 'W/"1"' and r.header("Location").endswith("/Patient/%s/_history/1" % pid),
          "headers of the match %r" % r.headers)
    # the Type?query form some clients send
    r = s.post("/Patient", patient("c-1"), headers={"If-None-Exist": "Patient?" + crit("c-1")})
    check(r.status == 200 and r.json["id"] == pid, "Type?query form %r" % r)
    check(count(s, "c-1") == 1, "duplicate created")
    # several matches: 412, nothing written
    s.post("/Patient", patient("c-2"))
    s.post("/Patient", patient("c-2"))
    r = s.post("/Patient", patient("c-2"), headers={"If-None-Exist": crit("c-2")})
    check(r.status == 412, "several matches %r" % r)
    check(count(s, "c-2") == 2, "412 wrote something")
    # malformed criteria: 400 naming the parameter, nothing written
    r = s.post("/Patient", patient("c-3"), headers={"If-None-Exist": "birthdate=notadate"})
    check(r.status == 400 and "birthdate" in text(r), "bad criteria %r" % r)
    r = s.post("/Patient", patient("c-3"), headers={"If-None-Exist": "no-such-param=1"})
    check(r.status == 400 and "no-such-param" in text(r), "unknown parameter in criteria %r" % r)
    check(count(s, "c-3") == 0, "a refused conditional create wrote")
    # an invalid body is refused before the criteria are looked at
    r = s.post("/Patient", {"resourceType": "Patient", "gender": 1}, headers=h)
    check(r.status == 400, "invalid body %r" % r)


def t_conditional_create_race(s):
    """Twelve clients create the same patient at once: exactly one is created."""
    results = []

    def one():
        r = s.post("/Patient", patient("race-1"), headers={"If-None-Exist": crit("race-1")})
        results.append(r.status)

    threads = [threading.Thread(target=one) for _ in range(12)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    check(results.count(201) == 1, "creates: %r" % results)
    check(all(x in (200, 201, 409) for x in results), "statuses %r" % results)
    check(count(s, "race-1") == 1, "the race created %d" % count(s, "race-1"))


def t_conditional_update(s):
    # no match, no id: created under a new id
    r = s.put("/Patient?" + crit("u-1"), patient("u-1"))
    check(r.status == 201, "conditional update that creates %r" % r)
    pid = r.json["id"]
    # one match: updated, whatever the body's id (absent) says
    r = s.put("/Patient?" + crit("u-1"), patient("u-1", gender="female"))
    check(r.status == 200 and r.json["id"] == pid and r.json["meta"]["versionId"] == "2",
          "conditional update %r" % r)
    # one match, the body names another id: 400
    r = s.put("/Patient?" + crit("u-1"), patient("u-1", id="someone-else"))
    check(r.status == 400, "id mismatch %r" % r)
    # If-Match is honoured
    r = s.put("/Patient?" + crit("u-1"), patient("u-1", gender="male"), headers={"If-Match": 'W/"1"'})
    check(r.status == 412, "stale If-Match %r" % r)
    check(s.get("/Patient/" + pid).json["gender"] == "female", "stale If-Match wrote")
    # no match, the body has an id that is free: created with that id
    r = s.put("/Patient?" + crit("u-2"), patient("u-2", id="cond-u-2"))
    check(r.status == 201 and r.json["id"] == "cond-u-2", "create with the body's id %r" % r)
    # no match, the body's id exists: 409
    r = s.put("/Patient?" + crit("u-3"), patient("u-3", id="cond-u-2"))
    check(r.status == 409, "id taken %r" % r)
    check(s.get("/Patient/cond-u-2").json["identifier"][0]["value"] == "u-2", "overwritten")
    # several matches: 412
    s.post("/Patient", patient("u-4"))
    s.post("/Patient", patient("u-4"))
    r = s.put("/Patient?" + crit("u-4"), patient("u-4"))
    check(r.status == 412 and count(s, "u-4") == 2, "several matches %r" % r)
    # no criteria / bad criteria: 400
    check(s.put("/Patient", patient("u-5")).status == 400, "PUT /Patient without criteria")
    r = s.put("/Patient?identifier:nonsense=1", patient("u-5"))
    check(r.status == 400 and "identifier" in text(r), "bad modifier %r" % r)
    check(count(s, "u-5") == 0, "a refused conditional update wrote")


def t_conditional_delete(s):
    pid = s.post("/Patient", patient("d-1")).json["id"]
    r = delete(s, "/Patient?" + crit("d-1"))
    check(r.status == 200, "conditional delete %r" % r)
    check(s.get("/Patient/" + pid).status == 410, "not deleted")
    r = delete(s, "/Patient?" + crit("d-1"))
    check(r.status == 200 and "nothing to delete" in text(r), "no match %r" % r)
    r = delete(s, "/Patient?" + crit("d-1"), headers={"Prefer": "return=minimal"})
    check(r.status == 204, "no match, minimal %r" % r)
    s.post("/Patient", patient("d-2"))
    s.post("/Patient", patient("d-2"))
    r = delete(s, "/Patient?" + crit("d-2"))
    check(r.status == 412 and count(s, "d-2") == 2, "several matches %r" % r)
    check(delete(s, "/Patient").status == 400, "DELETE /Patient without criteria")
    check(delete(s, "/Patient?_lastUpdated=yesterday").status == 400, "bad criteria")


def tx(entries):
    return {"resourceType": "Bundle", "type": "transaction", "entry": entries}


def t_conditional_transaction(s):
    existing = s.post("/Patient", patient("t-1")).json["id"]
    u1 = "urn:uuid:0c7a6c11-0000-4000-8000-000000000001"
    u2 = "urn:uuid:0c7a6c11-0000-4000-8000-000000000002"
    obs = {"resourceType": "Observation", "status": "final", "code": {"text": "bp"}}
    b = tx([
        {"fullUrl": u1, "resource": patient("t-1"),
         "request": {"method": "POST", "url": "Patient", "ifNoneExist": crit("t-1")}},
        {"fullUrl": u2, "resource": patient("t-2"),
         "request": {"method": "POST", "url": "Patient", "ifNoneExist": crit("t-2")}},
        {"resource": dict(obs, subject={"reference": u1}), "request": {"method": "POST", "url": "Observation"}},
        {"resource": dict(obs, subject={"reference": "Patient?identifier=%s|t-1" % MRN}),
         "request": {"method": "POST", "url": "Observation"}},
        {"resource": patient("t-3", active=True), "request": {"method": "PUT", "url": "Patient?" + crit("t-3")}},
        {"request": {"method": "DELETE", "url": "Patient?" + crit("t-none")}},
        {"request": {"method": "GET", "url": "Patient?" + crit("t-1")}},
    ])
    r = s.post("/", b)
    check(r.status == 200, "conditional transaction %r" % r)
    e = r.json["entry"]
    st = [x["response"]["status"] for x in e]
    check(st == ["200 OK", "201 Created", "201 Created", "201 Created", "201 Created", "204 No Content",
                 "200 OK"], "statuses %r" % st)
    check(e[0]["resource"]["id"] == existing, "ifNoneExist did not answer with the match")
    check(e[2]["resource"]["subject"]["reference"] == "Patient/" + existing, "fullUrl of a matched entry")
    check(e[3]["resource"]["subject"]["reference"] == "Patient/" + existing, "conditional reference")
    check(e[6]["resource"]["resourceType"] == "Bundle" and e[6]["resource"]["total"] == 1, "search entry")
    check(count(s, "t-1") == 1 and count(s, "t-2") == 1 and count(s, "t-3") == 1, "counts")
    # a conditional reference that matches nothing fails the whole transaction
    head = s.history_head()
    r = s.post("/", tx([
        {"resource": patient("t-4"), "request": {"method": "POST", "url": "Patient"}},
        {"resource": dict(obs, subject={"reference": "Patient?identifier=%s|nobody" % MRN}),
         "request": {"method": "POST", "url": "Observation"}}]))
    check(r.status == 412 and "matches no resource" in text(r), "unresolved reference %r" % r)
    check(s.history_head() == head and count(s, "t-4") == 0, "partial transaction")
    # several matches for a conditional reference, ifNoneExist on a PUT
    s.post("/Patient", patient("t-5"))
    s.post("/Patient", patient("t-5"))
    r = s.post("/", tx([{"resource": dict(obs, subject={"reference": "Patient?identifier=%s|t-5" % MRN}),
                         "request": {"method": "POST", "url": "Observation"}}]))
    check(r.status == 412 and "more than one" in text(r), "ambiguous reference %r" % r)
    r = s.post("/", tx([{"resource": patient("t-6", id="t6"),
                         "request": {"method": "PUT", "url": "Patient/t6", "ifNoneExist": crit("t-6")}}]))
    check(r.status == 400 and "ifNoneExist" in text(r), "ifNoneExist on PUT %r" % r)
    check(s.history_head() != head, "sanity: history moved")


TESTS = [t_conditional_create, t_conditional_create_race, t_conditional_update,
         t_conditional_delete, t_conditional_transaction]
