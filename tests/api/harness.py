"""Black-box test harness: a real chartkeep server on a free port.

Starts `chartkeep serve` on a fresh database in a temporary directory, with
users and tokens made through the CLI, and talks to it over real HTTP.  The
server's log is kept so tests can check that no patient data reaches it.
"""
import http.client
import json
import os
import re
import shutil
import signal
import subprocess
import tempfile
import threading
import time

# What an instrumented server (make SANITIZE=address,undefined) writes when it
# finds something: every server the harness starts is watched for it, and
# run.py fails the run if any line appeared (a report in a server that went on
# answering would otherwise go unnoticed).
SANITIZER_LINE = re.compile(r"ERROR: (Address|Leak|Thread|Memory)Sanitizer|runtime error:|"
                            r"SUMMARY: (Address|Leak|UndefinedBehavior)Sanitizer")
SANITIZER_REPORTS = []


class Failure(Exception):
    pass


def check(cond, msg):
    if not cond:
        raise Failure(msg)


class Response:
    def __init__(self, status, headers, body):
        self.status = status
        self.headers = headers
        self.body = body
        self._json = None

    def header(self, name):
        for k, v in self.headers:
            if k.lower() == name.lower():
                return v
        return None

    @property
    def json(self):
        if self._json is None and self.body:
            self._json = json.loads(self.body)
        return self._json

    def __repr__(self):
        return "<%d %s>" % (self.status, self.body[:300])


class Server:
    """One chartkeep server and its database."""

    # a site policy letting the suites' admin user do everything (test.policy)
    POLICY = os.path.join(os.path.dirname(os.path.abspath(__file__)), "test.policy")

    def __init__(self, binary, tmp=None, db=None, extra_args=(), policy=POLICY, match=False):
        self.binary = os.path.abspath(binary)
        self.policy = policy
        self.tmp = tmp or tempfile.mkdtemp(prefix="ck-api-")
        self.db = db or os.path.join(self.tmp, "api.db")
        # incremental patient matching writes review Tasks in the background,
        # which would break the suites' "nothing was written" checks: only
        # the MPI suite turns it on
        self.extra_args = list(extra_args) + ([] if match else ["--no-match"])
        self.proc = None
        self.log = []
        self.base = None
        self.tokens = {}

    # -- the CLI --------------------------------------------------------
    def cli(self, *args, stdin=None, check_rc=True):
        p = subprocess.run([self.binary] + list(args), input=stdin, capture_output=True,
                           text=True, timeout=120)
        if check_rc and p.returncode != 0:
            raise Failure("chartkeep %s failed (%d): %s" % (" ".join(args), p.returncode,
                                                            p.stderr.strip()))
        return p

    def init(self):
        if not os.path.exists(self.db):
            self.cli("init", "--db", self.db)
        return self

    def add_user(self, name, role, password="correct horse battery staple"):
        self.cli("user", "add", "--db", self.db, "--username", name, "--role", role,
                 "--password-stdin", stdin=password + "\n")

    def issue_token(self, name, ttl=3600):
        return self.cli("token", "issue", "--db", self.db, "--username", name,
                        "--ttl", str(ttl)).stdout.strip()

    # -- the server -----------------------------------------------------
    def start(self, timeout=15):
        args = [self.binary, "serve", "--db", self.db, "--listen", "127.0.0.1:0",
                "--log-level", "info"] + (["--policy", self.policy] if self.policy else []) + self.extra_args
        self.proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                     text=True, bufsize=1)
        ready = threading.Event()

        def drain():
            for line in self.proc.stderr:
                self.log.append(line)
                if SANITIZER_LINE.search(line):
                    SANITIZER_REPORTS.append(line.strip()[:300])
                m = re.search(r"event=listening url=(\S+)", line)
                if m and not ready.is_set():
                    self.base = m.group(1)
                    ready.set()
        threading.Thread(target=drain, daemon=True).start()
        if not ready.wait(timeout):
            self.stop()
            raise Failure("server did not start: %s" % "".join(self.log[-5:]))
        m = re.match(r"https?://([^:/]+):(\d+)", self.base)
        self.host, self.port = m.group(1), int(m.group(2))
        return self

    def stop(self, sig=signal.SIGTERM, timeout=30):
        if not self.proc:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        try:
            rc = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            rc = self.proc.wait()
        self.proc = None
        return rc

    def cleanup(self):
        self.stop()
        shutil.rmtree(self.tmp, ignore_errors=True)

    # -- HTTP -----------------------------------------------------------
    def request(self, method, path, body=None, headers=None, token="admin", timeout=30):
        h = {}
        if token:
            h["Authorization"] = "Bearer " + self.tokens.get(token, token)
        if body is not None and not isinstance(body, (bytes, bytearray)):
            body = json.dumps(body).encode()
            h["Content-Type"] = "application/fhir+json"
        h.update(headers or {})
        conn = http.client.HTTPConnection(self.host, self.port, timeout=timeout)
        try:
            conn.request(method, path, body=body, headers=h)
            r = conn.getresponse()
            data = r.read()
            return Response(r.status, r.getheaders(), data)
        finally:
            conn.close()

    def get(self, path, **kw):
        return self.request("GET", path, **kw)

    def put(self, path, body, **kw):
        return self.request("PUT", path, body=body, **kw)

    def post(self, path, body, **kw):
        return self.request("POST", path, body=body, **kw)

    def history_head(self):
        """The newest version in the system: proves a failed request wrote nothing."""
        r = self.get("/_history?_count=1")
        check(r.status == 200, "system history failed: %r" % r)
        e = (r.json or {}).get("entry") or []
        if not e:
            return None
        return (e[0]["fullUrl"], e[0]["response"]["etag"])


