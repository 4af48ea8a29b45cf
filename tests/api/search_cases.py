"""FHIR search against a fixed data set, and the index's consistency.

Suite "search" (data-driven):
  tests/data/search/data/NN-*.json   the data set, loaded once, in file order:
      each file is a JSON array whose items are
        - a resource: PUT as [type]/[id] (a second one with the same id
          updates it: only the current version may match),
        - {"EXAMPLE": "Patient-example.json"}: an official R4 example from
          tests/data/fhir-examples/, PUT with its own id,
        - {"DELETE": "Type/id"}: a delete (deleted resources never match).
  tests/data/search/NN-*.cases       one search per line:

      GET /Observation?code=http://loinc.org|2339-0&_sort=_id  =>  Observation/a, Observation/b
      GET /Patient?foo=1  @strict  =>  400 unknown search parameter 'foo'
      POST /Patient/_search  @form=name=anna  =>  Patient/p-anna

    Left of "=>": the method, the URL as one would type it (the runner
    percent-encodes what a URL cannot carry: | + space [ ] and non-ASCII; a
    %XX already there is kept), then options:
      @strict            sends Prefer: handling=strict
      @form=BODY         a form body (POST [type]/_search)
    Right of "=>": either "STATUS text" (an error: the OperationOutcome's
    diagnostics must contain text), or the ids of the matches in order
    ("-" for none, "*" for any: then includes are not checked either
    unless @include is given), then assertions:
      @total=N           Bundle.total (@total=- : absent)
      @links=self,next   the link relations, exactly
      @include=T/id,...  the entries with search.mode include, as a set
                         (without it there must be none)
      @warn=text         an OperationOutcome entry whose diagnostics contain
                         text (without it there must be none)
      @keys=T/id:a,b,... the top-level members of that entry's resource
      @subsetted         every match carries the SUBSETTED tag
    Placeholders: {{base}} (the server's base URL), {{lu:T/id}} (that
    resource's meta.lastUpdated as loaded; {{lu:T/id:+N}} N ms later, :-N
    earlier).  Lines starting with # are comments.
  plus flows: paging by next/previous links; paging while resources are
  created and deleted before and after the cursor; $everything paging.

Suite "search-index": a few hundred writes, updates and deletes through the
API (composites, references, identifiers, a custom SearchParameter); after
them every ix_* table of the server's database must equal what
`chartkeep reindex` builds from scratch.  And a custom SearchParameter is
searchable at once for new writes, and for older resources after reindex.
"""
import json
import os
import random
import re
import sqlite3
import time

from harness import Failure, Server, Suite, check

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
DATA = os.path.join(ROOT, "tests", "data", "search")
EXAMPLES = os.path.join(ROOT, "tests", "data", "fhir-examples")

# what a URL may carry as it is; everything else is percent-encoded
SAFE = set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-._~"
           "&=%:/,?@$!*'();")


def encode(url):
    out = []
    for ch in url:
        if ch in SAFE:
            out.append(ch)
        else:
            out.append("".join("%%%02X" % b for b in ch.encode()))
    return "".join(out)


# ---- the data set ----------------------------------------------------------

class DataSet:
    def __init__(self):
        self.lu = {}       # "Type/id" -> meta.lastUpdated of the current version
        self.count = 0

    def put(self, s, res):
        key = "%s/%s" % (res["resourceType"], res["id"])
        r = s.put("/" + key, res)
        check(r.status in (200, 201), "loading %s: %r" % (key, r))
        self.lu[key] = r.json["meta"]["lastUpdated"]
        self.count += 1
        time.sleep(0.002)  # distinct lastUpdated for every resource

    def load(self, s):
        d = os.path.join(DATA, "data")
        for f in sorted(os.listdir(d)):
            if not f.endswith(".json"):
                continue
            items = json.load(open(os.path.join(d, f)))
            for item in items if isinstance(items, list) else [items]:
                if "EXAMPLE" in item:
                    self.put(s, json.load(open(os.path.join(EXAMPLES, item["EXAMPLE"]))))
                elif "DELETE" in item:
                    r = s.request("DELETE", "/" + item["DELETE"])
                    check(r.status in (200, 204), "deleting %s: %r" % (item["DELETE"], r))
                    self.lu.pop(item["DELETE"], None)
                else:
                    self.put(s, item)


