#!/usr/bin/python3
# test-tray-panel.py: Keypool's tray icon in a real panel, xfce4-panel
#
# Runs inside tests/session.sh --x11: a private session bus and an Xvfb
# display. The test starts xfce4-panel with a ready-made configuration (one
# panel, the systray plugin, which is a StatusNotifierItem host with its own
# org.kde.StatusNotifierWatcher), then `keypool --background --port 0`, and
# checks what a user would see and do:
#
#   - the panel's watcher lists Keypool's item;
#   - the panel draws an icon in its tray that was not there before
#     (screenshot tray-panel.png in KEYPOOL_SCREENSHOT_DIR);
#   - a left click on that icon opens the Keypool window;
#   - Quit from the item's menu (com.canonical.dbusmenu) ends Keypool with
#     status 0, and the panel drops the item and its icon.
#
# Output is TAP. Every process started here is ended by PID.
#
# Environment: KEYPOOL_TEST_BINARY (keypool), KEYPOOL_PROVIDERS_DIR (the
# shipped provider files), KEYPOOL_ICONS_DIR (data/icons, so the panel finds
# Keypool's icon as if it were installed), KEYPOOL_SCREENSHOT_DIR (where the
# PNG goes).
#
# Needs Debian's /usr/bin/python3 with python3-gi, xfce4-panel, xfconf,
# xdotool, x11-utils (xwininfo) and imagemagick (import).
#
# Copyright 2026 The Keypool authors
# SPDX-License-Identifier: GPL-3.0-or-later

import glob
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import traceback

import gi

gi.require_version("Gio", "2.0")
from gi.repository import Gio, GLib  # noqa: E402

from tap import Failure, check, log, passed, results, step, stop, wait_for, keypool_folders  # noqa: E402

WATCHER = "org.kde.StatusNotifierWatcher"
WATCHER_PATH = "/StatusNotifierWatcher"
TOKEN = "kp-tray-panel-test-token"
HERE = os.path.dirname(os.path.abspath(__file__))

processes = []   # (name, Popen), in the order they started


# Processes ----------------------------------------------------------------------

def start(name, argv, env, log_path):
  with open(log_path, "w") as output:
    process = subprocess.Popen(argv, env=env, stdout=output, stderr=subprocess.STDOUT,
                               stdin=subprocess.DEVNULL)
  processes.append((name, process))
  return process


def children_of(pid):
  """The PIDs of a process's children (xfce4-panel runs its external
  plugins, the systray among them, in child processes)."""
  found = []
  for path in glob.glob(f"/proc/{pid}/task/*/children"):
    try:
      with open(path) as f:
        found += [int(p) for p in f.read().split()]
    except OSError:
      pass
  return found


def alive(pid):
  try:
    with open(f"/proc/{pid}/stat") as f:
      # A zombie has ended; only its parent can reap it.
      return f.read().rsplit(")", 1)[1].split()[0] != "Z"
  except OSError:
    return False



def stop_all():
  for name, process in reversed(processes):
    children = children_of(process.pid) if process.poll() is None else []
    stop(process, 5)
    # Children that outlive their parent were started by this test too.
    for pid in children:
      if alive(pid):
        log(f"{name}: ending its child {pid}")
        try:
          os.kill(pid, signal.SIGTERM)
        except OSError:
          pass


def tail(path, lines=30):
  try:
    with open(path, errors="replace") as f:
      return f.read().splitlines()[-lines:]
  except OSError:
    return []


# D-Bus ----------------------------------------------------------------------------

_bus = None


def bus():
  global _bus
  if _bus is None:
    _bus = Gio.bus_get_sync(Gio.BusType.SESSION, None)
  return _bus


def call(name, path, interface, method, args=None, reply=None, timeout_ms=5000):
  return bus().call_sync(name, path, interface, method, args,
                         GLib.VariantType.new(reply) if reply else None,
                         Gio.DBusCallFlags.NONE, timeout_ms, None).unpack()


