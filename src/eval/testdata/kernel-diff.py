#!/usr/bin/python3
"""Kernel vs evaluator: which new connections reach the last input chain.

Usage (root, from anywhere):
    src/eval/testdata/kernel-diff.py FIXTURE.nft|gen/SCRIPT.sh ...

For each fixture: a throwaway namespace pair with the standard topology
(tests/fixtures/topology.sh), the fixture loaded, the snapshot dumped
(PORTWARDEN, default target/debug/portwarden), then a table `inet pw_seen`
whose input chain at priority 2147483647 records `saddr . sport` of every
TCP/UDP packet that gets there. The peer sends one SYN or datagram per probe
(9 sources, 28 ports, TCP and UDP, both links; each probe has its own source
port), and "reached the last input chain" is compared with the evaluator's
`accept` (`cargo test --lib eval::tests::evaluate_probe_file -- --ignored`).
Namespaces are always deleted. Exit status 0 when nothing differs.

Known, expected differences: rate limits run out during the burst (the
evaluator assumes a first connection), and socket/tproxy rules are `unknown`
without socket information.
"""
import ipaddress
import json
import os
import subprocess
import sys

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", ".."))
PW = os.environ.get("PORTWARDEN", os.path.join(ROOT, "target/debug/portwarden"))
TOPO = os.path.join(ROOT, "tests/fixtures/topology.sh")
PORTS = [22, 53, 67, 123, 2222, 2500, 2546, 2547, 2548, 2549, 2600, 3000, 3100, 3300, 3301,
         4000, 5000, 6160, 6161, 6162, 6163, 6180, 8086, 10005, 12500, 16162, 16180, 40000]
SRCS = [("192.0.2.2", "pub"), ("192.0.2.66", "pub"), ("10.99.0.2", "priv"), ("10.99.0.200", "priv"),
        ("10.0.0.10", "pub"), ("10.0.0.10", "priv"), ("2001:db8:1::2", "pub"),
        ("2001:db8:1::66", "pub"), ("fd00:99::2", "priv")]
DST = {("pub", 4): "192.0.2.1", ("pub", 6): "2001:db8:1::1",
       ("priv", 4): "10.99.0.1", ("priv", 6): "fd00:99::1"}
SEEN = """
table inet pw_seen {
  set s4 { type ipv4_addr . inet_service; flags dynamic; size 65535; }
  set s6 { type ipv6_addr . inet_service; flags dynamic; size 65535; }
  chain last {
    type filter hook input priority 2147483647; policy accept;
    meta nfproto ipv4 meta l4proto { tcp, udp } add @s4 { ip saddr . th sport }
    meta nfproto ipv6 meta l4proto { tcp, udp } add @s6 { ip6 saddr . th sport }
  }
}
"""
SENDER = r'''
import json, socket, sys, time
keep = []
for line in open(sys.argv[1]):
    p = json.loads(line)
    fam = socket.AF_INET6 if ":" in p["saddr"] else socket.AF_INET
    kind = socket.SOCK_STREAM if p["proto"] == "tcp" else socket.SOCK_DGRAM
    s = socket.socket(fam, kind)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        s.bind((p["saddr"], p["sport"]))
        s.setblocking(False)
        if kind == socket.SOCK_STREAM:
            s.connect_ex((p["daddr"], p["dport"]))
        else:
            s.sendto(b"x" * 8, (p["daddr"], p["dport"]))
    except OSError as e:
        print("send", p, e, file=sys.stderr)
    keep.append(s)
    time.sleep(0.002)
time.sleep(0.5)
'''


def sh(cmd, check=True, **kw):
    return subprocess.run(cmd, shell=True, check=check, capture_output=True, text=True, **kw)