def iso_shift(ts, ms):
    """An instant ms later (or earlier), in UTC with milliseconds."""
    m = re.match(r"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(\.\d+)?(Z|[+-]\d\d:\d\d)$", ts)
    check(m, "lastUpdated %r is not an instant" % ts)
    t = time.mktime(time.strptime(m.group(1), "%Y-%m-%dT%H:%M:%S")) - time.timezone
    frac = float(m.group(2) or 0)
    zone = m.group(3)
    if zone != "Z":
        sign = 1 if zone[0] == "+" else -1
        t -= sign * (int(zone[1:3]) * 3600 + int(zone[4:6]) * 60)
    total_ms = int(round((t + frac) * 1000)) + ms
    secs, msec = divmod(total_ms, 1000)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(secs)) + ".%03dZ" % msec


def expand(text, s, ds):
    def sub(m):
        what = m.group(1)
        if what == "base":
            return s.base
        mm = re.match(r"lu:([A-Za-z]+/[A-Za-z0-9.\-]+)(?::([+-]\d+))?$", what)
        check(mm and mm.group(1) in ds.lu, "unknown placeholder {{%s}}" % what)
        ts = ds.lu[mm.group(1)]
        return iso_shift(ts, int(mm.group(2))) if mm.group(2) else ts
    return re.sub(r"\{\{([^}]*)\}\}", sub, text)


# ---- the cases -------------------------------------------------------------

class Case:
    def __init__(self, where, line):
        self.where = where
        self.line = line
        left, sep, right = line.partition(" => ")
        check(sep, "no ' => ' in %r" % line)
        method, _, rest = left.strip().partition(" ")
        parts = re.split(r"\s+(?=@[a-z]+)", rest.strip())
        check(method and parts[0], "expected METHOD URL in %r" % line)
        self.method, self.url = method, parts[0]
        self.strict = False
        self.form = None
        for w in parts[1:]:
            if w == "@strict":
                self.strict = True
            elif w.startswith("@form="):
                self.form = w[6:]
            else:
                raise Failure("unknown option %r" % w)
        right = right.strip()
        m = re.match(r"(\d{3})(?:\s+(.*))?$", right)
        self.status, self.diag = (int(m.group(1)), (m.group(2) or "").strip()) if m else (200, None)
        self.ids, self.asserts = None, {}
        if not m:
            head, _, tail = right.partition(" @")
            head = head.strip()
            if head == "*":
                self.ids = None
            elif head == "-":
                self.ids = []
            else:
                self.ids = [x.strip() for x in head.split(",") if x.strip()]
            if tail:
                for a in re.split(r"\s+@(?=[a-z]+(?:=|\s|$))", "@" + tail):
                    a = a.lstrip("@").strip()
                    k, _, v = a.partition("=")
                    check(k in ("total", "links", "include", "warn", "keys", "subsetted"),
                          "unknown assertion @%s" % k)
                    self.asserts.setdefault(k, []).append(v.strip())

    def run(self, s, ds):
        url = encode(expand(self.url, s, ds))
        headers = {"Prefer": "handling=strict"} if self.strict else {}
        body = None
        if self.form is not None:
            body = encode(expand(self.form, s, ds)).encode()
            headers["Content-Type"] = "application/x-www-form-urlencoded"
        r = s.request(self.method, url, body=body, headers=headers)
        what = "%s %s" % (self.method, url)
        if self.status != 200:
            check(r.status == self.status, "%s\n    expected %d %s\n    got %d %s" %
                  (what, self.status, self.diag, r.status, r.body[:300]))
            diags = [i.get("diagnostics", "") for i in (r.json or {}).get("issue", [])]
            check(any(self.diag in d for d in diags),
                  "%s\n    expected diagnostics containing %r\n    got %r" % (what, self.diag, diags))
            return
        check(r.status == 200, "%s\n    expected 200\n    got %d %s" % (what, r.status, r.body[:400]))
        b = r.json
        check(b.get("resourceType") == "Bundle" and b.get("type") == "searchset",
              "%s: not a searchset Bundle" % what)
        entries = b.get("entry", [])
        by_mode = {"match": [], "include": [], "outcome": []}
        for e in entries:
            mode = e.get("search", {}).get("mode")
            check(mode in by_mode, "%s: an entry with search.mode %r" % (what, mode))
            by_mode[mode].append(e["resource"])
        got = ["%s/%s" % (x["resourceType"], x["id"]) for x in by_mode["match"]]
        if self.ids is not None:
            check(got == self.ids, "%s\n    expected %s\n    got      %s" %
                  (what, ", ".join(self.ids) or "-", ", ".join(got) or "-"))
        inc = sorted("%s/%s" % (x["resourceType"], x["id"]) for x in by_mode["include"])
        want_inc = sorted(x.strip() for v in self.asserts.get("include", []) for x in v.split(",")
                          if x.strip() and x.strip() != "-")
        if self.ids is not None or "include" in self.asserts:
            check(inc == want_inc, "%s\n    expected includes %s\n    got includes      %s" %
                  (what, ", ".join(want_inc) or "-", ", ".join(inc) or "-"))
        warns = [i.get("diagnostics", "") for o in by_mode["outcome"] for i in o.get("issue", [])]
        for w in self.asserts.get("warn", []):
            check(any(w in d for d in warns), "%s\n    expected a warning containing %r\n    got %r" %
                  (what, w, warns))
        if "warn" not in self.asserts:
            check(not warns, "%s\n    unexpected warnings %r" % (what, warns))
        for t in self.asserts.get("total", []):
            want = None if t == "-" else int(t)
            check(b.get("total") == want, "%s\n    expected total %s\n    got total %s" %
                  (what, t, b.get("total")))
        for ln in self.asserts.get("links", []):
            rels = sorted(x["relation"] for x in b.get("link", []))
            want = sorted(x for x in ln.split(",") if x)
            check(rels == want, "%s\n    expected links %s\n    got links %s" % (what, want, rels))
        for k in self.asserts.get("keys", []):
            ref, _, names = k.partition(":")
            res = [x for x in by_mode["match"] + by_mode["include"]
                   if "%s/%s" % (x["resourceType"], x["id"]) == ref]
            check(res, "%s: %s is not in the results" % (what, ref))
            want = sorted(x for x in names.split(",") if x)
            check(sorted(res[0].keys()) == want, "%s\n    %s: expected members %s\n    got %s" %
                  (what, ref, want, sorted(res[0].keys())))
        if "subsetted" in self.asserts:
            for x in by_mode["match"]:
                tags = x.get("meta", {}).get("tag", [])
                check(any(t.get("code") == "SUBSETTED" for t in tags),
                      "%s: %s/%s is not marked SUBSETTED" % (what, x["resourceType"], x["id"]))


