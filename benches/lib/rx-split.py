"""Splits `perf script -F ip,sym` samples (with call chains) of one process into user
space, the process's own kernel work, and network receive processing.

On loopback a packet is received (IP, TCP, the peer socket's queues, waking the reader)
in the context of the task that sent it, so the receiving side's work for every packet a
process sends is charged to that process. A sample whose kernel stack passes through the
receive path is counted as receive processing. Prints the three fractions and the
number of samples: "user own rx total".
"""
import sys

RX = {"process_backlog", "__netif_receive_skb", "__netif_receive_skb_core",
      "__netif_receive_skb_one_core", "ip_rcv", "ipv6_rcv"}
# x86-64 kernel addresses are in the upper half of the address space.
KERNEL_START = 0xFFFF800000000000

counts = {"user": 0, "own": 0, "rx": 0}
frames = []


def flush():
    if not frames:
        return
    leaf_ip, _ = frames[0]
    if any(sym.split("+")[0] in RX for _, sym in frames):
        counts["rx"] += 1
    elif leaf_ip >= KERNEL_START:
        counts["own"] += 1
    else:
        counts["user"] += 1
    frames.clear()


for line in open(sys.argv[1], errors="replace"):
    parts = line.split(None, 1)
    if not parts:
        flush()
        continue
    try:
        ip = int(parts[0], 16)
    except ValueError:
        continue
    frames.append((ip, parts[1].strip() if len(parts) > 1 else "?"))
flush()
total = sum(counts.values()) or 1
print(" ".join(f"{counts[k] / total:.4f}" for k in ("user", "own", "rx")), total)
