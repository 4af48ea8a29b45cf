"""Code sets and coding edits (issue 8): `chartkeep codes load` on the
official file formats, CodeSystem/$lookup, CodeSystem/$validate-code,
ValueSet/$expand, and Claim/Encounter $code-edits with every MCE v37 edit
type, each firing for the wrong age or sex and not for the right one.

The full ICD-10-CM FY2016 and ICD-10-PCS FY2018 tables are kept
xz-compressed in tests/data/codes and decompressed here."""
import json
import lzma
import os
import re
import sqlite3
import time
import urllib.parse

from harness import Failure, Server, Suite, check

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
DATA = os.path.join(ROOT, "tests", "data", "codes")
SHIP = os.path.join(ROOT, "data", "codes")
CM = "http://hl7.org/fhir/sid/icd-10-cm"
PCS = "http://www.cms.gov/Medicare/Coding/ICD10"
HCPCS = "urn:oid:2.16.840.1.113883.6.285"
CPT = "http://www.ama-assn.org/go/cpt"
MCE = os.path.join(SHIP, "MCE_Simple_Code_Edits_v37.txt")
POA = os.path.join(SHIP, "POAexemptCodes2020.txt")


def unxz(s, name):
    path = os.path.join(s.tmp, name[:-3])
    if not os.path.exists(path):
        with lzma.open(os.path.join(DATA, name)) as f, open(path, "wb") as o:
            o.write(f.read())
    return path


def load(s, system, version, path, *extra, ok=True):
    p = s.cli("codes", "load", "--db", s.db, "--system", system, "--version", version, *extra, path,
              check_rc=False)
    if ok:
        check(p.returncode == 0, "load %s %s: %s" % (system, version, p.stderr))
    return p


def listed(s):
    out = s.cli("codes", "list", "--db", s.db).stdout
    rows = {}
    for line in out.splitlines()[1:]:
        f = line.split()
        rows[(f[0], f[1])] = (int(f[3]), int(f[4]), f[-1])
    return rows


def q(path, **params):
    return path + "?" + urllib.parse.urlencode(params)


def params(r):
    out = {}
    for p in r.json.get("parameter", []):
        if p["name"] == "property":
            parts = {x["name"]: x for x in p["part"]}
            v = [val for k, val in parts["value"].items() if k.startswith("value")][0]
            out.setdefault("property", {})[parts["code"]["valueCode"]] = v
        else:
            v = [val for k, val in p.items() if k.startswith("value")]
            out[p["name"]] = v[0] if v else p
    return out


# ---- loading ------------------------------------------------------------

def t_full_counts(s):
    load(s, "icd10cm", "2016", unxz(s, "icd10cm_fy2016_order.tsv.xz"))
    load(s, "icd10pcs", "2018", unxz(s, "icd10_pcs_2018_order.tsv.xz"))
    p = load(s, "hcpcs", "2019", unxz(s, "HCPC2019_CONTR_ANWEB.txt.xz"))
    check("360 of the codes are modifiers" in p.stdout, "HCPCS modifiers counted: %r" % p.stdout)
    load(s, "mce", "37", MCE)
    load(s, "poa-exempt", "2020", POA)
    load(s, "pos", "20240502", os.path.join(SHIP, "CodeSystem-CMSPlaceofServiceCodes.json"))
    rows = listed(s)
    check(rows[("icd10cm", "2016")][:2] == (91737, 69823), "ICD-10-CM FY2016: %r" % (rows[("icd10cm", "2016")],))
    check(rows[("icd10pcs", "2018")][:2] == (79578, 78705), "ICD-10-PCS FY2018: %r" % (rows[("icd10pcs", "2018")],))
    # 6440 codes and 360 modifiers (record ids 7/8)
    check(rows[("hcpcs", "2019")][0] == 6800, "HCPCS 2019: %r" % (rows[("hcpcs", "2019")],))
    check(rows[("mce", "37")][0] == 14153, "MCE v37 rows: %r" % (rows[("mce", "37")],))
    check(rows[("pos", "20240502")][0] == 52, "place of service: %r" % (rows[("pos", "20240502")],))


def t_reload_idempotent(s):
    before = listed(s)
    p = load(s, "icd10cm", "2016", unxz(s, "icd10cm_fy2016_order.tsv.xz"))
    check("nothing changed" in p.stdout, "reload: %r" % p.stdout)
    check(listed(s) == before, "reload changed the list")
    c = sqlite3.connect(s.db)
    try:
        n = c.execute("SELECT count(*) FROM code_concept c JOIN code_version v USING (vkey) "
                      "WHERE v.system = 'icd10cm'").fetchone()[0]
        f = c.execute("SELECT count(*) FROM code_fts WHERE code_fts MATCH 'display : cholera'").fetchone()[0]
        want = c.execute("SELECT count(*) FROM code_concept WHERE display LIKE '%cholera%'").fetchone()[0]
    finally:
        c.close()
    check(n == 91737, "concept rows after reload: %d" % n)
    check(f == want and f > 0, "full-text rows after reload: %d, %d expected" % (f, want))


def t_order_files(s):
    load(s, "icd10cm", "2017", os.path.join(DATA, "icd10cm_order_2016.txt"),
         "--effective-from", "2016-10-01", "--effective-to", "2017-09-30")
    load(s, "icd10pcs", "2017", os.path.join(DATA, "icd10pcs_order_2018.txt"))
    rows = listed(s)
    check(rows[("icd10cm", "2017")][:2] == (983, 708), "CM order slice: %r" % (rows[("icd10cm", "2017")],))
    check(rows[("icd10pcs", "2017")][:2] == (149, 125), "PCS order slice: %r" % (rows[("icd10pcs", "2017")],))
    r = s.get(q("/CodeSystem/$lookup", system=CM, code="S72.001A", date="2017-01-15"))
    check(r.status == 200, "lookup 7th character: %r" % r)
    p = params(r)
    check(p["version"] == "2017" and p["property"]["parent"] == "S72.001", "7th character: %r" % p)


