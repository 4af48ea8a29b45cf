"""HL7 v2 over MLLP against a real server (serve --mllp).

Frames, ACKs (original and enhanced mode, by version), the durable inbox,
resends and control-id collisions, every kind of malformed input, the
mapping to FHIR (tests/data/hl7v2/fhir/NNN-name.hl7 with NNN-name.expect.json:
searches and the JSON subset each first match must hold), the error queue
and `hl7 reprocess`, `hl7 send`, the audit trail, and that no patient data
reaches the log."""
import glob
import json
import os
import random
import re
import signal
import socket
import sqlite3
import subprocess
import threading
import time

from harness import Failure, Server, Suite, check, subset, wait_until

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
DATA = os.path.join(ROOT, "tests", "data", "hl7v2")
SB, EB, CR = b"\x0b", b"\x1c", b"\x0d"
MAX_FRAME = 65536


def msh(typ="ADT^A01^ADT_A01", ctrl="C1", ver="2.5.1", pid_mode="P", extra=""):
    return ("MSH|^~\\&|SENDAPP|SENDFAC|CK|CKFAC|20240301083000||%s|%s|%s|%s%s" %
            (typ, ctrl, pid_mode, ver, extra))


def seg(name, fields):
    return "|".join([name] + [fields.get(i, "") for i in range(1, max(fields) + 1)])


def adt(ctrl, mrn="M1", name="TESTPAT^ALPHA", event="A01", ver="2.5.1", extra=""):
    return "\r".join([
        msh("ADT^%s^ADT_A01" % event, ctrl, ver, extra=extra),
        "EVN|%s|20240301083000" % event,
        seg("PID", {1: "1", 3: "%s^^^GENHOSP^MR" % mrn, 5: name, 7: "19700101", 8: "M"}),
        seg("PV1", {1: "1", 2: "I", 3: "4W^401^B", 7: "1234^WELBY^MARCUS", 10: "MED",
                    19: "V-%s^^^GENHOSP^VN" % mrn, 44: "20240301080000",
                    45: "20240303100000" if event == "A03" else ""}),
    ]) + "\r"


class Mllp:
    def __init__(self, port, timeout=10):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        self.buf = b""

    def send_raw(self, data):
        self.sock.sendall(data)

    def send(self, text):
        self.send_raw(SB + (text.encode() if isinstance(text, str) else text) + EB + CR)

    def ack(self):
        while True:
            s = self.buf.find(SB)
            e = self.buf.find(EB, s + 1) if s >= 0 else -1
            if s >= 0 and e >= 0:
                frame = self.buf[s + 1:e]
                self.buf = self.buf[e + 1:]
                if self.buf[:1] == CR:
                    self.buf = self.buf[1:]
                return Ack(frame.decode())
            chunk = self.sock.recv(65536)
            if not chunk:
                raise Failure("connection closed before an ACK (buffer %r)" % self.buf[:100])
            self.buf += chunk

    def call(self, text):
        self.send(text)
        return self.ack()

    def close(self):
        self.sock.close()


class Ack:
    def __init__(self, text):
        self.text = text
        self.segs = [s for s in text.split("\r") if s]
        self.msh = self.segs[0]
        self.fs = self.msh[3]
        self.seg = {}
        for s in self.segs:
            self.seg.setdefault(s[:3], s.split(self.fs))

    @property
    def code(self):
        return self.seg["MSA"][1]

    def field(self, sid, n):
        f = self.seg.get(sid)
        if not f:
            return None
        if sid == "MSH":
            return ([sid, self.fs] + f[1:])[n] if n < len(f) + 1 else ""
        return f[n] if n < len(f) else ""

    def __repr__(self):
        return self.text.replace("\r", "\\r")


def start(binary, extra=(), policy=None):
    s = Server(binary, policy=policy, extra_args=["--mllp", "127.0.0.1:0", "--mllp-max-frame", str(MAX_FRAME),
                                                  "--mllp-idle", "3", "--mllp-max-connections", "40"] +
               list(extra)).init()
    s.cli("client", "add", "--db", s.db, "--client-id", "hl7-feed", "--role", "interface")
    s.add_user("director", "him_director")
    s.tokens["director"] = s.issue_token("director")
    s.add_user("privacy", "privacy_officer")
    s.tokens["privacy"] = s.issue_token("privacy")
    s.start()
    port = [None]

    def found():
        for line in s.log:
            if "event=mllp_listening" in line:
                port[0] = int(line.split("addr=")[1].split()[0].rsplit(":", 1)[1])
                return True
        return False
    check(wait_until(found), "no mllp_listening line in the log")
    s.mllp_port = port[0]
    return s


def inbox(s, where="1=1"):
    con = sqlite3.connect(s.db, timeout=10)
    try:
        return con.execute("SELECT id, state, ack, collision, control_id, reason FROM hl7_inbox WHERE " + where +
                           " ORDER BY id").fetchall()
    finally:
        con.close()


def wait_processed(s, ctrl):
    ok = wait_until(lambda: any(r[1] in (1, 2) for r in inbox(s, "control_id = '%s'" % ctrl)), timeout=20)
    rows = inbox(s, "control_id = '%s'" % ctrl)
    check(ok, "message %s not processed: %r" % (ctrl, rows))
    return rows


def search(s, q, token="director"):
    r = s.get("/" + q.replace("|", "%7C"), token=token)
    check(r.status == 200, "GET %s: %r" % (q, r))
    return [e["resource"] for e in (r.json.get("entry") or []) if e.get("search", {}).get("mode", "match") == "match"]


# ---- the tests -------------------------------------------------------------

