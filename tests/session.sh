#!/usr/bin/env bash
# Runs a command in a throw-away session: a private D-Bus session bus and,
# with --keyring, a real gnome-keyring Secret Service on it, unlocked. HOME
# and the XDG folders point into a temporary folder. Everything started here
# is ended by PID when the command ends; its exit status is returned.
#
#   tests/session.sh [--keyring | --secret-service PROGRAM] [--x11] [--a11y] [--] COMMAND [ARGS…]
#
# --secret-service runs PROGRAM as the Secret Service instead of gnome-keyring
# (a test uses one that never answers).
# --x11 starts an Xvfb display (it picks a free number itself, so sessions can
# run side by side) and sets DISPLAY; --a11y starts the AT-SPI bus and turns
# accessibility on, so a test can drive GTK widgets as a screen reader would.
#
# Copyright 2026 The Keypool authors
# SPDX-License-Identifier: GPL-3.0-or-later

set -u

keyring=0
service=""
x11=0
a11y=0
while [ $# -gt 0 ]; do
  case "$1" in
    --keyring) keyring=1 ;;
    --secret-service) service=$2; shift ;;
    --x11) x11=1 ;;
    --a11y) a11y=1 ;;
    --) shift; break ;;
    -*) echo "session.sh: unknown option $1" >&2; exit 2 ;;
    *) break ;;
  esac
  shift
done
[ $# -gt 0 ] || { echo "usage: session.sh [--keyring] [--x11] [--a11y] [--] COMMAND [ARGS…]" >&2; exit 2; }

root=$(mktemp -d "${TMPDIR:-/tmp}/keypool-session.XXXXXX") || exit 1
pids=()

finish () {
  local i
  for (( i=${#pids[@]}-1; i>=0; i-- )); do kill "${pids[i]}" 2>/dev/null; done
  for (( i=${#pids[@]}-1; i>=0; i-- )); do wait "${pids[i]}" 2>/dev/null; done
  rm -rf "$root"
}
trap finish EXIT
trap 'exit 130' INT TERM

wait_for () {
  local i
  for i in $(seq 1 100); do "$@" >/dev/null 2>&1 && return 0; sleep 0.1; done
  return 1
}

die () {
  echo "session.sh: $*" >&2
  for log in "$root"/*.log; do [ -s "$log" ] && { echo "--- $log" >&2; tail -n 20 "$log" >&2; }; done
  exit 1
}

mkdir -p "$root/run" "$root/home" "$root/data" "$root/config" "$root/cache"
chmod 700 "$root/run"
export HOME="$root/home" XDG_RUNTIME_DIR="$root/run" XDG_DATA_HOME="$root/data" \
       XDG_CONFIG_HOME="$root/config" XDG_CACHE_HOME="$root/cache"
unset DISPLAY WAYLAND_DISPLAY SESSION_MANAGER

dbus-daemon --session --nofork --nopidfile --print-address=3 3>"$root/bus-address" \
  2>"$root/dbus.log" &
pids+=($!)
wait_for test -s "$root/bus-address" || die "dbus-daemon did not start"
DBUS_SESSION_BUS_ADDRESS=$(head -n1 "$root/bus-address")
export DBUS_SESSION_BUS_ADDRESS

has_owner () {
  gdbus call --session -d org.freedesktop.DBus -o /org/freedesktop/DBus \
    -m org.freedesktop.DBus.NameHasOwner "$1" | grep -q true
}

if [ "$x11" = 1 ]; then
  Xvfb -displayfd 5 -screen 0 "${KEYPOOL_TEST_SCREEN:-1280x800x24}" -nolisten tcp -noreset \
    5>"$root/display" >"$root/xvfb.log" 2>&1 &
  pids+=($!)
  wait_for test -s "$root/display" || die "Xvfb did not start"
  DISPLAY=":$(head -n1 "$root/display")"
  # No desktop settings service here: GTK's settings stay in memory.
  export DISPLAY GDK_BACKEND=x11 GSETTINGS_BACKEND=memory
fi

if [ "$a11y" = 1 ]; then
  /usr/libexec/at-spi-bus-launcher --launch-immediately >"$root/atspi.log" 2>&1 &
  pids+=($!)
  wait_for has_owner org.a11y.Bus || die "at-spi-bus-launcher did not start"
  gdbus call --session -d org.a11y.Bus -o /org/a11y/bus -m org.freedesktop.DBus.Properties.Set \
    org.a11y.Status IsEnabled '<true>' >/dev/null || die "could not turn accessibility on"
fi

if [ "$keyring" = 1 ]; then
  # A fresh login keyring, created and unlocked with a known password.
  printf '%s' "keypool-test" |
    gnome-keyring-daemon --foreground --unlock --components=secrets >"$root/keyring.log" 2>&1 &
  pids+=($!)
  wait_for has_owner org.freedesktop.secrets || die "gnome-keyring did not start"
elif [ -n "$service" ]; then
  "$service" >"$root/service.log" 2>&1 &
  pids+=($!)
  wait_for has_owner org.freedesktop.secrets || die "$service did not start"
fi

"$@"
