#!/usr/bin/env bash
# Keypool's quick start on Debian 12 (bookworm).
#
#   build-aux/quickstart.sh run    install what is missing, build, start Keypool headless
#   build-aux/quickstart.sh test   install what is missing, build, run every test twice:
#                                  a normal build, then AddressSanitizer + UBSan;
#                                  then each libFuzzer target for 30 s (clang);
#                                  the last line is "N passed, N failed"
#
# Packages come from apt (through sudo when not root); the client tests' npm
# packages come from tests/clients/package-lock.json.
#
# Copyright 2026 The Keypool authors
# SPDX-License-Identifier: GPL-3.0-or-later

set -euo pipefail

mode=${1:-}
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"

BUILD_PKGS=(
  build-essential pkg-config meson ninja-build gettext python3
  libglib2.0-dev libglib2.0-dev-bin libglib2.0-bin
  libsoup-3.0-dev libjson-glib-dev libsecret-1-dev libsqlite3-dev zlib1g-dev
  glib-networking ca-certificates
  libgtk-4-dev libadwaita-1-dev libxml2-utils
)
# A private session bus with a real gnome-keyring for the keyring tests,
# sqlite3 to inspect databases, validators for data/, and the sanitizers.
TEST_PKGS=(
  dbus-daemon gnome-keyring sqlite3
  desktop-file-utils appstream appstream-util libxml2-utils flatpak-builder
  libclang-rt-14-dev
  # The fuzz targets: Debian's clang with libFuzzer, and llvm-symbolizer for
  # the stack of a crash.
  clang llvm
  # The window test: Xvfb, the accessibility bus and Debian's Python bindings
  # to drive it, ImageMagick for screenshots, secret-tool to read the keyring,
  # and the fonts and icons of a GNOME desktop.
  xvfb xauth at-spi2-core gir1.2-atspi-2.0 python3-pyatspi python3-gi
  gir1.2-gtk-4.0 gir1.2-adw-1 imagemagick libsecret-tools
  adwaita-icon-theme fonts-cantarell fonts-dejavu-core librsvg2-common
  # The tray test against a real panel: xfce4-panel's systray plugin is a
  # StatusNotifierItem host; xfconf holds the panel's settings, xdotool clicks
  # the icon and x11-utils (xwininfo) finds the panel on the screen.
  xfce4-panel xfconf xdotool x11-utils
  # Definite leaks in the streaming tests, under memcheck.
  valgrind
)

sudo_cmd=()
[ "$(id -u)" -ne 0 ] && sudo_cmd=(sudo)

install_missing () {
  local missing=()
  for pkg in "$@"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" ||
      missing+=("$pkg")
  done
  if ! command -v node >/dev/null 2>&1 && [ "$mode" = test ]; then
    missing+=(nodejs npm)
  fi
  [ ${#missing[@]} -eq 0 ] && return 0
  echo "Installing: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  "${sudo_cmd[@]}" apt-get update -q
  "${sudo_cmd[@]}" apt-get install -y -q --no-install-recommends "${missing[@]}"
}

setup () {
  local dir=$1; shift
  if [ -f "$dir/build.ninja" ]; then
    meson setup --reconfigure "$dir" "$@" >/dev/null
  else
    meson setup "$dir" "$@"
  fi
  meson compile -C "$dir"
}

case "$mode" in
  run)
    install_missing "${BUILD_PKGS[@]}"
    setup build -Dtests=false -Dbench=false
    export KEYPOOL_PROVIDERS_DIR="$top/providers"
    exec build/src/keypool --headless
    ;;

  test)
    install_missing "${BUILD_PKGS[@]}" "${TEST_PKGS[@]}"
    if [ ! -d tests/clients/node_modules/openai ] ||
       [ tests/clients/package-lock.json -nt tests/clients/node_modules/.package-lock.json ]; then
      (cd tests/clients && npm ci --no-audit --no-fund --loglevel=error)
    fi

    status=0
    rm -f build/meson-logs/testlog*.json build-asan/meson-logs/testlog*.json \
      build-fuzz/meson-logs/testlog*.json

    setup build -Dclient_tests=enabled
    meson test -C build --print-errorlogs || status=1

    # The streaming tests under valgrind: a definite leak fails the test
    # (tests/valgrind.supp names the two leaks of libsoup 3.2.3 itself).
    meson test -C build --setup valgrind --suite streaming --print-errorlogs || status=1

    # Memory and undefined-behaviour errors abort the test that hits them.
    # Leak checking stays off: GLib's type system keeps memory by design.
    setup build-asan -Db_sanitize=address,undefined -Db_lundef=false \
      -Dclient_tests=enabled -Dbench=false
    ASAN_OPTIONS=detect_leaks=0:abort_on_error=1 \
    UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
      meson test -C build-asan --print-errorlogs || status=1

    # libFuzzer targets (tests/fuzz): clang instruments the core for coverage,
    # ASan and UBSan; only the suite fuzz runs here, about three minutes.
    CC=clang setup build-fuzz -Dfuzz=true -Dtests=false -Dbench=false -Dgui=disabled \
      -Dclient_tests=disabled
    meson test -C build-fuzz --suite fuzz --print-errorlogs || status=1

    python3 build-aux/test-summary.py build build:valgrind build-asan build-fuzz || status=1
    exit $status
    ;;

  *)
    echo "usage: $0 run|test" >&2
    exit 2
    ;;
esac
