"""Every shell script parses (bash -n) and is shellcheck-clean; the Python is ruff-clean."""
from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def shell_scripts() -> list[str]:
    out = subprocess.run(["git", "ls-files", "-co", "--exclude-standard", "*.sh", ".ci/run", "egs/*/*/run.sh"],
                         cwd=ROOT, capture_output=True, text=True, check=True).stdout.split()
    files = sorted({f for f in out if (ROOT / f).is_file() and not (ROOT / f).is_symlink()})
    assert files, "no shell scripts found"
    return files


def test_bash_syntax():
    bad = []
    for f in shell_scripts():
        p = subprocess.run(["bash", "-n", f], cwd=ROOT, capture_output=True, text=True)
        if p.returncode:
            bad.append(p.stderr)
    assert not bad, "\n".join(bad)


def test_shellcheck():
    if shutil.which("shellcheck") is None:
        pytest.fail("shellcheck is not installed (tools/install.sh installs it)")
    p = subprocess.run(["shellcheck", "-x", *shell_scripts()], cwd=ROOT, capture_output=True, text=True)
    assert p.returncode == 0, p.stdout[-5000:]


def test_ruff():
    p = subprocess.run([sys.executable, "-m", "ruff", "check", "."], cwd=ROOT, capture_output=True, text=True)
    assert p.returncode == 0, p.stdout[-5000:]


def test_shell_conventions():
    """Executable scripts start with the env shebang and set -euo pipefail (sourced files are exempt)."""
    bad = []
    for f in shell_scripts():
        text = (ROOT / f).read_text()
        sourced = "# shellcheck shell=bash" in text.split("\n", 2)[0] or f.endswith(("path.sh", "cmd.sh"))
        lib = f.endswith(("_lib.sh", "parse_options.sh", "log.sh", "path_common.sh"))
        if sourced or lib:
            continue
        if not text.startswith("#!/usr/bin/env bash\n"):
            bad.append(f"{f}: shebang")
        if "set -euo pipefail" not in text and "set -uo pipefail" not in text:
            bad.append(f"{f}: no set -euo pipefail")
    assert not bad, bad