def t_ack_original(s):
    c = Mllp(s.mllp_port)
    a = c.call(adt("ORIG-1"))
    c.close()
    check(a.code == "AA", "want AA: %r" % a)
    check(a.field("MSA", 2) == "ORIG-1", "MSA-2 must echo MSH-10: %r" % a)
    check(a.msh.startswith("MSH|^~\\&|CK|CKFAC|SENDAPP|SENDFAC|"), "sides swapped, delimiters echoed: %r" % a)
    check(a.field("MSH", 9) == "ACK^A01^ACK" and a.field("MSH", 12) == "2.5.1", "type/version: %r" % a)
    rows = inbox(s, "control_id = 'ORIG-1'")
    check(len(rows) == 1 and rows[0][2] == "AA", "stored once before the AA: %r" % rows)


def t_ack_dialect(s):
    # other delimiters and version 2.3: echoed; an error gets MSA-3 and ERR-1
    m = "MSH$%*!@$APP$FAC$CK$CKFAC$20240301$$ZZZ%Z01$DIA-1$P$2.3\rPID$1\r"
    c = Mllp(s.mllp_port)
    a = c.call(m)
    c.close()
    check(a.msh.startswith("MSH$%*!@$CK$CKFAC$APP$FAC$"), "delimiters echoed: %r" % a)
    check(a.code == "AR" and a.field("MSH", 12) == "2.3", "AR in 2.3: %r" % a)
    check("not supported" in a.field("MSA", 3), "MSA-3 text before 2.5: %r" % a)
    check(a.field("ERR", 1).startswith("MSH%1%9%200@"), "ERR-1 ELD with code 200: %r" % a)


def t_ack_enhanced(s):
    c = Mllp(s.mllp_port)
    a = c.call(adt("ENH-1", extra="|||AL|NE"))
    check(a.code == "CA" and a.field("MSA", 2) == "ENH-1", "commit accept: %r" % a)
    # MSH-15 NE: no accept ACK; the next message's ACK is the next frame
    c.send(adt("ENH-2", mrn="M2", extra="|||NE|NE"))
    a = c.call(adt("ENH-3", mrn="M3"))
    c.close()
    check(a.field("MSA", 2) == "ENH-3", "no ACK for NE, then the next one: %r" % a)
    check(len(inbox(s, "control_id = 'ENH-2'")) == 1, "NE message stored all the same")
    # ER: only errors are acknowledged
    c = Mllp(s.mllp_port)
    a = c.call(msh("SIU^S12", "ENH-4", extra="|||ER|NE") + "\r")
    c.close()
    check(a.code == "CR", "commit reject asked for by ER: %r" % a)


def t_duplicate(s):
    c = Mllp(s.mllp_port)
    m = adt("DUP-1", mrn="MD1")
    a1 = c.call(m)
    wait_processed(s, "DUP-1")
    a2 = c.call(m)
    c.close()
    check(a1.code == "AA" and a2.code == "AA", "resend ACKed again: %r %r" % (a1, a2))
    rows = inbox(s, "control_id = 'DUP-1'")
    check(len(rows) == 1 and rows[0][1] == 1, "one row, processed once: %r" % rows)
    pats = search(s, "Patient?identifier=urn:chartkeep:hl7v2:authority:GENHOSP|MD1")
    check(len(pats) == 1 and pats[0]["meta"]["versionId"] == "1", "patient written once: %r" % pats)


def t_collision(s):
    c = Mllp(s.mllp_port)
    a1 = c.call(adt("COL-1", mrn="MC1"))
    a2 = c.call(adt("COL-1", mrn="MC2"))
    c.close()
    check(a1.code == "AA" and a2.code == "AA", "both accepted: %r %r" % (a1, a2))
    rows = inbox(s, "control_id = 'COL-1'")
    check(len(rows) == 2 and rows[0][3] == 0 and rows[1][3] == rows[0][0],
          "second flagged as a collision with the first: %r" % rows)
    wait_processed(s, "COL-1")
    check(wait_until(lambda: all(r[1] == 1 for r in inbox(s, "control_id = 'COL-1'"))), "both processed")
    check(len(search(s, "Patient?identifier=urn:chartkeep:hl7v2:authority:GENHOSP|MC2")) == 1, "second applied")


# malformed: (name, bytes sent inside a frame, ACK code, text in the ERR/MSA, stored?)
MALFORMED = [
    ("no MSH", b"PID|1||X\r", "AR", "does not start with an MSH", True),
    ("binary junk", bytes(range(1, 11)) + b"\xff\xfe", "AR", "does not start with an MSH", True),
    ("bad delimiters", b"MSH|^^\\&|A|B|C|D|1||ADT^A01|BAD-1|P|2.5\r", "AR", "encoding characters 1 and 2", True),
    ("bad segment", (adt("BAD-2") + "pid|1\r").encode(), "AR", "segment 5", True),
    ("control char", (adt("BAD-3") + "ZXX|a\x02b\r").encode(), "AR", "control character 0x02", True),
    ("no control id", (msh(ctrl="") + "\rPID|1||X^^^H^MR\rPV1|1|I\r").encode(), "AR", "MSH-10", True),
    ("unsupported type", (msh("SIU^S12", "BAD-4") + "\r").encode(), "AR", "message type is not supported", True),
    ("unsupported event", (msh("ADT^A99", "BAD-5") + "\rPID|1||X^^^H^MR\r").encode(), "AR", "event", True),
    ("processing id", (msh(ctrl="BAD-6", pid_mode="T") + "\rPID|1||X^^^H^MR\rPV1|1|I\r").encode(), "AR",
     "processing id 'T'", True),
    ("version", (msh(ctrl="BAD-7", ver="3.0") + "\rPID|1||X^^^H^MR\rPV1|1|I\r").encode(), "AR", "version '3.0'",
     True),
    ("missing PID", (msh(ctrl="BAD-8") + "\rPV1|1|I\r").encode(), "AE", "requires is missing", True),
    ("missing PID-3", (msh(ctrl="BAD-9") + "\rPID|1||\rPV1|1|I\r").encode(), "AE", "PID-3", True),
    ("huge field", (msh(ctrl="BAD-10") + "\rPID|1||" + "X" * (MAX_FRAME + 10) + "\r").encode(), "AR",
     "larger than", False),
    ("too many fields", (msh(ctrl="BAD-11") + "\rZXX" + "|" * 1200 + "\r").encode(), "AR", "more than 1000", True),
]


