"""Synthetic Libri-light unlabelled audio: long recordings of many sentences separated by pauses.

Layout under OUT: librilight/<subset>/<spk>/<book>/<name>.flac and <name>.json, where the json has the
real files' fields (speaker, book_meta, snr, voice_activity). Pauses are digital silence, so
`voice_activity` ([[start, end], ...] in seconds, one interval per sentence) is exact.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from wavlm.synth.common import SAMPLE_RATE, rng_for, silence, write_audio, write_json
from wavlm.synth.speech import make_voices
from wavlm.synth.utterances import sentences, speak, speech_bounds, unique_ids
from wavlm.synth.vocab import ADJECTIVES, NAMES, NOUNS

logger = logging.getLogger(__name__)

GENRES = ("Literature", "Poetry", "History", "Science", "Children's Fiction", "Religion", "Philosophy")


@dataclass
class LibriLightConfig:
    subsets: tuple[str, ...] = ("small",)
    num_speakers: int = 4  # per subset
    files_per_speaker: int = 2  # one book per speaker, this many files (sections)
    utts_per_file: int = 12
    num_workers: int = 2


def _book_meta(
    rng: np.random.Generator, book_id: int, title: str, author: str, seconds: float, sections: int
) -> dict:
    first, last = author.split()
    slug = title.lower().replace(" ", "_")
    return {
        "id": str(book_id),
        "title": title,
        "description": f"A synthetic book about {title.lower()}.",
        "url_text_source": "",
        "language": "English",
        "copyright_year": str(int(rng.integers(1850, 1925))),
        "num_sections": str(sections),
        "url_rss": f"https://librivox.org/rss/{book_id}",
        "url_zip_file": f"http://www.archive.org/download/{slug}_librivox/{slug}_librivox_64kb_mp3.zip",
        "url_project": "",
        "url_librivox": f"https://librivox.org/{slug.replace('_', '-')}/",
        "url_other": None,
        "totaltimesecs": int(seconds),
        "authors": [
            {
                "id": str(int(rng.integers(100, 9999))),
                "first_name": first.title(),
                "last_name": last.title(),
                "dob": "",
                "dod": "",
            }
        ],
        "genre": [GENRES[int(rng.integers(len(GENRES)))]],
        "Dramatic Readings": False,
        "meta_genre": "Literature",
    }


def generate(out: Path, cfg: LibriLightConfig, seed: int) -> None:
    bad = [s for s in cfg.subsets if s not in ("small", "medium", "large", "duplicate")]
    if bad:
        raise ValueError(f"unknown Libri-light subsets {bad}; choose from small, medium, large, duplicate")
    rng = rng_for(seed, "librilight", "plan")
    n_spk = cfg.num_speakers * len(cfg.subsets)
    voices = make_voices(n_spk, rng)
    spk_ids = unique_ids(rng, n_spk, 10, 15000)
    book_ids = unique_ids(rng, n_spk, 100, 20000)
    files = []  # (subset, spk, book_dir, name, texts, voice, meta-args)
    for k in range(n_spk):
        subset = cfg.subsets[k // cfg.num_speakers]
        adjective, noun = ADJECTIVES[int(rng.integers(len(ADJECTIVES)))], NOUNS[int(rng.integers(len(NOUNS)))]
        title = f"The {adjective} {noun}".title()
        author = f"{NAMES[int(rng.integers(len(NAMES)))]} {NOUNS[int(rng.integers(len(NOUNS)))]}"
        slug = title.lower().replace(" ", "_")
        book_dir = f"{slug}_{book_ids[k] % 10000:04d}_librivox_64kb_mp3"
        for f in range(cfg.files_per_speaker):
            name = f"{f + 1:02d}_{author.split()[1].lower()}_{slug}_64kb"
            files.append(
                (
                    subset,
                    str(spk_ids[k]),
                    book_dir,
                    name,
                    sentences(rng, cfg.utts_per_file, 3),
                    voices[k],
                    (book_ids[k], title, author),
                )
            )
    items = [(t, f[5]) for f in files for t in f[4]]
    logger.info("Libri-light: %d files, %d sentences", len(files), len(items))
    audios = speak(items, rng_for(seed, "librilight", "pads"), cfg.num_workers, pad=(0.0, 0.0))
    pauses = rng_for(seed, "librilight", "pauses")
    k = 0
    for subset, spk, book_dir, name, texts, _voice, (book_id, title, author) in files:
        pieces, activity, t = [silence(float(pauses.uniform(0.3, 1.0)))], [], 0.0
        t = len(pieces[0])
        for x in audios[k : k + len(texts)]:
            a, b = speech_bounds(x)
            activity.append([round((t + a) / SAMPLE_RATE, 4), round((t + b) / SAMPLE_RATE, 4)])
            pieces += [x, silence(float(pauses.uniform(0.5, 2.5)))]
            t += len(x) + len(pieces[-1])
        k += len(texts)
        audio = np.concatenate(pieces)
        d = out / "librilight" / subset / spk / book_dir
        write_audio(d / f"{name}.flac", audio)
        meta = {
            "speaker": spk,
            "book_meta": _book_meta(
                rng_for(seed, "book", book_id),
                book_id,
                title,
                author,
                len(audio) / SAMPLE_RATE * cfg.files_per_speaker,
                cfg.files_per_speaker,
            ),
            "snr": round(float(pauses.uniform(10, 40)), 4),
            "voice_activity": activity,
        }
        write_json(d / f"{name}.json", meta)
