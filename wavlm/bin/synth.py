"""Generate a synthetic corpus in the real corpus' on-disk layout (for CI and the demo).

    python -m wavlm.bin.synth --corpus librispeech --out data/synth --seed 0

Corpora: librispeech (plus LM text and Libri-light limited supervision), librilight, voxceleb
(VoxCeleb1 + VoxCeleb2 with O/E/H trial lists), libricss, musan, rirs, librimix (Libri2Mix simulated from the
synthetic librispeech and musan, which are made first when absent); `all` makes every one.
Speech comes from espeak-ng; the same seed and options give byte-identical files. A corpus that is
already complete under --out with the same options is skipped (a `.done.<corpus>` marker).
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
import os
import time
from pathlib import Path

from wavlm.synth import libricss, librilight, librimix, librispeech, musan, rirs, voxceleb
from wavlm.synth.common import Completion

logger = logging.getLogger("wavlm.bin.synth")

CORPORA = ("librispeech", "librilight", "voxceleb", "libricss", "musan", "rirs", "librimix")


def get_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--corpus", required=True, choices=CORPORA + ("all",))
    p.add_argument("--out", required=True, type=Path, help="output directory (corpus trees go under it)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--nj", type=int, default=min(2, os.cpu_count() or 1), help="worker processes")
    p.add_argument("--overwrite", action="store_true", help="regenerate even if complete / other options")
    g = p.add_argument_group("librispeech")
    g.add_argument(
        "--subsets",
        default=",".join(librispeech.DEFAULT_SUBSETS),
        help=f"comma-separated, from {','.join(librispeech.ALL_SUBSETS)}",
    )
    g.add_argument(
        "--num_speakers",
        type=int,
        default=None,
        help="speakers per training subset (librispeech, default 12), per subset (librilight, "
        "default 4), VoxCeleb1 dev speakers (voxceleb, default 12)",
    )
    g.add_argument(
        "--num_eval_speakers",
        type=int,
        default=None,
        help="speakers per dev/test subset (librispeech, default 4); VoxCeleb1 test speakers "
        "(voxceleb, default 6)",
    )
    g.add_argument("--chapters_per_speaker", type=int, default=2)
    g.add_argument("--utts_per_speaker", type=int, default=10)
    g.add_argument("--lm_sentences", type=int, default=2000)
    g.add_argument(
        "--no_finetuning", action="store_true", help="skip the Libri-light limited supervision set"
    )
    g = p.add_argument_group("librilight")
    g.add_argument("--librilight_subsets", default="small", help="comma-separated from small,medium,large")
    g.add_argument("--files_per_speaker", type=int, default=2)
    g.add_argument("--utts_per_file", type=int, default=12)
    g = p.add_argument_group("voxceleb")
    g.add_argument("--num_vox2_speakers", type=int, default=12)
    g.add_argument("--videos_per_speaker", type=int, default=3)
    g.add_argument("--utts_per_video", type=int, default=2)
    g.add_argument("--num_trials", type=int, default=200, help="trials per list (half target)")
    g = p.add_argument_group("libricss")
    g.add_argument("--conditions", default=",".join(libricss.CONDITIONS))
    g.add_argument("--num_sessions", type=int, default=1, help="sessions per condition")
    g.add_argument("--session_speakers", type=int, default=4)
    g.add_argument("--session_utts", type=int, default=8)
    g = p.add_argument_group("musan / rirs")
    g.add_argument("--files_per_source", type=int, default=2, help="musan files per source directory")
    g.add_argument("--rooms_per_type", type=int, default=2)
    g.add_argument("--rirs_per_room", type=int, default=3)
    g = p.add_argument_group("librimix")
    g.add_argument("--librimix_mixtures", default="40,10,10", help="mixtures of train-100,dev,test")
    g.add_argument("--librimix_columns", type=int, choices=(6, 7), default=7,
                   help="csv header: 7 with original_mixture_ID (current LibriMix), 6 without (older LibriMix)")
    g.add_argument("--librimix_max_offset", type=float, default=0.0,
                   help="delay the second source by up to this many seconds (LibriMix: 0)")
    return p


def _build(corpus: str, a: argparse.Namespace) -> tuple[object, list[str]]:
    """The corpus' config object and the top-level directories it owns under --out."""
    if corpus == "librispeech":
        cfg = librispeech.LibriSpeechConfig(
            subsets=tuple(s for s in a.subsets.split(",") if s),
            num_speakers=a.num_speakers or 12,
            num_eval_speakers=a.num_eval_speakers or 4,
            chapters_per_speaker=a.chapters_per_speaker,
            utts_per_speaker=a.utts_per_speaker,
            lm_sentences=a.lm_sentences,
            finetuning=not a.no_finetuning,
            num_workers=a.nj,
        )
        return cfg, ["LibriSpeech", "librispeech_lm", "librispeech_finetuning"]
    if corpus == "librilight":
        cfg = librilight.LibriLightConfig(
            subsets=tuple(s for s in a.librilight_subsets.split(",") if s),
            num_speakers=a.num_speakers or 4,
            files_per_speaker=a.files_per_speaker,
            utts_per_file=a.utts_per_file,
            num_workers=a.nj,
        )
        return cfg, ["librilight"]
    if corpus == "voxceleb":
        cfg = voxceleb.VoxCelebConfig(
            num_vox1_dev=a.num_speakers or 12,
            num_vox1_test=a.num_eval_speakers or 6,
            num_vox2=a.num_vox2_speakers,
            videos_per_speaker=a.videos_per_speaker,
            utts_per_video=a.utts_per_video,
            num_trials=a.num_trials,
            num_workers=a.nj,
        )
        return cfg, ["voxceleb1", "voxceleb2"]
    if corpus == "libricss":
        cfg = libricss.LibriCSSConfig(
            conditions=tuple(c for c in a.conditions.split(",") if c),
            num_sessions=a.num_sessions,
            session_speakers=a.session_speakers,
            session_utts=a.session_utts,
            num_workers=a.nj,
        )
        return cfg, ["LibriCSS"]
    if corpus == "musan":
        return musan.MusanConfig(files_per_source=a.files_per_source, num_workers=a.nj), ["musan"]
    if corpus == "librimix":
        cfg = librimix.LibriMixConfig(
            num_mixtures=tuple(int(n) for n in a.librimix_mixtures.split(",") if n),
            csv_columns=a.librimix_columns,
            max_offset=a.librimix_max_offset,
            num_workers=a.nj,
        )
        return cfg, ["Libri2Mix"]
    cfg = rirs.RirsConfig(rooms_per_type=a.rooms_per_type, rirs_per_room=a.rirs_per_room)
    return cfg, ["RIRS_NOISES"]


