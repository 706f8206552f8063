#!/bin/bash
# Runs inside the booted Debian 12 container as the oneshot unit
# pw-e2e.service (tests/package.rs): installs the .deb under the real
# systemd, drives the service, and writes one line per check to
# /e2e-out/results ("ok NAME" or "FAIL NAME: why"), the evidence beside it,
# then powers the container off. Never fails itself: a check that fails is
# a line, so that every later check still runs and reports.
set -u
out=/e2e-out
results=$out/results
: > "$results"
exec > "$out/log" 2>&1
export DEBIAN_FRONTEND=noninteractive
catalog_missing=52ac6f21f73a475994c3a829c70d580d
not_configured=def923fe04c54ed39822cbdbc12189ee
reload=3cd5ad96b7f64eb6a4a3905de931f3ba
cfg=/etc/portwarden/portwarden.toml

ok() { echo "ok $1" >> "$results"; }
fail() { echo "FAIL $1: $2" >> "$results"; }
# check NAME COMMAND...: ok when COMMAND succeeds.
check() {
    local name=$1
    shift
    local got
    if got=$("$@" 2>&1); then ok "$name"; else fail "$name" "$(echo "$got" | tr '\n' ' ' | cut -c1-400)"; fi
}
# Waits up to $2 seconds for `systemctl is-active portwarden` to say $1.
wait_state() {
    for _ in $(seq $(($2 * 10))); do
        [ "$(systemctl is-active portwarden)" = "$1" ] && return 0
        sleep 0.1
    done
    systemctl status portwarden --no-pager
    return 1
}
# Waits up to 10 s for a journal entry of portwarden with these matches.
wait_entry() {
    for _ in $(seq 100); do
        [ -n "$(journalctl -u portwarden -o json --no-pager "$@")" ] && return 0
        sleep 0.1
    done
    return 1
}
pkg_field() { dpkg-deb -f "$1" "$2"; }

# The private link to the backup server's network, and the drifted ruleset:
# ssh open, the Veeam Data Mover's 6162 not.
ip link add eth1 type veth peer name eth1-peer && ip addr add 10.0.0.2/24 dev eth1 && ip link set eth1-peer up && ip link set eth1 up
nft -f - <<'NFT'
table inet filter {
    chain input {
        type filter hook input priority 0; policy drop;
        ct state established,related accept
        iif lo accept
        tcp dport 22 accept
        tcp dport 8080 accept
    }
}
NFT
ruleset_before=$(nft list ruleset)

