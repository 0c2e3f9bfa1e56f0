"""Kaldi data dirs from a corpus in its real on-disk layout (what recipes' local/data.sh call).

    python -m wavlm.bin.prepare_data librispeech --root /data/LibriSpeech --data data [--subsets dev-clean ...] \
        [--combine_960]
    python -m wavlm.bin.prepare_data librispeech_finetuning --root /data/librispeech_finetuning --data data \
        [--subsets train_10min train_1h train_10h] [--speakers /data/LibriSpeech/SPEAKERS.TXT]
    python -m wavlm.bin.prepare_data librilight --root /data/librilight --data data --subsets small medium large
    python -m wavlm.bin.prepare_data libricss --root /data/LibriCSS --data data [--subsets 0S 0L OV10 ...]
    python -m wavlm.bin.prepare_data musan --root /data/musan --data data
    python -m wavlm.bin.prepare_data rirs --root /data/RIRS_NOISES --data data
    python -m wavlm.bin.prepare_data librimix --root /data/librimix --data data [--subsets train-100 dev test] \
        [--mix mix_both|mix_clean] [--source_rttm dev_clean.rttm ...]
    python -m wavlm.bin.prepare_data voxceleb --vox1_root /data/voxceleb1 --vox2_root /data/voxceleb2 --data data \
        [--train_sets vox2_dev vox1_dev] [--trials_dir DIR] [--trial_lists vox1_O vox1_E vox1_H] \
        [--sid_sets sid_train sid_dev sid_test] [--iden_split FILE]

Corpora that cut long recordings into utterances (librilight) take --max_seconds / --min_seconds.
librispeech --combine_960 also makes train_960 (train_clean_100 + train_clean_360 + train_other_500)
when all three are prepared. librispeech_finetuning is Libri-light's limited supervision sets
(librispeech_finetuning/1h, 9h): train_10min = 1h/0, train_1h = 1h/*, train_10h = 1h/* + 9h.
voxceleb makes vox1_dev, vox1_test, vox1_all (from --vox1_root: wav/<id1xxxx>/<video>/<nnnnn>.wav,
vox1_meta.csv), vox2_dev (from --vox2_root: dev/aac/<id0xxxx>/<video>/<nnnnn>.m4a, or .wav under dev/wav/ or
wav/; m4a is decoded by ffmpeg pipes in wav.scp), train (the --train_sets, default vox2_dev; none given:
no train), and Kaldi trials trials/vox1_O, vox1_E, vox1_H (`<enroll-utt> <test-utt> target|nontarget`)
from veri_test2.txt, list_test_all2.txt, list_test_hard2.txt in --trials_dir (default --vox1_root): those
named by --trial_lists (each must be made), or by default those whose source is there.
voxceleb also makes the speaker identification (SUPERB SID) data dirs sid_train, sid_dev, sid_test (sets 1, 2, 3 of
VoxCeleb1's iden_split.txt, every speaker in each; utterances as in vox1_all) when asked for: those named by
--sid_sets, from --iden_split (default <vox1_root>/iden_split.txt), which must list only files that are there;
--iden_split alone makes all three; neither: none.
musan makes musan_noise, musan_music, musan_speech (--subsets noise music speech) from musan/; rirs makes
rirs from RIRS_NOISES/ (the responses of its simulated and real rir_lists; first channel of multi-channel ones):
the augmentation recordings, one utterance each.
librimix makes train_100, train_360, dev, test (those with a Libri2Mix/wav16k/max/metadata/mixture_<split>_<mix>.csv
under --root; <split>_mix_clean for --mix mix_clean) for speaker diarization: wav.scp of the mixtures, each its own
utterance and speaker, reco2dur, and an rttm of when each source speaks: from --source_rttm (LibriSpeech
per-utterance RTTMs, as SUPERB's) when given, else from the energy of the clean sources s1/, s2/.

A data dir that is complete and made from unchanged sources is left as it is.
"""
from __future__ import annotations

import argparse
import inspect
import logging
import sys

from wavlm.bin import setup_logging
from wavlm.data.corpora import libricss, librilight, librimix, librispeech, musan, voxceleb
from wavlm.data.corpora.common import CorpusError
from wavlm.data.datadir import DataDirError

log = logging.getLogger("wavlm.prepare_data")

CORPORA = {
    "librilight": librilight.prepare,
    "librispeech": librispeech.prepare,
    "librispeech_finetuning": librispeech.prepare_finetuning,
    "voxceleb": voxceleb.prepare,
    "libricss": libricss.prepare,
    "musan": musan.prepare_musan,
    "rirs": musan.prepare_rirs,
    "librimix": librimix.prepare_librimix,
}
VOX_OPTIONS = ("vox1_root", "vox2_root", "train_sets", "trials_dir", "trial_lists", "iden_split", "sid_sets")