GENERATORS = {
    "librispeech": librispeech.generate,
    "librilight": librilight.generate,
    "voxceleb": voxceleb.generate,
    "libricss": libricss.generate,
    "musan": musan.generate,
    "rirs": rirs.generate,
    "librimix": librimix.generate,
}


def run(corpus: str, a: argparse.Namespace) -> None:
    for need in librimix.NEEDS if corpus == "librimix" else ():
        run(need, a)  # skipped when complete with the same options
    cfg, roots = _build(corpus, a)
    params = {k: v for k, v in dataclasses.asdict(cfg).items() if k != "num_workers"}
    params = {"seed": a.seed, **{k: list(v) if isinstance(v, tuple) else v for k, v in params.items()}}
    done = Completion(a.out, corpus, params, [a.out / r for r in roots])
    if done.skip(a.overwrite):
        return
    t0 = time.time()
    GENERATORS[corpus](a.out, cfg, a.seed)
    done.done()
    logger.info("%s: written under %s in %.1f s", corpus, a.out, time.time() - t0)


def main(argv: list[str] | None = None) -> None:
    a = get_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    a.out.mkdir(parents=True, exist_ok=True)
    for corpus in CORPORA if a.corpus == "all" else (a.corpus,):
        run(corpus, a)


if __name__ == "__main__":
    main()
