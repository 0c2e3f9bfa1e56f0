"""Same corpus, same seed, same machine: the same numbers, run after run (what `make demo` promises).

egs/librispeech/ssl1 runs twice, from scratch, in two sandboxes, each in its own processes with another
PYTHONHASHSEED (so set/dict order and any per-process seed would show): MFCC in 2 parallel jobs, k-means,
labels, iteration 1, iteration-1 hidden states, k-means on them, labels and iteration 2 (utterance mixing,
a DataLoader worker). Every intermediate must be bitwise equal; the first that is not is named.
"""
from __future__ import annotations

from pathlib import Path

import kaldiio
import numpy as np
import pytest
import torch
from conftest import recipe_sandbox, run

UPDATES = 4


def ssl1_twice(tmp_path: Path, env: dict[str, str]) -> tuple[Path, Path]:
    corpus = tmp_path / "corpus"
    run(["python", "-m", "wavlm.bin.synth", "--corpus", "librispeech", "--out", str(corpus), "--seed", "3",
         "--subsets", "train-clean-100,dev-clean", "--num_speakers", "4", "--num_eval_speakers", "1",
         "--chapters_per_speaker", "1", "--utts_per_speaker", "5", "--lm_sentences", "10", "--no_finetuning"], env)
    recipes = []
    for name, hash_seed in (("a", "1"), ("b", "2")):
        recipe = recipe_sandbox(tmp_path / name, "librispeech/ssl1")
        run(["./run.sh", "--librispeech_root", str(corpus / "LibriSpeech"), "--train_set", "train_clean_100",
             "--train_parts", "train_clean_100", "--nj", "2", "--km1_clusters", "8", "--km2_clusters", "8",
             "--km_percent", "1.0", "--km_layer", "1", "--iter1_config", "conf/debug/iter1.yaml",
             "--iter2_config", "conf/debug/iter2.yaml", "--stop_stage", "9",
             "--train_args", f"trainer.max_updates={UPDATES} trainer.save_interval_updates={UPDATES} "
             f"trainer.valid_interval_updates={UPDATES} mix.prob=0.5"],
            {**env, "PYTHONHASHSEED": hash_seed}, cwd=recipe)
        recipes.append(recipe)
    return recipes[0], recipes[1]


def same_feats(a: Path, b: Path, rel: str) -> bool:
    def load(root: Path) -> dict[str, np.ndarray]:
        out = {}
        for line in (root / rel).read_text().splitlines():
            utt, spec = line.split(" ", 1)
            out[utt] = kaldiio.load_mat(str(root / spec))  # the scp's ark paths are relative to the recipe
        return out

    fa, fb = load(a), load(b)
    return list(fa) == list(fb) and all(np.array_equal(fa[u], fb[u]) for u in fa)


def same_checkpoint(a: Path, b: Path, rel: str) -> bool:
    def tensors(x, prefix=""):
        if isinstance(x, torch.Tensor):
            yield prefix, x
        elif isinstance(x, dict):
            for k in sorted(x, key=str):
                yield from tensors(x[k], f"{prefix}.{k}")
        elif isinstance(x, (list, tuple)):
            for i, v in enumerate(x):
                yield from tensors(v, f"{prefix}[{i}]")

    sa, sb = (torch.load(r / rel, map_location="cpu", weights_only=True) for r in (a, b))
    ta, tb = dict(tensors(sa)), dict(tensors(sb))
    # the model, the pre-training head and the optimizer's moments, all bitwise
    return ta.keys() == tb.keys() and all(torch.equal(ta[k], tb[k]) for k in ta) and sa["progress"] == sb["progress"]


@pytest.mark.slow
def test_ssl1_twice_gives_bitwise_equal_labels_and_checkpoints(tmp_path, env):
    a, b = ssl1_twice(tmp_path, env)

    def same(rel: str) -> bool:
        if rel.endswith("feats.scp"):
            return same_feats(a, b, rel)
        if rel.endswith(".pt"):
            return same_checkpoint(a, b, rel)
        return (a / rel).read_bytes() == (b / rel).read_bytes()

    sets = ("train_clean_100", "dev_clean")
    steps = [f"data/{s}/{f}" for s in sets for f in ("wav.scp", "utt2spk", "text", "utt2dur")]
    steps += [f"dump/mfcc/{s}/feats.scp" for s in sets] + ["exp/km_mfcc8/centroids.npy"]
    steps += [f"dump/km_mfcc8/{s}/km.txt" for s in sets] + [f"exp/iter1/checkpoint_{UPDATES}.pt"]
    steps += [f"dump/iter1_l1/{s}/feats.scp" for s in sets] + ["exp/km_iter1_l1_8/centroids.npy"]
    steps += [f"dump/km_iter1_l1_8/{s}/km.txt" for s in sets] + [f"exp/iter2/checkpoint_{UPDATES}.pt"]
    for rel in steps:  # in pipeline order: the first difference is the one to look at
        assert same(rel), f"two runs of the same recipe with the same seed differ first at {rel}"
    valid = [[ln.split("valid at")[1] for ln in (r / "exp" / it / "train.log").read_text().splitlines()
              if "valid at" in ln] for r in (a, b) for it in ("iter1", "iter2")]
    assert valid[:2] == valid[2:] and all(valid)


def test_readme_quotes_the_demo_results(root):
    """The README's demo table is DEMO_RESULTS.txt as tools/demo.sh wrote it, header (commit, machine) included."""
    results = (root / "DEMO_RESULTS.txt").read_text(encoding="utf-8")
    assert results.startswith("# make demo ") and "commit " in results.splitlines()[0]
    assert f"```\n{results}```\n" in (root / "README.md").read_text(encoding="utf-8"), (
        "README.md's 'What `make demo` prints' must quote DEMO_RESULTS.txt as it is: paste it after `make demo`")