def t_cpt(s):
    p = load(s, "cpt", "2019", os.path.join(DATA, "cpt_synthetic.csv"))
    check("3 codes" in p.stdout, "cpt: %r" % p.stdout)
    r = s.get(q("/CodeSystem/$validate-code", system=CPT, code="0001U", date="2019-05-01"))
    check(r.status == 200 and params(r)["result"] is True, "cpt validate: %r" % r)
    h = s.cli("codes", "--help").stdout
    check("AMA" in h and "ships no CPT" in h, "codes --help must say CPT is not shipped")


BAD = [
    # (system, file content, message expected)
    ("icd10cm", "code\tbillable\tshort_desc\tlong_desc\nA000\t1\tx\tCholera\nA0-1\t1\tx\ty\n",
     "line 3: not a well-formed ICD-10-CM code"),
    ("icd10cm", "code\tbillable\tshort_desc\tlong_desc\nA000\t2\tx\tCholera\n", "line 2: billable must be 0 or 1"),
    ("icd10cm", "code\tbillable\tshort_desc\tlong_desc\nA000\t1\tx\tCholera\nA000\t1\tx\tCholera\n",
     "line 3: code A000 is already on line 2"),
    ("icd10cm", "code\tbillable\tshort_desc\tlong_desc\nA000\t1\tx\n", "line 2: 3 fields, the header has 4"),
    ("icd10cm", "00001 A00     0 Cholera" + " " * 54 + "Cholera\n00002 A000    1 short\n", "line 2: too short"),
    ("icd10cm", "00001 A00     2 Cholera" + " " * 54 + "Cholera\n", "line 1: column 15 must be 0"),
    ("icd10cm", "00001 A00     0 Cholera" + " " * 53 + "Cholera\n", "line 1: not the order-file layout"),
    ("icd10pcs", "00001 0016070 0 Bypass" + " " * 55 + "Bypass\n", "exactly when it has 7 characters"),
    ("hcpcs", "***header\n" + "A0021001003" + "x" * 80 + "\nZZZZZ\n", "line 2: too short for a first record"),
    ("cpt", "code,description\n99990,\"unterminated\n", "line 2: a quoted field is not closed"),
    ("cpt", "99990,ok\n1234,not five\n", "line 2: not a well-formed CPT code"),
    ("mce", "MCE_Version\tICD_Version\tMCE_Section\tMCE_Subsection\tMCE_Edit_Type\tICD_Code_Type\tICD_Code\tICD_Desc\n"
            "36\t10\t4\tA\tNewborn_Only\tD\tA33\tTetanus neonatorum\n", "line 2: MCE version 36 in a file loaded as version 37"),
    ("mce", "MCE_Version\tICD_Version\tMCE_Section\tMCE_Subsection\tMCE_Edit_Type\tICD_Code_Type\tICD_Code\tICD_Desc\n"
            "37\t10\t4\tA\tNewborn_Sometimes\tD\tA33\tTetanus neonatorum\n", "line 2: unknown MCE edit type"),
    ("mce", "MCE_Version\tICD_Version\tMCE_Section\tMCE_Subsection\tMCE_Edit_Type\tICD_Code_Type\tICD_Code\tICD_Desc\n"
            "37\t10\t11\tA\tNoncovered_Always\tD\tA33\tx\n", "line 2: ICD_Code_Type must be P"),
    ("pos", "{\"resourceType\":\"CodeSystem\",\"concept\":[{\"code\":\"1\",\"display\":\"x\"}]}", "concept[0]"),
]


def t_malformed(s):
    before = listed(s)
    for i, (system, text, want) in enumerate(BAD):
        path = os.path.join(s.tmp, "bad-%d.txt" % i)
        with open(path, "w") as f:
            f.write(text)
        version = {"mce": "37", "pos": "1"}.get(system, "2016")
        p = load(s, system, version, path, ok=False)
        check(p.returncode == 1, "%s case %d: exit %d" % (system, i, p.returncode))
        check(want in p.stderr and ("bad-%d.txt" % i) in p.stderr, "%s case %d: %r" % (system, i, p.stderr))
    check(listed(s) == before, "a failed load changed what is loaded")


def t_cli_errors(s):
    p = s.cli("codes", "load", "--db", s.db, "--system", "snomed", "--version", "1", MCE, check_rc=False)
    check(p.returncode == 1 and "--system: one of" in p.stderr, "unknown system: %r" % p.stderr)
    p = s.cli("codes", "load", "--db", s.db, "--system", "icd10cm", "--version", "16", MCE, check_rc=False)
    check(p.returncode == 1 and "fiscal year" in p.stderr, "bad version: %r" % p.stderr)
    p = s.cli("codes", "load", "--db", s.db, "--system", "icd10cm", "--version", "2016", check_rc=False)
    check(p.returncode == 2, "no file: %r" % p.stderr)
    p = s.cli("codes", "load", "--db", s.db, "--system", "icd10cm", "--version", "2016", "/nonexistent",
              check_rc=False)
    check(p.returncode == 1 and "cannot open" in p.stderr, "missing file: %r" % p.stderr)


# ---- terminology --------------------------------------------------------

def t_lookup(s):
    for code in ("E11.9", "E119", "e11.9", " E11.9 "):
        r = s.get(q("/CodeSystem/$lookup", system=CM, code=code))
        check(r.status == 200, "lookup %r: %r" % (code, r))
        p = params(r)
        check(p["display"] == "Type 2 diabetes mellitus without complications", "display: %r" % p)
        check(p["name"] == "ICD-10-CM" and p["version"] == "2017", "the newest version: %r" % p)
        check(p["property"]["billable"] is True and p["property"]["parent"] == "E11", "properties %r" % p)
        check(p["property"]["code"] == "E11.9", "conventional form: %r" % p)
    r = s.get(q("/CodeSystem/$lookup", system=CM, code="E11", date="2016-05-01"))
    p = params(r)
    check(r.status == 200 and p["abstract"] is True and p["property"]["billable"] is False, "header: %r" % p)
    r = s.get(q("/CodeSystem/$lookup", system=HCPCS, code="A4466"))
    p = params(r)
    check(p["property"]["terminated"] == "2016-12-31", "HCPCS termination: %r" % p)
    r = s.get(q("/CodeSystem/$lookup", system=PCS, code="0016070", date="2018-01-01"))
    check(r.status == 200 and params(r)["version"] == "2018", "PCS: %r" % r)