def read_cases():
    cases = []
    for f in sorted(os.listdir(DATA)):
        if not f.endswith(".cases"):
            continue
        for n, line in enumerate(open(os.path.join(DATA, f), encoding="utf-8"), 1):
            line = line.strip()
            if line and not line.startswith("#"):
                cases.append(("%s:%d" % (f, n), line))
    return cases


# ---- flows -----------------------------------------------------------------

def links(bundle):
    return {x["relation"]: x["url"] for x in bundle.get("link", [])}


def ids_of(bundle, mode="match"):
    return ["%s/%s" % (e["resource"]["resourceType"], e["resource"]["id"])
            for e in bundle.get("entry", []) if e.get("search", {}).get("mode") == mode]


def follow(s, url):
    check(url.startswith(s.base), "link %r is not under the server's base" % url)
    r = s.get(url[len(s.base):])
    check(r.status == 200, "following %s: %r" % (url, r))
    return r.json


def walk(s, first_url, rel="next"):
    """Every page from first_url on, following rel links."""
    pages, b = [], None
    r = s.get(first_url)
    check(r.status == 200, "%s: %r" % (first_url, r))
    b = r.json
    while True:
        pages.append(b)
        check(len(pages) < 100, "more than 100 pages: a link loop?")
        nxt = links(b).get(rel)
        if not nxt:
            return pages
        b = follow(s, nxt)


def t_paging_walk(s, ds):
    """Every sort order pages to the same list as one page, forward and back."""
    for q in ("/Observation?_sort=_id", "/Observation?_sort=-date,_id", "/Patient?_sort=family,-birthdate",
              "/Observation?code=http://loinc.org|2339-0", "/Observation?_sort=value-quantity",
              "/Patient?_sort=-_lastUpdated", "/Encounter?_sort=-date"):
        whole = s.get(encode(q + "&_count=1000"))
        check(whole.status == 200, "%s: %r" % (q, whole))
        want = ids_of(whole.json)
        check(len(want) >= 3, "%s: too few matches (%d) for a paging test" % (q, len(want)))
        pages = walk(s, encode(q + "&_count=2"))
        got = [i for p in pages for i in ids_of(p)]
        check(got == want, "%s: paged %s\n    unpaged %s" % (q, got, want))
        check(all(len(ids_of(p)) == 2 for p in pages[:-1]), "%s: a short page before the last" % q)
        check("next" not in links(pages[-1]), "%s: the last page has a next link" % q)
        check("previous" not in links(pages[0]), "%s: the first page has a previous link" % q)
        # and back from the last page
        back = walk(s, links(pages[-1])["self"][len(s.base):], "previous")
        got = [i for p in reversed(back) for i in ids_of(p)]
        check(got == want, "%s: paged backwards %s\n    unpaged %s" % (q, got, want))
        # first links
        for p in pages[1:]:
            check(ids_of(follow(s, links(p)["first"])) == want[:2], "%s: first link" % q)


