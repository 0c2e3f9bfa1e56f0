"""Synthetic VoxCeleb1 and VoxCeleb2 with the O, E and H trial lists.

Layout under OUT:
  voxceleb1/wav/id1XXXX/<video>/<nnnnn>.wav, voxceleb1/vox1_meta.csv (tab separated, as the real one),
  voxceleb1/{veri_test2.txt,list_test_all2.txt,list_test_hard2.txt}  "<1|0> <enroll> <test>"
  voxceleb1/iden_split.txt  "<1|2|3> <id1XXXX>/<video>/<nnnnn>.wav" (identification: train, dev, test)
  voxceleb2/wav/id0XXXX/<video>/<nnnnn>.wav, voxceleb2/vox2_meta.csv
VoxCeleb1 test speakers are id10270.. (as in the real corpus), dev speakers id10001..; each video has
its own random channel (EQ, gain, noise), so that speaker verification is not trivial. The O list uses
test speakers only; E and H use all VoxCeleb1 speakers, H pairs non-targets of the same sex and
nationality. Every list is balanced (half target trials).
iden_split.txt covers every VoxCeleb1 speaker (dev and test, as the real one) and every file, sorted by path:
a speaker with at least 3 utterances is in all three sets, split by video where the speaker has several
(test one whole video, as the real split; dev another whole video, or one utterance of a video not in test
when there are only 2 videos); a speaker with fewer utterances is in the train set only.
"""

from __future__ import annotations

import logging
import string
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from wavlm.synth.common import rng_for, write_audio, write_lines
from wavlm.synth.effects import apply_channel, random_channel
from wavlm.synth.speech import make_voices
from wavlm.synth.utterances import sentences, speak

logger = logging.getLogger(__name__)

NATIONALITIES = ("USA", "UK", "India", "Canada", "Ireland")
_ID_CHARS = string.ascii_letters + string.digits + "-_"


@dataclass
class VoxCelebConfig:
    num_vox1_dev: int = 12
    num_vox1_test: int = 6
    num_vox2: int = 12
    videos_per_speaker: int = 3
    utts_per_video: int = 2
    num_trials: int = 200
    num_workers: int = 2


@dataclass
class VoxSpeaker:
    id: str
    sex: str
    nationality: str
    set: str
    files: list[str]  # "<id>/<video>/<nnnnn>.wav"


def _video_id(rng: np.random.Generator) -> str:
    return "".join(_ID_CHARS[int(i)] for i in rng.integers(len(_ID_CHARS), size=11))


def _make_speakers(
    out: Path, ids: list[str], sets: list[str], cfg: VoxCelebConfig, seed: int, key: str
) -> list[VoxSpeaker]:
    rng = rng_for(seed, key, "plan")
    voices = make_voices(len(ids), rng)
    jobs, spks, chans = [], [], []
    for sid, st, v in zip(ids, sets, voices, strict=True):
        spk = VoxSpeaker(sid, v.sex.lower(), NATIONALITIES[int(rng.integers(len(NATIONALITIES)))], st, [])
        for _ in range(cfg.videos_per_speaker):
            vid = _video_id(rng)
            chans.append(random_channel(rng))
            for u in range(cfg.utts_per_video):
                spk.files.append(f"{sid}/{vid}/{u + 1:05d}.wav")
                jobs.append((" ".join(sentences(rng, 2)), v, len(chans) - 1))
        spks.append(spk)
    audios = speak([(t, v) for t, v, _ in jobs], rng_for(seed, key, "pads"), cfg.num_workers)
    files = [f for s in spks for f in s.files]
    noise = rng_for(seed, key, "noise")
    for f, (_, _, c), x in zip(files, jobs, audios, strict=True):
        write_audio(out / "wav" / f, apply_channel(x, chans[c], noise))
    return spks


def make_trials(spks: list[VoxSpeaker], n: int, rng: np.random.Generator, hard: bool = False) -> list[str]:
    """`n` trials, half target (different videos where possible), half non-target."""
    lines: list[str] = []
    eligible = [s for s in spks if len(s.files) >= 2]
    for i in range(n):
        s = eligible[int(rng.integers(len(eligible)))]
        enroll = s.files[int(rng.integers(len(s.files)))]
        if i % 2 == 0:
            other = [f for f in s.files if f.split("/")[1] != enroll.split("/")[1]] or [
                f for f in s.files if f != enroll
            ]
            lines.append(f"1 {enroll} {other[int(rng.integers(len(other)))]}")
        else:
            pool = [
                t
                for t in spks
                if t.id != s.id and (not hard or (t.sex, t.nationality) == (s.sex, s.nationality))
            ]
            if not pool:
                pool = [t for t in spks if t.id != s.id and (not hard or t.sex == s.sex)] or [
                    t for t in spks if t.id != s.id
                ]
            t = pool[int(rng.integers(len(pool)))]
            lines.append(f"0 {enroll} {t.files[int(rng.integers(len(t.files)))]}")
    return lines


