"""OAuth2 against a real server: POST /auth/token with each grant (password,
client_credentials, refresh_token) and each error, refresh rotation and the
revocation of a reused token's family, lockout (and that it is not revealed),
POST /auth/revoke, the per-address rate limit (429), system clients made with
`chartkeep client`, that issued tokens work on /Patient and revoked ones get
401, that an unknown username costs what a wrong password does, and that no
password, secret or token reaches the server log."""
import shutil
import statistics
import tempfile
import time
import urllib.parse

from harness import Server, Suite, check, wait_until

PW = "correct horse battery staple"
FORM = "application/x-www-form-urlencoded"
BAD_LOGIN = "invalid username or password"
LOCKOUT_ATTEMPTS = 3


class Ctx:
    def __init__(self, s):
        self.s = s
        self.secret = None
        self.secrets = [PW]   # everything that must never reach the log


def post(s, path, fields, auth=None, ctype=FORM, raw=None):
    body = raw if raw is not None else urllib.parse.urlencode(fields).encode()
    h = {"Content-Type": ctype} if ctype else {}
    if auth:
        h["Authorization"] = auth
    return s.request("POST", path, body=body, headers=h, token=None)


def token(s, fields, auth=None, **kw):
    return post(s, "/auth/token", fields, auth=auth, **kw)


def basic(cid, secret):
    import base64
    return "Basic " + base64.b64encode(("%s:%s" % (cid, secret)).encode()).decode()


def no_store(r):
    check(r.header("Cache-Control") == "no-store", "Cache-Control: %r" % r.header("Cache-Control"))
    check(r.header("Pragma") == "no-cache", "Pragma: %r" % r.header("Pragma"))


def ok_tokens(c, r, refresh=True):
    check(r.status == 200, "expected 200: %r" % r)
    no_store(r)
    check(r.header("Content-Type").startswith("application/json"), "Content-Type")
    j = r.json
    check(j["token_type"] == "Bearer", "token_type %r" % j)
    check(isinstance(j["expires_in"], int) and j["expires_in"] > 0, "expires_in %r" % j)
    check(j["access_token"].startswith("ck_"), "access_token")
    check("scope" in j, "no scope")
    check(("refresh_token" in j) == refresh, "refresh_token %r" % j)
    c.secrets.append(j["access_token"])
    if refresh:
        check(j["refresh_token"].startswith("ckr_"), "refresh_token")
        c.secrets.append(j["refresh_token"])
    return j


def error(r, status, err, desc=None):
    check(r.status == status, "expected %d %s, got %r" % (status, err, r))
    no_store(r)
    j = r.json
    check(j and j.get("error") == err, "expected error %s: %r" % (err, r))
    check(isinstance(j.get("error_description"), str), "no error_description")
    if desc:
        check(desc in j["error_description"], "description %r lacks %r" % (j["error_description"], desc))
    return j


def login(c, user, **extra):
    f = {"grant_type": "password", "username": user, "password": PW}
    f.update(extra)
    return ok_tokens(c, token(c.s, f))


def patients(s, tok):
    return s.get("/Patient", token=tok).status


# ---- the grants -------------------------------------------------------------

def t_password_grant(c):
    j = login(c, "tech")
    check(j["scope"] == "", "scope %r" % j)
    check(patients(c.s, j["access_token"]) == 200, "the token does not work on /Patient")
    check(patients(c.s, j["refresh_token"]) == 401, "a refresh token worked as a bearer token")
    j = login(c, "tech", scope="user/Patient.rs user/Observation.rs")
    check(j["scope"] == "user/Patient.rs user/Observation.rs", "scope %r" % j)
    check(patients(c.s, j["access_token"]) == 200, "a scoped token does not work on /Patient")


def t_patient_context(c):
    j = login(c, "tech", scope="patient/*.rs", patient="p-42")
    check(j["patient"] == "p-42", "patient %r" % j)
    r = c.s.get("/Patient/p-42", token=j["access_token"])
    check(r.status != 401, "the patient-context token was not accepted: %r" % r)
    error(token(c.s, {"grant_type": "password", "username": "tech", "password": PW,
                      "scope": "patient/*.rs"}), 400, "invalid_request", "patient context")