def basic(code, n):
    return {"resourceType": "Basic", "id": "pg-%s-%02d" % (code, n),
            "code": {"coding": [{"system": "http://example.org/paging", "code": code}]},
            # a | in the sort key: the cursor must carry it intact
            "identifier": [{"system": "http://example.org/rank", "value": "r|%02d" % n}]}


def t_paging_while_changing(s, ds):
    """A next link stays right when resources come and go before the cursor."""
    for order in ("", "&_sort=_id", "&_sort=-identifier", "&_sort=-_lastUpdated"):
        code = "chg%d" % len(order)
        made = [basic(code, n) for n in range(10, 20)]
        for res in made:
            s.put("/Basic/" + res["id"], res)
            time.sleep(0.002)
        q = encode("/Basic?code=http://example.org/paging|%s&_count=4%s" % (code, order))
        before = ids_of(s.get(q + "&_count=100").json)
        p1 = s.get(q).json
        page1 = ids_of(p1)
        check(page1 == before[:4], "page 1 %s, expected %s" % (page1, before[:4]))
        nxt = links(p1)["next"]
        # underneath: delete a resource of page 1 and one after the cursor,
        # create resources that sort before the cursor and after it
        gone_before, gone_after = page1[1], before[6]
        for ref in (gone_before, gone_after):
            check(s.request("DELETE", "/" + ref).status == 200, "delete %s" % ref)
        if order == "&_sort=-identifier":
            new_before, new_after = basic(code, 99), basic(code, 1)   # ranks sort descending
        elif order == "&_sort=-_lastUpdated":
            new_before, new_after = basic(code, 98), None  # the newest sorts first
        else:
            new_before, new_after = basic(code, 5), basic(code, 50)  # ids and rkeys: 05 < 10 < 50
        if order == "":
            new_before = None  # the default order is creation: nothing new sorts before
        for res in (new_before, new_after):
            if res:
                s.put("/Basic/" + res["id"], res)
        rest = []
        b = follow(s, nxt)
        while True:
            rest += ids_of(b)
            n = links(b).get("next")
            if not n:
                break
            b = follow(s, n)
        want = [x for x in before[4:] if x != gone_after]
        if new_after:
            want.append("Basic/" + new_after["id"])
            now = ids_of(s.get(q + "&_count=100").json)
            want = [x for x in now if x in want]  # in the order the server sorts now
        check(rest == want, "order %r: after the changes, the following pages hold %s\n"
              "    expected %s" % (order or "(default)", rest, want))
        check(not set(rest) & set(page1), "order %r: a resource of page 1 came again" % order)


def t_total_modes(s, ds):
    q = "/Observation?_count=2"
    r = s.get(q).json
    check("total" not in r, "estimate with more than one page: total %r" % r.get("total"))
    r = s.get(q + "&_total=accurate").json
    full = s.get("/Observation?_count=1000&_total=accurate").json
    check(r.get("total") == len(ids_of(full)) == full.get("total"), "accurate total")
    r2 = follow(s, links(r)["next"])
    check(r2.get("total") == full["total"], "accurate total on page 2")
    check("total" not in s.get(q + "&_total=none").json, "_total=none")
    r = s.get("/Observation?_count=1000").json
    check(r.get("total") == len(ids_of(r)), "estimate when one page holds all")


def t_everything_paging(s, ds):
    whole = s.get("/Patient/p-anna/$everything?_count=1000").json
    want = ids_of(whole)
    check(want and want[0] == "Patient/p-anna", "$everything starts with the patient: %s" % want[:3])
    check(len(want) > 4, "$everything of p-anna: only %s" % want)
    pages = walk(s, "/Patient/p-anna/$everything?_count=3")
    got = [i for p in pages for i in ids_of(p)]
    check(got == want, "$everything paged %s\n    unpaged %s" % (got, want))
    check(all(links(p).get("self", "").startswith(s.base + "/Patient/p-anna/$everything")
              for p in pages), "$everything links")


