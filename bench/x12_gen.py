#!/usr/bin/env python3
"""bench/x12_gen.py - a large, valid 837P (005010X222A1) batch for bench/x12.

usage: bench/x12_gen.py OUT MEGABYTES [SEED]

One interchange, one functional group, transaction sets of 2,500 claims each
(under the guide's 5,000-claim limit), each claim a subscriber-patient with
1-6 service lines, realistic and deterministic from the seed.  Every
transaction set is valid against the guide: `chartkeep x12 validate` must
accept them all (bench/x12 checks that it does)."""
import random
import sys

FIRST = "JAMES MARY JOHN PATRICIA ROBERT JENNIFER MICHAEL LINDA DAVID ELIZABETH WILLIAM BARBARA".split()
LAST = "SMITH JOHNSON WILLIAMS BROWN JONES GARCIA MILLER DAVIS RODRIGUEZ MARTINEZ HERNANDEZ LOPEZ".split()
CITY = [("MIAMI", "FL", "33111"), ("AUSTIN", "TX", "78701"), ("DENVER", "CO", "80202"),
        ("BOSTON", "MA", "02108"), ("SEATTLE", "WA", "98101"), ("CHICAGO", "IL", "60601")]
CPT = "99213 99214 99203 87070 86663 93000 71046 80053 85025 36415 90471 99396".split()
ICD = "J069 I10 E119 M545 R51 Z0000 J209 K219 N390 R05 E785 F419".split()
POS = "11 22 23 02".split()


def claims(rnd, n, first_hl):
    out = []
    hl = first_hl
    for i in range(n):
        hl += 1
        fn, ln = rnd.choice(FIRST), rnd.choice(LAST)
        city, st, zip5 = rnd.choice(CITY)
        lines = rnd.randint(1, 6)
        charges = [rnd.randint(20, 400) for _ in range(lines)]
        total = sum(charges)
        dx = rnd.sample(ICD, rnd.randint(1, 4))
        y, m, d = 2024, rnd.randint(1, 12), rnd.randint(1, 28)
        out.append("HL*%d*1*22*0~" % hl)
        out.append("SBR*P*18*GRP%05d******CI~" % rnd.randint(0, 99999))
        out.append("NM1*IL*1*%s*%s****MI*M%09d~" % (ln, fn, rnd.randint(0, 999999999)))
        out.append("N3*%d %s ST~" % (rnd.randint(1, 9999), rnd.choice(LAST)))
        out.append("N4*%s*%s*%s~" % (city, st, zip5))
        out.append("DMG*D8*%04d%02d%02d*%s~" % (rnd.randint(1930, 2020), rnd.randint(1, 12), rnd.randint(1, 28), rnd.choice("FM")))
        out.append("NM1*PR*2*KEY INSURANCE COMPANY*****PI*999996666~")
        out.append("CLM*C%08d*%d.00***%s:B:1*Y*A*Y*Y~" % (first_hl * 10 + i, total, rnd.choice(POS)))
        out.append("HI*" + "*".join(("ABK:" if k == 0 else "ABF:") + c for k, c in enumerate(dx)) + "~")
        for k, c in enumerate(charges, 1):
            out.append("LX*%d~" % k)
            out.append("SV1*HC:%s*%d.00*UN*1***1~" % (rnd.choice(CPT), c))
            out.append("DTP*472*D8*%04d%02d%02d~" % (y, m, d))
    return out, hl


def main():
    if len(sys.argv) < 3:
        sys.exit(__doc__)
    path, mb = sys.argv[1], float(sys.argv[2])
    rnd = random.Random(int(sys.argv[3]) if len(sys.argv) > 3 else 1)
    target = int(mb * 1e6)
    n_st = 0
    with open(path, "w", newline="") as f:
        f.write("ISA*00*          *00*          *ZZ*CHARTKEEPBENCH *ZZ*PAYER          *240301*1200*^*00501*000000001*0*P*:~\n")
        f.write("GS*HC*CHARTKEEPBENCH*PAYER*20240301*1200*1*X*005010X222A1~\n")
        while f.tell() < target:
            n_st += 1
            segs = ["ST*837*%04d*005010X222A1~" % n_st,
                    "BHT*0019*00*B%07d*20240301*1200*CH~" % n_st,
                    "NM1*41*2*CHARTKEEP BENCH CLINIC*****46*TGJ23~",
                    "PER*IC*BILLING OFFICE*TE*5555552222~",
                    "NM1*40*2*KEY INSURANCE COMPANY*****46*66783JJT~",
                    "HL*1**20*1~",
                    "PRV*BI*PXC*207Q00000X~",
                    "NM1*85*2*BENCH MEDICAL GROUP*****XX*1912301953~",
                    "N3*234 SEAWAY ST~", "N4*MIAMI*FL*331110000~", "REF*EI*587654321~"]
            body, _ = claims(rnd, 2500, 1)
            segs += body
            segs.append("SE*%d*%04d~" % (len(segs) + 1, n_st))
            f.write("\n".join(segs) + "\n")
        f.write("GE*%d*1~\nIEA*1*000000001~\n" % n_st)
    print(n_st)


if __name__ == "__main__":
    main()