LOOKUP_BAD = [
    (dict(system=CM, code="E11.99"), 404, "E11.99 is not a code of ICD-10-CM"),
    (dict(system="http://snomed.info/sct", code="123"), 400, "unknown code system"),
    (dict(code="E11.9"), 400, "system: the code system's URI is required"),
    (dict(system=CM), 400, "code is required"),
    (dict(system=CM, code="E1.19"), 400, "not a well-formed ICD-10-CM code"),
    (dict(system=CM, code="E11.9;DROP"), 400, "not a well-formed"),
    (dict(system=CM, code="E11.9", date="2014-01-01"), 404, "no ICD-10-CM version loaded covers 2014-01-01"),
    (dict(system=CM, code="E11.9", date="not-a-date"), 400, "date:"),
    (dict(system=CM, code="E11.9", version="1999"), 404, "version 1999 is not loaded"),
]


def t_lookup_errors(s):
    for prm, status, msg in LOOKUP_BAD:
        r = s.get(q("/CodeSystem/$lookup", **prm))
        check(r.status == status, "%r: %r" % (prm, r))
        check(r.json["resourceType"] == "OperationOutcome" and msg in r.json["issue"][0]["diagnostics"],
              "%r: %r" % (prm, r.json))


VALIDATE = [
    (dict(url=CM, code="E11.9"), True, None),
    (dict(system=CM, code="E119", date="2016-02-01"), True, None),
    (dict(url=CM, code="E11"), False, "header code"),
    (dict(url=CM, code="E11", abstract="true"), True, None),
    (dict(url=CM, code="E11.99"), False, "not a code of ICD-10-CM"),
    (dict(url=CM, code="E1.19"), False, "not a well-formed"),
    (dict(url="http://example.org/unknown", code="1"), False, "unknown code system"),
    (dict(url=CM, code="E11.9", date="2014-06-01"), False, "no ICD-10-CM version loaded covers 2014-06-01"),
    (dict(url=HCPCS, code="A4466", date="2019-06-01"), False, "terminated on 2016-12-31"),
    (dict(url=HCPCS, code="G0008", date="2019-06-01"), True, None),
    (dict(url=CM, code="E11.9", display="Type 2 diabetes mellitus without complications"), True, None),
    (dict(url=CM, code="E11.9", display="Type 1 diabetes"), False, "display"),
]


def t_validate(s):
    for prm, result, msg in VALIDATE:
        r = s.get(q("/CodeSystem/$validate-code", **prm))
        check(r.status == 200, "%r: %r" % (prm, r))
        p = params(r)
        check(p["result"] is result, "%r: result %r" % (prm, p))
        if msg:
            check(msg in p.get("message", ""), "%r: message %r" % (prm, p))
    body = {"resourceType": "Parameters", "parameter": [
        {"name": "coding", "valueCoding": {"system": CM, "code": "S72.001A"}},
        {"name": "date", "valueDate": "2016-03-01"}]}
    r = s.post("/CodeSystem/$validate-code", body)
    check(r.status == 200 and params(r)["result"] is True, "POST coding: %r" % r)
    check(params(r)["code"] == "S72.001A", "POST coding: %r" % r)
    r = s.post("/CodeSystem/$validate-code", {"resourceType": "Patient"})
    check(r.status == 400, "POST non-Parameters: %r" % r)
    r = s.post("/CodeSystem/$validate-code", b"{not json", headers={"Content-Type": "application/fhir+json"})
    check(r.status == 400, "POST bad JSON: %r" % r)
    r = s.get(q("/CodeSystem/$validate-code", url=CM))
    check(r.status == 400, "no code: %r" % r)
    r = s.get(q("/CodeSystem/$validate-code", url=CM, code="E11.9", date="yesterday"))
    check(r.status == 400 and "date:" in r.body.decode(), "a malformed date is the request's fault: %r" % r)
    r = s.get(q("/CodeSystem/$validate-code", code="E11.9"))
    check(r.status == 400, "no system: %r" % r)


def expand(s, **prm):
    r = s.get(q("/ValueSet/$expand", **prm))
    check(r.status == 200, "expand %r: %r" % (prm, r))
    return r.json["expansion"]


def t_expand(s):
    ex = expand(s, url=CM, filter="fem fract right neck", count=50, date="2016-01-01")
    codes = [c["code"] for c in ex["contains"]]
    check("S72.001A" in codes, "type-ahead missed S72.001A: %r" % codes[:10])
    for c in ex["contains"]:
        d = c["display"].lower()
        check(all(w in d for w in ("fem", "fract", "right", "neck")), "not every word: %r" % c)
    seen_header = False
    for c in ex["contains"]:
        if c.get("abstract"):
            seen_header = True
        check(not (seen_header and not c.get("abstract")), "billable codes must come first")
    # the same words in another order
    ex2 = expand(s, url=CM, filter="right neck fract fem", count=50, date="2016-01-01")
    check([c["code"] for c in ex2["contains"]] == codes, "word order changed the answer")
    # paging: no overlap, stable
    p1 = [c["code"] for c in expand(s, url=CM, filter="diabetes", count=10, date="2016-01-01")["contains"]]
    p2 = [c["code"] for c in expand(s, url=CM, filter="diabetes", count=10, offset=10, date="2016-01-01")["contains"]]
    check(len(p1) == 10 and len(p2) == 10 and not set(p1) & set(p2), "paging: %r %r" % (p1, p2))
    # by code, with and without the dot; isa
    ex = expand(s, url=CM, filter="E11.9", date="2016-01-01")
    check(ex["contains"][0]["code"].startswith("E11.9"), "code filter: %r" % ex["contains"][:2])
    ex = expand(s, url=CM + "?fhir_vs=isa/E11.6", count=100, date="2016-01-01")
    check(ex["contains"] and all(c["code"].startswith("E11.6") for c in ex["contains"]), "isa: %r" % ex)
    check(ex["total"] == len(ex["contains"]), "total when complete: %r" % ex.get("total"))
    # HCPCS and PCS
    ex = expand(s, url=HCPCS, filter="ambulance outside state")
    check(any(c["code"] == "A0021" for c in ex["contains"]), "HCPCS: %r" % ex["contains"][:3])
    ex = expand(s, url=CM, filter="zzzzqqq", date="2016-01-01")
    check("contains" not in ex and ex["total"] == 0, "no match: %r" % ex)


