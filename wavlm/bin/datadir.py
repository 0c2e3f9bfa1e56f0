"""Kaldi data-dir tools (behind utils/validate_data_dir.sh, fix_data_dir.sh, split_data.sh, ...).

    python -m wavlm.bin.datadir validate [--audio] [--sample-rate 16000] [--channels N] [--text] DIR
    python -m wavlm.bin.datadir fix DIR
    python -m wavlm.bin.datadir split [--per-utt] DIR N
    python -m wavlm.bin.datadir subset (N | --first N | --last N | --shortest N | --utt-list F
                                        | --spk-list F | [--speakers M] [--per-spk N]) SRC DEST
    python -m wavlm.bin.datadir combine DEST SRC...
    python -m wavlm.bin.datadir copy [--utt-prefix P] [--spk-prefix P] [--utt-suffix S]
                                     [--spk-suffix S] SRC DEST
    python -m wavlm.bin.datadir utt2dur DIR
"""
from __future__ import annotations

import argparse
import logging
import sys

from wavlm.bin import setup_logging
from wavlm.data import datadir
from wavlm.data.audio import AudioError

log = logging.getLogger("wavlm.datadir")


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m wavlm.bin.datadir", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="command", required=True)

    v = sub.add_parser("validate", help="check a data dir; exit 1 listing every problem")
    v.add_argument("dir")
    v.add_argument("--audio", action="store_true", help="also read every recording's header")
    v.add_argument("--sample-rate", type=int, default=16000)
    v.add_argument("--channels", type=int, default=None,
                   help="also require this many channels in every recording (reads the headers, as --audio)")
    v.add_argument("--text", action="store_true", help="require a text file")

    f = sub.add_parser("fix", help="keep utterances present in every file, sort, rebuild spk2utt")
    f.add_argument("dir")

    s = sub.add_parser("split", help="split into DIR/splitN[utt]/{1..N}")
    s.add_argument("--per-utt", action="store_true", help="split by utterance, not by speaker")
    s.add_argument("dir")
    s.add_argument("nj", type=int)

    b = sub.add_parser("subset", help="a subset by count, first/last/shortest N, or an id list")
    g = b.add_mutually_exclusive_group()
    g.add_argument("--first", type=int)
    g.add_argument("--last", type=int)
    g.add_argument("--shortest", type=int)
    g.add_argument("--utt-list")
    g.add_argument("--spk-list")
    b.add_argument("--speakers", type=int, metavar="M", help="M speakers (evenly spaced) with their utterances")
    b.add_argument("--per-spk", type=int, metavar="N",
                   help="N utterances (evenly spaced) of each speaker; with --speakers, of each of the M")
    b.add_argument("args", nargs="+", metavar="[N] SRC DEST")

    c = sub.add_parser("combine", help="union of data dirs")
    c.add_argument("dest")
    c.add_argument("srcs", nargs="+")

    y = sub.add_parser("copy", help="copy with utterance/speaker id prefixes or suffixes")
    for name in ("utt-prefix", "utt-suffix", "spk-prefix", "spk-suffix"):
        y.add_argument(f"--{name}", default="")
    y.add_argument("src")
    y.add_argument("dest")

    d = sub.add_parser("utt2dur", help="write DIR/utt2dur")
    d.add_argument("dir")
    return p


def main(argv: list[str] | None = None) -> int:
    setup_logging()
    a = build_parser().parse_args(argv)
    try:
        if a.command == "validate":
            errors = datadir.validate(a.dir, check_audio=a.audio, sample_rate=a.sample_rate, channels=a.channels,
                                      need_text=a.text)
            for e in errors:
                log.error("%s", e)
            if errors:
                log.error("%s: %d problem(s) found", a.dir, len(errors))
                return 1
            log.info("%s: valid (%d utterances)", a.dir, len(datadir.DataDir(a.dir).utt2spk()))
        elif a.command == "fix":
            kept, before = datadir.fix(a.dir)
            log.info("%s: kept %d of %d utterances (old files in %s/.backup)", a.dir, kept, before, a.dir)
        elif a.command == "split":
            out = datadir.split(a.dir, a.nj, per_utt=a.per_utt)
            log.info("%s: split into %s/{1..%d}", a.dir, out, a.nj)
        elif a.command == "subset":
            chosen = {k: getattr(a, k) for k in ("first", "last", "shortest", "utt_list", "spk_list")}
            by_spk = {k: getattr(a, k) for k in ("speakers", "per_spk") if getattr(a, k) is not None}
            if by_spk and any(v is not None for v in chosen.values()):
                build_parser().error("subset: --speakers/--per-spk do not combine with --first, --last, --shortest, "
                                     "--utt-list or --spk-list")
            if any(v < 1 for v in by_spk.values()):
                build_parser().error("subset: --speakers and --per-spk take a count of at least 1")
            chosen.update(by_spk)
            if any(v is not None for v in chosen.values()):
                if len(a.args) != 2:
                    build_parser().error("subset with an option takes SRC DEST")
                src, dest = a.args
                n = datadir.subset(src, dest, **chosen)
            else:
                if len(a.args) != 3:
                    build_parser().error("subset takes N SRC DEST")
                src, dest = a.args[1:]
                n = datadir.subset(src, dest, num=int(a.args[0]))
            log.info("%s -> %s: %d utterances", src, dest, n)
        elif a.command == "combine":
            n = datadir.combine(a.dest, a.srcs)
            log.info("combined %d dirs into %s: %d utterances", len(a.srcs), a.dest, n)
        elif a.command == "copy":
            n = datadir.copy(a.src, a.dest, utt_prefix=a.utt_prefix, utt_suffix=a.utt_suffix,
                             spk_prefix=a.spk_prefix, spk_suffix=a.spk_suffix)
            log.info("copied %s -> %s: %d utterances", a.src, a.dest, n)
        elif a.command == "utt2dur":
            n = datadir.compute_utt2dur(a.dir)
            log.info("%s/utt2dur: %d entries", a.dir, n)
    except (datadir.DataDirError, AudioError, FileNotFoundError) as e:
        log.error("%s", e)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
