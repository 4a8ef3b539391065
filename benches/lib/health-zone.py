"""Writes the zone of the health-check benchmarks (health-scale.sh, health-callgrind.sh)
to standard output: NODES nodes in pools of 50, each node its own probe (check_host
differs) pointed with check_addr at one of the BACKENDS in turn, all checked with
`[checks.web]` whose body is CHECK.

    python3 health-zone.py NODES CHECK BACKEND...
"""
import sys

nodes, check, backends = int(sys.argv[1]), sys.argv[2], sys.argv[3:]
print('origin = "hc.test."\nttl = 300\n[soa]\nmname = "ns1"\nrname = "hostmaster"\n'
      '[names."@"]\nNS = "ns1"\n[names.ns1]\nA = "192.0.2.53"\n')
print(f'[checks.web]\n{check}\n')
PER = 50
for p in range((nodes + PER - 1) // PER):
    print(f'[pools.p{p}]\ncheck = "web"\nnodes = [')
    for i in range(p * PER, min(nodes, (p + 1) * PER)):
        print(f'  {{ addr = "10.{i >> 16 & 255}.{i >> 8 & 255}.{i & 255}", '
              f'check_addr = "{backends[i % len(backends)]}", check_host = "n{i}.hc.test" }},')
    print(']\n')
