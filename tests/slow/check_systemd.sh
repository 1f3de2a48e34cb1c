#!/usr/bin/env bash
# check_systemd.sh -- the Debian package under a real systemd: build it, install it with apt
# into a booted Debian 12 root (systemd-nspawn, host network), point it at a mock cluster on
# this host, and drive it with systemctl: start, status, reload, SIGKILL, upgrade, stop, purge.
set -u
cd "$(dirname "$0")/../.." || exit 1
. tests/lib.sh
py=/usr/bin/python3
ktool() { "$py" tests/kafka_tool.py "$@"; }
otool() { "$py" tests/observe_tool.py "$@"; }
group=systemd-test
unit=crm-consumerd.service

# The root is made once and kept, keyed by what goes into it: every run boots a copy, so
# nothing a run does reaches the cache. A root older than CACHE_DAYS is made again.
cache=${CRM_TEST_CACHE:-/var/cache/crm-consumerd-test}
suite=bookworm mirror=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
include=systemd,systemd-sysv,dbus
CACHE_DAYS=30
npid=
trap '[ -n "$npid" ] && stop_container; cleanup' EXIT

# skip REASON: nothing can be checked here; CI must have everything, so there it fails.
skip() {
    if [ "${CI:-}" = true ]; then
        echo "not ok - $1"
        failed=1
    else
        echo "# SKIP: $1"
    fi
    finish systemd
    exit
}

[ "$(id -u)" = 0 ] || skip "needs root (debootstrap, systemd-nspawn)"
for tool in debootstrap systemd-nspawn nsenter flock dpkg-buildpackage dh lintian; do
    command -v "$tool" > /dev/null || skip "$tool is not installed (make deps installs it)"
done
$py -c 'import confluent_kafka' 2> /dev/null || skip "python3-confluent-kafka is not installed"
[ -x "$mock" ] || skip "no mock cluster at $mock (make check-slow builds it)"

# in_root COMMAND...: run a command inside the booted root, as its systemd runs services.
in_root() {
    nsenter -t "$pid1" -a env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin LANG=C.UTF-8 \
        DEBIAN_FRONTEND=noninteractive "$@"
}

# prop NAME: one property of the unit.
prop() { in_root systemctl show -P "$1" "$unit"; }

# wait_until SECONDS COMMAND...: until COMMAND succeeds (another process's state: polled).
wait_until() {
    local end=$((SECONDS + $1))
    shift
    until "$@"; do
        [ $SECONDS -ge $end ] && return 1
        sleep 0.2
    done
}

# base_root: the cached root, made if missing or stale (one maker at a time; others wait).
base_root() {
    local key base
    key=$(printf '%s\n' "$suite" "$mirror" "$include" minbase localhost | sha256sum | cut -c1-16)
    base="$cache/root-$key"
    mkdir -p "$cache"
    (
        flock 9
        if [ -e "$base/.complete" ] && [ -z "$(find "$base/.complete" -mtime +"$CACHE_DAYS")" ]; then
            exit 0
        fi
        rm -rf "$base" "$base.new"
        echo "# making the cached Debian root $base (debootstrap)" >&2
        debootstrap --variant=minbase --include="$include" "$suite" "$base.new" "$mirror" \
            > "$cache/debootstrap.log" 2>&1 || { tail -n 20 "$cache/debootstrap.log" >&2; exit 1; }
        # A minbase root has no /etc/hosts; every installed system has localhost in it.
        printf '127.0.0.1\tlocalhost\n::1\t\tlocalhost ip6-localhost ip6-loopback\n' \
            > "$base.new/etc/hosts"
        touch "$base.new/.complete"
        mv "$base.new" "$base"
    ) 9> "$cache/lock" || return 1
    echo "$base"
}