def t_malformed(s):
    c = Mllp(s.mllp_port)
    before = len(inbox(s))
    stored = 0
    for name, data, code, text, keep in MALFORMED:
        c.send_raw(SB + data + EB + CR)
        a = c.ack()
        check(a.code == code, "%s: want %s, got %r" % (name, code, a))
        err = a.seg.get("ERR")
        check(err and text in a.text, "%s: ERR should say %r: %r" % (name, text, a))
        stored += keep
    # still serving on the same connection after all that
    a = c.call(adt("AFTER-BAD", mrn="MAB"))
    c.close()
    check(a.code == "AA", "a good message after the bad ones: %r" % a)
    rows = inbox(s)[before:]
    check(len(rows) == stored + 1, "every bad frame but the oversized one kept as rejected: %d rows" % len(rows))
    check(all(r[1] == 3 for r in rows[:-1]), "kept as rejected, never processed: %r" % rows[:-1])


def t_framing(s):
    c = Mllp(s.mllp_port)
    m = adt("FRM-1", mrn="MF1").encode()
    # junk before the frame, the frame in three pieces, a cut-off frame, then a good one
    c.send_raw(b"garbage\r\n" + SB + m[:10])
    time.sleep(0.05)
    c.send_raw(m[10:30])
    time.sleep(0.05)
    c.send_raw(m[30:] + EB + CR)
    a = c.ack()
    check(a.code == "AA" and a.field("MSA", 2) == "FRM-1", "frame in pieces: %r" % a)
    c.send_raw(SB + adt("FRM-CUT", mrn="MFX").encode()[:40] + SB + adt("FRM-2", mrn="MF2").encode() + EB + CR)
    a = c.ack()
    check(a.field("MSA", 2) == "FRM-2", "a frame cut off by a new start block is dropped: %r" % a)
    # two frames in one write: two ACKs in order
    c.send_raw(SB + adt("FRM-3", mrn="MF3").encode() + EB + CR + SB + adt("FRM-4", mrn="MF4").encode() + EB + CR)
    a3, a4 = c.ack(), c.ack()
    c.close()
    check(a3.field("MSA", 2) == "FRM-3" and a4.field("MSA", 2) == "FRM-4", "in order: %r %r" % (a3, a4))
    check(not inbox(s, "control_id = 'FRM-CUT'"), "the cut-off frame is not stored")


def t_many_connections(s):
    conns = [Mllp(s.mllp_port) for _ in range(20)]
    for i, c in enumerate(conns):
        c.send(adt("MANY-%d" % i, mrn="MM%d" % i))
    acks = [c.ack() for c in conns]
    for c in conns:
        c.close()
    check(all(a.code == "AA" for a in acks), "all accepted: %r" % [a.code for a in acks])
    check([a.field("MSA", 2) for a in acks] == ["MANY-%d" % i for i in range(20)], "each its own ACK")


def t_limits(s):
    # an idle connection is closed (after --mllp-idle 3 s; waited for, not timed)
    c = Mllp(s.mllp_port, timeout=30)
    check(c.call(adt("IDLE-1", mrn="MI1")).code == "AA", "accepted")
    check(c.sock.recv(10) == b"", "an idle connection is closed by the server")
    c.close()
    check(wait_until(lambda: any("event=mllp_idle_close" in l for l in s.log)), "logged")
    # --mllp-max-connections 40: the 41st is closed unanswered, the others work
    conns = [Mllp(s.mllp_port) for _ in range(40)]
    check(conns[-1].call(adt("LIM-1", mrn="ML1")).code == "AA", "the 40th works")
    extra = Mllp(s.mllp_port)
    try:
        extra.send(adt("LIM-2", mrn="ML2"))
        got = extra.sock.recv(10)
    except OSError:
        got = b""
    check(got == b"", "the 41st connection is closed: %r" % got)
    extra.close()
    for c in conns:
        c.close()
    check(wait_until(lambda: any("event=mllp_refused" in l for l in s.log)), "refusal logged")
    # once they are gone, new connections work again
    check(wait_until(lambda: _one_call_ok(s)), "connections accepted again")


def _one_call_ok(s):
    try:
        c = Mllp(s.mllp_port)
        ok = c.call(adt("LIM-3", mrn="ML3")).code == "AA"
        c.close()
        return ok
    except (OSError, Failure):
        return False


def t_fhir_cases(s):
    failures = []
    c = Mllp(s.mllp_port)
    for hl7 in sorted(glob.glob(os.path.join(DATA, "fhir", "*.hl7"))):
        name = os.path.basename(hl7)
        text = open(hl7, "rb").read()
        ctrl = text.split(b"\r")[0].split(b"|")[9].decode()
        a = c.call(text)
        if a.code != "AA":
            failures.append("%s: %r" % (name, a))
            continue
        rows = wait_processed(s, ctrl)
        if rows[-1][1] != 1:
            failures.append("%s: not processed: %s" % (name, rows[-1][5]))
            continue
        for case in json.load(open(hl7[:-4] + ".expect.json")):
            got = search(s, case["search"])
            if len(got) != case["count"]:
                failures.append("%s: %s: %d matches, want %d" % (name, case["search"], len(got), case["count"]))
                continue
            if case.get("expect"):
                why = subset(case["expect"], got[0])
                if why:
                    failures.append("%s: %s: %s" % (name, case["search"], why))
    c.close()
    check(not failures, "\n  " + "\n  ".join(failures))


