"""The gateway scores with ONNX Runtime only: importing it must not pull in
the training libraries (they double its memory for nothing)."""

from __future__ import annotations

import subprocess
import sys

from tests.processes import REPO

HEAVY = ("sklearn", "xgboost", "scipy", "pandas")


def test_the_gateway_does_not_import_the_training_libraries() -> None:
    code = "import sys, services.gateway.app; print(' '.join(m for m in %r if m in sys.modules))" % (HEAVY,)
    done = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == [], f"the gateway imports {done.stdout.strip()}"
