"""The data-dir wrappers in utils/ work when called directly, without path.sh: each finds the repository's
tools/venv from its own location (through the egs/*/*/utils symlink too), as Kaldi's utils do."""
from __future__ import annotations

import os
from pathlib import Path

import pytest
from conftest import make_data_dir, run

WRAPPERS = {  # script -> arguments after the source data dir (`OUT` is replaced by an output path)
    "validate_data_dir.sh": [],
    "fix_data_dir.sh": [],
    "copy_data_dir.sh": ["OUT"],
    "subset_data_dir.sh": None,  # --first 2 <src> <dest>
    "split_data.sh": ["2"],
    "combine_data.sh": None,  # <dest> <src>
    "data/get_utt2dur.sh": [],
    "torchrun.sh": None,  # --ngpu 1 -c 'import soundfile, wavlm'
}


def bare_env() -> dict[str, str]:
    """An environment whose PATH has no venv (here: no `python` at all, or one without soundfile)."""
    env = {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "PYTHONPATH", "PYTHONHOME")}
    env["PATH"] = "/usr/local/bin:/usr/bin:/bin"
    return env


@pytest.mark.parametrize("via", ["utils", "egs/librispeech/asr1/utils"])
@pytest.mark.parametrize("script", sorted(WRAPPERS))
def test_wrapper_runs_without_path_sh(tmp_path, root, script, via):
    src = make_data_dir(tmp_path / "src", {"spkA": 3, "spkB": 2})
    out = tmp_path / "out"
    args = WRAPPERS[script]
    if script == "subset_data_dir.sh":
        argv = ["--first", "2", str(src), str(out)]
    elif script == "torchrun.sh":
        argv = ["--ngpu", "1", "-c", "import soundfile, wavlm"]
    elif script == "combine_data.sh":
        argv = [str(out), str(src)]
    else:
        argv = [str(src), *[str(out) if a == "OUT" else a for a in args]]
    # run from elsewhere, through a relative symlink to the script, with no venv on PATH
    link = tmp_path / "bin" / Path(script).name
    link.parent.mkdir()
    link.symlink_to(os.path.relpath(root / via / script, link.parent))
    p = run([str(link), *argv], bare_env(), cwd=tmp_path, check=False)
    assert p.returncode == 0, p.stderr
    assert "No module named" not in p.stderr


def test_missing_venv_says_how_to_install(tmp_path, root):
    fake = tmp_path / "repo"
    (fake / "utils").mkdir(parents=True)
    for f in ("validate_data_dir.sh", "path_common.sh", "log.sh"):
        (fake / "utils" / f).write_text((root / "utils" / f).read_text())
        (fake / "utils" / f).chmod(0o755)
    p = run([str(fake / "utils" / "validate_data_dir.sh"), str(tmp_path)], bare_env(), check=False)
    assert p.returncode != 0 and "tools/venv is missing" in p.stderr and str(fake) in p.stderr