def t_ordering_and_no_duplicates(s):
    # A01, A08 (new name), A03 for one patient in one stream: applied in order
    c = Mllp(s.mllp_port)
    for ctrl, ev, name in (("ORD-1", "A01", "ORDER^FIRST"), ("ORD-2", "A08", "ORDER^SECOND"),
                           ("ORD-3", "A03", "ORDER^SECOND")):
        check(c.call(adt(ctrl, mrn="MO1", name=name, event=ev)).code == "AA", "accepted")
    c.close()
    wait_processed(s, "ORD-3")
    p = search(s, "Patient?identifier=urn:chartkeep:hl7v2:authority:GENHOSP|MO1")
    check(len(p) == 1 and p[0]["name"][0]["given"] == ["SECOND"], "updated in place: %r" % p)
    e = search(s, "Encounter?identifier=urn:chartkeep:hl7v2:authority:GENHOSP|V-MO1")
    check(len(e) == 1 and e[0]["status"] == "finished", "A03 after A01: %r" % e)
    pr = search(s, "Practitioner?identifier=urn:chartkeep:hl7v2:practitioner|1234")
    check(len(pr) == 1, "the practitioner of every message found, not duplicated: %d" % len(pr))


def t_merge(s):
    c = Mllp(s.mllp_port)
    check(c.call(adt("MRG-A", mrn="MG-OLD", name="MERGE^OLD")).code == "AA", "A01 old")
    check(c.call(adt("MRG-B", mrn="MG-NEW", name="MERGE^NEW")).code == "AA", "A01 new")
    a40 = "\r".join([msh("ADT^A40^ADT_A39", "MRG-C"), "EVN|A40|20240301083000",
                     seg("PID", {1: "1", 3: "MG-NEW^^^GENHOSP^MR", 5: "MERGE^NEW"}),
                     seg("MRG", {1: "MG-OLD^^^GENHOSP^MR"})]) + "\r"
    check(c.call(a40).code == "AA", "A40 accepted")
    bad = "\r".join([msh("ADT^A40^ADT_A39", "MRG-D"), seg("PID", {1: "1", 3: "MG-NEW^^^GENHOSP^MR"}),
                     seg("MRG", {1: "MG-NOBODY^^^GENHOSP^MR"})]) + "\r"
    check(c.call(bad).code == "AA", "A40 for an unknown prior patient accepted (stored)")
    nomrg = "\r".join([msh("ADT^A40^ADT_A39", "MRG-E"), seg("PID", {1: "1", 3: "MG-NEW^^^GENHOSP^MR"}),
                       "MRG|"]) + "\r"
    a = c.call(nomrg)
    check(a.code == "AE" and "MRG-1" in a.text, "MRG-1 required: %r" % a)
    c.close()
    rows = wait_processed(s, "MRG-C")
    check(rows[0][1] == 1, "merge processed: %r" % rows)
    old = search(s, "Patient?identifier=urn:chartkeep:hl7v2:authority:GENHOSP|MG-OLD")
    new = search(s, "Patient?identifier=urn:chartkeep:hl7v2:authority:GENHOSP|MG-NEW")
    check(len(old) == 1 and len(new) == 1, "both records kept: %r %r" % (old, new))
    check(old[0].get("active") is False and old[0]["link"][0]["type"] == "replaced-by" and
          old[0]["link"][0]["other"]["reference"] == "Patient/" + new[0]["id"], "old replaced by new: %r" % old[0])
    enc = search(s, "Encounter?identifier=urn:chartkeep:hl7v2:authority:GENHOSP|V-MG-OLD")
    check(len(enc) == 1 and enc[0]["subject"]["reference"] == "Patient/" + new[0]["id"],
          "the old patient's visit moved to the survivor: %r" % enc)
    check(int(old[0]["meta"]["versionId"]) >= 2, "history kept (a new version)")
    prov = search(s, "Provenance?target=Patient/" + new[0]["id"], token="privacy")
    check(prov, "a Provenance records the merge")
    rows = wait_processed(s, "MRG-D")
    check(rows[0][1] == 2 and "MRG-1" in rows[0][5], "unknown prior patient: error queue: %r" % rows)
    # processed once only
    p = s.cli("hl7", "reprocess", "--db", s.db, str(wait_processed(s, "MRG-C")[0][0]), check_rc=False)
    check(p.returncode == 1 and "already processed" in p.stderr, "never twice: %s" % p.stderr)


def t_audit(s):
    r = s.get("/AuditEvent?agent=hl7-feed&_count=200", token="privacy")
    check(r.status == 200, "the privacy officer reads the trail: %r" % r)
    texts = [json.dumps(e["resource"]) for e in (r.json.get("entry") or [])]
    mine = [t for t in texts if "hl7-feed" in t and "HL7 ADT^A01 from SENDAPP/SENDFAC" in t]
    check(mine, "an audit entry per processed message names the feed's client and the sender")
    check(any("mllp:127.0.0.1" in t for t in mine), "and where it came from")


