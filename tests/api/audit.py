"""The audit trail: one entry per request, written before the answer, and a
chain that `chartkeep audit verify` checks.  The tamper tests edit, delete,
insert, reorder, rewrite and cut the audit table directly with sqlite3 (as
someone with the database file but not the key would) and expect verify to
fail naming the entry."""
import hashlib
import json
import os
import shutil
import sqlite3

from harness import Failure, Suite, check

PATIENT = {"resourceType": "Patient", "name": [{"family": "Auditova", "given": ["Ilse"]}],
           "birthDate": "1960-02-03"}


def entries(db):
    c = sqlite3.connect(db)
    try:
        return [(seq, ts, json.loads(e)) for seq, ts, e in
                c.execute("SELECT seq, ts, entry FROM audit_log ORDER BY seq")]
    finally:
        c.close()


def verify(s, db, key=True):
    args = ["audit", "verify", "--db", db]
    if key:
        args += ["--key", s.db + ".audit-key.pub"]
    p = s.cli(*args, check_rc=False)
    return p.returncode, p.stdout + p.stderr


def chain_hash(prev, seq, ts, entry):
    h = hashlib.blake2b(digest_size=32)
    h.update(prev)
    h.update(seq.to_bytes(8, "big"))
    h.update(ts.to_bytes(8, "big", signed=True))
    h.update(entry.encode())
    return h.digest()


def tampered(s, name):
    """A copy of the (stopped) server's database, with the triggers gone."""
    path = os.path.join(s.tmp, "tamper-%s.db" % name)
    shutil.copyfile(s.db, path)
    c = sqlite3.connect(path)
    for (t,) in c.execute("SELECT name FROM sqlite_master WHERE type = 'trigger' AND name LIKE 'audit%'").fetchall():
        if t != "audit_log_patients":
            c.execute("DROP TRIGGER " + t)
    c.commit()
    return path, c


def t_one_entry_per_request(s):
    before = len(entries(s.db))
    r = s.post("/Patient", PATIENT)
    check(r.status == 201, "create %r" % r)
    pid = r.json["id"]
    obs = {"resourceType": "Observation", "status": "final", "code": {"text": "weight"},
           "subject": {"reference": "Patient/" + pid}}
    r = s.post("/Observation", obs)
    check(r.status == 201, "create obs %r" % r)
    oid = r.json["id"]
    check(s.get("/Observation/" + oid).status == 200, "read")
    check(s.get("/Observation?subject=Patient/" + pid).status == 200, "search")
    check(s.get("/Patient/does-not-exist").status == 404, "404")
    e = entries(s.db)[before:]
    check(len(e) == 5, "5 requests, %d entries" % len(e))
    codes = [x[2]["subtype"][0]["code"] for x in e]
    check(codes == ["create", "create", "read", "search-type", "read"], "subtypes %r" % codes)
    actions = [x[2]["action"] for x in e]
    check(actions == ["C", "C", "R", "E", "R"], "actions %r" % actions)
    check([x[2]["outcome"] for x in e] == ["0", "0", "0", "0", "4"], "outcomes")
    for _, _, ev in e:
        who = ev["agent"][0]["who"]["identifier"]["value"]
        check(who == "admin", "agent %r" % who)
        check(ev["agent"][0]["network"]["address"] == "127.0.0.1", "source address")
    # the patient is named for the write of the observation, its read and the search
    for i in (0, 1, 2, 3):
        refs = [x.get("what", {}).get("reference") for x in e[i][2]["entity"]]
        check("Patient/" + pid in refs, "entry %d does not name the patient: %r" % (i, refs))
    refs = [x.get("what", {}).get("reference") for x in e[2][2]["entity"]]
    check("Observation/%s/_history/1" % oid in refs or "Observation/" + oid in refs, "read entity %r" % refs)
    # the entry holds no content of the record
    text = json.dumps([x[2] for x in e])
    check("Auditova" not in text and "1960" not in text, "resource content in the audit entry")
    return pid


def t_logins_audited(s):
    import urllib.parse
    before = len(entries(s.db))
    for pw in ("wrong password!!", "correct horse battery staple"):
        body = urllib.parse.urlencode({"grant_type": "password", "username": "admin", "password": pw})
        r = s.request("POST", "/auth/token", body=body.encode(), token=None,
                      headers={"Content-Type": "application/x-www-form-urlencoded"})
        check(r.status in (200, 400), "token endpoint %r" % r)
    e = entries(s.db)[before:]
    codes = [(x[2]["subtype"][0]["code"], x[2]["outcome"]) for x in e]
    check(codes == [("login_failed", "4"), ("login", "0")], "login entries %r" % codes)
    check(all(x[2]["type"]["code"] == "110114" for x in e), "type User Authentication")
    check("correct horse" not in json.dumps([x[2] for x in e]), "a password in the audit trail")