EXPAND_BAD = [
    (dict(filter="x"), 400, "url:"),
    (dict(url="http://example.org/vs"), 404, "unknown value set"),
    (dict(url=CM, count="-1"), 400, "count:"),
    (dict(url=CM, count="100000"), 400, "count:"),
    (dict(url=CM, offset="x"), 400, "offset:"),
    (dict(url=CM + "?fhir_vs=foo"), 400, "fhir_vs"),
    (dict(url=CM, filter="a " * 20), 400, "at most 8 words"),
    (dict(url=CM, filter="x" * 300), 400, "filter: at most"),
    (dict(url=CM, date="2001-01-01"), 404, "no ICD-10-CM version"),
]


def t_expand_errors(s):
    for prm, status, msg in EXPAND_BAD:
        r = s.get(q("/ValueSet/$expand", **prm))
        check(r.status == status and msg in r.json["issue"][0]["diagnostics"], "%r: %r" % (prm, r))
    # FTS syntax in a filter is text, not a query
    for f in ('"', "fracture OR", "NEAR(a b)", "*", "a:b", "(", "e11 - ^"):
        r = s.get(q("/ValueSet/$expand", url=CM, filter=f, date="2016-01-01"))
        check(r.status == 200, "filter %r: %r" % (f, r))


def t_auth(s):
    r = s.get(q("/CodeSystem/$lookup", system=CM, code="E11.9"), token=None)
    check(r.status == 401, "no token: %r" % r)
    for user in ("clerk", "coder", "billing", "tech"):
        r = s.get(q("/CodeSystem/$lookup", system=CM, code="E11.9"), token=user)
        check(r.status == 200, "%s may use terminology: %r" % (user, r))
        r = s.get(q("/ValueSet/$expand", url=CM, filter="cholera"), token=user)
        check(r.status == 200, "%s may expand: %r" % (user, r))


# ---- coding edits -------------------------------------------------------

def mce_lists():
    lists = {}
    with open(MCE) as f:
        next(f)
        for line in f:
            v, _, _, _, kind, t, code, _ = line.rstrip("\n").split("\t")
            lists.setdefault((kind, t), []).append(code)
    return lists


def cm_billable(s):
    out = set()
    with open(unxz(s, "icd10cm_fy2016_order.tsv.xz")) as f:
        next(f)
        for line in f:
            c, b = line.split("\t")[:2]
            if b == "1":
                out.add(c)
    return out


def pcs_valid(s):
    out = set()
    with open(unxz(s, "icd10_pcs_2018_order.tsv.xz")) as f:
        next(f)
        for line in f:
            c, b = line.split("\t")[1:3]
            if b == "1":
                out.add(c)
    return out


def dotted(c):
    return c[:3] + "." + c[3:] if len(c) > 3 else c


class Ctx:
    pass


def patient(s, gender, birth):
    r = s.post("/Patient", {"resourceType": "Patient", "gender": gender, "birthDate": birth,
                            "name": [{"family": "Codetestova", "given": ["Marta"]}]})
    check(r.status == 201, "patient: %r" % r)
    return r.json["id"]


def years_before(date, years):
    y = int(date[:4]) - years
    return "%04d%s" % (y, date[4:])


def claim(pid, dx=(), px=(), start="2016-03-01", end="2016-03-10", inst=True, poa="y", lines=()):
    c = {"resourceType": "Claim", "status": "active", "use": "claim",
         "type": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/claim-type",
                              "code": "institutional" if inst else "professional"}]},
         "patient": {"reference": "Patient/" + pid},
         "billablePeriod": {"start": start, "end": end}, "created": end,
         "provider": {"reference": "Organization/x"}, "priority": {"coding": [{"code": "normal"}]},
         "insurance": [{"sequence": 1, "focal": True, "coverage": {"reference": "Coverage/x"}}]}
    if dx:
        c["diagnosis"] = []
        for i, d in enumerate(dx):
            e = {"sequence": i + 1, "diagnosisCodeableConcept": {"coding": [{"system": CM, "code": d}]}}
            if i == 0:
                e["type"] = [{"coding": [{"code": "principal"}]}]
            p = poa if not isinstance(poa, dict) else poa.get(d, "y")
            if p is not None:
                e["onAdmission"] = {"coding": [{"code": p}]}
            c["diagnosis"].append(e)
    if px:
        c["procedure"] = [{"sequence": i + 1, "date": start,
                           "procedureCodeableConcept": {"coding": [{"system": PCS, "code": p}]}}
                          for i, p in enumerate(px)]
    if lines:
        c["item"] = [{"sequence": i + 1, "productOrService": {"coding": [{"system": sys, "code": code}]},
                      "servicedDate": d} for i, (sys, code, d) in enumerate(lines)]
    return c


def edits(s, c, token="admin"):
    r = s.post("/Claim/$code-edits", c, token=token)
    check(r.status == 200 and r.json["resourceType"] == "OperationOutcome", "code-edits: %r" % r)
    ids = []
    for i in r.json["issue"]:
        codes = (i.get("details") or {}).get("coding") or []
        if codes:
            ids.append((codes[0]["code"], i.get("extension", [{}])[0].get("valueCoding", {}).get("code")))
    return ids, r.json


def fired(ids, edit, code=None):
    return any(e == edit and (code is None or c == code) for e, c in ids)