def t_error_queue_and_reprocess(s, binary):
    # a site policy that keeps the interface from writing notes: MDM goes to the error queue
    pol = os.path.join(s.tmp, "deny.policy")
    open(pol, "w").write("deny interface write DocumentReference\n")
    s.stop()
    s.extra_args += ["--policy", pol]
    s.start()
    s.mllp_port = None
    check(wait_until(lambda: any("event=mllp_listening" in l for l in s.log[-20:])), "restarted")
    s.mllp_port = int([l for l in s.log if "event=mllp_listening" in l][-1].split("addr=")[1].split()[0]
                      .rsplit(":", 1)[1])
    text = open(os.path.join(DATA, "fhir", "004-mdm-t02.hl7")).read().replace("DOC-0001", "DOC-ERR").replace(
        "DOC777", "DOC888")
    c = Mllp(s.mllp_port)
    check(c.call(text).code == "AA", "stored and accepted")
    c.close()
    rows = wait_processed(s, "DOC-ERR")
    check(rows[0][1] == 2 and "DocumentReference" in rows[0][5], "in the error queue with the reason: %r" % rows)
    p = s.cli("hl7", "errors", "--db", s.db, "--json")
    listed = [json.loads(l) for l in p.stdout.splitlines()]
    check(any(e["id"] == rows[0][0] and e["state"] == "error" for e in listed), "hl7 errors lists it: %s" % p.stdout)
    check(not search(s, "DocumentReference?identifier=urn:chartkeep:hl7v2:document:TRANS|DOC888"),
          "nothing of it was written")
    # the fix: the default policy again; reprocess
    p = s.cli("hl7", "reprocess", "--db", s.db, str(rows[0][0]), check_rc=False)
    check(p.returncode == 0 and "processed" in p.stdout, "reprocess: %s %s" % (p.stdout, p.stderr))
    check(inbox(s, "id = %d" % rows[0][0])[0][1] == 1, "marked processed")
    check(len(search(s, "DocumentReference?identifier=urn:chartkeep:hl7v2:document:TRANS|DOC888")) == 1, "written")
    p = s.cli("hl7", "reprocess", "--db", s.db, str(rows[0][0]), check_rc=False)
    check(p.returncode == 1 and "already processed" in p.stderr, "never twice: %s" % p.stderr)
    p = s.cli("hl7", "reprocess", "--db", s.db, "999999", check_rc=False)
    check(p.returncode == 1 and "no such inbox message" in p.stderr, "unknown id: %s" % p.stderr)
    p = s.cli("hl7", "reprocess", "--db", s.db, "abc", check_rc=False)
    check(p.returncode == 2, "bad id is a usage error")
    p = s.cli("hl7", "reprocess", "--db", s.db, "--client", "nobody", str(rows[0][0]), check_rc=False)
    check(p.returncode == 1 and "client add" in p.stderr, "an unknown feed client: %s" % p.stderr)
    p = s.cli("hl7", "errors", check_rc=False)
    check(p.returncode == 2 and "--db" in p.stderr, "errors needs --db: %s" % p.stderr)


def t_send_cli(s, binary):
    f = os.path.join(s.tmp, "two.hl7")
    open(f, "w").write(adt("SEND-1", mrn="MS1") + "\n" + adt("SEND-2", mrn="MS2"))
    p = subprocess.run([binary, "hl7", "send", "--to", "127.0.0.1:%d" % s.mllp_port, f], capture_output=True,
                       text=True, timeout=60)
    check(p.returncode == 0, "exit 0: %s %s" % (p.stdout, p.stderr))
    check(p.stdout.count(": AA") == 2 and "MSA|AA|SEND-2" in p.stdout, "prints each ACK: %s" % p.stdout)
    lf = os.path.join(s.tmp, "lf.hl7")
    open(lf, "w").write(adt("SEND-LF", mrn="MSL").replace("\r", "\n"))
    p = subprocess.run([binary, "hl7", "send", "--to", "127.0.0.1:%d" % s.mllp_port, lf], capture_output=True,
                       text=True, timeout=60)
    check(p.returncode == 0, "LF file sent: %s %s" % (p.stdout, p.stderr))
    con = sqlite3.connect(s.db)
    raw = con.execute("SELECT raw FROM hl7_inbox WHERE control_id = 'SEND-LF'").fetchone()[0]
    con.close()
    check(b"\n" not in raw and raw.count(b"\r") == 4, "segments sent with CR: %r" % raw[:80])
    bad = os.path.join(s.tmp, "bad.hl7")
    open(bad, "w").write(msh("SIU^S12", "SEND-3") + "\r")
    p = subprocess.run([binary, "hl7", "send", "--to", "127.0.0.1:%d" % s.mllp_port, bad], capture_output=True,
                       text=True, timeout=60)
    check(p.returncode == 1 and ": AR" in p.stdout, "exit 1 on a rejection: %s" % p.stdout)
    p = subprocess.run([binary, "hl7", "send", "--to", "127.0.0.1:1", f], capture_output=True, text=True, timeout=60)
    check(p.returncode == 1 and "cannot connect" in p.stderr, "no receiver: %s" % p.stderr)
    p = subprocess.run([binary, "hl7", "send", f], capture_output=True, text=True, timeout=60)
    check(p.returncode == 2 and "--to" in p.stderr, "usage: %s" % p.stderr)


def t_parse_cli(s, binary):
    f = os.path.join(DATA, "parse", "001-escapes.hl7")
    p = subprocess.run([binary, "hl7", "parse", f, "--path", "OBX-5"], capture_output=True, text=True)
    check(p.returncode == 0 and p.stdout.startswith("Line one\nLine two | pipe"), "parse --path: %r" % p.stdout)
    p = subprocess.run([binary, "hl7", "parse", os.path.join(DATA, "samples", "sample_bad_file.hl7")],
                       capture_output=True, text=True)
    check(p.returncode == 1 and "no MSH segment" in p.stderr, "not a message: %s" % p.stderr)
    p = subprocess.run([binary, "hl7", "parse", "/nonexistent.hl7"], capture_output=True, text=True)
    check(p.returncode == 1 and "cannot open" in p.stderr, "missing file: %s" % p.stderr)
    for args, want in ((["--path", "PID-0"], "bad path 'PID-0'"), (["--path", "PID-5", "--fhir"], "do not go together"),
                       (["--bogus"], "--bogus")):
        p = subprocess.run([binary, "hl7", "parse", f] + args, capture_output=True, text=True)
        check(p.returncode == 2 and want in p.stderr, "%r: usage error naming it: %s" % (args, p.stderr))
    p = subprocess.run([binary, "hl7", "frobnicate"], capture_output=True, text=True)
    check(p.returncode == 2 and "unknown action 'frobnicate'" in p.stderr, "unknown action: %s" % p.stderr)
    bad = os.path.join(s.tmp, "bad-parse.hl7")
    open(bad, "wb").write(b"MSH|^~\\&|A|B|C|D|1||ADT^A01|X|P|2.5\rPID|1|\x01\r")
    p = subprocess.run([binary, "hl7", "parse", bad], capture_output=True, text=True)
    check(p.returncode == 1 and "segment 2 (PID), field 2: control character 0x01 (byte offset 42)" in p.stderr,
          "precise reason: %s" % p.stderr)
    p = subprocess.run([binary, "hl7", "parse", "--fhir", os.path.join(DATA, "fhir", "005-dft-p03.hl7")],
                       capture_output=True, text=True)
    check(p.returncode == 0 and json.loads(p.stdout)[0]["type"] == "transaction", "parse --fhir: %s" % p.stderr)