def t_entries_are_searchable_columns(s):
    c = sqlite3.connect(s.db)
    try:
        n = c.execute("SELECT count(*) FROM audit_log WHERE agent = 'admin'").fetchone()[0]
        check(n >= 5, "agent column %d" % n)
        p = c.execute("SELECT count(*) FROM audit_patient").fetchone()[0]
        check(p >= 4, "audit_patient rows %d" % p)
    finally:
        c.close()


def t_no_way_to_change(s):
    r = s.post("/AuditEvent", {"resourceType": "AuditEvent"})
    check(r.status in (400, 403, 405, 422), "POST /AuditEvent %r" % r)
    c = sqlite3.connect(s.db)
    try:
        for sql in ("UPDATE audit_log SET entry = '{}' WHERE seq = 1", "DELETE FROM audit_log WHERE seq = 1",
                    "DELETE FROM audit_patient"):
            try:
                c.execute(sql)
                c.commit()
                raise Failure("%s was allowed" % sql)
            except sqlite3.DatabaseError as ex:
                check("append-only" in str(ex), "%s: %s" % (sql, ex))
    finally:
        c.close()


def t_search_over_fhir(s, pid):
    r = s.get("/AuditEvent?patient=" + pid)
    check(r.status == 200 and r.json["type"] == "searchset", "search %r" % r)
    got = [e["resource"] for e in r.json["entry"]]
    check(len(got) >= 4, "entries for the patient: %d" % len(got))
    seqs = [int(x["id"]) for x in got]
    check(seqs == sorted(seqs, reverse=True), "newest first %r" % seqs)
    for x in got:
        refs = [e.get("what", {}).get("reference") for e in x["entity"]]
        check("Patient/" + pid in refs, "an entry not about the patient: %r" % refs)
        check(x["meta"]["lastUpdated"] and x["resourceType"] == "AuditEvent", "entry shape")
    # the same through the patient's access log, paged by 2
    seen, url = [], "/Patient/%s/$access-log?_count=2" % pid
    while url:
        r = s.get(url)
        check(r.status == 200, "access log %r" % r)
        seen += [int(e["resource"]["id"]) for e in r.json.get("entry", [])]
        nxt = [l["url"] for l in r.json["link"] if l["relation"] == "next"]
        url = nxt[0][len(s.base):] if nxt else None
    # the searches above are themselves audited (and name the patient): compare what existed before
    check(seen[-len(seqs):] == seqs[-len(seqs):] or set(seqs) <= set(seen), "access log pages %r vs %r" % (seen, seqs))
    r = s.get("/AuditEvent/%d" % seqs[-1])
    check(r.status == 200 and r.json["id"] == str(seqs[-1]), "read %r" % r)
    check(s.get("/AuditEvent/999999").status == 404, "read unknown")
    r = s.get("/AuditEvent?agent=admin&date=ge2000-01-01&_count=1")
    check(r.status == 200 and len(r.json["entry"]) == 1, "agent and date %r" % r)
    r = s.get("/AuditEvent?agent=nobody-at-all")
    check(r.status == 200 and not r.json.get("entry"), "unknown agent %r" % r)
    r = s.get("/AuditEvent?date=yesterday")
    check(r.status == 400 and "date" in r.body.decode(), "bad date %r" % r)
    r = s.get("/AuditEvent?action=R")
    check(r.status == 400 and "action" in r.body.decode(), "unsupported parameter %r" % r)
    # only roles allowed to read the audit trail may
    s.add_user("cody", "coder")
    s.tokens["cody"] = s.issue_token("cody")
    r = s.get("/AuditEvent?patient=" + pid, token="cody")
    check(r.status == 403, "coder searching the audit trail %r" % r)
    r = s.get("/Patient/%s/$access-log" % pid, token="cody")
    check(r.status == 403, "coder reading an access log %r" % r)


def index_state(db, pid):
    """(upto, max seq, seqs of the entries naming the patient)"""
    c = sqlite3.connect(db)
    try:
        upto = c.execute("SELECT upto FROM audit_indexed").fetchone()[0]
        top = c.execute("SELECT max(seq) FROM audit_log").fetchone()[0]
        seqs = [q for (q,) in c.execute(
            "SELECT a.seq FROM audit_log a WHERE EXISTS (SELECT 1 FROM json_each(a.entry, '$.entity') j "
            "WHERE j.value ->> '$.what.reference' = 'Patient/' || ?) ORDER BY a.seq DESC", (pid,))]
        return upto, top, seqs
    finally:
        c.close()