def t_edit_setup(s, ctx):
    ctx.lists = mce_lists()
    ctx.cm = cm_billable(s)
    ctx.pcs = pcs_valid(s)
    ctx.pick = {}
    for (kind, t), codes in ctx.lists.items():
        pool = ctx.cm if t == "D" else ctx.pcs
        ok = [c for c in codes if c in pool]
        check(ok, "no %s %s code of MCE v37 is in the loaded code sets" % (kind, t))
        ctx.pick[(kind, t)] = ok[0]
    # a plain code on no list, for the "right" side
    ctx.plain = "J18.9"  # pneumonia: on no MCE list
    check(not any("J189" in v for v in ctx.lists.values()), "J18.9 is on an MCE list")
    ctx.plain_px = next(c for c in sorted(ctx.pcs) if not any(c in v for (k, t), v in ctx.lists.items() if t == "P"))
    dos = "2016-03-01"
    ctx.pt = {
        ("M", 45): patient(s, "male", years_before(dos, 45)),
        ("F", 45): patient(s, "female", years_before(dos, 45)),
        ("F", 30): patient(s, "female", years_before(dos, 30)),
        ("F", 60): patient(s, "female", years_before(dos, 60)),
        ("M", 0): patient(s, "male", "2016-01-15"),
        ("M", 10): patient(s, "male", years_before(dos, 10)),
        ("F", 5): patient(s, "female", years_before(dos, 5)),
        ("M", 65): patient(s, "male", years_before("2018-03-01", 65)),
        ("M", 50): patient(s, "male", years_before("2018-03-01", 50)),
    }


# (edit type, code type, edit id, wrong patient, right patient, principal only)
MCE_DX = [
    ("Newborn_Only", "MCE-4A", ("M", 45), ("M", 0)),
    ("Pediatric_Only", "MCE-4B", ("M", 45), ("M", 10)),
    ("Maternity_Only", "MCE-4C", ("F", 60), ("F", 30)),
    ("Adult_Only", "MCE-4D", ("F", 5), ("F", 30)),
    ("Female_Only", "MCE-5A", ("M", 45), ("F", 45)),
    ("Male_Only", "MCE-5C", ("F", 45), ("M", 45)),
]


def t_mce_age_sex_dx(s, ctx):
    for kind, edit, wrong, right in MCE_DX:
        code = ctx.pick[(kind, "D")]
        ids, _ = edits(s, claim(ctx.pt[wrong], dx=[ctx.plain, dotted(code)]))
        check(fired(ids, edit, dotted(code)), "%s %s must fire for %r: %r" % (edit, code, wrong, ids))
        ids, _ = edits(s, claim(ctx.pt[right], dx=[ctx.plain, dotted(code)]))
        check(not fired(ids, edit), "%s %s must not fire for %r: %r" % (edit, code, right, ids))


MCE_PRINCIPAL = [("Principal_Manifestation", "MCE-6"), ("Principal_Questionable_Admit", "MCE-8A"),
                 ("Principal_Unacceptable", "MCE-9")]


def t_mce_principal(s, ctx):
    for kind, edit in MCE_PRINCIPAL:
        code = dotted(ctx.pick[(kind, "D")])
        ids, _ = edits(s, claim(ctx.pt[("F", 45)], dx=[code, ctx.plain]))
        check(fired(ids, edit, code), "%s %s as principal must fire: %r" % (edit, code, ids))
        ids, _ = edits(s, claim(ctx.pt[("F", 45)], dx=[ctx.plain, code]))
        check(not fired(ids, edit), "%s %s as secondary must not fire: %r" % (edit, code, ids))


def t_principal_by_type(s, ctx):
    # the principal is the diagnosis typed so, wherever it is in the list
    code = dotted(ctx.pick[("Principal_Unacceptable", "D")])
    c = claim(ctx.pt[("F", 45)], dx=[ctx.plain, code])
    del c["diagnosis"][0]["type"]
    c["diagnosis"][1]["type"] = [{"coding": [{"code": "principal"}]}]
    ids, _ = edits(s, c)
    check(fired(ids, "MCE-9", code), "typed principal at sequence 2: %r" % ids)


def t_mce_wrong_performed(s, ctx):
    code = dotted(ctx.pick[("Wrong_Performed", "D")])
    ids, _ = edits(s, claim(ctx.pt[("F", 45)], dx=[ctx.plain, code]))
    check(fired(ids, "MCE-18", code), "MCE-18 must fire for %s: %r" % (code, ids))
    ids, _ = edits(s, claim(ctx.pt[("F", 45)], dx=[ctx.plain, "E11.9"]))
    check(not fired(ids, "MCE-18"), "MCE-18 without the code: %r" % ids)


# procedures: FY2018 (the PCS table loaded)
MCE_PX = [
    ("Female_Only", "MCE-5B", ("M", 50), ("F", 45)),
    ("Male_Only", "MCE-5D", ("F", 45), ("M", 50)),
    ("Noncovered_Over60", "MCE-11F", ("M", 65), ("M", 50)),
]


def pxclaim(pid, code, start="2018-03-01", end="2018-03-10"):
    return claim(pid, px=[code], start=start, end=end, inst=True)


def t_mce_px(s, ctx):
    for kind, edit, wrong, right in MCE_PX:
        code = ctx.pick[(kind, "P")]
        ids, _ = edits(s, pxclaim(ctx.pt[wrong], code))
        check(fired(ids, edit, code), "%s %s must fire for %r: %r" % (edit, code, wrong, ids))
        ids, _ = edits(s, pxclaim(ctx.pt[right], code))
        check(not fired(ids, edit), "%s %s must not fire for %r: %r" % (edit, code, right, ids))
    for kind, edit in (("Noncovered_Always", "MCE-11A"), ("Limited_Coverage", "MCE-17A")):
        code = ctx.pick[(kind, "P")]
        ids, _ = edits(s, pxclaim(ctx.pt[("M", 50)], code))
        check(fired(ids, edit, code), "%s %s must fire: %r" % (edit, code, ids))
        ids, _ = edits(s, pxclaim(ctx.pt[("M", 50)], ctx.plain_px))
        check(not fired(ids, edit), "%s must not fire for %s: %r" % (edit, ctx.plain_px, ids))
    code = ctx.pick[("Noncovered_LOS_96hr", "P")]
    ids, _ = edits(s, pxclaim(ctx.pt[("M", 50)], code, "2018-03-01", "2018-03-03"))
    check(fired(ids, "MCE-19", code), "MCE-19 must fire for a 2-day stay: %r" % ids)
    ids, _ = edits(s, pxclaim(ctx.pt[("M", 50)], code, "2018-03-01", "2018-03-08"))
    check(not fired(ids, "MCE-19"), "MCE-19 must not fire for a 7-day stay: %r" % ids)


