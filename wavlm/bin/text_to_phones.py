"""Phone transcripts for SUPERB phoneme recognition: a copy of a Kaldi data dir whose `text` holds phones.

    python -m wavlm.bin.text_to_phones --lexicon librispeech_lm/librispeech-lexicon.txt \\
        [--lexicon extra-lexicon.txt ...] [--missing skip|fail] [--strip_stress] data/dev_clean data/dev_clean_phones

Each word of SRC/text is replaced by its first pronunciation in the lexicons (read in the order given, every
pronunciation of a word kept in file order, the first one used, as s3prl's libriphone.py does), with no
silence between words and the stress digits kept (--strip_stress drops them: ARPAbet's 69 phones -> 39).
Words are matched case-sensitively. See wavlm/data/phones.py.

DST is SRC's data dir (wav.scp, segments, utt2spk, spk2utt, utt2dur, spk2gender, ... as present) with the
phone `text`, plus DST/phones.txt (the phones seen, sorted, one a line) and DST/.text_to_phones (the
options). --missing skip (default) leaves out utterances with a word missing from the lexicons, logs the
first 5 (text file and line) and the count, and writes the other files for the kept utterances only
(spk2utt regenerated); --missing fail stops with an error naming the text line, utterance and words.
A DST newer than SRC's files and the lexicons, made with the same options, is left as it is ("up to date").
"""
from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path

from wavlm.bin import run_main
from wavlm.data.datadir import DataDir, DataDirError, atomic_write_text, c_sorted, select, write_data_dir
from wavlm.data.phones import MissingWordsError, case_hint, missing_words, read_lexicons, to_phones
from wavlm.decode.lexicon import LexiconError

logger = logging.getLogger(__name__)

STAMP = ".text_to_phones"
PHONES = "phones.txt"
MAX_LOGGED = 5


def get_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m wavlm.bin.text_to_phones", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--lexicon", action="append", required=True, metavar="FILE",
                   help="pronunciation lexicon `WORD PH1 PH2 ...` (.gz too); repeat for more, read in order")
    p.add_argument("--missing", choices=("skip", "fail"), default="skip",
                   help="utterances with a word missing from the lexicons: leave them out (default) or fail")
    p.add_argument("--strip_stress", action="store_true", help="drop the stress digits 0/1/2 ending the phones")
    p.add_argument("-v", "--verbose", type=int, default=0)
    p.add_argument("src", metavar="SRC_DATA_DIR", help="Kaldi data dir with text (words)")
    p.add_argument("dst", metavar="DST_DATA_DIR", help="data dir to write (text in phones)")
    return p


def main(argv: list[str] | None = None) -> int:
    return run_main(get_parser().parse_args(argv), run, (DataDirError, LexiconError, OSError))


def _options(args: argparse.Namespace) -> dict:
    return {"src": str(Path(args.src).resolve()), "lexicons": [str(Path(x).resolve()) for x in args.lexicon],
            "missing": args.missing, "strip_stress": args.strip_stress}


def _up_to_date(src: Path, dst: Path, lexicons: list[str], options: dict) -> bool:
    """DST was completed (its stamp is written last) with these options, after SRC's files and the lexicons
    were last changed, and its text and phone list are still there."""
    stamp = dst / STAMP
    try:
        if json.loads(stamp.read_text(encoding="utf-8")) != options:
            return False
        done = stamp.stat().st_mtime_ns
        if not all((dst / f).is_file() for f in ("text", PHONES)):
            return False
        inputs = [f for f in src.iterdir() if f.is_file()] + [Path(x) for x in lexicons]
        return all(f.stat().st_mtime_ns <= done for f in inputs)
    except (OSError, ValueError):
        return False


def run(args: argparse.Namespace) -> None:
    src, dst = Path(args.src), Path(args.dst)
    data = DataDir(src)
    if dst.resolve() == src.resolve():
        raise DataDirError(f"{dst}: the output data dir must differ from the input one (it is replaced)")
    options = _options(args)
    if _up_to_date(src, dst, args.lexicon, options):
        logger.info("%s: up to date (newer than %s and the lexicons, same options)", dst, src)
        return
    text = data.table("text")
    if text is None:
        raise DataDirError(f"{src}/text: missing (phone transcripts need the word transcripts)")
    lexicon = read_lexicons(args.lexicon)
    logger.info("lexicon: %d words, %d pronunciations from %s", len(lexicon), sum(map(len, lexicon.values())),
                " ".join(args.lexicon))

    phones: dict[str, str] = {}
    skipped: list[tuple[str, list[str]]] = []  # (utterance, its missing words)
    for utt, line in text.rows.items():
        words = line.split()
        missing = missing_words(words, lexicon)
        if missing:
            skipped.append((utt, missing))
            continue
        phones[utt] = " ".join(to_phones(words, lexicon, args.strip_stress))
    if skipped:
        where = [f"{text.where(u)} (utterance {u})" for u, _ in skipped]
        if args.missing == "fail":
            more = f" (and {len(skipped) - 1} more utterances with missing words)" if len(skipped) > 1 else ""
            raise MissingWordsError(skipped[0][1], lexicon, where[0] + more)
        for w, (_, words) in zip(where[:MAX_LOGGED], skipped[:MAX_LOGGED], strict=True):
            logger.warning("%s: left out, word%s %s not in the lexicon", w, "s" * (len(words) > 1), " ".join(words))
        distinct = list(dict.fromkeys(w for _, words in skipped for w in words))
        logger.warning("%s: left out %d of %d utterances with words missing from the lexicon (%d distinct: %s%s)%s",
                       text.path, len(skipped), len(text), len(distinct), " ".join(distinct[:20]),
                       " ..." if len(distinct) > 20 else "", case_hint(distinct, lexicon))
    if not phones:
        raise DataDirError(f"{text.path}: no utterance left: every one has a word missing from the lexicon")

    files = select(data, phones)
    files["text"] = phones
    known = {"segments", "spk2utt", *files}
    ignored = c_sorted(f.name for f in src.iterdir()
                       if f.is_file() and f.name not in known and not f.name.startswith("."))
    if ignored:
        logger.warning("%s: not copied to %s (not a data-dir file this tool filters): %s", src, dst, " ".join(ignored))
    write_data_dir(dst, files)
    inventory = c_sorted({p for v in phones.values() for p in v.split()})
    atomic_write_text(dst / PHONES, "".join(f"{p}\n" for p in inventory))
    atomic_write_text(dst / STAMP, json.dumps(options, indent=1) + "\n")  # last: marks DST complete
    logger.info("%s: %d utterances in %d phones (%d distinct) from %s", dst, len(phones),
                sum(len(v.split()) for v in phones.values()), len(inventory), src)


if __name__ == "__main__":
    sys.exit(main())
