"""Every option of a recipe's data stage (local/data.sh) is an option of its run.sh, forwarded to
local/data.sh by stage 1, so that nothing a user may need there is reachable only by calling local/data.sh."""
from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
RECIPES = sorted(p.parent.parent for p in ROOT.glob("egs/*/*/local/data.sh"))
# `data`: where local/data.sh writes; run.sh's later stages read data/ in the recipe directory, so stage 1
# writes there (--data is for preparing a copy elsewhere by hand).
NOT_FORWARDED = {"data"}


def options(script: Path) -> list[str]:
    """The variables assigned before `. utils/parse_options.sh`: the script's options (parse_options.sh's rule)."""
    names = []
    for line in script.read_text().splitlines():
        if re.match(r"\s*\.\s.*parse_options\.sh", line):
            return names
        m = re.match(r"([A-Za-z_][A-Za-z0-9_]*)=", line)
        if m and m.group(1) != "help_message":
            names.append(m.group(1))
    raise AssertionError(f"{script} does not source utils/parse_options.sh")


def data_stage_call(run_sh: Path) -> str:
    """The local/data.sh command line of stage 1, continuation lines joined."""
    text = run_sh.read_text().replace("\\\n", " ")
    calls = [line for line in text.splitlines() if line.strip().startswith("local/data.sh")]
    assert len(calls) == 1, f"{run_sh}: expected one local/data.sh call, found {calls}"
    return calls[0]


def test_every_recipe_is_checked():
    assert {r.relative_to(ROOT / "egs").as_posix() for r in RECIPES} >= {
        "librispeech/asr1", "librispeech/ssl1", "librilight/ssl1", "libricss/css1", "voxceleb/sv1"}


@pytest.mark.parametrize("recipe", RECIPES, ids=lambda r: r.relative_to(ROOT / "egs").as_posix())
def test_data_stage_options_are_run_sh_options(recipe):
    wanted = [o for o in options(recipe / "local" / "data.sh") if o not in NOT_FORWARDED]
    run_opts = set(options(recipe / "run.sh"))
    call = data_stage_call(recipe / "run.sh")
    missing = [o for o in wanted if o not in run_opts]
    assert not missing, f"{recipe}/run.sh lacks the options {missing} of local/data.sh"
    not_passed = [o for o in wanted if f'--{o} "${o}"' not in call]
    assert not not_passed, f"{recipe}/run.sh stage 1 does not pass {not_passed} to local/data.sh: {call}"