def t_post_search_merges_url(s, ds):
    r = s.request("POST", encode("/Patient/_search?gender=female&_sort=_id"),
                  body=b"name=anna", headers={"Content-Type": "application/x-www-form-urlencoded"})
    check(r.status == 200 and ids_of(r.json) == ["Patient/p-anna"], "POST _search: %r" % r)
    nxt = s.request("POST", "/Patient/_search", body=b"_count=1&_sort=_id&gender=female",
                    headers={"Content-Type": "application/x-www-form-urlencoded"})
    check(nxt.status == 200 and "next" in links(nxt.json), "POST _search paging: %r" % nxt)
    # the next link is a GET that carries the form's parameters
    p2 = follow(s, links(nxt.json)["next"])
    check(len(ids_of(p2)) == 1 and ids_of(p2) != ids_of(nxt.json), "page 2 of a POST search")
    r = s.request("POST", "/Patient/_search", body=b"name=anna",
                  headers={"Content-Type": "application/fhir+json"})
    check(r.status == 415, "POST _search with a JSON body: %r" % r)
    many = "&".join("name=x%d" % i for i in range(300)).encode()
    r = s.request("POST", "/Patient/_search?" + "&".join("gender=male" for _ in range(100)),
                  body=many, headers={"Content-Type": "application/x-www-form-urlencoded"})
    check(r.status == 400 and b"more than" in r.body, "a form with 300 parameters: %r" % r)


def suite(binary, start_server, common_rows=None):
    """common_rows: run the server with every token matching at least that
    many rows counted as common, so the planner drives from other conditions
    (or the type's index): the answers must not change."""
    st = Suite("search" if common_rows is None else "search-common")
    if common_rows is not None:
        os.environ["CHARTKEEP_TEST_COMMON_TOKEN_ROWS"] = str(common_rows)
    try:
        s = start_server(binary)
    finally:
        os.environ.pop("CHARTKEEP_TEST_COMMON_TOKEN_ROWS", None)
    ds = DataSet()
    try:
        try:
            ds.load(s)
        except Failure as e:
            st.run("load the data set", lambda: (_ for _ in ()).throw(e))
            return st.summary()
        for where, line in read_cases():
            def one(line=line, where=where):
                Case(where, line).run(s, ds)
            st.run(where, one)
        for fn in (t_paging_walk, t_total_modes, t_everything_paging, t_post_search_merges_url,
                   t_paging_while_changing):
            st.run(fn.__name__[2:], fn, s, ds)
    finally:
        s.cleanup()
    return st.summary()


# ---- the index agrees with a reindex from scratch -------------------------

IX_DUMPS = {
    "ix_token": "SELECT p.url, t.pid & 0x60000000, d.sys, d.code, d.text, r.type, r.id, t.grp "
                "FROM ix_token t JOIN ix_dict d ON d.id = t.tok JOIN resource r ON r.rkey = t.rkey "
                "JOIN search_param p ON p.pid = (t.pid & 0x1fffffff)",
    "ix_string": "SELECT p.url, t.norm, t.exact, r.type, r.id, t.grp FROM ix_string t "
                 "JOIN resource r ON r.rkey = t.rkey JOIN search_param p ON p.pid = t.pid",
    "ix_date": "SELECT p.url, t.lo, t.hi, r.type, r.id, t.grp FROM ix_date t "
               "JOIN resource r ON r.rkey = t.rkey JOIN search_param p ON p.pid = t.pid",
    "ix_number": "SELECT p.url, t.val, t.lo, t.hi, r.type, r.id, t.grp FROM ix_number t "
                 "JOIN resource r ON r.rkey = t.rkey JOIN search_param p ON p.pid = t.pid",
    "ix_quantity": "SELECT p.url, t.val, d.sys, d.code, t.lo, t.hi, r.type, r.id, t.grp "
                   "FROM ix_quantity t JOIN ix_dict d ON d.id = t.tok JOIN resource r ON r.rkey = t.rkey "
                   "JOIN search_param p ON p.pid = t.pid",
    "ix_reference": "SELECT p.url, d.sys, d.code, r.type, r.id, t.grp FROM ix_reference t "
                    "JOIN ix_dict d ON d.id = t.tok JOIN resource r ON r.rkey = t.rkey "
                    "JOIN search_param p ON p.pid = t.pid",
    "ix_uri": "SELECT p.url, t.uri, r.type, r.id, t.grp FROM ix_uri t "
              "JOIN resource r ON r.rkey = t.rkey JOIN search_param p ON p.pid = t.pid",
    "ix_fts": "SELECT r.type, r.id, f.narrative, f.content FROM ix_fts f "
              "JOIN resource r ON r.rkey = f.rowid",
}