def has_owner(name):
  return call("org.freedesktop.DBus", "/org/freedesktop/DBus", "org.freedesktop.DBus",
              "NameHasOwner", GLib.Variant("(s)", (name,)), "(b)")[0]


def pid_of(name):
  try:
    return call("org.freedesktop.DBus", "/org/freedesktop/DBus", "org.freedesktop.DBus",
                "GetConnectionUnixProcessID", GLib.Variant("(s)", (name,)), "(u)")[0]
  except GLib.Error:
    return None   # the connection has gone


def get_property(name, path, interface, prop):
  return call(name, path, "org.freedesktop.DBus.Properties", "Get",
              GLib.Variant("(ss)", (interface, prop)), "(v)")[0]


def registered_items():
  return get_property(WATCHER, WATCHER_PATH, WATCHER, "RegisteredStatusNotifierItems")


def item_of(pid):
  """Keypool's entry in the watcher's list, split into bus name and object
  path, or None. An entry is "BUSNAME/PATH" or a bare bus name."""
  for entry in registered_items():
    name, slash, path = entry.partition("/")
    if pid_of(name) == pid:
      return name, slash + path if slash else "/StatusNotifierItem"
  return None


# The screen -----------------------------------------------------------------------

def panel_geometry():
  """(x, y, width, height) of the panel bar: the xfce4-panel window that is
  wider than the little leader window every GTK application has."""
  tree = subprocess.run(["xwininfo", "-root", "-tree"], capture_output=True, text=True,
                        timeout=30, check=True).stdout
  best = None
  for m in re.finditer(r'"xfce4-panel": \("xfce4-panel" "Xfce4-panel"\)\s+(\d+)x(\d+)'
                       r'[+-]-?\d+[+-]-?\d+\s+\+(-?\d+)\+(-?\d+)', tree):
    width, height, x, y = (int(v) for v in m.groups())
    if width >= 100 and (best is None or width > best[2]):
      best = (x, y, width, height)
  return best


def grab(geometry):
  """The pixels of a part of the screen, as rows of (r, g, b) tuples, read
  from a binary PPM that ImageMagick's import writes."""
  x, y, width, height = geometry
  data = subprocess.run(["import", "-window", "root", "-crop", f"{width}x{height}+{x}+{y}",
                         "+repage", "-depth", "8", "ppm:-"],
                        capture_output=True, timeout=30, check=True).stdout
  fields = []
  position = 0
  while len(fields) < 4:   # P6, width, height, maximum; comments may come between
    while data[position:position + 1].isspace():
      position += 1
    if data[position:position + 1] == b"#":
      position = data.index(b"\n", position) + 1
      continue
    end = position
    while not data[end:end + 1].isspace():
      end += 1
    fields.append(data[position:end])
    position = end
  position += 1
  check(fields[0] == b"P6" and int(fields[3]) == 255, f"import wrote no 8-bit PPM: {fields}")
  w, h = int(fields[1]), int(fields[2])
  pixels = data[position:position + w * h * 3]
  check(len(pixels) == w * h * 3, "import wrote a short PPM")
  return [[tuple(pixels[(row * w + col) * 3:(row * w + col) * 3 + 3]) for col in range(w)]
          for row in range(h)]


def differences(before, after, threshold=24):
  """The pixels that changed, as (count, bounding box x, y, width, height)."""
  count = 0
  left = top = 10 ** 9
  right = bottom = -1
  for row, (old_row, new_row) in enumerate(zip(before, after)):
    for col, (old, new) in enumerate(zip(old_row, new_row)):
      if max(abs(a - b) for a, b in zip(old, new)) > threshold:
        count += 1
        left, right = min(left, col), max(right, col)
        top, bottom = min(top, row), max(bottom, row)
  if count == 0:
    return 0, None
  return count, (left, top, right - left + 1, bottom - top + 1)


def colours(pixels, box):
  x, y, width, height = box
  return len({pixel for row in pixels[y:y + height] for pixel in row[x:x + width]})


