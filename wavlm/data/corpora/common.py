"""Writing a prepared data dir: sorted, fixed up, validated, with utt2dur, atomically, skipped when
it is up to date with its sources."""
from __future__ import annotations

import logging
import os
import shutil
from collections.abc import Callable
from pathlib import Path

from wavlm.data import datadir

log = logging.getLogger(__name__)


class CorpusError(ValueError):
    """A corpus directory that does not have the expected layout."""


def corpus_root(root: str | os.PathLike | None, name: str, expected: str, where: str) -> Path:
    """The corpus directory `root`, checked, as an absolute path (so that every wav.scp holds absolute
    paths, whatever the directory the corpus was named from). `name`: e.g. "LibriSpeech"; `expected`:
    what the directory holds; `where`: how to get the corpus."""
    if root is None or not str(root).strip():
        raise CorpusError(f"no {name} directory given (the directory holding {expected}; {where})")
    if not Path(root).is_dir():
        raise CorpusError(f"{name} root {root} is not a directory; expected it to hold {expected} ({where})")
    return Path(os.path.abspath(root))


def present_subsets(root: Path, subsets: list[str] | None, default: list[str], example: str, where: str) -> list[str]:
    """The subsets to prepare: those asked for (all must exist), else those of `default` under root."""
    wanted = subsets or default
    present = [s for s in wanted if (root / s).is_dir()]
    if not present:
        raise CorpusError(f"none of the subsets {wanted} is under {root}; expected e.g. {root}/{example} ({where})")
    absent = [s for s in subsets or [] if s not in present]
    if absent:
        raise CorpusError(f"subsets {absent} asked for are not under {root}, which holds only {present}: download "
                          f"them ({where}), or ask only for those present (--subsets {' '.join(present)})")
    return present


def sources_stamp(files: list[Path]) -> str:
    """Number of source files and their newest modification time: changes when the corpus changes."""
    newest = max((f.stat().st_mtime_ns for f in files), default=0)
    return f"{len(files)} {newest}"


def up_to_date(dest: Path, stamp: str) -> bool:
    done = dest / ".done"
    return done.is_file() and done.read_text().strip() == stamp and not datadir.validate(dest)


def write_prepared(dest: str | os.PathLike, files: dict[str, dict[str, str]], stamp: str,
                   need_text: bool = False, extra: dict[str, Callable[[Path], None]] | None = None) -> None:
    """Write the data dir through `<dest>.tmp`, add utt2dur, validate, then rename and stamp it. `extra`: files
    that are not key-value tables (e.g. an rttm), each written by its function, given the file's path."""
    dest = Path(dest)
    tmp = dest.with_name(dest.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    datadir.write_data_dir(tmp, files)
    for name, write in (extra or {}).items():
        write(tmp / name)
    datadir.compute_utt2dur(tmp)
    errors = datadir.validate(tmp, need_text=need_text)
    if errors:
        raise CorpusError("prepared data dir is invalid:\n  " + "\n  ".join(errors))
    shutil.rmtree(dest, ignore_errors=True)
    os.replace(tmp, dest)
    (dest / ".done").write_text(stamp + "\n")
    n_spk = len(set(files["utt2spk"].values()))
    log.info("%s: %d utterances, %d speakers", dest, len(files["utt2spk"]), n_spk)


def combine_prepared(dest: Path, parts: list[Path], need_text: bool = False) -> Path:
    """`dest` = the union of prepared data dirs `parts` (each with its `.done`), validated and stamped;
    left as it is while the parts are unchanged."""
    stamp = "combine " + " + ".join(f"{p.name}[{(p / '.done').read_text().strip()}]" for p in parts)
    if up_to_date(dest, stamp):
        log.info("%s is up to date", dest)
        return dest
    (dest / ".done").unlink(missing_ok=True)
    n = datadir.combine(dest, parts)
    errors = datadir.validate(dest, need_text=need_text)
    if errors:
        raise CorpusError(f"{dest}: combined data dir is invalid:\n  " + "\n  ".join(errors))
    (dest / ".done").write_text(stamp + "\n")
    log.info("%s: %d utterances from %s", dest, n, " + ".join(p.name for p in parts))
    return dest
