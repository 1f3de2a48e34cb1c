#!/usr/bin/env bash
# check_install.sh -- make install / uninstall into a DESTDIR, and the man pages lint-clean.
set -u
cd "$(dirname "$0")/.."
. tests/lib.sh

root="$tmp/root"
make -s install DESTDIR="$root" PREFIX=/usr > "$tmp/install.log" 2>&1
check "make install succeeds" [ $? -eq 0 ]
check "binary in sbin, executable" [ -x "$root/usr/sbin/crm-consumerd" ]
check "configuration in /etc, 0644" [ "$(stat -c %a "$root/etc/crm-consumer.conf")" = 644 ]
check "unit installed" [ -f "$root/lib/systemd/system/crm-consumerd.service" ]
check "unit names the installed paths" \
    grep -q '^ExecStart=/usr/sbin/crm-consumerd -c /etc/crm-consumer.conf$' \
    "$root/lib/systemd/system/crm-consumerd.service"
check "man pages installed" \
    [ -f "$root/usr/share/man/man8/crm-consumerd.8" -a -f "$root/usr/share/man/man5/crm-consumer.conf.5" ]
check "the installed binary checks the installed configuration" \
    bash -c "'$root/usr/sbin/crm-consumerd' -t -c '$root/etc/crm-consumer.conf' | grep -qx 'configuration OK'"

# An operator's configuration survives a reinstall and an uninstall.
echo "# edited by the operator" >> "$root/etc/crm-consumer.conf"
make -s install DESTDIR="$root" PREFIX=/usr > "$tmp/install2.log" 2>&1
check "reinstall keeps an existing configuration" \
    grep -q 'edited by the operator' "$root/etc/crm-consumer.conf"
make -s uninstall DESTDIR="$root" PREFIX=/usr > /dev/null 2>&1
check "uninstall removes binary, unit and man pages" \
    bash -c "[ -z \"\$(find '$root' -type f ! -path '$root/etc/crm-consumer.conf')\" ]"
check "uninstall keeps the configuration" [ -f "$root/etc/crm-consumer.conf" ]

if command -v mandoc >/dev/null; then
    for page in man/crm-consumerd.8 man/crm-consumer.conf.5; do
        check "mandoc -Tlint: $page" bash -c "[ -z \"\$(mandoc -Tlint -W warning $page 2>&1)\" ]"
    done
else
    skip "mandoc -Tlint" "mandoc is not installed (make deps installs it)"
fi
finish install
