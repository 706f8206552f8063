#!/bin/bash
# How long `portwarden listeners` takes when the socket's cgroup has to be
# found in a large cgroup2 tree: 100 slices x 100 services (10,101 scratch
# cgroups) under the cgroup2 mount, one listener in a throwaway network
# namespace inside the cgroup TARGET (default the last one created), three
# runs. Root; everything it creates is removed on exit.
#   sudo benches/cgroup_walk.sh [target/release/portwarden]
#   sudo TARGET=. benches/cgroup_walk.sh   # baseline: the listener's cgroup is found at once
set -u
BIN=$(realpath "${1:-target/release/portwarden}")
MOUNT=$(awk '$9 == "cgroup2" { print $5; exit }' /proc/self/mountinfo)
[ -n "$MOUNT" ] || { echo "no cgroup2 mount" >&2; exit 1; }
R=$MOUNT/pw-bench-$$
N=pwbench-$$
cleanup() {
    [ -n "${PY:-}" ] && kill "$PY" 2>/dev/null
    wait 2>/dev/null
    ip netns del "$N" 2>/dev/null
    sleep 0.3
    [ -d "$R" ] && find "$R" -depth -type d -exec rmdir {} \; 2>/dev/null
}
trap cleanup EXIT
ip netns add "$N"
ip -n "$N" link set lo up
mkdir "$R"
for i in $(seq 1 100); do
    mkdir "$R/s$i.slice"
    for j in $(seq 1 100); do mkdir "$R/s$i.slice/u$j.service"; done
done
echo "cgroups: $(find "$R" -type d | wc -l)"
sh -c "echo \$\$ > '$R/${TARGET:-s100.slice/u100.service}/cgroup.procs' && exec ip netns exec $N python3 -c 'import socket, time; s = socket.socket(); s.bind((\"0.0.0.0\", 7001)); s.listen(); time.sleep(60)'" &
PY=$!
sleep 0.5
for _ in 1 2 3; do
    /usr/bin/time -f "%e s, %M KiB max RSS" nsenter --net="/run/netns/$N" "$BIN" listeners 2>&1
done
