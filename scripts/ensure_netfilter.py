"""Install Debian's nftables for the multi-host tests (tests/hosts/) when `nft` is missing (needs root and the
package mirror); without root the suite skips and says why."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys


def main() -> int:
    if shutil.which("nft") or os.path.exists("/usr/sbin/nft"):
        return 0
    if os.geteuid() != 0:
        print("==> nft is missing and this is not root: the multi-host tests will skip (apt-get install nftables)")
        return 0
    print("==> installing Debian's nftables for the multi-host tests (one time)", flush=True)
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    subprocess.run(["apt-get", "update", "-qq"], check=True, env=env)
    subprocess.run(["apt-get", "install", "-y", "-qq", "--no-install-recommends", "nftables"], check=True, env=env)
    return 0


if __name__ == "__main__":
    sys.exit(main())