def dump_index(db):
    """Every index row, readable and sorted; also the rows that point at no
    current resource (there must be none)."""
    con = sqlite3.connect("file:%s?mode=ro" % db, uri=True)
    try:
        out = {}
        for table, sql in IX_DUMPS.items():
            out[table] = sorted(tuple(map(str, row)) for row in con.execute(sql))
        for table in IX_DUMPS:
            key = "rowid" if table == "ix_fts" else "rkey"
            n = con.execute("SELECT count(*) FROM %s x LEFT JOIN resource r ON r.rkey = x.%s "
                            "WHERE r.rkey IS NULL OR r.deleted = 1" % (table, key)).fetchone()[0]
            out[table + " (orphans)"] = [("orphan rows", str(n))] if n else []
        return out
    finally:
        con.close()


def diff_dumps(a, b):
    lines = []
    for table in a:
        x, y = set(a[table]), set(b[table])
        for row in sorted(x - y)[:5]:
            lines.append("  %s only before reindex: %s" % (table, row))
        for row in sorted(y - x)[:5]:
            lines.append("  %s only after reindex:  %s" % (table, row))
        if len(a[table]) != len(set(a[table])) or len(b[table]) != len(set(b[table])):
            lines.append("  %s has duplicate rows" % table)
    return "\n".join(lines)


CUSTOM_SP = {
    "resourceType": "SearchParameter", "id": "patient-eye-colour",
    "url": "http://example.org/fhir/SearchParameter/patient-eye-colour",
    "name": "EyeColour", "status": "active", "code": "eye-colour", "base": ["Patient"],
    "type": "token", "description": "A patient's eye colour (an extension)",
    "expression": "Patient.extension('http://example.org/fhir/StructureDefinition/eye-colour').value",
}


def eye(pid, colour):
    return {"resourceType": "Patient", "id": pid, "name": [{"family": "Iris" + pid[-2:]}],
            "extension": [{"url": "http://example.org/fhir/StructureDefinition/eye-colour",
                           "valueCode": colour}]}


def random_resource(rng, n, patients):
    """A resource of a few kinds, with composites, references, identifiers."""
    kind = rng.choice(["obs", "obs-bp", "patient", "encounter", "condition", "org"])
    ident = [{"system": "http://example.org/ids", "value": "id-%d" % rng.randrange(50),
              "type": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v2-0203",
                                   "code": rng.choice(["MR", "SS"])}]}}]
    if kind == "patient":
        return {"resourceType": "Patient", "id": "rp-%d" % n, "identifier": ident,
                "name": [{"family": rng.choice(["Åberg", "Berg", "Müller", "O'Neil"]),
                          "given": [rng.choice(["Ann", "Bo", "Cé"])]}],
                "birthDate": "19%02d-%02d-%02d" % (rng.randrange(100), rng.randrange(1, 13),
                                                   rng.randrange(1, 28)),
                "gender": rng.choice(["male", "female", "other"]),
                "managingOrganization": {"reference": "Organization/ro-%d" % rng.randrange(5)},
                "text": {"status": "generated", "div": "<div xmlns=\"http://www.w3.org/1999/xhtml\">"
                         "patient %d</div>" % n}}
    if kind == "org":
        return {"resourceType": "Organization", "id": "ro-%d" % rng.randrange(5),
                "name": "Org %d" % rng.randrange(1000), "identifier": ident,
                "partOf": {"reference": "Organization/ro-%d" % rng.randrange(5)}}
    subject = {"reference": "Patient/%s" % rng.choice(patients)}
    if kind == "encounter":
        return {"resourceType": "Encounter", "id": "re-%d" % n, "status": "finished",
                "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "AMB"},
                "subject": subject, "identifier": ident,
                "period": {"start": "2020-0%d-01" % rng.randrange(1, 10)},
                "length": {"value": rng.randrange(10, 100), "unit": "min",
                           "system": "http://unitsofmeasure.org", "code": "min"}}
    if kind == "condition":
        return {"resourceType": "Condition", "id": "rc-%d" % n, "subject": subject,
                "code": {"coding": [{"system": "http://hl7.org/fhir/sid/icd-10-cm",
                                     "code": rng.choice(["E11.9", "I10", "J45.909"])}],
                         "text": "condition %d" % n},
                "clinicalStatus": {"coding": [{
                    "system": "http://terminology.hl7.org/CodeSystem/condition-clinical",
                    "code": rng.choice(["active", "resolved"])}]},
                "onsetAge": {"value": rng.randrange(90), "unit": "a",
                             "system": "http://unitsofmeasure.org", "code": "a"},
                "note": [{"text": "note for condition %d" % n}]}
    obs = {"resourceType": "Observation", "id": "robs-%d" % n, "status": "final",
           "subject": subject, "identifier": ident,
           "effectiveDateTime": "2021-%02d-%02dT%02d:00:00+0%d:00" % (
               rng.randrange(1, 13), rng.randrange(1, 28), rng.randrange(24), rng.randrange(10))}
    if kind == "obs-bp":
        obs["code"] = {"coding": [{"system": "http://loinc.org", "code": "85354-9"}]}
        obs["component"] = [
            {"code": {"coding": [{"system": "http://loinc.org", "code": c}]},
             "valueQuantity": {"value": rng.randrange(50, 180), "unit": "mmHg",
                               "system": "http://unitsofmeasure.org", "code": "mm[Hg]"}}
            for c in ("8480-6", "8462-4")]
    else:
        obs["code"] = {"coding": [{"system": "http://loinc.org",
                                   "code": rng.choice(["2339-0", "29463-7"]),
                                   "display": rng.choice(["Glucose", "Body weight"])}]}
        obs["valueQuantity"] = {"value": round(rng.uniform(1, 200), rng.randrange(3)),
                                "unit": "mg/dL", "system": "http://unitsofmeasure.org",
                                "code": "mg/dL"}
    return obs