deb1=$(ls /e2e/rev1/*.deb)
deb2=$(ls /e2e/rev2/*.deb)
check install apt-get install -y --no-install-recommends "$deb1"
check installing-leaves-the-firewall-alone test "$(nft list ruleset)" = "$ruleset_before"
check user-created getent passwd portwarden
check enabled test "$(systemctl is-enabled portwarden)" = enabled
check active-unconfigured wait_state active 20
check says-what-to-configure wait_entry MESSAGE_ID=$not_configured PRIORITY=4
check no-alert-unconfigured test -z "$(journalctl -u portwarden -o json --no-pager MESSAGE_ID=$catalog_missing)"
portwarden status > "$out/status-unconfigured" 2>&1
check status-unconfigured-is-unknown test $? -eq 3
check catalog-installed test -s /usr/lib/systemd/catalog/portwarden.catalog

# Configured: the Data Mover role, its backup server behind eth1.
cat > "$cfg" <<'TOML'
roles = ["veeam-data-mover"]
private_interfaces = ["eth1"]
[peers]
backup_server = ["10.0.0.10"]
[severity]
not-listening = "ignore"
TOML
# A forgotten web console: a listener of its own systemd unit, open to all.
# The hardened service names it by the unit, from the socket's cgroup,
# without the capabilities that reading /proc/PID/fd would need.
systemd-run --unit=pw-console systemd-socket-activate -l 0.0.0.0:8080 /bin/true
check check-config portwarden check-config
check reload systemctl reload portwarden
check active-configured wait_state active 20
check missing-opening-entry wait_entry MESSAGE_ID=$catalog_missing PORTWARDEN_KIND=missing-opening PORTWARDEN_PORTS=6162 PRIORITY=3
journalctl -u portwarden -o json --no-pager MESSAGE_ID=$catalog_missing > "$out/missing.json"
journalctl -u portwarden -x --no-pager MESSAGE_ID=$catalog_missing > "$out/missing-x.txt"
# The catalog's text, its fields filled in from the entry.
check journal-x-explains grep -q "The firewall refuses part of an inbound connection that the role" "$out/missing-x.txt"
check journal-x-fields grep -q "ports 6162, from 10.0.0.10" "$out/missing-x.txt"
check exposed-listener-names-its-unit wait_entry PORTWARDEN_KIND=exposed-listener PORTWARDEN_PORTS=8080 PORTWARDEN_UNIT=pw-console.service
journalctl -u portwarden -o json --no-pager PORTWARDEN_KIND=exposed-listener > "$out/exposed.json"
portwarden status > "$out/status" 2>&1
check status-critical test $? -eq 2
check status-summary grep -q "^[1-9][0-9]* critical, [0-9]* warning; generation " "$out/status"
check status-lists-the-finding grep -q "tcp 6162 from 10.0.0.10/32 on eth1 is not accepted" "$out/status"

# A broken configuration: the reload is refused, the service stays.
echo 'roles = ["veeam-data-mover"' > "$cfg.broken"
cp "$cfg" "$cfg.good"
cp "$cfg.broken" "$cfg"
systemctl reload portwarden
check reload-broken-keeps-running wait_state active 5
check reload-broken-logged wait_entry MESSAGE_ID=$reload PRIORITY=3
sleep 1
check still-running-after-broken-reload test "$(systemctl is-active portwarden)" = active
cp "$cfg.good" "$cfg"
rm -f "$cfg.good" "$cfg.broken"

# A legacy iptables rule (as ferm would add): the hardened service lists the
# legacy tables (group root reads their names; an IPv4 socket asks x_tables),
# evaluates the rule, and reports the ssh port it drops (nf_tables alone
# accepts it) as a missing opening decided by the legacy table.
/usr/sbin/iptables-legacy -A INPUT -p tcp --dport 22 -j DROP
systemctl restart portwarden
check active-with-legacy-rule wait_state active 20
check legacy-table-named grep -q "refused by table ip filter (iptables-legacy) chain INPUT rule handle 1" /run/portwarden/report.json
/usr/sbin/iptables-legacy -F INPUT
systemctl restart portwarden

# The installed unit's exposure, as systemd-analyze rates it.
systemd-analyze security portwarden.service --no-pager > "$out/security.txt" 2>&1
check security-analyzed grep -q "Overall exposure level for portwarden.service" "$out/security.txt"

# The documented drop-in: the exposed listener's pid and command too.
dropin=/etc/systemd/system/portwarden.service.d
mkdir -p $dropin
cp /usr/share/doc/portwarden/examples/owner-pids.conf $dropin/
systemctl daemon-reload
systemctl restart portwarden
check active-with-owner-pids wait_state active 20
check owner-pids-names-the-process grep -q '"command":"systemd-socket-"' /run/portwarden/report.json
systemd-analyze security portwarden.service --no-pager > "$out/security-owner-pids.txt" 2>&1
rm -r $dropin
systemctl daemon-reload
systemctl restart portwarden
check owner-pids-removed sh -c "! grep -q '\"command\":\"systemd-socket-' /run/portwarden/report.json"

# Upgrade to a rebuilt package: the edited conffile stays.
sum_before=$(sha256sum "$cfg")
check upgrade apt-get install -y --no-install-recommends "$deb2"
check upgraded test "$(dpkg-query -W -f='${Version}' portwarden)" = "$(pkg_field "$deb2" Version)"
check conffile-kept test "$(sha256sum "$cfg")" = "$sum_before"
check active-after-upgrade wait_state active 20

# Purge: the service, the user, the configuration and the state go.
check purge apt-get purge -y portwarden
check service-gone test -z "$(systemctl list-unit-files portwarden.service --no-legend)"
check not-running test "$(systemctl is-active portwarden)" != active
check user-gone sh -c '! getent passwd portwarden'
check group-gone sh -c '! getent group portwarden'
check config-gone test ! -e /etc/portwarden
check state-gone test ! -e /run/portwarden
check firewall-untouched test "$(nft list ruleset)" = "$ruleset_before"

# The .rpm, installed with rpm into the same (Debian) root: no RPM-based
# root can be built from what this machine reaches. --nodeps: this rpm
# database knows none of Debian's libraries. The scriptlets run under the
# real systemd.
rpm_file=$(ls /e2e/*.rpm)
check rpm-install rpm -i --nodeps "$rpm_file"
check rpm-user-created getent passwd portwarden
check rpm-unit-known systemctl cat portwarden.service
check rpm-not-started test "$(systemctl is-active portwarden)" != active
check rpm-config-noreplace-listed sh -c "rpm -qc portwarden | grep -qx $cfg"
check rpm-start systemctl start portwarden
check rpm-active wait_state active 20
sed -i 's/^roles = \[\]/roles = ["veeam-data-mover"]/' "$cfg"
sum_before=$(sha256sum "$cfg")
check rpm-upgrade rpm -U --replacepkgs --nodeps "$rpm_file"
check rpm-config-kept test "$(sha256sum "$cfg")" = "$sum_before"
check rpm-active-after-upgrade wait_state active 20
check rpm-erase rpm -e portwarden
check rpm-stopped test "$(systemctl is-active portwarden)" != active
check rpm-user-gone sh -c '! getent passwd portwarden'
check rpm-binary-gone test ! -e /usr/bin/portwarden
check rpm-firewall-untouched test "$(nft list ruleset)" = "$ruleset_before"

echo done >> "$results"
systemctl poweroff