IDEN_TRAIN, IDEN_DEV, IDEN_TEST = 1, 2, 3  # the set numbers of iden_split.txt


def iden_sets(files: list[str], rng: np.random.Generator) -> dict[str, int]:
    """Identification set (IDEN_TRAIN, IDEN_DEV, IDEN_TEST) of each file `<id>/<video>/<nnnnn>.wav` of one speaker."""
    sets = dict.fromkeys(files, IDEN_TRAIN)
    if len(files) < 3:
        return sets
    videos: dict[str, list[str]] = {}
    for f in files:
        videos.setdefault(f.split("/")[1], []).append(f)
    names = list(videos)
    order = [names[int(i)] for i in rng.permutation(len(names))]
    if len(order) >= 3:  # whole videos: one for test, one for dev, the others for train
        test, dev = order[:2]
        sets.update(dict.fromkeys(videos[test], IDEN_TEST))
        sets.update(dict.fromkeys(videos[dev], IDEN_DEV))
    elif len(order) == 2:  # one whole video for test; one utterance of the other (>= 2 of them) for dev
        test, rest = order if len(videos[order[1]]) >= 2 else order[::-1]
        sets.update(dict.fromkeys(videos[test], IDEN_TEST))
        sets[videos[rest][int(rng.integers(len(videos[rest])))]] = IDEN_DEV
    else:  # one video: one utterance each for test and dev
        i, j = rng.choice(len(files), size=2, replace=False)
        sets[files[int(i)]], sets[files[int(j)]] = IDEN_TEST, IDEN_DEV
    return sets


def make_iden_split(spks: list[VoxSpeaker], rng: np.random.Generator) -> list[str]:
    """The lines of iden_split.txt, `<set> <id>/<video>/<nnnnn>.wav`, sorted by path."""
    sets = {f: n for s in spks for f, n in iden_sets(s.files, rng).items()}
    return [f"{sets[f]} {f}" for f in sorted(sets)]


def generate(out: Path, cfg: VoxCelebConfig, seed: int) -> None:
    if cfg.num_vox1_test < 2 or cfg.num_vox1_dev + cfg.num_vox1_test < 2:
        raise ValueError("VoxCeleb needs at least 2 test speakers for the trial lists")
    v1 = out / "voxceleb1"
    test_ids = [f"id{10270 + i}" for i in range(cfg.num_vox1_test)]
    dev_ids = [f"id{10001 + i}" for i in range(cfg.num_vox1_dev)]
    logger.info("VoxCeleb1: %d dev + %d test speakers", len(dev_ids), len(test_ids))
    spks1 = _make_speakers(
        v1, dev_ids + test_ids, ["dev"] * len(dev_ids) + ["test"] * len(test_ids), cfg, seed, "vox1"
    )
    write_lines(
        v1 / "vox1_meta.csv",
        ["VoxCeleb1 ID\tVGGFace1 ID\tGender\tNationality\tSet"]
        + [f"{s.id}\tSynthetic_{s.id}\t{s.sex}\t{s.nationality}\t{s.set}" for s in spks1],
    )
    rng = rng_for(seed, "vox1", "trials")
    write_lines(
        v1 / "veri_test2.txt", make_trials([s for s in spks1 if s.set == "test"], cfg.num_trials, rng)
    )
    write_lines(v1 / "list_test_all2.txt", make_trials(spks1, cfg.num_trials, rng))
    write_lines(v1 / "list_test_hard2.txt", make_trials(spks1, cfg.num_trials, rng, hard=True))
    write_lines(v1 / "iden_split.txt", make_iden_split(spks1, rng_for(seed, "vox1", "iden")))
    if cfg.num_vox2 > 0:
        v2 = out / "voxceleb2"
        ids2 = [f"id{12 + 7 * i:05d}" for i in range(cfg.num_vox2)]
        logger.info("VoxCeleb2: %d dev speakers", len(ids2))
        spks2 = _make_speakers(v2, ids2, ["dev"] * len(ids2), cfg, seed, "vox2")
        write_lines(
            v2 / "vox2_meta.csv",
            ["VoxCeleb2 ID ,VGGFace2 ID ,Gender ,Set "]
            + [f"{s.id} ,n{int(s.id[2:]):06d} ,{s.sex} ,{s.set} " for s in spks2],
        )