def t_poa(s, ctx):
    exempt = None
    with open(POA) as f:
        next(f)
        for line in f:
            c = line.split("\t")[1].replace(".", "")
            if c in ctx.cm:
                exempt = c
                break
    pid = ctx.pt[("F", 45)]
    ids, _ = edits(s, claim(pid, dx=["J18.9", "E11.9"], poa={"J18.9": "y", "E11.9": None}))
    check(fired(ids, "POA-MISSING", "E11.9") and not fired(ids, "POA-MISSING", "J18.9"), "POA missing: %r" % ids)
    ids, _ = edits(s, claim(pid, dx=["J18.9", "E11.9"], poa={"E11.9": "x"}))
    check(fired(ids, "POA-INVALID", "E11.9"), "POA invalid: %r" % ids)
    ids, _ = edits(s, claim(pid, dx=["J18.9", dotted(exempt)], poa={dotted(exempt): None}))
    check(not fired(ids, "POA-MISSING"), "POA-exempt %s: %r" % (exempt, ids))
    ids, _ = edits(s, claim(pid, dx=["J18.9", "E11.9"], poa=None, inst=False))
    check(not fired(ids, "POA-MISSING"), "professional claims need no POA: %r" % ids)


def t_code_validity(s, ctx):
    pid = ctx.pt[("F", 45)]
    ids, out = edits(s, claim(pid, dx=["E11.9", "E11", "E11.99", "E11.9"]))
    check(fired(ids, "CODE-HEADER", "E11"), "header: %r" % ids)
    check(fired(ids, "CODE-INVALID", "E11.99"), "invalid: %r" % ids)
    check(fired(ids, "CODE-DUPLICATE", "E11.9"), "duplicate: %r" % ids)
    exprs = [i.get("expression", [""])[0] for i in out["issue"]]
    check("Claim.diagnosis[1].diagnosisCodeableConcept" in exprs, "expressions: %r" % exprs)
    ids, _ = edits(s, claim(pid, dx=["E11.9"], start="2014-01-01", end="2014-01-05"))
    check(fired(ids, "CODE-NO-VERSION", "E11.9"), "date outside every version: %r" % ids)
    ids, _ = edits(s, claim(pid, dx=["E11.9"], start="2019-03-01", end="2019-03-05", inst=False,
                            lines=[(HCPCS, "A4466", "2019-03-01"), (HCPCS, "G0008", "2019-03-01")]))
    check(fired(ids, "CODE-INVALID", "A4466") and not fired(ids, "CODE-INVALID", "G0008"), "HCPCS dates: %r" % ids)
    ids, out = edits(s, claim(pid, dx=["J18.9", "E11.9"]))
    check(ids == [] and out["issue"][-1]["severity"] == "information", "clean claim: %r" % out)


def t_stored_and_encounter(s, ctx):
    pid = ctx.pt[("M", 45)]
    r = s.post("/Encounter", {"resourceType": "Encounter", "status": "finished",
                              "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "IMP"},
                              "subject": {"reference": "Patient/" + pid},
                              "period": {"start": "2016-03-01T08:00:00Z", "end": "2016-03-05T10:00:00Z"}})
    check(r.status == 201, "encounter: %r" % r)
    eid = r.json["id"]
    c = claim(pid, dx=["J18.9", dotted(ctx.pick[("Female_Only", "D")])])
    c["item"] = [{"sequence": 1, "productOrService": {"coding": [{"system": HCPCS, "code": "G0008"}]},
                  "servicedDate": "2016-03-02", "encounter": [{"reference": "Encounter/" + eid}]}]
    r = s.post("/Claim", c)
    check(r.status == 201, "claim: %r" % r)
    cid = r.json["id"]
    r = s.post("/Claim/$code-edits?claim=Claim/" + cid, None)
    check(r.status == 200 and "MCE-5A" in r.body.decode(), "?claim=: %r" % r)
    r = s.get("/Encounter/%s/$code-edits" % eid)
    check(r.status == 200 and "MCE-5A" in r.body.decode(), "encounter: %r" % r)
    check(("Claim/%s.diagnosis[1]" % cid) in r.body.decode(), "encounter issues name the claim: %r" % r)
    r = s.get("/Encounter/nope/$code-edits")
    check(r.status == 404, "unknown encounter: %r" % r)
    r = s.post("/Claim/$code-edits?claim=Claim/nope", None)
    check(r.status == 404, "unknown claim: %r" % r)
    r = s.post("/Claim/$code-edits?claim=Patient/" + pid, None)
    check(r.status == 400, "not a claim reference: %r" % r)
    r = s.post("/Claim/$code-edits", {"resourceType": "Patient"})
    check(r.status == 400, "a Patient body: %r" % r)
    r = s.post("/Claim/$code-edits", None)
    check(r.status == 400, "no claim: %r" % r)
    r = s.post("/Claim/$code-edits", {"resourceType": "Parameters", "parameter": [{"name": "resource", "resource": c}]})
    check(r.status == 200 and "MCE-5A" in r.body.decode(), "Parameters body: %r" % r)
    ctx.eid, ctx.cid, ctx.epid = eid, cid, pid
    # an encounter not billed yet: its Conditions and Procedures are checked
    r = s.post("/Encounter", {"resourceType": "Encounter", "status": "finished",
                              "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "IMP"},
                              "subject": {"reference": "Patient/" + pid},
                              "period": {"start": "2016-04-01", "end": "2016-04-03"}})
    check(r.status == 201, "encounter 2: %r" % r)
    e2 = r.json["id"]
    conds = []
    for code in ("J18.9", dotted(ctx.pick[("Female_Only", "D")]), "E11"):
        r = s.post("/Condition", {"resourceType": "Condition", "subject": {"reference": "Patient/" + pid},
                                  "encounter": {"reference": "Encounter/" + e2},
                                  "code": {"coding": [{"system": CM, "code": code}]}})
        check(r.status == 201, "condition: %r" % r)
        conds.append(r.json["id"])
    enc = s.get("/Encounter/" + e2).json
    enc["diagnosis"] = [{"condition": {"reference": "Condition/" + c}, "rank": i + 1} for i, c in enumerate(conds)]
    r = s.put("/Encounter/" + e2, enc)
    check(r.status == 200, "encounter diagnoses: %r" % r)
    r = s.get("/Encounter/%s/$code-edits" % e2)
    check(r.status == 200, "unbilled encounter: %r" % r)
    ids = [((i.get("details") or {}).get("coding") or [{}])[0].get("code") for i in r.json["issue"]]
    body = r.body.decode()
    check("MCE-5A" in ids and "CODE-HEADER" in ids, "unbilled encounter edits: %r" % ids)
    check(("Condition/%s.code" % conds[1]) in body, "issues name the Condition: %r" % body[:400])
    check("POA-MISSING" not in ids, "no POA edits without a claim: %r" % ids)