def t_patient_index_batches(s, start_server):
    """The patient index takes entries in batches (every 512 entries or
    second); a search by patient finds them all the same: those already
    indexed and those not yet, and after a restart."""
    import time
    pid = s.post("/Patient", PATIENT).json["id"]
    mixed = False
    for _ in range(5):
        time.sleep(1.1)
        check(s.get("/Patient/" + pid).status == 200, "read")   # the batch takes this group
        check(s.get("/Patient/" + pid).status == 200, "read")
        check(s.get("/Patient/" + pid).status == 200, "read")
        upto, top, seqs = index_state(s.db, pid)
        if any(q <= upto for q in seqs) and any(q > upto for q in seqs):
            mixed = True
            r = s.get("/AuditEvent?patient=%s&_count=100" % pid)
            check(r.status == 200, "search %r" % r)
            got = [int(e["resource"]["id"]) for e in r.json.get("entry", [])]
            check(got == seqs, "indexed and not yet indexed entries: %r, expected %r (upto %d)"
                  % (got, seqs, upto))
            r = s.get("/Patient/%s/$access-log?_count=2" % pid)
            got = [int(e["resource"]["id"]) for e in r.json.get("entry", [])]
            check(got == index_state(s.db, pid)[2][1:3], "access log page %r" % got)
            break
    check(mixed, "never saw entries on both sides of the index mark")
    check(s.stop() == 0, "server did not stop cleanly")
    upto, top, seqs = index_state(s.db, pid)
    check(upto == top, "a clean stop indexes the rest: upto %d of %d" % (upto, top))
    c = sqlite3.connect(s.db)
    try:
        n = c.execute("SELECT count(*) FROM audit_patient WHERE patient = ?", (pid,)).fetchone()[0]
    finally:
        c.close()
    check(n == len(seqs), "index rows %d for %d entries" % (n, len(seqs)))
    s.start()
    r = s.get("/AuditEvent?patient=%s&_count=100" % pid)
    got = [int(e["resource"]["id"]) for e in r.json.get("entry", [])]
    check(got == seqs, "after a restart %r, expected %r" % (got, seqs))


def t_verify_ok(s):
    check(s.stop() == 0, "server did not stop cleanly")
    rc, out = verify(s, s.db)
    check(rc == 0 and out.startswith("OK:"), "verify %d %r" % (rc, out))
    check("checkpoints signed by this key" in out, "a checkpoint at exit %r" % out)
    rc, out = verify(s, s.db, key=False)
    check(rc == 0 and "not checked" in out, "verify without key %d %r" % (rc, out))


def t_cli_audited(s):
    """import, export and reindex touch patient data outside any request: audited too."""
    before = len(entries(s.db))
    nd = os.path.join(s.tmp, "cli.ndjson")
    with open(nd, "w") as f:
        f.write(json.dumps({"resourceType": "Patient", "id": "cli-p1", "name": [{"family": "Importova"}]}) + "\n")
        f.write(json.dumps({"resourceType": "Observation", "id": "cli-o1", "status": "final",
                            "code": {"text": "x"}, "subject": {"reference": "Patient/cli-p1"}}) + "\n")
    s.cli("import", "--db", s.db, nd)
    s.cli("export", "--db", s.db, "--type", "Patient")
    s.cli("reindex", "--db", s.db, "--type", "Observation")
    e = entries(s.db)[before:]
    codes = [x[2]["subtype"][0]["code"] for x in e]
    check(codes == ["import", "export", "reindex"], "cli entries %r" % codes)
    who = e[0][2]["agent"][0]["who"]["identifier"]["value"]
    check(who.startswith("cli:"), "cli agent %r" % who)
    refs = [x.get("what", {}).get("reference") for x in e[0][2]["entity"]]
    check("Patient/cli-p1" in refs and "Observation/cli-o1/_history/1" in refs, "import entities %r" % refs)
    check(e[0][2]["agent"][0]["network"]["address"] == "local", "cli source")
    rc, out = verify(s, s.db)
    check(rc == 0, "verify after the CLI wrote: %d %r" % (rc, out))


def t_edit(s):
    path, c = tampered(s, "edit")
    e = c.execute("SELECT entry FROM audit_log WHERE seq = 3").fetchone()[0]
    c.execute("UPDATE audit_log SET entry = ? WHERE seq = 3", (e.replace('"admin"', '"nobody"'),))
    c.commit()
    rc, out = verify(s, path)
    check(rc == 1 and "entry 3 " in out and "edited" in out, "edit: %d %r" % (rc, out))