def run_one(fx):
    work = "/tmp/pw-kernel-diff/" + os.path.basename(fx).rsplit(".", 1)[0]
    os.makedirs(work, exist_ok=True)
    host, peer = "pwkd-h-%d" % os.getpid(), "pwkd-p-%d" % os.getpid()
    try:
        sh(". %s; fx_topo_up %s %s" % (TOPO, host, peer))
        for a in ["192.0.2.66/24 dev pw-pub-p", "10.99.0.200/24 dev pw-priv-p",
                  "2001:db8:1::66/64 dev pw-pub-p nodad"]:
            sh("ip -n %s addr add %s" % (peer, a))
        if fx.endswith(".sh"):
            sh("bash %s %s" % (fx, host))
        else:
            sh("ip netns exec %s nft -f %s" % (host, fx))
        open(work + "/snap.json", "w").write(sh("ip netns exec %s %s dump --json" % (host, PW)).stdout)
        itfs = []
        for a in json.loads(sh("ip -n %s -j addr show" % host).stdout):
            itfs.append({"name": a["ifname"], "index": a["ifindex"],
                         "iftype": 772 if a.get("link_type") == "loopback" else 1,
                         "addrs": ["%s/%d" % (i["local"], i["prefixlen"]) for i in a.get("addr_info", [])]})
        routes = {"interfaces": itfs, "routes": [{"dst": "10.0.0.10/32", "dev": "pw-priv"}]}
        open(work + "/routes.json", "w").write(json.dumps(routes))
        probes, sport = [], 20000
        for src, side in SRCS:
            dst = DST[(side, 6 if ":" in src else 4)]
            iif = "pw-pub" if side == "pub" else "pw-priv"
            idx = [i["index"] for i in itfs if i["name"] == iif][0]
            for port in PORTS:
                for proto in ("tcp", "udp"):
                    sport += 1
                    probes.append({"proto": proto, "saddr": src, "daddr": dst, "sport": sport,
                                   "dport": port, "iif": {"name": iif, "index": idx, "iftype": 1}})
        open(work + "/probes.json", "w").write("".join(json.dumps(p) + "\n" for p in probes))
        sh("ip netns exec %s nft -f -" % host, input=SEEN)
        open(work + "/send.py", "w").write(SENDER)
        r = sh("ip netns exec %s python3 %s %s" % (peer, work + "/send.py", work + "/probes.json"),
               check=False)
        if r.stderr.strip():
            print(r.stderr[:2000])
        seen = set()
        for s in ("s4", "s6"):
            j = json.loads(sh("ip netns exec %s nft -j list set inet pw_seen %s" % (host, s)).stdout)
            for o in j["nftables"]:
                for e in o.get("set", {}).get("elem", []):
                    v = e["elem"]["val"] if isinstance(e, dict) and "elem" in e else e
                    c = v["concat"]
                    seen.add((str(ipaddress.ip_address(c[0])), int(c[1])))
    finally:
        sh(". %s; fx_topo_down %s %s" % (TOPO, host, peer), check=False)
    env = dict(os.environ, PW_DIFF_SNAPSHOT=work + "/snap.json", PW_DIFF_ROUTES=work + "/routes.json",
               PW_DIFF_PROBES=work + "/probes.json", PW_DIFF_OUT=work + "/answers.json")
    r = subprocess.run("cd %s && cargo test -q --lib eval::tests::evaluate_probe_file -- --ignored" % ROOT,
                       shell=True, env=env, capture_output=True, text=True)
    if r.returncode:
        print(r.stdout[-3000:], r.stderr[-3000:])
        return len(probes)
    answers = [json.loads(l) for l in open(work + "/answers.json")]
    bad = 0
    for p, a in zip(probes, answers):
        kernel = (str(ipaddress.ip_address(p["saddr"])), p["sport"]) in seen
        ours = a["verdict"]
        if ours == "unknown" or (ours == "accept") != kernel:
            bad += 1
            if bad <= 25:
                print("MISMATCH %s %s %s -> %s:%d iif %s: kernel %s, ours %s (%s) %s" % (
                    os.path.basename(fx), p["proto"], p["saddr"], p["daddr"], p["dport"],
                    p["iif"]["name"], "accept" if kernel else "not", ours, a.get("decided_by"),
                    a.get("reason") or ""))
    print("%s: %d probes, %d mismatches, kernel accepted %d" % (
        os.path.basename(fx), len(probes), bad, len(seen)))
    return bad


if __name__ == "__main__":
    if os.getuid() != 0:
        sys.exit("must run as root")
    sys.exit(1 if sum(run_one(os.path.abspath(f)) for f in sys.argv[1:]) else 0)
