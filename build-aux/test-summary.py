#!/usr/bin/env python3
# Reads the testlog.json of each build directory given and prints one line,
# "N passed, N failed", last; exits non-zero when a test failed or none ran.
# "DIR:SETUP" reads the log of a run with `meson test --setup SETUP`.
#
# Copyright 2026 The Keypool authors
# SPDX-License-Identifier: GPL-3.0-or-later

import json
import os
import sys

PASSED = {"OK", "EXPECTEDFAIL"}
SKIPPED = {"SKIP"}


def main(dirs):
    passed = failed = skipped = 0
    for arg in dirs:
        build, _, setup = arg.partition(":")
        log_name = f"testlog-{setup}.json" if setup else "testlog.json"
        path = os.path.join(build, "meson-logs", log_name)
        if not os.path.exists(path):
            print(f"{arg}: no test log, so its tests did not run", file=sys.stderr)
            failed += 1
            continue
        with open(path, encoding="utf-8") as log:
            for line in log:
                if not line.strip():
                    continue
                test = json.loads(line)
                result = str(test.get("result", "")).upper()
                if result in PASSED:
                    passed += 1
                elif result in SKIPPED:
                    skipped += 1
                else:
                    failed += 1
                    print(f"FAILED {arg}: {test.get('name')} ({result})")
    line = f"{passed} passed, {failed} failed"
    if skipped:
        line += f", {skipped} skipped"
    print(line)
    return 0 if failed == 0 and passed > 0 else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:] or ["build"]))
