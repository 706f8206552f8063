# portwarden %preun (as %systemd_preun): stop and disable on removal, not
# on upgrade.
if [ "$1" -eq 0 ]; then
    systemctl --no-reload disable --now portwarden.service >/dev/null 2>&1 || :
fi