def t_no_patient_data_in_log(s):
    log = "".join(s.log)
    for secret in ("TESTPAT", "DOE^JANE", "JANE", "MRN1001", "19800215", "SPRINGFIELD", "Penicillin"):
        check(secret not in log, "patient data %r in the server log" % secret)


def t_feed_needs_client(binary):
    s = Server(binary, policy=None, extra_args=["--mllp", "127.0.0.1:0"]).init()
    try:
        p = subprocess.run([binary, "serve", "--db", s.db, "--listen", "127.0.0.1:0", "--mllp", "127.0.0.1:0"],
                           capture_output=True, text=True, timeout=60)
        check(p.returncode != 0 and "client add" in p.stderr, "serve --mllp without the feed's client: %s" %
              p.stderr)
        p = subprocess.run([binary, "serve", "--db", s.db, "--listen", "127.0.0.1:0", "--mllp", "nonsense"],
                           capture_output=True, text=True, timeout=60)
        check(p.returncode != 0, "bad --mllp refused")
    finally:
        s.cleanup()


def t_clean_stop(s):
    # with connections open: the listener and the feed stop, nothing leaks
    c = Mllp(s.mllp_port)
    check(c.call(adt("STOP-1", mrn="MST")).code == "AA", "accepted")
    rc = s.stop()
    c.close()
    log = "".join(s.log)
    check(rc == 0, "the server did not stop cleanly (%s)" % rc)
    i = max(log.find("Sanitizer"), log.find("runtime error"))
    check(i < 0, "sanitizer report in the log: %s" % log[max(0, i - 200):i + 1500])


def t_durability(binary, seed):
    """SIGKILL while senders stream: every AA is in the inbox after a restart,
    and every stored message is processed exactly once (one audit entry each)."""
    rnd = random.Random(seed)
    s = start(binary)
    acked, lock, stop = [], threading.Lock(), threading.Event()

    def sender(n):
        try:
            c = Mllp(s.mllp_port, timeout=5)
        except OSError:
            return
        i = 0
        while not stop.is_set():
            ctrl = "DUR-%d-%d" % (n, i)
            try:
                a = c.call(adt(ctrl, mrn="MD-%d-%d" % (n, i)))
            except (OSError, Failure):
                return
            if a.code == "AA":
                with lock:
                    acked.append(ctrl)
            i += 1
    try:
        ts = [threading.Thread(target=sender, args=(n,)) for n in range(6)]
        [t.start() for t in ts]
        time.sleep(0.5 + rnd.random())
        s.proc.send_signal(signal.SIGKILL)
        s.proc.wait()
        s.proc = None
        stop.set()
        [t.join() for t in ts]
        check(len(acked) > 10, "too few messages acknowledged before the kill: %d" % len(acked))
        con = sqlite3.connect(s.db)
        check(con.execute("PRAGMA integrity_check").fetchone()[0] == "ok", "database damaged")
        con.close()
        s.start()
        check(wait_until(lambda: not inbox(s, "state = 0"), timeout=120), "pending messages left after restart")
        rows = {r[4]: r for r in inbox(s, "control_id LIKE 'DUR-%'")}
        missing = [c for c in acked if c not in rows]
        check(not missing, "%d acknowledged messages lost: %r" % (len(missing), missing[:5]))
        bad = [r for r in rows.values() if r[1] != 1]
        check(not bad, "not processed: %r" % bad[:3])
        con = sqlite3.connect(s.db)
        counts = {}
        for (entry,) in con.execute("SELECT entry FROM audit_log WHERE agent = 'hl7-feed'"):
            m = re.search(r"\(inbox (\d+)\)", entry)
            if m:
                counts[int(m.group(1))] = counts.get(int(m.group(1)), 0) + 1
        con.close()
        twice = [i for i, n in counts.items() if n != 1]
        check(not twice, "processed more than once: %r" % twice[:5])
        check(all(counts.get(r[0]) == 1 for r in rows.values()), "every stored message processed once")
        print("durability round %d: %d acknowledged, %d stored, all processed once" % (seed, len(acked), len(rows)))
    finally:
        stop.set()
        s.cleanup()


class AckReceiver:
    """The sender's side of enhanced mode: listens where serve --mllp-ack-to
    points and records every application ACK it is sent, answering each with
    an accept ACK (CA, or `answer`)."""

    def __init__(self, port=0):
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", port))
        self.sock.listen(8)
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self.got, self.answer, self.stop = [], "CA", threading.Event()
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.thread.start()

    def run(self):
        while not self.stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            conn.settimeout(5)
            buf = b""
            try:
                while EB not in buf:
                    chunk = conn.recv(65536)
                    if not chunk:
                        break
                    buf += chunk
                if SB in buf and EB in buf:
                    a = Ack(buf[buf.find(SB) + 1:buf.find(EB)].decode())
                    self.got.append(a)
                    reply = "MSH|^~\\&|SENDAPP|SENDFAC|CK|CKFAC|20240301||ACK|R%d|P|2.5.1\rMSA|%s|%s\r" % (
                        len(self.got), self.answer, a.field("MSH", 10))
                    conn.sendall(SB + reply.encode() + EB + CR)
            except OSError:
                pass
            conn.close()

    def close(self):
        self.stop.set()
        self.sock.close()
        self.thread.join()