def issues_text(out):
    return [i.get("diagnostics", "") for i in out["issue"]]


def t_patient_as_of(s, ctx):
    """Age and sex come from the Patient version in force on the date of
    service: a record corrected later does not change an earlier claim."""
    male_only = dotted(ctx.pick[("Male_Only", "D")])
    female_only = dotted(ctx.pick[("Female_Only", "D")])
    pediatric = dotted(ctx.pick[("Pediatric_Only", "D")])
    r = s.post("/Patient", {"resourceType": "Patient", "gender": "female", "birthDate": "2016-01-15",
                            "name": [{"family": "Codetestova", "given": ["Marta"]}]})
    check(r.status == 201, "patient: %r" % r)
    pid, v1 = r.json["id"], r.json["meta"]["lastUpdated"]
    time.sleep(0.05)  # the correction is recorded strictly later than v1
    fixed = dict(r.json, gender="male", birthDate="1970-01-15")
    r = s.put("/Patient/" + pid, fixed)
    check(r.status == 200 and r.json["meta"]["versionId"] == "2", "correction: %r" % r)
    v2 = r.json["meta"]["lastUpdated"]
    check(v2 > v1, "versions recorded in order: %s %s" % (v1, v2))
    dx = ["J18.9", male_only, female_only, pediatric]
    # served when version 1 was in force (to the millisecond): a girl
    ids, out = edits(s, claim(pid, dx=dx, start=v1, end=v1))
    check(fired(ids, "MCE-5C", male_only), "version 1 (female): MCE-5C must fire: %r" % ids)
    check(not fired(ids, "MCE-5A", female_only), "version 1 (female): MCE-5A must not fire: %r" % ids)
    check(not fired(ids, "MCE-4B", pediatric), "version 1 (aged 10): MCE-4B must not fire: %r" % ids)
    text = issues_text(out)
    check(any("changed after the date of service" in t and "version 1" in t and "current version is 2" in t
              for t in text), "the correction is noted: %r" % text)
    # served after the correction: a man born in 1970
    ids, out = edits(s, claim(pid, dx=dx, start="2099-01-01", end="2099-01-05"))
    check(fired(ids, "MCE-5A", female_only) and not fired(ids, "MCE-5C", male_only),
          "version 2 (male): %r" % ids)
    check(fired(ids, "MCE-4B", pediatric), "version 2 (born 1970): MCE-4B must fire: %r" % ids)
    check(not any("changed after" in t for t in issues_text(out)), "no note when current: %r" % out)
    # served before the Patient was registered: its earliest version, said so
    ids, out = edits(s, claim(pid, dx=dx))
    check(fired(ids, "MCE-5C", male_only) and not fired(ids, "MCE-5A", female_only),
          "before any version: the earliest (female): %r" % ids)
    text = issues_text(out)
    check(any("no version of the Patient existed on the date of service 2016-03-10" in t and
              "earliest version (1," in t for t in text), "the fallback is said: %r" % text)
    check(any(t.startswith("MCE-5C") and "earliest version" in t for t in text),
          "the sex edit says where the sex came from: %r" % text)
    # a date without a time is the whole day: a version recorded that day counts
    ids, out = edits(s, claim(pid, dx=dx, start=v2[:10], end=v2[:10]))
    check(fired(ids, "MCE-5A", female_only), "a date of service is its whole day: %r" % ids)
    # an Encounter not billed yet: its period decides
    r = s.post("/Encounter", {"resourceType": "Encounter", "status": "finished",
                              "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "IMP"},
                              "subject": {"reference": "Patient/" + pid}, "period": {"start": v1, "end": v1}})
    check(r.status == 201, "encounter: %r" % r)
    eid = r.json["id"]
    r = s.post("/Condition", {"resourceType": "Condition", "subject": {"reference": "Patient/" + pid},
                              "code": {"coding": [{"system": CM, "code": male_only}]}})
    check(r.status == 201, "condition: %r" % r)
    enc = s.get("/Encounter/" + eid).json
    enc["diagnosis"] = [{"condition": {"reference": "Condition/" + r.json["id"]}, "rank": 1}]
    check(s.put("/Encounter/" + eid, enc).status == 200, "encounter diagnosis")
    r = s.get("/Encounter/%s/$code-edits" % eid)
    check(r.status == 200 and "MCE-5C" in r.body.decode(), "encounter in version 1's time: %r" % r)
    # a Patient deleted since: not known, as before
    check(s.request("DELETE", "/Patient/" + pid).status in (200, 204), "delete")
    ids, out = edits(s, claim(pid, dx=dx, start=v1, end=v1))
    check(not fired(ids, "MCE-5C") and any("not known" in t for t in issues_text(out)),
          "a deleted Patient: %r" % out)