def t_client_credentials(c):
    r = token(c.s, {"grant_type": "client_credentials"}, auth=basic("lab-feed", c.secret))
    j = ok_tokens(c, r, refresh=False)
    check(j["scope"] == "system/*.rs", "scope %r" % j)
    check(patients(c.s, j["access_token"]) == 200, "the client's token does not work on /Patient")
    r = token(c.s, {"grant_type": "client_credentials", "client_id": "lab-feed",
                    "client_secret": c.secret, "scope": "system/Patient.rs"})
    j = ok_tokens(c, r, refresh=False)
    check(j["scope"] == "system/Patient.rs", "scope %r" % j)
    error(token(c.s, {"grant_type": "client_credentials", "scope": "system/Patient.c"},
                auth=basic("lab-feed", c.secret)), 400, "invalid_scope")
    error(token(c.s, {"grant_type": "client_credentials", "scope": "user/Patient.rs"},
                auth=basic("lab-feed", c.secret)), 400, "invalid_scope")
    for auth in (basic("lab-feed", "cks_wrong"), basic("nobody", c.secret), "Basic @@@"):
        r = token(c.s, {"grant_type": "client_credentials"}, auth=auth)
        error(r, 401, "invalid_client")
        check((r.header("WWW-Authenticate") or "").startswith("Basic"),
              "WWW-Authenticate %r" % r.header("WWW-Authenticate"))
    r = token(c.s, {"grant_type": "client_credentials"})
    error(r, 401, "invalid_client", "needs client authentication")
    check(r.header("WWW-Authenticate"), "no WWW-Authenticate")


def t_refresh_rotation(c):
    j1 = login(c, "tech")
    r = token(c.s, {"grant_type": "refresh_token", "refresh_token": j1["refresh_token"]})
    j2 = ok_tokens(c, r)
    check(j2["refresh_token"] != j1["refresh_token"], "the refresh token did not rotate")
    check(patients(c.s, j2["access_token"]) == 200, "the refreshed token does not work")
    # the first refresh token again: it was copied; the login ends
    r = token(c.s, {"grant_type": "refresh_token", "refresh_token": j1["refresh_token"]})
    error(r, 400, "invalid_grant", "not valid")
    check(wait_until(lambda: patients(c.s, j2["access_token"]) == 401, timeout=5),
          "the family's access token still works after a refresh token was reused")
    error(token(c.s, {"grant_type": "refresh_token", "refresh_token": j2["refresh_token"]}),
          400, "invalid_grant")


ERRORS = [
    # (fields or raw body, content type, status, error, description)
    ({"username": "tech", "password": PW}, FORM, 400, "invalid_request", "missing parameter 'grant_type'"),
    ({"grant_type": "implicit"}, FORM, 400, "unsupported_grant_type", "implicit"),
    ({"grant_type": "password", "username": "tech"}, FORM, 400, "invalid_request",
     "missing parameter 'password'"),
    (b"grant_type=password&username=tech&username=tech&password=x", FORM, 400, "invalid_request",
     "parameter 'username' is given more than once"),
    (b"grant_type=password&username=tech&password=%G0", FORM, 400, "invalid_request",
     "malformed percent-escape in parameter 'password'"),
    (b'{"grant_type":"password"}', "application/json", 400, "invalid_request", FORM),
    (b"grant_type=password", None, 400, "invalid_request", FORM),
    (b"x=" + b"y" * 9000, FORM, 400, "invalid_request", "larger than"),
    ({"grant_type": "password", "username": "tech", "password": PW, "scope": "user/*.xyz"}, FORM,
     400, "invalid_scope", "user/*.xyz"),
    ({"grant_type": "password", "username": "tech", "password": PW, "scope": "system/*.rs"}, FORM,
     400, "invalid_scope", "system/"),
    ({"grant_type": "refresh_token", "refresh_token": "ckr_made_up"}, FORM, 400, "invalid_grant", None),
    ({"grant_type": "password", "username": "tech", "password": "wrong password!"}, FORM, 400,
     "invalid_grant", BAD_LOGIN),
    ({"grant_type": "password", "username": "nobody-here", "password": PW}, FORM, 400,
     "invalid_grant", BAD_LOGIN),
]


def t_errors(c):
    for fields, ctype, status, err, desc in ERRORS:
        raw = fields if isinstance(fields, bytes) else None
        error(token(c.s, fields if raw is None else None, ctype=ctype, raw=raw), status, err, desc)
    r = c.s.get("/auth/token", token=None)
    check(r.status == 405, "GET /auth/token: %r" % r)
    r = post(c.s, "/auth/token?grant_type=password&username=tech&password=x", {})
    error(r, 400, "invalid_request", "grant_type")  # the query string is not read


def t_lockout(c):
    wrong = {"grant_type": "password", "username": "locky", "password": "not the password"}
    right = {"grant_type": "password", "username": "locky", "password": PW}
    bodies = []
    for _ in range(LOCKOUT_ATTEMPTS):
        bodies.append(error(token(c.s, wrong), 400, "invalid_grant", BAD_LOGIN))
    # locked: the right password gets exactly the answer a wrong one does
    locked = error(token(c.s, right), 400, "invalid_grant", BAD_LOGIN)
    check(locked == bodies[0], "a locked account answers differently: %r vs %r" % (locked, bodies[0]))
    check(wait_until(lambda: any("event=login_locked user=locky" in l for l in c.s.log), timeout=5),
          "no event=login_locked in the log")
    check(any("event=lockout user=locky" in l for l in c.s.log), "no event=lockout in the log")
    # another user is not affected
    login(c, "tech")