def t_delete(s):
    path, c = tampered(s, "delete")
    c.execute("DELETE FROM audit_log WHERE seq = 2")
    c.commit()
    rc, out = verify(s, path)
    check(rc == 1 and "entries 2 to 2 are missing" in out, "delete: %d %r" % (rc, out))


def t_insert(s):
    path, c = tampered(s, "insert")
    # make room after entry 2 and put a forged entry there
    n = c.execute("SELECT max(seq) FROM audit_log").fetchone()[0]
    for seq in range(n, 2, -1):
        c.execute("UPDATE audit_log SET seq = seq + 1 WHERE seq = ?", (seq,))
    c.execute("INSERT INTO audit_log (seq, ts, entry, hash) VALUES (3, 0, '{}', zeroblob(32))")
    c.commit()
    rc, out = verify(s, path)
    check(rc == 1 and "entry 3 " in out, "insert: %d %r" % (rc, out))


def t_reorder(s):
    path, c = tampered(s, "reorder")
    c.execute("UPDATE audit_log SET seq = -1 WHERE seq = 2")
    c.execute("UPDATE audit_log SET seq = 2 WHERE seq = 3")
    c.execute("UPDATE audit_log SET seq = 3 WHERE seq = -1")
    c.commit()
    rc, out = verify(s, path)
    check(rc == 1 and "entry 2 " in out, "reorder: %d %r" % (rc, out))


def t_rewrite_whole_chain(s):
    """Someone who knows the algorithm edits entry 2 and recomputes every hash
    after it: the chain is consistent again, the signed checkpoint is not."""
    path, c = tampered(s, "rewrite")
    rows = c.execute("SELECT seq, ts, entry FROM audit_log ORDER BY seq").fetchall()
    prev, new = bytes(32), {}
    for seq, ts, entry in rows:
        if seq == 2:
            entry = entry.replace('"admin"', '"nobody"')
            c.execute("UPDATE audit_log SET entry = ? WHERE seq = 2", (entry,))
        h = chain_hash(prev, seq, ts, entry)
        c.execute("UPDATE audit_log SET hash = ? WHERE seq = ?", (h, seq))
        prev = new[seq] = h
    c.commit()
    rc, out = verify(s, path)
    check(rc == 1 and "rewritten since they were signed" in out, "rewrite: %d %r" % (rc, out))
    # and forged checkpoints are not signed by the key
    for (seq,) in c.execute("SELECT seq FROM audit_checkpoint").fetchall():
        c.execute("UPDATE audit_checkpoint SET hash = ? WHERE seq = ?", (new[seq], seq))
    c.commit()
    rc, out = verify(s, path)
    check(rc == 1 and "not signed by this key" in out, "forged checkpoint: %d %r" % (rc, out))


def t_cut_short(s):
    path, c = tampered(s, "cut")
    c.execute("DELETE FROM audit_log WHERE seq >= (SELECT max(seq) FROM audit_checkpoint)")
    c.commit()
    rc, out = verify(s, path)
    check(rc == 1 and "cut short" in out, "truncation: %d %r" % (rc, out))


def t_restart_continues_chain(s, start_server):
    s.start()
    check(s.get("/Patient?_count=1").status == 200, "search after restart")
    check(s.stop() == 0, "server did not stop cleanly")
    rc, out = verify(s, s.db)
    check(rc == 0, "verify after restart: %d %r" % (rc, out))


def suite(binary, start_server):
    st = Suite("audit")
    s = start_server(binary)
    try:
        pid = []
        st.run("one entry per request", lambda: pid.append(t_one_entry_per_request(s)))
        st.run("search over FHIR", lambda: t_search_over_fhir(s, pid[0]))
        st.run("patient index in batches", t_patient_index_batches, s, start_server)
        st.run("logins audited", t_logins_audited, s)
        st.run("searchable columns", t_entries_are_searchable_columns, s)
        st.run("no way to change an entry", t_no_way_to_change, s)
        st.run("verify ok", t_verify_ok, s)
        st.run("import and export audited", t_cli_audited, s)
        for fn in (t_edit, t_delete, t_insert, t_reorder, t_rewrite_whole_chain, t_cut_short):
            st.run(fn.__name__[2:], fn, s)
        st.run("restart continues the chain", t_restart_continues_chain, s, start_server)
    finally:
        s.cleanup()
    return st.summary()