def save_screenshot(name, geometry):
  directory = os.environ.get("KEYPOOL_SCREENSHOT_DIR") or os.path.join(os.getcwd(), "screenshots")
  os.makedirs(directory, exist_ok=True)
  path = os.path.join(directory, name)
  x, y, width, height = geometry
  subprocess.run(["import", "-window", "root", "-crop", f"{width}x{height}+{x}+{y}", "+repage",
                  path], check=True, timeout=30)
  log(f"screenshot {path}")
  return path


def visible_windows(name_pattern):
  result = subprocess.run(["xdotool", "search", "--onlyvisible", "--name", name_pattern],
                          capture_output=True, text=True, timeout=30)
  return [int(w) for w in result.stdout.split()]


def window_pid(window):
  result = subprocess.run(["xdotool", "getwindowpid", str(window)], capture_output=True,
                          text=True, timeout=30)
  return int(result.stdout) if result.returncode == 0 and result.stdout.strip() else None


# dbusmenu ---------------------------------------------------------------------------

def menu_items(layout):
  """(id, properties) of every item in a GetLayout tree, depth first."""
  item_id, props, children = layout
  yield item_id, props
  for child in children:
    yield from menu_items(child)


def plain_label(label):
  # "_" marks a mnemonic and "__" is a literal underscore.
  return re.sub(r"_(.)", r"\1", label)


# The test ---------------------------------------------------------------------------