def t_success_resets_count(c):
    wrong = {"grant_type": "password", "username": "resetty", "password": "not the password"}
    for _ in range(3):
        for _ in range(LOCKOUT_ATTEMPTS - 1):
            error(token(c.s, wrong), 400, "invalid_grant")
        login(c, "resetty")


def t_revoke(c):
    mine = login(c, "tech")
    other = login(c, "clin")
    boss = login(c, "boss")
    bearer = "Bearer " + mine["access_token"]
    # no caller, a bad caller
    error(post(c.s, "/auth/revoke", {"token": mine["access_token"]}), 401, "invalid_client")
    r = post(c.s, "/auth/revoke", {"token": mine["access_token"]}, auth="Bearer ck_nonsense")
    error(r, 401, "invalid_token")
    # unknown tokens: 200
    r = post(c.s, "/auth/revoke", {"token": "ck_never_issued"}, auth=bearer)
    check(r.status == 200 and not r.body, "unknown token: %r" % r)
    no_store(r)
    error(post(c.s, "/auth/revoke", {"token_type_hint": "access_token"}, auth=bearer), 400,
          "invalid_request", "'token'")
    # someone else's: refused; an admin's call: done
    error(post(c.s, "/auth/revoke", {"token": other["access_token"]}, auth=bearer), 400,
          "unauthorized_client")
    check(patients(c.s, other["access_token"]) == 200, "the other user's token was revoked")
    r = post(c.s, "/auth/revoke", {"token": other["access_token"]}, auth="Bearer " + boss["access_token"])
    check(r.status == 200, "admin revoke: %r" % r)
    check(patients(c.s, other["access_token"]) == 401, "a revoked token still works")
    # one's own
    check(patients(c.s, mine["access_token"]) == 200, "not working before the revoke")
    r = post(c.s, "/auth/revoke", {"token": mine["access_token"], "token_type_hint": "access_token"},
             auth=bearer)
    check(r.status == 200, "revoke: %r" % r)
    check(patients(c.s, mine["access_token"]) == 401, "a revoked token still works")
    # a refresh token ends its login
    j = login(c, "tech")
    r = post(c.s, "/auth/revoke", {"token": j["refresh_token"]}, auth="Bearer " + j["access_token"])
    check(r.status == 200, "revoke refresh: %r" % r)
    check(patients(c.s, j["access_token"]) == 401, "the login's access token survived")
    error(token(c.s, {"grant_type": "refresh_token", "refresh_token": j["refresh_token"]}), 400,
          "invalid_grant")
    # a client revokes its own token with its credentials
    j = ok_tokens(c, token(c.s, {"grant_type": "client_credentials"}, auth=basic("lab-feed", c.secret)),
                  refresh=False)
    r = post(c.s, "/auth/revoke", {"token": j["access_token"]}, auth=basic("lab-feed", c.secret))
    check(r.status == 200, "client revoke: %r" % r)
    check(patients(c.s, j["access_token"]) == 401, "the client's revoked token still works")


def t_cli_revoke_and_clients(c):
    s = c.s
    out = s.cli("client", "list", "--db", s.db).stdout
    check("lab-feed\thim_technician\tactive\tsystem/*.rs\t" in out, "client list: %r" % out)
    p = s.cli("client", "add", "--db", s.db, "--client-id", "lab-feed", "--role", "coder",
              check_rc=False)
    check(p.returncode == 1 and "already exists" in p.stderr, "duplicate client: %r" % p.stderr)
    p = s.cli("client", "add", "--db", s.db, "--client-id", "tech", "--role", "coder", check_rc=False)
    check(p.returncode == 1, "a client named like a user was added")
    p = s.cli("client", "add", "--db", s.db, "--client-id", "x", "--role", "coder",
              "--scopes", "user/*.rs", check_rc=False)
    check(p.returncode == 1 and "system/" in p.stderr, "user/ scopes for a client: %r" % p.stderr)
    j = ok_tokens(c, token(s, {"grant_type": "client_credentials"}, auth=basic("lab-feed", c.secret)),
                  refresh=False)
    s.cli("client", "disable", "--db", s.db, "--client-id", "lab-feed")
    error(token(s, {"grant_type": "client_credentials"}, auth=basic("lab-feed", c.secret)), 401,
          "invalid_client")
    check(wait_until(lambda: patients(s, j["access_token"]) == 401, timeout=5),
          "a disabled client's token still works")
    check("disabled" in s.cli("client", "list", "--db", s.db).stdout, "list after disable")
    s.cli("client", "enable", "--db", s.db, "--client-id", "lab-feed")
    ok_tokens(c, token(s, {"grant_type": "client_credentials"}, auth=basic("lab-feed", c.secret)),
              refresh=False)
    # chartkeep token revoke works on tokens from the endpoint too
    j = login(c, "tech")
    s.cli("token", "revoke", "--db", s.db, "--token-stdin", stdin=j["access_token"] + "\n")
    check(wait_until(lambda: patients(s, j["access_token"]) == 401, timeout=5),
          "a token revoked by the CLI still works")


