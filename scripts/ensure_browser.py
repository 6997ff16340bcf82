"""Install Debian's chromium for the browser tests when it is missing (needs root and the package mirror)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys


def main() -> int:
    if shutil.which("chromium") or os.path.exists("/usr/bin/chromium"):
        return 0
    if os.geteuid() != 0:
        print("==> chromium is missing and this is not root: install it with `sudo apt-get install chromium`")
        return 1
    print("==> installing Debian's chromium for the browser tests (one time)", flush=True)
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    subprocess.run(["apt-get", "update", "-qq"], check=True, env=env)
    subprocess.run(["apt-get", "install", "-y", "-qq", "--no-install-recommends", "chromium"], check=True, env=env)
    return 0


if __name__ == "__main__":
    sys.exit(main())
