"""egs/librilight/ssl1 stage 1 on a small Libri-light download: the errors a user meets first (no root,
the default subsets of the full corpus, the default num_valid) say which option to change; a relative
root gives absolute paths; nothing temporary is left behind."""
from __future__ import annotations

import os

from conftest import recipe_sandbox, run
from test_corpora_librilight import make_corpus


def stage1(recipe, env, *args, check=True):
    return run(["./run.sh", "--stop_stage", "1", *args], env, cwd=recipe, check=check)


def test_stage1_errors_name_the_option_to_change(tmp_path, env):
    root = make_corpus(tmp_path / "corpus" / "librilight",
                       {("1", "b", f"f{i}"): [[1.0, 5.0], [7.0, 9.5]] for i in range(5)}, seconds=10.0)
    recipe = recipe_sandbox(tmp_path, "librilight/ssl1")
    p = stage1(recipe, env, check=False)
    assert p.returncode != 0 and "give --librilight_root DIR" in p.stderr and "is under ." not in p.stderr
    # only small/ was downloaded: the default "small medium large" names --subsets
    p = stage1(recipe, env, "--librilight_root", str(root), check=False)
    assert p.returncode != 0
    assert "['medium', 'large'] asked for are not under" in p.stderr and "(--subsets small)" in p.stderr
    # 5 utterances: the default num_valid=1000 cannot be held out; the message says what to pass; no temp dir
    p = stage1(recipe, env, "--librilight_root", str(root), "--subsets", "small", check=False)
    assert p.returncode != 0
    assert "--num_valid 1000: the validation set is held out of the 5 utterances" in p.stderr
    assert "pass e.g. --num_valid 1, or --valid_data DIR" in p.stderr
    assert sorted(os.listdir(recipe / "data")) == ["small"]
    p = stage1(recipe, env, "--librilight_root", str(root), "--subsets", "small", "--num_valid", "5", check=False)
    assert p.returncode != 0 and "fewer than 5" in p.stderr
    # a relative root: every wav.scp path is absolute
    rel = os.path.relpath(root, recipe)
    stage1(recipe, env, "--librilight_root", rel, "--subsets", "small", "--num_valid", "2")
    for d in ("small", "train", "valid"):
        paths = [line.split(maxsplit=1)[1] for line in (recipe / "data" / d / "wav.scp").read_text().splitlines()]
        assert paths and all(os.path.isabs(x) and os.path.isfile(x) for x in paths), (d, paths)
    assert len((recipe / "data" / "valid" / "utt2spk").read_text().splitlines()) == 2
    assert not [f for f in os.listdir(recipe / "data") if f.startswith(".")]