def main(argv: list[str] | None = None) -> int:
    setup_logging()
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("corpus", choices=sorted(CORPORA))
    p.add_argument("--root", default=None, help="the corpus directory (all but voxceleb)")
    p.add_argument("--data", default="data", help="where the data dirs go")
    p.add_argument("--subsets", nargs="*", default=None, help="only these subsets (default: all present)")
    p.add_argument("--max_seconds", type=float, default=None, help="longest utterance cut from a recording")
    p.add_argument("--min_seconds", type=float, default=None, help="shortest utterance kept")
    p.add_argument("--combine_960", action="store_true",
                   help="librispeech: also make train_960 when train_clean_100, _360 and train_other_500 are prepared")
    p.add_argument("--speakers", default=None,
                   help="librispeech_finetuning: LibriSpeech's SPEAKERS.TXT, for spk2gender")
    p.add_argument("--mix", default=None, choices=librimix.MIXES, help="librimix: the mixtures (default mix_both)")
    p.add_argument("--source_rttm", nargs="+", default=None,
                   help="librimix: LibriSpeech per-utterance RTTMs for the turns (default: from source energy)")
    vox = p.add_argument_group("voxceleb")
    vox.add_argument("--vox1_root", default=None, help="VoxCeleb1: holds wav/<id1xxxx>/..., vox1_meta.csv, trial lists")
    vox.add_argument("--vox2_root", default=None, help="VoxCeleb2: holds dev/aac/<id0xxxx>/... (or dev/wav, wav)")
    vox.add_argument("--train_sets", nargs="*", default=None, choices=voxceleb.TRAIN_PARTS,
                     help="data/train = their union (default: vox2_dev; the option alone: no data/train)")
    vox.add_argument("--trials_dir", default=None,
                     help="where veri_test2.txt, list_test_all2.txt, list_test_hard2.txt are (default: --vox1_root)")
    vox.add_argument("--trial_lists", nargs="*", default=None, choices=list(voxceleb.TRIAL_LISTS),
                     help="make exactly these trial lists, an error when one cannot be made (default: those whose "
                          "source is there; the option alone: none)")
    vox.add_argument("--iden_split", default=None,
                     help="VoxCeleb1's iden_split.txt (`1|2|3 <spk>/<video>/<nnnnn>.wav`) for the SID data dirs "
                          "(default: <vox1_root>/iden_split.txt; given alone: all three SID sets are made)")
    vox.add_argument("--sid_sets", nargs="*", default=None, choices=list(voxceleb.SID_SETS),
                     help="make these speaker identification data dirs (sets 1, 2, 3 of --iden_split), an error when "
                          "one cannot be made (default: all three when --iden_split is given, else none)")
    a = p.parse_args(argv)
    if a.corpus == "voxceleb":
        given = [o for o in ("root", "subsets", "max_seconds", "min_seconds", "speakers", "mix", "source_rttm")
                 if getattr(a, o) is not None] + (["combine_960"] if a.combine_960 else [])
        if given:
            p.error(f"voxceleb does not take --{' --'.join(given)} (it takes --{' --'.join(VOX_OPTIONS)})")
        try:
            voxceleb.prepare(a.vox1_root, a.vox2_root, a.data, a.train_sets, a.trials_dir, a.trial_lists,
                             a.iden_split, a.sid_sets)
        except (CorpusError, DataDirError) as e:
            log.error("%s", e)
            return 1
        return 0
    given = [o for o in VOX_OPTIONS if getattr(a, o) is not None]
    if given:
        p.error(f"{a.corpus} does not take --{' --'.join(given)}")
    if a.root is None:
        p.error(f"{a.corpus} needs --root")
    prepare = CORPORA[a.corpus]
    kwargs = {k: v for k, v in (("max_seconds", a.max_seconds), ("min_seconds", a.min_seconds),
                                ("combine_960", a.combine_960 or None), ("speakers", a.speakers), ("mix", a.mix),
                                ("source_rttm", a.source_rttm)) if v is not None}
    unsupported = [k for k in kwargs if k not in inspect.signature(prepare).parameters]
    if unsupported:
        p.error(f"{a.corpus} does not take --{' --'.join(unsupported)}")
    try:
        prepare(a.root, a.data, a.subsets, **kwargs)
    except (CorpusError, DataDirError) as e:
        log.error("%s", e)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
