#!/bin/bash
# Regenerates the evaluator's test snapshots: loads each fixture into a
# throwaway namespace pair with the standard topology (tests/fixtures/topology.sh),
# dumps it with `portwarden dump --json`, deletes the namespaces.
# Usage (root, from the repository root): src/eval/testdata/regen.sh [FIXTURE...]
# PORTWARDEN=path/to/portwarden (default target/debug/portwarden).
set -u
cd "$(dirname "$0")/../../.." || exit 2
[ "$(id -u)" = 0 ] || { echo "must run as root" >&2; exit 2; }
PW=${PORTWARDEN:-target/debug/portwarden}
OUT=src/eval/testdata
. tests/fixtures/topology.sh
H=pwev-h-$$ P=pwev-p-$$
trap 'fx_topo_down "$H" "$P"' EXIT
trap 'exit 130' INT TERM
if [ $# -eq 0 ]; then
    set -- tests/fixtures/*.nft tests/fixtures/gen/iptables-xt.sh tests/fixtures/gen/ufw-host.sh \
        "$OUT"/concat-sets.nft "$OUT"/nat-hook-order.nft
fi
for f in "$@"; do
    n=$(basename "$f"); n=${n%.*}
    fx_topo_up "$H" "$P" >/dev/null 2>&1 || { echo "topology failed" >&2; exit 1; }
    case $f in
        *.sh) bash "$f" "$H" >/dev/null || { echo "$f failed" >&2; exit 1; } ;;
        *) ip netns exec "$H" nft -f "$f" || { echo "$f failed" >&2; exit 1; } ;;
    esac
    ip netns exec "$H" "$PW" dump --json > "$OUT/$n.json" || exit 1
    fx_topo_down "$H" "$P"
    echo "$n"
done
