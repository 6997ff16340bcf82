"""`make test`: install the JavaScript the tests use (tests/js, pinned in its package-lock.json) when missing: Restate's
TypeScript client (the end-to-end ingress test) and axe-core (the shop's accessibility check, injected into pages).
Nothing is downloaded while the tests run."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

JS = Path(__file__).resolve().parent.parent / "tests" / "js"
NEEDED = ("@restatedev/restate-sdk-clients", "axe-core")


def main() -> int:
    if all((JS / "node_modules" / name).is_dir() for name in NEEDED):
        return 0
    npm = shutil.which("npm")
    if npm is None:
        print(
            "ensure_js: npm not found; tests/integration/test_restate_client.py and "
            "tests/browser/test_shop_a11y.py will fail",
            file=sys.stderr,
        )
        return 0
    print("==> installing the tests' JavaScript: Restate's TypeScript client and axe-core (npm ci)")
    return subprocess.call([npm, "ci", "--silent", "--no-audit", "--no-fund"], cwd=JS)


if __name__ == "__main__":
    sys.exit(main())
