"""utils/parse_options.sh: defaults, both option syntaxes, booleans, --help, unknown options."""
from __future__ import annotations

import os

from conftest import run

SCRIPT = """#!/usr/bin/env bash
set -euo pipefail
stage=1              # first stage to run
nj=4
use_gpu=false        # use a GPU
train_set=train_clean_100
help_message="Usage: t.sh [options] <arg>"
. {root}/utils/parse_options.sh
echo "stage=$stage nj=$nj use_gpu=$use_gpu train_set=$train_set args=$*"
"""


def script(tmp_path, root):
    p = tmp_path / "t.sh"
    p.write_text(SCRIPT.format(root=root))
    os.chmod(p, 0o755)
    return str(p)


def test_defaults(tmp_path, root, env):
    out = run([script(tmp_path, root)], env).stdout
    assert out.strip() == "stage=1 nj=4 use_gpu=false train_set=train_clean_100 args="


def test_both_syntaxes_dashes_and_positionals(tmp_path, root, env):
    out = run([script(tmp_path, root), "--stage", "3", "--nj=8", "--train-set", "a b", "--use_gpu=true",
               "pos1", "--not-an-option-after-positional"], env).stdout
    assert out.strip() == ("stage=3 nj=8 use_gpu=true train_set=a b "
                           "args=pos1 --not-an-option-after-positional")


def test_value_with_equals_sign(tmp_path, root, env):
    out = run([script(tmp_path, root), "--train_set=x=y"], env).stdout
    assert "train_set=x=y " in out


def test_unknown_option_fails(tmp_path, root, env):
    p = run([script(tmp_path, root), "--stgae", "3"], env, check=False)
    assert p.returncode != 0
    assert "unknown option --stgae" in p.stderr
    assert "stage=" not in p.stdout


def test_boolean_rejects_other_values(tmp_path, root, env):
    p = run([script(tmp_path, root), "--use_gpu", "yes"], env, check=False)
    assert p.returncode != 0 and "true or false" in p.stderr


def test_missing_value_fails(tmp_path, root, env):
    p = run([script(tmp_path, root), "--nj"], env, check=False)
    assert p.returncode != 0 and "needs a value" in p.stderr


def test_help_lists_options_with_defaults(tmp_path, root, env):
    p = run([script(tmp_path, root), "--help"], env)
    lines = p.stdout.splitlines()
    assert lines[0] == "Usage: t.sh [options] <arg>"
    opts = {ln.split()[0]: ln for ln in lines if ln.startswith("  --")}
    assert set(opts) == {"--stage", "--nj", "--use-gpu", "--train-set"}
    assert "first stage to run" in opts["--stage"] and opts["--stage"].endswith("[1]")
    assert opts["--train-set"].endswith("[train_clean_100]")
    assert "stage=" not in p.stdout  # --help exits before the script body
