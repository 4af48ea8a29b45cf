"""Transport and limits: HTTPS, oversized headers, slow clients, connections.

  run.py --bin build/chartkeep --only transport

HTTPS with a self-signed certificate made here by `openssl` (never kept):
GET /metadata and an authenticated search over TLS 1.2+, links in https://;
plain HTTP on the TLS port gets no answer; a bad, missing or mismatched
certificate or key stops `serve` with exit 2 naming the file.  On a plain
server started with --timeout 2: a header over --max-header-bytes gets 431 and
the server keeps serving; a client trickling its headers (or its body) a byte a
second is cut off after about the timeout while other clients are answered at
once; more connections from one address than --per-ip-connections are closed
unanswered while the open ones still work.
"""
import http.client
import os
import shutil
import socket
import ssl
import subprocess
import threading
import time

from harness import Failure, Server, Suite, check, wait_until

TIMEOUT = 2       # --timeout for the limits server
PER_IP = 4        # --per-ip-connections
MAX_HEADER = 16384


def make_cert(d):
    """A throw-away self-signed certificate for 127.0.0.1 (EC: quick)."""
    if not shutil.which("openssl"):
        raise Failure("openssl is not installed (tools/deps.sh installs it)")
    os.makedirs(d, exist_ok=True)
    cert, key = os.path.join(d, "cert.pem"), os.path.join(d, "key.pem")
    p = subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                        "ec_paramgen_curve:prime256v1", "-nodes", "-keyout", key, "-out", cert,
                        "-days", "1", "-subj", "/CN=127.0.0.1",
                        "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost"],
                       capture_output=True, text=True, timeout=60)
    if p.returncode != 0:
        raise Failure("openssl req failed: %s" % p.stderr.strip()[-300:])
    os.chmod(key, 0o600)
    return cert, key


def https_get(s, path, cafile, token=None):
    ctx = ssl.create_default_context(cafile=cafile)
    conn = http.client.HTTPSConnection(s.host, s.port, context=ctx, timeout=10)
    try:
        h = {"Authorization": "Bearer " + token} if token else {}
        conn.request("GET", path, headers=h)
        r = conn.getresponse()
        body = r.read()
        return r.status, body, conn.sock.version()
    finally:
        conn.close()


def raw(s, data, timeout=5):
    """Send bytes, read until the server closes; b"" when it answers nothing."""
    sock = socket.create_connection((s.host, s.port), timeout=timeout)
    out = b""
    try:
        sock.sendall(data)
        while True:
            d = sock.recv(65536)
            if not d:
                break
            out += d
    except (ConnectionResetError, BrokenPipeError):
        pass
    finally:
        sock.close()
    return out


def status_of(resp):
    return int(resp[9:12]) if resp.startswith(b"HTTP/1.1 ") else None