def t_index_matches_reindex(binary, start_server):
    rng = random.Random(20240611)
    s = start_server(binary)
    try:
        made, patients = {}, ["rp-seed"]
        # the custom parameter first: rows written before it would (rightly)
        # differ from a reindex until one is run (see t_custom_search_parameter)
        r = s.put("/SearchParameter/" + CUSTOM_SP["id"], CUSTOM_SP)
        check(r.status in (200, 201), "custom SearchParameter: %r" % r)
        s.put("/Patient/rp-seed", {"resourceType": "Patient", "id": "rp-seed"})
        jp = {"Content-Type": "application/json-patch+json"}
        for n in range(300):
            roll = rng.random()
            if roll < 0.05 and made:
                # a JSON Patch: the index follows the patched resource
                ref = rng.choice(sorted(made))
                if ref.startswith("Observation/") and "valueQuantity" in made[ref]:
                    ops = [{"op": "replace", "path": "/valueQuantity/value",
                            "value": rng.randrange(1000)}]
                elif ref.startswith("Patient/"):
                    ops = [{"op": "add", "path": "/gender", "value": "unknown"}]
                else:
                    ops = [{"op": "add", "path": "/identifier",
                            "value": [{"system": "http://example.org/patched", "value": str(n)}]}]
                r = s.request("PATCH", "/" + ref, body=json.dumps(ops).encode(), headers=jp)
                check(r.status == 200, "patch %s: %r" % (ref, r))
                made[ref] = r.json
                continue
            if roll < 0.1:
                # a create with a server-assigned id
                res = random_resource(rng, n, patients)
                res.pop("id")
                r = s.post("/" + res["resourceType"], res)
                check(r.status == 201, "create: %r" % r)
                made["%s/%s" % (res["resourceType"], r.json["id"])] = r.json
                continue
            if roll < 0.25 and made:
                # delete something written before
                ref = rng.choice(sorted(made))
                r = s.request("DELETE", "/" + ref)
                check(r.status in (200, 204), "delete %s: %r" % (ref, r))
                made.pop(ref)
                continue
            if roll < 0.45 and made:
                # update something written before: new values, or the same ones
                ref = rng.choice(sorted(made))
                res = random_resource(rng, n, patients)
                if res["resourceType"] != ref.split("/")[0]:
                    res = made[ref]
                else:
                    res["id"] = ref.split("/")[1]
            else:
                res = random_resource(rng, n, patients)
            if res["resourceType"] == "Patient" and rng.random() < 0.5:
                res["extension"] = eye(res["id"], rng.choice(["blue", "brown"]))["extension"]
            ref = "%s/%s" % (res["resourceType"], res["id"])
            r = s.put("/" + ref, res)
            check(r.status in (200, 201), "write %s: %r" % (ref, r))
            made[ref] = res
            if res["resourceType"] == "Patient":
                patients.append(res["id"])
        # a transaction too: several resources in one commit
        tx = {"resourceType": "Bundle", "type": "transaction", "entry": [
            {"resource": random_resource(rng, 1000 + i, patients),
             "request": {"method": "POST", "url": "Observation"}} for i in range(5)]}
        for e in tx["entry"]:
            e["resource"] = dict(e["resource"], resourceType="Observation", status="final",
                                 code={"text": "tx"})
            e["resource"].pop("id", None)
            e["resource"].pop("component", None)
            for k in ("name", "birthDate", "gender", "managingOrganization", "text", "class",
                      "period", "length", "clinicalStatus", "onsetAge", "note", "partOf"):
                e["resource"].pop(k, None)
        r = s.post("/", tx)
        check(r.status == 200, "transaction: %r" % r)
        before = dump_index(s.db)
        check(sum(len(v) for v in before.values()) > 1000, "too few index rows to compare")
        check(s.stop() == 0, "server did not stop cleanly")
        s.cli("reindex", "--db", s.db)
        after = dump_index(s.db)
        why = diff_dumps(before, after)
        check(not why, "the index differs from a reindex from scratch:\n" + why)
    finally:
        s.cleanup()