# start_container: boot a copy of the cached root; sets npid (nspawn) and pid1 (its systemd).
start_container() {
    local base p
    base=$(base_root) || return 1
    flock -s "$cache/lock" cp -a "$base" "$tmp/root" || return 1
    rm -f "$tmp/root/.complete"
    systemd-nspawn --register=no --keep-unit --quiet --console=read-only \
        --machine="crm-test-$$" -D "$tmp/root" --bind-ro="$tmp/deb:/srv/crm-deb" --boot \
        < /dev/null > "$tmp/console.log" 2>&1 &
    npid=$!
    pid1=
    local end=$((SECONDS + 30))
    while [ -z "$pid1" ] && [ $SECONDS -lt $end ] && kill -0 "$npid" 2> /dev/null; do
        for p in /proc/[0-9]*; do
            # The container's PID 1 is nspawn's child running systemd.
            if [ "$(awk '{ print $4 }' "$p/stat" 2> /dev/null)" = "$npid" ] &&
                [ "$(cat "$p/comm" 2> /dev/null)" = systemd ]; then
                pid1=${p#/proc/}
            fi
        done
        [ -n "$pid1" ] || sleep 0.2
    done
    [ -n "$pid1" ] || return 1
    # Booted: running, or degraded should some unrelated unit fail in a container.
    wait_until 60 bash -c "nsenter -t $pid1 -a systemctl is-system-running --wait 2> /dev/null |
        grep -qx 'running\|degraded'"
}

stop_container() {
    # nspawn halts a booted container on SIGTERM; it is killed if that takes too long.
    kill -TERM "$npid" 2> /dev/null
    wait_until 30 bash -c "! kill -0 $npid 2> /dev/null" || kill -KILL "$npid" 2> /dev/null
    wait "$npid" 2> /dev/null
    npid=
}

# write_conf: the operator's edit of the conffile, pointing the daemon at the mock cluster.
write_conf() {
    cat > "$tmp/root/etc/crm-consumer.conf" <<CONF
# Edited by the operator.
kafka = {
  brokers = "$addr";
  group_id = "$group";
  properties = { session_timeout_ms = 6000; auto_commit_interval_ms = 500; };
};
processing = { shutdown_timeout_s = 10; };
http = { listen = "127.0.0.1:$port"; };
CONF
}

# produce N: N more inputs (one in ten poison); total counts them all.
total=0
produce() {
    ktool produce "$addr" crm.inbound "$1" > /dev/null && total=$((total + $1))
}

# journal_has PATTERN [PRIORITY]: whether the unit's journal has a line matching PATTERN (at
# exactly PRIORITY if given).
journal_has() {
    in_root journalctl -u "$unit" ${2:+-p "$2..$2"} -o cat --no-pager | grep -q -- "$1"
}

# running_as PID: active, with PID as its main process.
running_as() { [ "$(prop ActiveState)" = active ] && [ "$(prop MainPID)" = "$1" ]; }

# not COMMAND...: COMMAND fails.
not() { ! "$@"; }

# status_has TEXT: whether the unit's STATUS= text holds TEXT.
status_has() { [[ "$(prop StatusText)" == *"$1"* ]]; }

# replaced OLDPID: active again, in a new process.
replaced() {
    [ "$(prop ActiveState)" = active ] && [ "$(prop MainPID)" != "$1" ] &&
        [ "$(prop MainPID)" != 0 ]
}

echo "# building the package"
mkdir -p "$tmp/deb"
# The package as make deb builds it, lintian included, but into this test's folder (and not
# with this make's own flags).
env -u MAKEFLAGS -u MFLAGS -u MAKELEVEL make -s deb DEB_DIR="$tmp/deb" > "$tmp/deb.log" 2>&1
rc=$?
check "make deb builds the package and lintian passes it" [ $rc -eq 0 ]
[ $rc -eq 0 ] || { tail -n 30 "$tmp/deb.log"; finish systemd; exit; }
deb=$(cd "$tmp/deb" && ls crm-consumerd_*.deb)
version=$(dpkg-deb -f "$tmp/deb/$deb" Version)

# The upgrade: the same files as a later version whose example configuration changed too, so
# that dpkg meets a conffile changed on both sides.
dpkg-deb -R "$tmp/deb/$deb" "$tmp/next"
sed -i "s/^Version: .*/Version: $version+1/" "$tmp/next/DEBIAN/control"
echo "# A line the next version adds." >> "$tmp/next/etc/crm-consumer.conf"
dpkg-deb -b "$tmp/next" "$tmp/deb/next.deb" > /dev/null

start_mock 4
port=$(otool free-port)
produce 1000

start=$SECONDS
start_container
rc=$?
check "a Debian 12 root with systemd boots (systemd-nspawn --boot)" [ $rc -eq 0 ]
[ $rc -eq 0 ] || { tail -n 30 "$tmp/console.log"; finish systemd; exit; }
echo "# root ready and booted in $((SECONDS - start)) s"

in_root apt-get update -q > "$tmp/apt.log" 2>&1
in_root apt-get install -y -q --no-install-recommends "/srv/crm-deb/$deb" > "$tmp/install.log" 2>&1
rc=$?
check "apt-get install ./$deb installs it with its dependencies" [ $rc -eq 0 ]
[ $rc -eq 0 ] || { tail -n 20 "$tmp/apt.log" "$tmp/install.log"; finish systemd; exit; }
check "the first install says the service waits for kafka.brokers" \
    grep -q 'enabled but not started: set kafka.brokers' "$tmp/install.log"
check "enabled on first install" [ "$(in_root systemctl is-enabled "$unit")" = enabled ]
check "but not started" [ "$(prop ActiveState)" = inactive ]

write_conf
in_root systemctl start "$unit"
check "systemctl start returns once READY=1 arrived: the unit is active" \
    [ "$(prop ActiveState)/$(prop SubState)" = active/running ]
pid=$(prop MainPID)
check "the state directory: /var/lib/crm-consumerd -> private/crm-consumerd, mode 0700" \
    [ "$(readlink "$tmp/root/var/lib/crm-consumerd"):$(stat -c %a "$tmp/root/var/lib/private/crm-consumerd")" \
    = private/crm-consumerd:700 ]
memory_max=$(prop MemoryMax)
check "a memory bound is set: MemoryMax=$memory_max" grep -qx '[0-9][0-9]*' <<< "$memory_max"
# STATUS= comes every 5 s; the first says it is subscribed.
in_root systemctl status --no-pager "$unit" > "$tmp/status" 2>&1
sed 's/^/#   /' "$tmp/status" | head -n 8
check "systemctl status shows the STATUS= line" grep -q '^ *Status: "..*"' "$tmp/status"
check "it consumes everything: committed offsets reach the high watermarks" \
    ktool wait-committed "$addr" "$group" crm.inbound 60
check "STATUS= is updated: the summary names the 4 partitions" \
    wait_until 15 status_has '4 partitions'
echo "#   $(prop StatusText)"

in_root systemctl reload "$unit"
check "systemctl reload: still active, same process" running_as "$pid"
check "systemctl reload: the daemon re-read its file" \
    wait_until 10 journal_has 'reload: [0-9]* settings* changed .*log level is info'
# A broken file: the reload is refused with a warning, and the daemon keeps running.
cp "$tmp/root/etc/crm-consumer.conf" "$tmp/good.conf"
echo 'kafka = { brokers = 1; };' > "$tmp/root/etc/crm-consumer.conf"
in_root systemctl reload "$unit"
check "systemctl reload of a broken file: refused" \
    wait_until 10 journal_has 'has errors; keeping the running configuration'
check "... and the daemon runs on in the same process" running_as "$pid"
cp "$tmp/good.conf" "$tmp/root/etc/crm-consumer.conf"

in_root systemctl kill --signal=KILL "$unit"
check "SIGKILL: systemd restarts it in a new process" wait_until 30 replaced "$pid"
check "... as an automatic restart (NRestarts 1)" [ "$(prop NRestarts)" = 1 ]
pid=$(prop MainPID)
produce 1000
check "after the restart it consumes the new inputs" \
    ktool wait-committed "$addr" "$group" crm.inbound 60

in_root apt-get install -y -q --no-install-recommends -o Dpkg::Options::=--force-confdef \
    -o Dpkg::Options::=--force-confold /srv/crm-deb/next.deb > "$tmp/upgrade.log" 2>&1
# shellcheck disable=SC2016 # dpkg-query's format, not the shell's
check "apt-get upgrades it to $version+1" \
    [ "$(in_root dpkg-query -W -f '${Version}' crm-consumerd)" = "$version+1" ]
check "the upgrade keeps the operator's edits of /etc/crm-consumer.conf" \
    cmp -s "$tmp/good.conf" "$tmp/root/etc/crm-consumer.conf"
check "... and puts the new version's file beside it as .dpkg-dist" \
    grep -q 'A line the next version adds' "$tmp/root/etc/crm-consumer.conf.dpkg-dist"
check "the upgrade restarted the service in a new process" wait_until 30 replaced "$pid"
check "the upgrade does not repeat the first install's message" \
    not grep -q 'enabled but not started' "$tmp/upgrade.log"

# Stop right after the last inputs are handled: the shutdown commits what the loop stored.
produce 1000
check "after the upgrade it handles the new inputs" \
    otool wait-metric "http://127.0.0.1:$port/metrics" kafka_consumer_messages_consumed_total \
    '>=' 1000 60
in_root systemctl stop "$unit"
check "systemctl stop: inactive, result success, exit status 0" \
    [ "$(prop ActiveState)/$(prop Result)/$(prop ExecMainStatus)" = inactive/success/0 ]
check "systemctl stop: every offset committed ($total inputs)" \
    ktool wait-committed "$addr" "$group" crm.inbound 5

# The journal: the daemon's "<N>" prefixes became priorities, and none is left in the text.
check "journal, notice: the start" journal_has "started: group $group" notice
check "journal, notice: the stop, 1000 messages since the upgrade" \
    journal_has '^stopped: 1000 messages' notice
check "journal, info: the dead letters" journal_has 'dead letter: parse: invalid JSON' info
check "journal, warning: the refused reload" \
    journal_has 'has errors; keeping the running configuration' warning
check "journal: no line still carries its <N> prefix" not journal_has '^<[0-7]>'

# Purged while it runs: the package stops it first.
in_root systemctl start "$unit"
check "started again for the purge" [ "$(prop ActiveState)" = active ]
in_root apt-get purge -y -q crm-consumerd > "$tmp/purge.log" 2>&1
check "apt-get purge removes it" [ $? -eq 0 ]
check "... after stopping the service" not in_root systemctl -q is-active "$unit"
check "purge removes the state directory" \
    [ ! -e "$tmp/root/var/lib/private/crm-consumerd" -a ! -L "$tmp/root/var/lib/crm-consumerd" ]
check "purge removes the configuration and the unit" \
    [ ! -e "$tmp/root/etc/crm-consumer.conf" -a ! -e "$tmp/root/lib/systemd/system/$unit" ]

stop_container
finish systemd