def run(root):
  state = {}
  panel_log = os.path.join(root, "xfce4-panel.log")
  keypool_log = os.path.join(root, "keypool.log")

  # Neither the panel nor Keypool is under test for accessibility here: no
  # AT-SPI bus is started on their behalf. The panel is not Keypool's code,
  # so Keypool's test debugging settings are not passed on to it.
  panel_env = dict(os.environ, NO_AT_BRIDGE="1")
  for variable in ("G_DEBUG", "MALLOC_CHECK_", "G_SLICE"):
    panel_env.pop(variable, None)

  providers, config, data = keypool_folders(root)
  keypool_env = dict(os.environ)
  for variable in ("KEYPOOL_PORT", "MOCK_API_KEY"):
    keypool_env.pop(variable, None)
  # No keys and no keyring: nothing to reach over the network. Criticals
  # fail the Quit step from the log, rather than abort Keypool mid-test.
  keypool_env.update(KEYPOOL_PROVIDERS_DIR=providers, KEYPOOL_CONFIG_DIR=config,
                     KEYPOOL_DATA_DIR=data, KEYPOOL_TOKEN=TOKEN, KEYPOOL_NO_KEYRING="1",
                     KEYPOOL_REFRESH_INTERVAL_MS="0", GTK_A11Y="none", G_DEBUG="gc-friendly")

  def panel_starts():
    for variable in ("DISPLAY", "DBUS_SESSION_BUS_ADDRESS"):
      check(os.environ.get(variable), f"{variable} is not set: run inside tests/session.sh --x11")
    xdg_config = os.environ.get("XDG_CONFIG_HOME", "")
    xdg_data = os.environ.get("XDG_DATA_HOME", "")
    check(xdg_config.startswith(tempfile.gettempdir()) and xdg_data.startswith(tempfile.gettempdir()),
          "run inside tests/session.sh, which gives throw-away XDG folders")
    check(not has_owner(WATCHER), f"{WATCHER} is already owned on this bus")

    # The panel's own settings, and Keypool's icon where an installed one would be.
    channel = os.path.join(xdg_config, "xfce4", "xfconf", "xfce-perchannel-xml")
    os.makedirs(channel, exist_ok=True)
    shutil.copy(os.path.join(HERE, "xfce4-panel.xml"), os.path.join(channel, "xfce4-panel.xml"))
    icons = os.environ.get("KEYPOOL_ICONS_DIR") or os.path.join(HERE, "..", "..", "data", "icons")
    shutil.copytree(os.path.join(icons, "hicolor"), os.path.join(xdg_data, "icons", "hicolor"),
                    dirs_exist_ok=True)

    # The settings daemon, started here so that it is ended here; without
    # it the bus would start one of its own.
    xfconfd = sorted(glob.glob("/usr/lib/*/xfce4/xfconf/xfconfd"))
    if xfconfd:
      start("xfconfd", [xfconfd[0]], panel_env, os.path.join(root, "xfconfd.log"))
      wait_for("xfconfd on the bus", lambda: has_owner("org.xfce.Xfconf"), 30)
    state["panel"] = start("xfce4-panel", ["xfce4-panel", "--disable-wm-check"], panel_env,
                           panel_log)

    def watcher_up():
      check(state["panel"].poll() is None, f"xfce4-panel ended with {state['panel'].returncode}")
      return has_owner(WATCHER)

    wait_for(f"xfce4-panel to own {WATCHER}", watcher_up, 45)
    check(get_property(WATCHER, WATCHER_PATH, WATCHER, "IsStatusNotifierHostRegistered"),
          "the watcher has no host registered")
    geometry = wait_for("the panel window", panel_geometry, 30)
    check(geometry[3] >= 16, f"the panel is {geometry[3]} pixels high")
    state["geometry"] = geometry

    # The panel has drawn when its bar is no longer the black of the empty
    # screen and two looks in a row are the same.
    def settled():
      first = grab(geometry)
      time.sleep(0.5)
      second = grab(geometry)
      lit = sum(1 for row in second for pixel in row if pixel != (0, 0, 0))
      if first == second and lit > len(second) * len(second[0]) // 2:
        return second
      return None

    state["before"] = wait_for("the panel to draw", settled, 30)
    log(f"panel at {geometry}, {colours(state['before'], (0, 0, geometry[2], geometry[3]))} colours")

  def item_registers():
    state["keypool"] = start("keypool", [os.environ["KEYPOOL_TEST_BINARY"], "--background",
                                         "--port", "0"], keypool_env, keypool_log)
    pid = state["keypool"].pid

    def registered():
      check(state["keypool"].poll() is None,
            f"keypool ended with {state['keypool'].returncode}")
      return item_of(pid)

    state["item"] = wait_for("the watcher to list Keypool's item", registered, 45)
    log(f"registered: {state['item'][0]}{state['item'][1]}")
    with open(keypool_log) as f:
      check("Keypool is serving on http://127.0.0.1:" in f.read(), "keypool does not serve")

  def icon_shows():
    geometry = state["geometry"]
    x, y, width, height = geometry
    before = state["before"]
    last = {}

    def icon_drawn():
      after = grab(geometry)
      count, box = differences(before, after)
      last.update(count=count, box=box)
      if count < 30:
        return None
      bx, by, bw, bh = box
      # One icon at the tray end of the bar, with colours of its own.
      if bx + bw / 2 < width / 2 or bw > 3 * height or bh > height:
        return None
      if colours(after, box) <= max(4, colours(before, box)):
        return None
      time.sleep(0.3)
      return (after, box) if grab(geometry) == after else None

    try:
      after, box = wait_for("an icon in the panel's tray", icon_drawn, 30)
    except Failure:
      save_screenshot("tray-panel.png", geometry)
      raise Failure(f"no icon in the tray: {last.get('count')} pixels changed, in {last.get('box')}")
    state["box"] = box
    state["after"] = after
    save_screenshot("tray-panel.png", geometry)
    bx, by, bw, bh = box
    log(f"icon {bw}x{bh} at +{x + bx}+{y + by}: {last['count']} pixels changed, "
        f"{colours(before, box)} colours before, {colours(after, box)} after")

  def click_opens_window():
    x, y, width, height = state["geometry"]
    bx, by, bw, bh = state["box"]
    pid = state["keypool"].pid
    check(not [w for w in visible_windows("^Keypool$") if window_pid(w) == pid],
          "the Keypool window is open before the click")
    subprocess.run(["xdotool", "mousemove", "--sync", str(x + bx + bw // 2), str(y + by + bh // 2),
                    "click", "1"], check=True, timeout=30)

    def window_mapped():
      check(state["keypool"].poll() is None, f"keypool ended with {state['keypool'].returncode}")
      return [w for w in visible_windows("^Keypool$") if window_pid(w) == pid]

    windows = wait_for("the Keypool window to map after the click", window_mapped, 30)
    log(f"Keypool window {windows[0]:#x}")
    # Move the pointer off the panel, so no tooltip lingers.
    subprocess.run(["xdotool", "mousemove", "--sync", str(x + width // 2), str(y + height + 200)],
                   check=True, timeout=30)

  def menu_has_quit():
    name, path = state["item"]
    menu = get_property(name, path, "org.kde.StatusNotifierItem", "Menu")
    check(menu and menu != "/", f"the item's Menu is {menu!r}")
    revision, layout = call(name, menu, "com.canonical.dbusmenu", "GetLayout",
                            GLib.Variant("(iias)", (0, -1, [])), "(u(ia{sv}av))")
    labels = {plain_label(props.get("label", "")): item_id for item_id, props in menu_items(layout)}
    log(f"menu revision {revision}: {sorted(label for label in labels if label)}")
    check("Quit" in labels, f"the menu has no Quit item: {sorted(labels)}")
    check("Open Keypool" in labels, f"the menu has no Open Keypool item: {sorted(labels)}")
    state["menu"] = menu
    state["quit"] = labels["Quit"]

  def quit_ends_keypool():
    name, _ = state["item"]
    call(name, state["menu"], "com.canonical.dbusmenu", "Event",
         GLib.Variant("(isvu)", (state["quit"], "clicked", GLib.Variant("i", 0), 0)))
    try:
      status = state["keypool"].wait(15)
    except subprocess.TimeoutExpired:
      raise Failure("keypool still runs 15 s after Quit") from None
    check(status == 0, f"keypool ended with {status} after Quit")
    lines = [line for line in tail(keypool_log, 1000) if "CRITICAL" in line or "WARNING" in line]
    check(not lines, "keypool logged:\n" + "\n".join(lines))

  def panel_drops_item():
    pid = state["keypool"].pid
    name, _ = state["item"]
    wait_for("the watcher to drop Keypool's item",
             lambda: not any(entry.partition("/")[0] == name for entry in registered_items()), 30)
    check(item_of(pid) is None, "the watcher still lists Keypool's item")
    before = state["before"]

    def icon_gone():
      count, box = differences(before, grab(state["geometry"]))
      return count < 30

    wait_for("the icon to leave the panel", icon_gone, 30)

  steps = [
      ("xfce4-panel starts and owns org.kde.StatusNotifierWatcher", panel_starts),
      ("keypool --background registers its item with the panel's watcher", item_registers),
      ("the panel draws Keypool's icon in its tray", icon_shows),
      ("a left click on the icon opens the Keypool window", click_opens_window),
      ("the item's menu (dbusmenu GetLayout) has Quit and Open Keypool", menu_has_quit),
      ("Quit from the menu ends keypool with status 0", quit_ends_keypool),
      ("the panel drops the item and its icon", panel_drops_item),
  ]
  print(f"1..{len(steps)}", flush=True)
  for index, (name, function) in enumerate(steps):
    if step(name, function):
      continue
    for label, path in (("xfce4-panel", panel_log), ("keypool", keypool_log)):
      for line in tail(path):
        print(f"# {label}: {line}")
    for rest in steps[index + 1:]:
      results.append(False)
      print(f"ok {len(results)} - {rest[0]} # SKIP an earlier step failed")
    break


def main():
  root = tempfile.mkdtemp(prefix="keypool-tray-panel-")
  try:
    run(root)
  finally:
    stop_all()
    shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
  try:
    main()
  except Exception:  # noqa: BLE001
    traceback.print_exc()
    sys.exit(1)
  sys.exit(0 if passed() else 1)
