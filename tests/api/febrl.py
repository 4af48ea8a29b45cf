"""FEBRL data sets as FHIR Patients, and precision / recall / F1 of a
`chartkeep mpi scan` against their true pairs (tests/data/mpi/)."""
import csv
import datetime
import json
import os
import subprocess

DATA = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "data", "mpi")


def patients(path):
    """The records of a FEBRL CSV as FHIR Patient resources."""
    with open(path, newline="") as f:
        rows = list(csv.reader(f, skipinitialspace=True))
    head = [h.strip() for h in rows[0]]
    for row in rows[1:]:
        r = dict(zip(head, (c.strip() for c in row)))
        p = {"resourceType": "Patient", "id": r["rec_id"]}
        name = {}
        if r["surname"]:
            name["family"] = r["surname"]
        if r["given_name"]:
            name["given"] = [r["given_name"]]
        if name:
            p["name"] = [name]
        try:
            d = datetime.date(int(r["date_of_birth"][:4]), int(r["date_of_birth"][4:6]),
                              int(r["date_of_birth"][6:8]))
            p["birthDate"] = d.isoformat()
        except ValueError:
            pass  # a registration system refuses an impossible date
        line1 = " ".join(x for x in (r["street_number"], r["address_1"]) if x)
        addr = {}
        lines = [x for x in (line1, r["address_2"]) if x]
        if lines:
            addr["line"] = lines
        for k, v in (("city", "suburb"), ("postalCode", "postcode"), ("state", "state")):
            if r[v]:
                addr[k] = r[v]
        if addr:
            p["address"] = [addr]
        if r["soc_sec_id"]:
            p["identifier"] = [{"system": "urn:oid:2.16.840.1.113883.4.1.99", "value": r["soc_sec_id"]}]
        yield p


def truth(path):
    with open(path, newline="") as f:
        rows = list(csv.reader(f))
    return {tuple(sorted((a.strip(), b.strip()))) for a, b in rows[1:]}


def load(binary, db, n):
    """A new database with data set n imported."""
    subprocess.run([binary, "init", "--db", db], check=True, capture_output=True)
    nd = db + ".ndjson"
    with open(nd, "w") as f:
        for p in patients(os.path.join(DATA, "dataset%d.csv" % n)):
            f.write(json.dumps(p) + "\n")
    subprocess.run([binary, "import", "--db", db, nd], check=True, capture_output=True)
    os.unlink(nd)


def scan(binary, db, train=False):
    if train:
        subprocess.run([binary, "mpi", "train", "--db", db], check=True, capture_output=True)
    p = subprocess.run([binary, "mpi", "scan", "--db", db], check=True, capture_output=True, text=True)
    out = []
    for line in p.stdout.splitlines():
        a, b, score, decision = line.split(",")
        out.append((a, b, float(score), decision))
    return out


def score(pairs, true, decisions=("link",)):
    found = {(a, b) for a, b, _, d in pairs if d in decisions}
    tp = len(found & true)
    precision = tp / len(found) if found else 0.0
    recall = tp / len(true) if true else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return precision, recall, f1, tp, len(found)
