# portwarden %post: the user (sysusers.d), the journal catalog, and the
# unit as systemd's %systemd_post does it: enabled on a first install only
# if the distribution's presets say so (RHEL: they do not; `systemctl enable
# --now portwarden` after configuring). Installing never changes the firewall.
systemd-sysusers portwarden.conf || :
journalctl --update-catalog >/dev/null 2>&1 || :
if [ "$1" -eq 1 ]; then
    systemctl --no-reload preset portwarden.service >/dev/null 2>&1 || :
fi
systemctl daemon-reload >/dev/null 2>&1 || :