def t_rate_limit(c):
    """A second server on the same database with a low limit."""
    tmp = tempfile.mkdtemp(prefix="ck-api-rl-")
    s2 = Server(c.s.binary, tmp=tmp, db=c.s.db, extra_args=["--token-rate", "2"])
    try:
        s2.start()
        got = [token(s2, {"grant_type": "bogus"}) for _ in range(8)]
        codes = [r.status for r in got]
        check(codes[:4] == [400] * 4, "the burst (4) was not served: %r" % codes)
        check(429 in codes, "no 429 in %r" % codes)
        r = [x for x in got if x.status == 429][0]
        check(r.header("Retry-After") and int(r.header("Retry-After")) >= 1,
              "Retry-After %r" % r.header("Retry-After"))
        error(r, 429, "temporarily_unavailable", "retry after")
        r = post(s2, "/auth/revoke", {"token": "x"})
        check(r.status == 429, "/auth/revoke is not limited: %r" % r)
        # the FHIR API is not limited
        check(s2.get("/metadata", token=None).status == 200, "/metadata limited")
        time.sleep(1.1)
        check(token(s2, {"grant_type": "bogus"}).status == 400, "the bucket did not refill")
    finally:
        rc = s2.stop()
        c.s.log.extend(s2.log)
        check(rc == 0, "the second server's exit status %r" % rc)
        shutil.rmtree(tmp, ignore_errors=True)


def t_timing(c):
    """An unknown username gets the answer a known one with a wrong password
    gets (both verify one argon2id hash, so the time is alike too: printed)."""
    def timed(fields):
        t0 = time.perf_counter()
        r = token(c.s, fields)
        dt = time.perf_counter() - t0
        error(r, 400, "invalid_grant", BAD_LOGIN)
        return dt
    unknown, known = [], []
    for i in range(6):
        unknown.append(timed({"grant_type": "password", "username": "ghost%d" % i, "password": "nope nope"}))
        known.append(timed({"grant_type": "password", "username": "timer", "password": "nope nope"}))
        if i % 2 == 1:
            login(c, "timer")   # keep it below the lockout
    # the answers are identical (checked above); the times are printed for a
    # person to read, never asserted (make check holds no timing assertion)
    u, k = statistics.median(unknown), statistics.median(known)
    print("  info: unknown user %.1f ms, wrong password %.1f ms (median of 6)" % (u * 1e3, k * 1e3))


def t_log_clean(c):
    log = "".join(c.s.log)
    for secret in c.secrets:
        check(secret not in log, "a secret reached the server log: %s..." % secret[:6])
    check("cks_" not in log and "ckr_" not in log, "a secret or refresh token in the log")
    check("route=/auth/token" in log, "no request lines for /auth/token")


def t_clean_exit(c):
    """Exit status 0 and, in a sanitizer build, no report in the log (of
    this server or of the rate-limited one)."""
    rc = c.s.stop()
    check(rc == 0, "server exit status %r" % rc)
    log = "".join(c.s.log)
    check("Sanitizer" not in log and "runtime error" not in log, "sanitizer report in the log")


def suite(binary):
    st = Suite("api-oauth")
    s = Server(binary, extra_args=["--token-rate", "1000", "--lockout-attempts", str(LOCKOUT_ATTEMPTS),
                                   "--lockout-minutes", "1"]).init()
    c = Ctx(s)
    try:
        for name, role in (("tech", "him_technician"), ("clin", "him_technician"), ("boss", "admin"),
                           ("locky", "coder"), ("resetty", "coder"), ("timer", "coder")):
            s.add_user(name, role, PW)
        c.secret = s.cli("client", "add", "--db", s.db, "--client-id", "lab-feed", "--role",
                         "him_technician", "--scopes", "system/*.rs").stdout.strip()
        check(c.secret.startswith("cks_"), "client add printed %r" % c.secret)
        c.secrets.append(c.secret)
        s.start()
        for fn in (t_password_grant, t_patient_context, t_client_credentials, t_refresh_rotation,
                   t_errors, t_lockout, t_success_resets_count, t_revoke, t_cli_revoke_and_clients,
                   t_rate_limit, t_timing, t_log_clean, t_clean_exit):
            st.run(fn.__name__[2:], fn, c)
    finally:
        s.cleanup()
    return st.summary()