def free_port():
    t = socket.socket()
    t.bind(("127.0.0.1", 0))
    port = t.getsockname()[1]
    t.close()
    return port


def app_acks(s):
    con = sqlite3.connect(s.db, timeout=10)
    try:
        return con.execute("SELECT a.inbox_id, a.code, a.state, a.attempts, a.control_id, i.control_id, "
                           "a.last_error FROM hl7_app_ack a JOIN hl7_inbox i ON i.id = a.inbox_id "
                           "ORDER BY a.id").fetchall()
    finally:
        con.close()


def acks_for(s, ctrl):
    return [r for r in app_acks(s) if r[5] == ctrl]


def t_app_ack(binary):
    """Enhanced mode, MSH-16: the application ACK after processing goes to
    the sender's configured destination; unreachable: retried, kept across a
    restart, delivered once; AE with ERR for a message that fails; ER, SU
    and NE honoured; a destination's CR is final; original mode unchanged."""
    def one(s, text):
        c = Mllp(s.mllp_port)
        try:
            return c.call(text)
        finally:
            c.close()
    port = free_port()
    pol = os.path.join(os.environ.get("TMPDIR", "/tmp"), "ck-appack-%d.policy" % os.getpid())
    open(pol, "w").write("deny interface write DocumentReference\n")
    routes = "SENDAPP@SENDFAC=127.0.0.1:%d,TRANS=127.0.0.1:%d" % (port, port)
    s = start(binary, extra=["--mllp-ack-to", routes, "--policy", pol])
    rx = None
    try:
        # the destination is down: the ACK waits, tried again and again
        a = one(s, adt("APP-1", mrn="MA1", extra="|||AL|AL"))
        check(a.code == "CA" and a.field("MSA", 2) == "APP-1", "the accept ACK as before: %r" % a)
        check(wait_until(lambda: any(r[3] >= 2 for r in acks_for(s, "APP-1")), timeout=30),
              "retried while the destination is down: %r" % acks_for(s, "APP-1"))
        r = acks_for(s, "APP-1")[0]
        check(r[1] == "AA" and r[2] == 0 and "cannot connect" in r[6], "waiting, with why: %r" % (r,))
        p = s.cli("hl7", "acks", "--db", s.db, "--json")
        rows = [json.loads(l) for l in p.stdout.splitlines()]
        check(any(x["inbox_id"] == r[0] and x["state"] == "waiting" and x["attempts"] >= 2 and
                  "cannot connect" in x["last_error"] for x in rows), "hl7 acks shows it: %s" % p.stdout)
        # a restart loses nothing
        check(s.stop() == 0, "stopped cleanly")
        s.start()
        s.mllp_port = int([l for l in s.log if "event=mllp_listening" in l][-1].split("addr=")[1].split()[0]
                          .rsplit(":", 1)[1])
        rx = AckReceiver(port)
        check(wait_until(lambda: acks_for(s, "APP-1")[0][2] == 1, timeout=30),
              "delivered once the destination is up: %r" % acks_for(s, "APP-1"))
        got = [g for g in rx.got if g.field("MSA", 2) == "APP-1"]
        check(len(got) == 1, "one application ACK: %r" % rx.got)
        g = got[0]
        check(g.code == "AA", "AA: %r" % g)
        check(g.msh.startswith("MSH|^~\\&|CK|CKFAC|SENDAPP|SENDFAC|"), "sides swapped: %r" % g)
        check(g.field("MSH", 10) == acks_for(s, "APP-1")[0][4] and g.field("MSH", 10) != "APP-1",
              "its own MSH-10: %r" % g)
        check(g.field("MSH", 15) == "AL" and g.field("MSH", 16) == "NE", "asks for an accept ACK only: %r" % g)
        check(g.field("MSH", 9) == "ACK^A01^ACK", "the ACK of the event: %r" % g)
        # a message that fails (the policy keeps the feed from writing notes): AE with ERR
        text = open(os.path.join(DATA, "fhir", "004-mdm-t02.hl7")).read().replace("DOC-0001", "APP-ERR")
        text = text.replace("|P|2.5.1", "|P|2.5.1|||AL|AL", 1)
        check(one(s, text).code == "CA", "accepted")
        check(wait_until(lambda: any(x.field("MSA", 2) == "APP-ERR" for x in rx.got), timeout=30),
              "an AE for the failure: %r" % acks_for(s, "APP-ERR"))
        g = [x for x in rx.got if x.field("MSA", 2) == "APP-ERR"][0]
        check(g.code == "AE" and g.field("ERR", 3).startswith("207^") and "DocumentReference" in g.field("ERR", 8),
              "AE with ERR-3 207 and the reason: %r" % g)
        check(g.field("MSH", 5) == "TRANS", "to the note's sender: %r" % g)
        # ER: an error only; SU: a success only; NE: never; original mode: never
        one(s, adt("APP-ER", mrn="MA2", extra="|||AL|ER"))
        one(s, text.replace("APP-ERR", "APP-SU").replace("|AL|AL", "|AL|SU", 1))
        one(s, adt("APP-NE", mrn="MA3", extra="|||AL|NE"))
        one(s, adt("APP-ORIG", mrn="MA4"))
        c = Mllp(s.mllp_port)
        c.send(adt("APP-LAST", mrn="MA5", extra="|||NE|SU"))  # MSH-15 NE: no accept ACK
        check(c.call(adt("APP-AFTER", mrn="MA7")).field("MSA", 2) == "APP-AFTER", "no accept ACK for APP-LAST")
        c.close()
        for ctrl in ("APP-ER", "APP-SU", "APP-NE", "APP-ORIG"):
            wait_processed(s, ctrl)
        check(wait_until(lambda: any(x.field("MSA", 2) == "APP-LAST" for x in rx.got), timeout=30),
              "SU and a success: sent (MSH-15 NE does not matter): %r" % acks_for(s, "APP-LAST"))
        for ctrl in ("APP-ER", "APP-SU", "APP-NE", "APP-ORIG"):
            check(not acks_for(s, ctrl), "no application ACK for %s: %r" % (ctrl, acks_for(s, ctrl)))
            check(not [x for x in rx.got if x.field("MSA", 2) == ctrl], "none sent for %s" % ctrl)
        # the destination refuses: failed, not retried
        rx.answer = "CR"
        one(s, adt("APP-CR", mrn="MA6", extra="|||AL|AL"))
        check(wait_until(lambda: acks_for(s, "APP-CR") and acks_for(s, "APP-CR")[0][2] == 2, timeout=30),
              "failed on CR: %r" % acks_for(s, "APP-CR"))
        r = acks_for(s, "APP-CR")[0]
        check(r[3] == 1 and "refused" in r[6], "one try, and why: %r" % (r,))
        p = s.cli("hl7", "acks", "--db", s.db)
        check("failed" in p.stdout and "refused" in p.stdout and "APP-1" not in p.stdout,
              "hl7 acks lists the failed one, not the sent: %s" % p.stdout)
        p = s.cli("hl7", "acks", "--db", s.db, "--all", "--json")
        states = {json.loads(l)["inbox_id"]: json.loads(l)["state"] for l in p.stdout.splitlines()}
        check(sorted(set(states.values())) == ["failed", "sent"], "--all lists the sent too: %s" % p.stdout)
        # reprocessed after the fix (the CLI has the default policy): the AA follows the AE
        rx.answer = "CA"
        err_id = acks_for(s, "APP-ERR")[0][0]
        p = s.cli("hl7", "reprocess", "--db", s.db, str(err_id), check_rc=False)
        check(p.returncode == 0, "reprocessed: %s" % p.stderr)
        check(wait_until(lambda: [x.code for x in rx.got if x.field("MSA", 2) == "APP-ERR"] == ["AE", "AA"],
                         timeout=30), "then an AA, sent by the running server: %r" % acks_for(s, "APP-ERR"))
        check(s.cli("hl7", "reprocess", "--db", s.db, str(err_id), check_rc=False).returncode == 1, "once")
        check([r[1] for r in acks_for(s, "APP-ERR")] == ["AE", "AA"], "one per outcome: %r" % acks_for(s, "APP-ERR"))
        # every ACK row once, each delivered once
        sent = [(x.field("MSA", 2), x.code) for x in rx.got if x.field("MSA", 2) != "APP-CR"]
        check(len(sent) == len(set(sent)), "nothing delivered twice: %r" % sent)
        check(s.stop() == 0, "the server (and the ACK sender) stopped cleanly")
        log = "".join(s.log)
        i = max(log.find("Sanitizer"), log.find("runtime error"))
        check(i < 0, "sanitizer report in the log: %s" % log[max(0, i - 200):i + 1500])
    finally:
        if rx:
            rx.close()
        s.cleanup()
        os.unlink(pol)