def t_hcpcs_modifiers(s, ctx):
    """HCPCS modifiers are loaded with the codes: $lookup finds them, and a
    claim line's modifiers are checked for its date of service."""
    r = s.get(q("/CodeSystem/$lookup", system=HCPCS, code="lt"))
    check(r.status == 200 and params(r)["display"].startswith("Left side"), "$lookup LT: %r" % r)
    pid = ctx.pt[("M", 45)]

    def line(code, mods, date="2019-06-01"):
        it = {"sequence": 1, "productOrService": {"coding": [{"system": HCPCS, "code": code}]},
              "servicedDate": date,
              "modifier": [{"coding": [{"system": sys, "code": m}]} for sys, m in mods]}
        c = claim(pid, start=date, end=date, inst=False)
        c["item"] = [it]
        return c

    ids, out = edits(s, line("G0008", [(HCPCS, "LT"), (HCPCS, "rt")]))
    check(not any(e.startswith("CODE-") for e, _ in ids), "valid modifiers: %r" % out)
    ids, out = edits(s, line("G0008", [(HCPCS, "ZZ"), (HCPCS, "L1"), (HCPCS, "G0008"), (CPT, "25")]))
    body = json.dumps(out)
    check(fired(ids, "CODE-INVALID", "ZZ"), "unknown modifier: %r" % ids)
    check(fired(ids, "CODE-INVALID", "L1") and "terminated on 2016-12-31" in body, "terminated modifier: %r" % ids)
    check(fired(ids, "CODE-INVALID", "G0008") and "is not an HCPCS modifier" in body, "a code as modifier: %r" % ids)
    check("Claim.item[0].modifier[1]" in body, "the modifier's element is named: %r" % body[:300])
    check(not fired(ids, "CODE-INVALID", "25"), "CPT modifiers are not HCPCS's to check: %r" % ids)
    ids, out = edits(s, line("LT", []))
    check(fired(ids, "CODE-INVALID", "LT") and "put it in item.modifier" in json.dumps(out),
          "a modifier as the service: %r" % ids)
    ids, out = edits(s, line("G0008", [(HCPCS, "LT")], date="2010-06-01"))
    check(fired(ids, "CODE-NO-VERSION", "LT"), "no HCPCS version for 2010: %r" % ids)


def edit_case(s, path):
    case = json.load(open(path))
    pid = patient(s, case["patient"]["gender"], case["patient"]["birthDate"])
    body = json.loads(json.dumps(case["claim"]).replace("{{patient}}", pid))
    ids, out = edits(s, body)
    for edit, code in case["fire"]:
        check(fired(ids, edit, code), "%s must fire for %s: %r" % (edit, code, ids))
    for edit, code in case["quiet"]:
        check(not fired(ids, edit, code), "%s must not fire for %s: %r" % (edit, code, ids))


def t_edits_policy_audit(s, ctx):
    c = claim(ctx.pt[("M", 45)], dx=["J18.9"])
    r = s.post("/Claim/$code-edits", c, token="clerk")
    check(r.status == 403, "a registration clerk may not read claims: %r" % r)
    r = s.post("/Claim/$code-edits", c, token="coder")
    check(r.status == 200, "coder: %r" % r)
    r = s.get("/Encounter/%s/$code-edits" % ctx.eid, token="billing")
    check(r.status == 200, "billing: %r" % r)
    r = s.post("/Claim/$code-edits", c, token=None)
    check(r.status == 401, "no token: %r" % r)
    conn = sqlite3.connect(s.db)
    try:
        rows = [e for (e,) in conn.execute("SELECT entry FROM audit_log ORDER BY seq DESC LIMIT 50")]
    finally:
        conn.close()
    hits = [e for e in rows if "$code-edits" in e and ("Patient/" + ctx.epid) in e]
    check(hits, "$code-edits reads must be audited naming the patient")
    log = "".join(s.log)
    check("Codetestova" not in log and "Marta" not in log, "patient data in the log")


def suite(binary, start_server):
    st = Suite("codes")
    s = start_server(binary)
    for name, role in (("clerk", "registration_clerk"), ("coder", "coder"), ("billing", "billing")):
        s.add_user(name, role)
    for name in ("clerk", "coder", "billing", "tech"):
        s.tokens[name] = s.issue_token(name)
    ctx = Ctx()
    try:
        st.run("full load counts", t_full_counts, s)
        st.run("reload is idempotent", t_reload_idempotent, s)
        st.run("order files and a 7th character", t_order_files, s)
        st.run("site-supplied CPT", t_cpt, s)
        st.run("malformed lines commit nothing", t_malformed, s)
        st.run("load errors", t_cli_errors, s)
        st.run("$lookup", t_lookup, s)
        st.run("$lookup errors", t_lookup_errors, s)
        st.run("$validate-code", t_validate, s)
        st.run("$expand type-ahead", t_expand, s)
        st.run("$expand errors", t_expand_errors, s)
        st.run("terminology for every staff role", t_auth, s)
        st.run("edit set-up", t_edit_setup, s, ctx)
        st.run("MCE age and sex (diagnoses)", t_mce_age_sex_dx, s, ctx)
        st.run("MCE principal diagnosis edits", t_mce_principal, s, ctx)
        st.run("MCE wrong procedure performed", t_mce_wrong_performed, s, ctx)
        st.run("the principal diagnosis by its type", t_principal_by_type, s, ctx)
        st.run("MCE procedure edits", t_mce_px, s, ctx)
        st.run("POA indicators", t_poa, s, ctx)
        st.run("invalid, header, duplicate codes", t_code_validity, s, ctx)
        st.run("stored claims and encounters", t_stored_and_encounter, s, ctx)
        st.run("policy and audit", t_edits_policy_audit, s, ctx)
        st.run("the Patient as of the date of service", t_patient_as_of, s, ctx)
        st.run("HCPCS modifiers", t_hcpcs_modifiers, s, ctx)
        d = os.path.join(DATA, "edits")
        for f in sorted(os.listdir(d)):
            if f.endswith(".json"):
                st.run("edit case " + f[:-5], edit_case, s, os.path.join(d, f))
    finally:
        s.cleanup()
    return st.summary()
