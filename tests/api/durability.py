"""Durability: SIGKILL the server in the middle of a stream of writes.

Several clients create and update resources as fast as they can; the server
is killed with SIGKILL at a random moment.  After a restart on the same
database every write that was answered 2xx must be there with the version and
content it was acknowledged with, and the database must pass
PRAGMA integrity_check."""
import json
import random
import signal
import sqlite3
import threading
import time

from harness import Server, Suite, check


def run_round(binary, seed):
    rnd = random.Random(seed)
    s = Server(binary).init()
    s.add_user("admin", "admin")
    s.tokens["admin"] = s.issue_token("admin")
    s.start()
    acked, lock, stop = [], threading.Lock(), threading.Event()

    def client(n):
        i = 0
        while not stop.is_set():
            rid = "d%d-%d" % (n, i // 3)   # every third write makes a new resource
            body = {"resourceType": "Basic", "id": rid, "code": {"text": "w %d %d" % (n, i)}}
            i += 1
            try:
                r = s.put("/Basic/" + rid, body, timeout=5)
            except OSError:
                return
            if 200 <= r.status < 300:
                with lock:
                    acked.append((rid, r.header("ETag"), body["code"]["text"]))
    ts = [threading.Thread(target=client, args=(n,)) for n in range(8)]
    [t.start() for t in ts]
    time.sleep(0.3 + rnd.random() * 0.7)
    s.proc.send_signal(signal.SIGKILL)
    s.proc.wait()
    stop.set()
    [t.join() for t in ts]
    s.proc = None
    check(len(acked) > 50, "too few writes before the kill (%d)" % len(acked))
    con = sqlite3.connect(s.db)
    check(con.execute("PRAGMA integrity_check").fetchone()[0] == "ok", "integrity_check after kill")
    con.close()
    s.start()
    try:
        for rid, etag, text in acked:
            vid = etag.split('"')[1]
            r = s.get("/Basic/%s/_history/%s" % (rid, vid))
            check(r.status == 200, "acknowledged Basic/%s version %s lost (%d)" % (rid, vid, r.status))
            check(r.json["code"]["text"] == text, "acknowledged content of Basic/%s v%s differs" % (rid, vid))
        p = s.cli("check", "--db", s.db)
        check(p.stdout.startswith("ok"), "chartkeep check: %r" % p.stdout)
    finally:
        s.cleanup()
    return len(acked)


def suite(binary):
    st = Suite("api-durability")
    for seed in (1, 2, 3):
        st.run("kill -9 round %d" % seed, run_round, binary, seed)
    return st.summary()