def t_app_ack_usage(binary):
    s = Server(binary).init()
    try:
        for bad in ("SENDAPP", "=127.0.0.1:1", "A=127.0.0.1", "A=127.0.0.1:0", "A=127.0.0.1:99999", "A@=h:1",
                    "A=h:1,", "A=h:x1"):
            p = subprocess.run([binary, "serve", "--db", s.db, "--mllp", "127.0.0.1:0", "--mllp-ack-to", bad],
                               capture_output=True, text=True, timeout=30)
            check(p.returncode == 2 and "--mllp-ack-to" in p.stderr,
                  "%r is a usage error naming the option: %d %s" % (bad, p.returncode, p.stderr))
        p = subprocess.run([binary, "serve", "--db", s.db, "--mllp-ack-to", "A=127.0.0.1:1"],
                           capture_output=True, text=True, timeout=30)
        check(p.returncode == 2 and "--mllp-ack-to goes with --mllp" in p.stderr, "no --mllp: %s" % p.stderr)
        p = s.cli("hl7", "acks", check_rc=False)
        check(p.returncode == 2 and "--db" in p.stderr, "acks needs --db: %s" % p.stderr)
        p = s.cli("hl7", "acks", "--db", s.db)
        check(p.returncode == 0 and "0 application ACKs" in p.stderr, "an empty list: %s" % p.stderr)
    finally:
        s.cleanup()


def suite(binary):
    st = Suite("hl7")
    s = start(binary)
    try:
        st.run("ack original", t_ack_original, s)
        st.run("ack in the sender's dialect", t_ack_dialect, s)
        st.run("ack enhanced", t_ack_enhanced, s)
        st.run("resend", t_duplicate, s)
        st.run("control id collision", t_collision, s)
        st.run("malformed", t_malformed, s)
        st.run("framing", t_framing, s)
        st.run("many connections", t_many_connections, s)
        st.run("idle and connection limits", t_limits, s)
        st.run("fhir cases", t_fhir_cases, s)
        st.run("ordering", t_ordering_and_no_duplicates, s)
        st.run("merge (A40)", t_merge, s)
        st.run("audit", t_audit, s)
        st.run("hl7 send", t_send_cli, s, binary)
        st.run("hl7 parse", t_parse_cli, s, binary)
        st.run("error queue and reprocess", t_error_queue_and_reprocess, s, binary)
        st.run("no patient data in the log", t_no_patient_data_in_log, s)
        st.run("clean stop", t_clean_stop, s)
    finally:
        s.cleanup()
    st.run("feed needs its client", t_feed_needs_client, binary)
    st.run("application ACKs (enhanced mode)", t_app_ack, binary)
    st.run("application ACK options", t_app_ack_usage, binary)
    for seed in (1, 2):
        st.run("durability (SIGKILL while streaming, round %d)" % seed, t_durability, binary, seed)
    return st.summary()
