"""`make test`: install the JavaScript client used by the end-to-end ingress test (tests/js) when missing."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

JS = Path(__file__).resolve().parent.parent / "tests" / "js"


def main() -> int:
    if (JS / "node_modules" / "@restatedev" / "restate-sdk-clients").is_dir():
        return 0
    npm = shutil.which("npm")
    if npm is None:
        print("ensure_js: npm not found; tests/integration/test_restate_client.py will fail", file=sys.stderr)
        return 0
    print("==> installing the Restate TypeScript client for the end-to-end test (npm ci)")
    return subprocess.call([npm, "ci", "--silent", "--no-audit", "--no-fund"], cwd=JS)


if __name__ == "__main__":
    sys.exit(main())