def t_custom_search_parameter(binary, start_server):
    s = start_server(binary)
    try:
        # written before the parameter exists
        for pid, colour in (("eye-01", "blue"), ("eye-02", "brown")):
            check(s.put("/Patient/" + pid, eye(pid, colour)).status == 201, "patient %s" % pid)
        r = s.get("/Patient?eye-colour=blue", headers={"Prefer": "handling=strict"})
        check(r.status == 400 and "eye-colour" in r.body.decode(), "unknown before: %r" % r)
        r = s.put("/SearchParameter/" + CUSTOM_SP["id"], CUSTOM_SP)
        check(r.status == 201, "create the SearchParameter: %r" % r)
        # known at once; new writes are indexed by it
        check(s.put("/Patient/eye-03", eye("eye-03", "blue")).status == 201, "patient eye-03")
        r = s.get("/Patient?eye-colour=blue&_sort=_id", headers={"Prefer": "handling=strict"})
        check(r.status == 200 and ids_of(r.json) == ["Patient/eye-03"],
              "new writes are searchable at once: %r" % r)
        # older resources after a reindex
        check(s.stop() == 0, "server did not stop cleanly")
        p = s.cli("reindex", "--db", s.db)
        check("reindexed" in p.stdout, "reindex output %r" % p.stdout)
        s.start()
        r = s.get("/Patient?eye-colour=blue&_sort=_id", headers={"Prefer": "handling=strict"})
        check(r.status == 200 and ids_of(r.json) == ["Patient/eye-01", "Patient/eye-03"],
              "after reindex: %r" % r)
        r = s.get("/Patient?eye-colour:not=blue&_sort=_id&_id=eye-01,eye-02,eye-03")
        check(r.status == 200 and ids_of(r.json) == ["Patient/eye-02"], ":not on it: %r" % r)
        # a parameter this server cannot evaluate is refused when written
        bad = dict(CUSTOM_SP, id="bad-sp", url="http://example.org/fhir/SearchParameter/bad",
                   code="bad", expression="Patient.name.given.substring(1)")
        r = s.put("/SearchParameter/bad-sp", bad)
        check(r.status in (400, 422) and "substring" in r.body.decode(), "bad expression: %r" % r)
        # and so are definitions search could not use: refused when written, not later
        for i, (change, why) in enumerate((
                ({"type": "special"}, "type special"),
                ({"code": "_eye"}, "reserved for the common parameters"),
                ({"expression": None}, "no expression"))):
            sp = dict(CUSTOM_SP, id="bad-sp-%d" % i, url="http://example.org/fhir/SearchParameter/bad%d" % i,
                      code="bad%d" % i)
            sp.update(change)
            sp = {k: v for k, v in sp.items() if v is not None}
            r = s.put("/SearchParameter/bad-sp-%d" % i, sp)
            check(r.status == 422 and why in r.body.decode(), "%s: %r" % (why, r))
        # deleting it: unknown again
        r = s.request("DELETE", "/SearchParameter/" + CUSTOM_SP["id"])
        check(r.status == 200, "delete the SearchParameter: %r" % r)
        r = s.get("/Patient?eye-colour=blue", headers={"Prefer": "handling=strict"})
        check(r.status == 400, "unknown after its delete: %r" % r)
    finally:
        s.cleanup()


def suite_index(binary, start_server):
    st = Suite("search-index")
    st.run("index equals reindex", t_index_matches_reindex, binary, start_server)
    st.run("custom search parameter", t_custom_search_parameter, binary, start_server)
    return st.summary()
