#!/usr/bin/env bash
# check_unit.sh -- the installed systemd unit: systemd-analyze verify clean, exposure <= 1.5.
set -u
cd "$(dirname "$0")/.."
. tests/lib.sh

if ! command -v systemd-analyze >/dev/null; then
    skip "the unit" "systemd-analyze is not installed (make deps installs it)"
    finish unit
    exit
fi
make -s install DESTDIR="$tmp/root" PREFIX=/usr >/dev/null
unit="$tmp/root/lib/systemd/system/crm-consumerd.service"
check "the unit is installed with real paths" grep -q '^ExecStart=/usr/sbin/crm-consumerd -c /etc/' "$unit"
# Verify a copy that points at the installed tree (the host has no /usr/sbin/crm-consumerd).
sed "s|/usr/sbin/crm-consumerd|$tmp/root/usr/sbin/crm-consumerd|g; s| /etc/| $tmp/root/etc/|g" \
    "$unit" > "$tmp/crm-consumerd.service"
check "systemd-analyze verify is clean" \
    bash -c "systemd-analyze verify --man=no '$tmp/crm-consumerd.service' > '$tmp/verify' 2>&1 && ! [ -s '$tmp/verify' ]"
[ -s "$tmp/verify" ] && sed 's/^/#   /' "$tmp/verify"
systemd-analyze security --offline=true --root="$tmp/root" crm-consumerd.service > "$tmp/security" 2>&1
level=$(sed -n 's/.*Overall exposure level for crm-consumerd.service: \([0-9.]*\).*/\1/p' "$tmp/security")
echo "# exposure level: ${level:-unknown}"
check "systemd-analyze security: exposure at most 1.5" \
    awk -v l="${level:-99}" 'BEGIN { exit !(l <= 1.5) }'
finish unit