def quick_get(s):
    """GET /metadata on a fresh connection: (status, seconds)."""
    t0 = time.time()
    r = raw(s, b"GET /metadata HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
    return status_of(r), time.time() - t0


# ---- HTTPS -----------------------------------------------------------------

def t_https_metadata(s, cert):
    check(s.base.startswith("https://127.0.0.1:"), "listening url %r" % s.base)
    st, body, ver = https_get(s, "/metadata", cert)
    check(st == 200 and b'"CapabilityStatement"' in body, "GET /metadata over TLS: %d" % st)
    check(ver in ("TLSv1.2", "TLSv1.3"), "negotiated %r" % ver)


def t_https_search(s, cert):
    st, body, _ = https_get(s, "/Patient?_count=1", cert, token=s.tokens["admin"])
    check(st == 200, "authenticated search over TLS: %d %s" % (st, body[:200]))
    check(b'"https://127.0.0.1:%d/Patient' % s.port in body,
          "links do not say https://: %s" % body[:300])


def t_plain_on_tls_port(s, cert):
    try:
        r = raw(s, b"GET /metadata HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n", timeout=5)
    except socket.timeout:
        r = b""
    check(not r.startswith(b"HTTP/1.1 200"), "plain HTTP answered on the TLS port: %r" % r[:60])
    st, _, _ = https_get(s, "/metadata", cert)
    check(st == 200, "TLS after a plain-HTTP attempt: %d" % st)


def t_old_tls_refused(s, cert):
    ctx = ssl.create_default_context(cafile=cert)
    ctx.minimum_version = ctx.maximum_version = ssl.TLSVersion.TLSv1_1
    try:
        ctx.set_ciphers("DEFAULT:@SECLEVEL=0")
    except ssl.SSLError:
        pass
    conn = http.client.HTTPSConnection(s.host, s.port, context=ctx, timeout=10)
    try:
        conn.request("GET", "/metadata")
        r = conn.getresponse()
        raise Failure("TLS 1.1 was accepted: %d" % r.status)
    except (ssl.SSLError, ConnectionError, OSError):
        pass
    finally:
        conn.close()


def t_bad_files(s, cert, key):
    d = s.tmp
    other_cert, other_key = make_cert(os.path.join(d, "other"))
    garbage = os.path.join(d, "garbage.pem")
    with open(garbage, "w") as f:
        f.write("-----BEGIN CERTIFICATE-----\nnot base64 at all!\n-----END CERTIFICATE-----\n")
    missing = os.path.join(d, "missing.pem")
    key_text = open(key).read()
    secret_lines = [ln for ln in key_text.splitlines() if ln and not ln.startswith("-----")]
    cases = [
        (["--tls-cert", missing, "--tls-key", key], [missing]),
        (["--tls-cert", cert, "--tls-key", missing], [missing]),
        (["--tls-cert", key, "--tls-key", key], [key, "certificate"]),
        (["--tls-cert", cert, "--tls-key", cert], [cert, "private key"]),
        (["--tls-cert", garbage, "--tls-key", key], [garbage]),
        (["--tls-cert", cert, "--tls-key", other_key], [cert, other_key]),
        (["--tls-cert", cert], ["--tls-key"]),
    ]
    for args, want in cases:
        p = subprocess.run([s.binary, "serve", "--db", s.db, "--listen", "127.0.0.1:0"] + args,
                           capture_output=True, text=True, timeout=30)
        check(p.returncode == 2, "%s: exit %d, expected 2: %s" % (args, p.returncode, p.stderr))
        first = p.stderr.strip().splitlines()[-1] if p.stderr.strip() else ""
        for w in want:
            check(w in first, "%s: %r does not name %r" % (args, first, w))
        for ln in secret_lines:
            check(ln not in p.stderr, "key material in the error output")


def t_clean_exit(s):
    rc = s.stop()
    time.sleep(0.2)  # the log reader catches up
    log = "".join(s.log)
    check(rc == 0, "serve exited %r on SIGTERM" % rc)
    check("Sanitizer" not in log, "a sanitizer report: %s" % log[log.find("Sanitizer") - 40:][:600])


def suite_tls(binary, suite):
    s = Server(binary).init()
    try:
        cert, key = make_cert(s.tmp)
        s.add_user("admin", "admin")
        s.tokens["admin"] = s.issue_token("admin")
        s.extra_args = ["--tls-cert", cert, "--tls-key", key]
        s.start()
        suite.run("https: GET /metadata", t_https_metadata, s, cert)
        suite.run("https: authenticated search, https links", t_https_search, s, cert)
        suite.run("plain HTTP on the TLS port: no answer", t_plain_on_tls_port, s, cert)
        suite.run("TLS 1.1 refused", t_old_tls_refused, s, cert)
        suite.run("bad certificate or key files: exit 2 naming them", t_bad_files, s, cert, key)
        log = "".join(s.log)
        suite.run("key never in the log", lambda: check(
            open(key).read().splitlines()[1] not in log, "key material in the log"))
        suite.run("https: clean exit", t_clean_exit, s)
    finally:
        s.cleanup()


# ---- limits ----------------------------------------------------------------

def t_big_header(s):
    fits = raw(s, b"GET /metadata HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Pad: " + b"a" * 8000 +
               b"\r\nConnection: close\r\n\r\n")
    check(status_of(fits) == 200, "an 8 KB header under a 16 KB limit: %r" % fits[:60])
    for n in (MAX_HEADER, 10 * MAX_HEADER):
        r = raw(s, b"GET /metadata HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Pad: " + b"a" * n +
                b"\r\nConnection: close\r\n\r\n")
        check(status_of(r) == 431, "a %d-byte header: %r, expected 431" % (n, r[:60]))
    many = b"".join(b"X-H%d: v\r\n" % i for i in range(3000))
    r = raw(s, b"GET /metadata HTTP/1.1\r\nHost: 127.0.0.1\r\n" + many + b"\r\n")
    check(status_of(r) == 431, "3000 headers: %r, expected 431" % r[:60])
    r = raw(s, b"GET /" + b"a" * (2 * MAX_HEADER) + b" HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
    check(status_of(r) in (414, 431), "a 32 KB URL: %r, expected 414" % r[:60])
    st, _ = quick_get(s)
    check(st == 200, "the server after oversized headers: %r" % st)


def trickle(s, head, result):
    """Send head a byte a second; record when the server closed on us."""
    sock = socket.create_connection((s.host, s.port), timeout=10)
    t0 = time.time()
    got = b""
    try:
        for b in head:
            sock.sendall(bytes([b]))
            sock.settimeout(1.0)
            try:
                d = sock.recv(4096)
                if not d:
                    break
                got += d
            except socket.timeout:
                pass
    except (ConnectionResetError, BrokenPipeError):
        pass
    finally:
        result["secs"] = time.time() - t0
        result["got"] = got
        sock.close()


def slow_client(s, head, what):
    result = {}
    th = threading.Thread(target=trickle, args=(s, head, result))
    th.start()
    time.sleep(0.5)
    # others are answered while it trickles
    deadline = time.time() + 15
    while th.is_alive() and time.time() < deadline:
        st, _ = quick_get(s)
        check(st == 200, "another client during a slow one: %r" % st)
        time.sleep(0.3)
    # without the cut the client would trickle for a minute: 15 s only
    # guards against a hang; cut before the timeout would be a bug
    th.join(15)
    check(not th.is_alive(), "%s: still connected after 15 s" % what)
    check(not result["got"].startswith(b"HTTP/1.1 2"), "%s: answered %r" % (what, result["got"][:40]))
    check(result["secs"] >= TIMEOUT - 0.5,
          "%s cut off before the timeout (%.1f s, timeout %d s)" % (what, result["secs"], TIMEOUT))


def t_slow_headers(s):
    head = b"GET /metadata HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: " + b"a" * 60
    slow_client(s, head, "a client sending its headers a byte a second")
    check(wait_until(lambda: "event=slow_headers_cut" in "".join(s.log), 2),
          "no event=slow_headers_cut in the log")


def t_slow_body(s):
    head = (b"POST /Patient HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer " +
            s.tokens["admin"].encode() + b"\r\nContent-Type: application/fhir+json\r\n"
            b"Content-Length: 1000\r\n\r\n")
    sock = socket.create_connection((s.host, s.port), timeout=10)
    sock.sendall(head)
    result = {}
    # the headers came at once: from here a byte a second of body
    th = threading.Thread(target=lambda: trickle_on(sock, result))
    th.start()
    th.join(15)
    check(not th.is_alive(), "a body sent a byte a second: still connected after 15 s")
    check(result["secs"] >= TIMEOUT - 0.5,
          "a body sent a byte a second cut off before the timeout (%.1f s)" % result["secs"])
    st, _ = quick_get(s)
    check(st == 200, "the server after a slow body: %r" % st)


def trickle_on(sock, result):
    t0 = time.time()
    try:
        for _ in range(1000):
            sock.sendall(b" ")
            sock.settimeout(1.0)
            try:
                if not sock.recv(4096):
                    break
            except socket.timeout:
                pass
    except (ConnectionResetError, BrokenPipeError):
        pass
    finally:
        result["secs"] = time.time() - t0
        sock.close()


def read_response(sock):
    """One HTTP/1.1 response (headers and a Content-Length body) from a kept-alive socket."""
    got = b""
    while b"\r\n\r\n" not in got:
        d = sock.recv(65536)
        if not d:
            return got
        got += d
    head, _, body = got.partition(b"\r\n\r\n")
    n = 0
    for line in head.split(b"\r\n")[1:]:
        k, _, v = line.partition(b":")
        if k.strip().lower() == b"content-length":
            n = int(v.strip())
    while len(body) < n:
        d = sock.recv(65536)
        if not d:
            break
        body += d
    return head + b"\r\n\r\n" + body


def t_per_ip(s):
    # let connections from earlier tests go
    check(wait_until(lambda: quick_get(s)[0] == 200, 5), "server not answering")
    # a connect() returns before the server has accepted the connection: one
    # answered request on each (kept alive) proves it is counted, so that the
    # extra one meets the limit however loaded the machine is.  Connections
    # of the tests before may still be counted for a moment (a slow server
    # closes them late): then one of these is refused, and all are tried again.
    held = []
    for _ in range(20):
        held = [socket.create_connection((s.host, s.port), timeout=5) for _ in range(PER_IP)]
        served = 0
        for h in held:
            try:
                h.sendall(b"GET /metadata HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
                served += status_of(read_response(h)) == 200
            except OSError:
                pass
        if served == PER_IP:
            break
        for h in held:
            h.close()
        held = []
        time.sleep(0.5)
    check(held, "%d connections from one address were never all served" % PER_IP)
    try:
        extra = b"?"
        for _ in range(3):
            extra = raw(s, b"GET /metadata HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
            if extra == b"":
                break
            time.sleep(0.5)
        check(extra == b"", "connection %d from one address was answered: %r"
              % (PER_IP + 1, extra[:60]))
        held[0].sendall(b"GET /metadata HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
        got = b""
        while True:
            d = held[0].recv(65536)
            if not d:
                break
            got += d
        check(status_of(got) == 200, "an open connection while over the limit: %r" % got[:60])
    finally:
        for h in held:
            h.close()
    check(wait_until(lambda: quick_get(s)[0] == 200, 5), "no answer after the connections closed")


def suite_limits(binary, suite):
    s = Server(binary).init()
    try:
        s.add_user("admin", "admin")
        s.tokens["admin"] = s.issue_token("admin")
        s.extra_args = ["--timeout", str(TIMEOUT), "--per-ip-connections", str(PER_IP),
                        "--max-header-bytes", str(MAX_HEADER)]
        s.start()
        suite.run("oversized header: 431, server still serves", t_big_header, s)
        suite.run("slow headers cut off after --timeout", t_slow_headers, s)
        suite.run("slow body cut off", t_slow_body, s)
        suite.run("--per-ip-connections", t_per_ip, s)
        p = subprocess.run([binary, "serve", "--db", s.db, "--max-header-bytes", "100"],
                           capture_output=True, text=True, timeout=30)
        suite.run("--max-header-bytes below 8192 refused", lambda: check(
            p.returncode == 2, "exit %d: %s" % (p.returncode, p.stderr)))
        suite.run("limits: clean exit", t_clean_exit, s)
    finally:
        s.cleanup()


def suite(binary):
    su = Suite("api-transport")
    for label, part in (("https server", suite_tls), ("limits server", suite_limits)):
        try:
            part(binary, su)
        except Failure as e:  # could not start: one failure, and on to the next part
            su.failed += 1
            print("FAIL %s: %s" % (label, e), flush=True)
    return su.summary()
