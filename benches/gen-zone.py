#!/usr/bin/env python3
"""Generates a large Roundel zone for the zone-size benchmarks (benches/zone-scale.sh).

    benches/gen-zone.py NAMES OUT.toml [--origin big.test.]

NAMES owner names under the origin, deterministic (same NAMES, same file): per 100 names
about 55 with A, 15 with AAAA, 10 with TXT, 8 with MX (to a name of the zone), 10 CNAME
(to an earlier name), 1 wildcard with A, and 1 delegation (NS with in-zone glue). Names
are spread over 256 subtrees (`hNN`), so the zone has empty non-terminals and depth too.
The same data goes to Knot and NSD through `roundel export`.
"""
import argparse
import sys


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("names", type=int)
    ap.add_argument("out")
    ap.add_argument("--origin", default="big.test.")
    a = ap.parse_args()
    with open(a.out, "w") as f:
        w = f.write
        w(f'origin = "{a.origin}"\nttl = 3600\n\n[soa]\nmname = "ns1"\nrname = "hostmaster"\n'
          'serial = 1\nminimum = 60\n\n[names."@"]\nNS = ["ns1", "ns2"]\n\n'
          '[names.ns1]\nA = "192.0.2.53"\n\n[names.ns2]\nA = "192.0.2.54"\n\n')
        for i in range(a.names):
            sub = f"h{i % 256:02x}"
            name = f"n{i}.{sub}"
            k = i % 100
            w(f'[names."{name if k != 99 else "*." + name}"]\n')
            if k < 55:
                w(f'A = "10.{(i >> 16) & 255}.{(i >> 8) & 255}.{i & 255}"\n')
            elif k < 70:
                w(f'AAAA = "2001:db8::{i >> 16:x}:{i & 0xffff:x}"\n')
            elif k < 80:
                w(f'TXT = "v=spf1 ip4:10.{(i >> 8) & 255}.{i & 255}.0/24 -all id{i}"\n')
            elif k < 88:
                w(f'MX = ["10 n{i - k}.h{(i - k) % 256:02x}", "20 ns1"]\n')
            elif k < 98:
                w(f'CNAME = "n{i - k}.h{(i - k) % 256:02x}"\n')
            elif k == 98:
                # a delegation; its glue is the next entry
                w(f'NS = ["ns.{name}"]\n\n[names."ns.{name}"]\nA = "192.0.2.{i % 250 + 1}"\n')
            else:
                w(f'A = "10.99.{(i >> 8) & 255}.{i & 255}"\n')
            w("\n")


if __name__ == "__main__":
    sys.exit(main())
