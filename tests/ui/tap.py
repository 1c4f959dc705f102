# tap.py: what Keypool's UI tests share: steps reported as TAP, checks that
# fail a step with a message, waiting, stopping the processes a test started,
# and a Keypool's folders.
#
# Copyright 2026 The Keypool authors
# SPDX-License-Identifier: GPL-3.0-or-later

import os
import shutil
import signal
import subprocess
import time
import traceback

# One entry a step, True when it passed, in the order they ran.
results = []

# Every wait is for a condition and ends as soon as it holds; its timeout only
# says when to give up. A sanitizer build runs a few times slower, so meson
# sets this higher for one.
TIMEOUT_SCALE = float(os.environ.get("KEYPOOL_TEST_TIMEOUT_SCALE") or 1)


class Failure(Exception):
  pass


def check(condition, message):
  if not condition:
    raise Failure(message)


def log(message):
  print(f"# {message}", flush=True)


def step(name, function, *args):
  """Runs one TAP step; a failure is reported with its message and not raised."""
  number = len(results) + 1
  began = time.monotonic()
  try:
    function(*args)
  except Exception as error:  # noqa: BLE001 - every failure is reported as TAP
    results.append(False)
    print(f"not ok {number} - {name}")
    for line in (str(error) if isinstance(error, Failure) else traceback.format_exc()).splitlines():
      print(f"# {line}")
    log(f"after {time.monotonic() - began:.1f} s")
    return False
  results.append(True)
  print(f"ok {number} - {name}", flush=True)
  log(f"in {time.monotonic() - began:.1f} s")
  return True


def wait_for(what, predicate, timeout=30.0):
  """Polls @predicate until it gives a true value, which it returns; fails
  after @timeout seconds (times TIMEOUT_SCALE)."""
  timeout *= TIMEOUT_SCALE
  end = time.monotonic() + timeout
  while True:
    value = predicate()
    if value:
      return value
    if time.monotonic() > end:
      raise Failure(f"timed out after {timeout:g} s waiting for {what}")
    time.sleep(0.2)


def stop(process, timeout=10):
  """SIGTERM, then SIGKILL after @timeout seconds; returns the exit status."""
  if process.poll() is None:
    process.send_signal(signal.SIGTERM)
    try:
      process.wait(timeout)
    except subprocess.TimeoutExpired:
      process.kill()
      process.wait()
  return process.returncode


def passed():
  return bool(results) and all(results)


def keypool_folders(root):
  """Provider, config and data folders under @root; the shipped provider files copied in."""
  providers = os.path.join(root, "providers")
  shutil.copytree(os.environ["KEYPOOL_PROVIDERS_DIR"], providers,
                  ignore=shutil.ignore_patterns("*.md", "meson.build"))
  config = os.path.join(root, "config")
  data = os.path.join(root, "data")
  os.makedirs(config)
  os.makedirs(data)
  return providers, config, data