def subset(expected, actual, path="$"):
    """Does actual contain expected?  Dicts: every expected key; lists: the
    expected items at the same positions; "*" matches anything present;
    "~text" matches a string containing text."""
    if isinstance(expected, dict):
        if not isinstance(actual, dict):
            return "%s: expected an object, got %r" % (path, actual)
        for k, v in expected.items():
            if k not in actual:
                return "%s.%s: missing" % (path, k)
            why = subset(v, actual[k], path + "." + k)
            if why:
                return why
        return None
    if isinstance(expected, list):
        if not isinstance(actual, list):
            return "%s: expected an array, got %r" % (path, actual)
        if len(actual) < len(expected):
            return "%s: expected at least %d items, got %d" % (path, len(expected), len(actual))
        for i, v in enumerate(expected):
            why = subset(v, actual[i], "%s[%d]" % (path, i))
            if why:
                return why
        return None
    if expected == "*":
        return None
    if isinstance(expected, str) and expected.startswith("~"):
        if isinstance(actual, str) and expected[1:] in actual:
            return None
        return "%s: expected text containing %r, got %r" % (path, expected[1:], actual)
    if expected != actual:
        return "%s: expected %r, got %r" % (path, expected, actual)
    return None


class Suite:
    """Counts results; prints one line per failure and a summary."""

    def __init__(self, name):
        self.name = name
        self.passed = 0
        self.failed = 0

    def run(self, label, fn, *args):
        try:
            fn(*args)
            self.passed += 1
        except Failure as e:
            self.failed += 1
            print("FAIL %s: %s" % (label, e), flush=True)
        except Exception as e:  # a crash in a test is a failure, not a skip
            self.failed += 1
            print("FAIL %s: %s: %s" % (label, type(e).__name__, e), flush=True)

    def summary(self):
        print("suite %s: %d passed, %d failed" % (self.name, self.passed, self.failed), flush=True)
        return self.failed == 0


def wait_until(fn, timeout=10.0, step=0.05):
    end = time.time() + timeout
    while time.time() < end:
        if fn():
            return True
        time.sleep(step)
    return False
