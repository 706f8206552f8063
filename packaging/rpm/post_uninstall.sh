# portwarden %postun (as %systemd_postun_with_restart): restart on upgrade;
# on removal, the user and the report go too.
systemctl daemon-reload >/dev/null 2>&1 || :
if [ "$1" -ge 1 ]; then
    systemctl try-restart portwarden.service >/dev/null 2>&1 || :
else
    rm -rf /run/portwarden
    userdel portwarden >/dev/null 2>&1 || :
    groupdel portwarden >/dev/null 2>&1 || :
    journalctl --update-catalog >/dev/null 2>&1 || :
fi
