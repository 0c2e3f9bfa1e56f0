"""Word n-gram language models in ARPA format: a writer (interpolated modified Kneser-Ney) for small corpora
and a reader/validator that names the file and line of anything that is not ARPA.

Why the writer is our own: KenLM's `lmplz`, which built the official LibriSpeech `4-gram.arpa.gz`, is a C++
program that no PyPI package ships (the `kenlm` package only queries models), and nltk's
`KneserNeyInterpolated` writes no ARPA. So `build_arpa` implements the smoothing lmplz uses, interpolated
modified Kneser-Ney (Chen & Goodman 1998; Heafield et al. 2013), for the corpora this repository generates:
  * the highest order uses raw counts; lower orders use continuation counts (how many distinct words
    precede the n-gram), except n-grams starting with `<s>`, which nothing can precede (raw counts);
  * three discounts per order from the counts of counts t1..t4 of those counts:
    Y = t1 / (t1 + 2 t2), D1 = 1 - 2Y t2/t1, D2 = 2 - 3Y t3/t2, D3+ = 3 - 4Y t4/t3; where the corpus is too
    small for them (a count of counts is 0 or a discount leaves (0, k)) the discounts fall back to
    0.5, 1, 1.5, as `lmplz --discount_fallback` does;
  * p(w | h) = (a(hw) - D(a(hw))) / a(h.) + g(h) p(w | h'), g(h) = (D1 N1(h.) + D2 N2(h.) + D3+ N3+(h.)) / a(h.),
    with h' = h without its first word and, below unigrams, the uniform distribution over the vocabulary
    (every word of the text and of `extra_words`, plus `</s>` and `<unk>`; `<s>` is never predicted);
  * the ARPA file stores p(w | h) for every n-gram seen and g(h) as the back-off weight of every context,
    which is exactly the interpolated model (for an unseen hw, p(w | h) = g(h) p(w | h')), so every
    context's distribution sums to 1.
It keeps every n-gram in memory: fine for the synthetic LM text (thousands of sentences), not for the
800M-word LibriSpeech LM corpus, whose official ARPA files are used as they are.
"""
from __future__ import annotations

import gzip
import io
import logging
import math
import os
import re
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

log = logging.getLogger(__name__)

BOS, EOS, UNK = "<s>", "</s>", "<unk>"
FALLBACK_DISCOUNTS = (0.5, 1.0, 1.5)
KENLM_BINARY_MAGIC = b"mmap lm "  # the first bytes of a KenLM binary (build_binary) file
NEVER = -99.0  # log10 probability ARPA writers give <s>, which is never predicted


class ArpaError(ValueError):
    """A file that is missing or is not an ARPA language model; the message names the file and line."""


def open_text(path: str | os.PathLike) -> IO[str]:
    """A text file or a gzipped one (by its `.gz` suffix), read as UTF-8; a missing file is an ArpaError."""
    path = Path(path)
    if not path.is_file():
        raise ArpaError(f"{path}: no such file")
    if path.suffix == ".gz":
        return io.TextIOWrapper(gzip.open(path, "rb"), encoding="utf-8")
    return open(path, encoding="utf-8")


# ---- writing ---------------------------------------------------------------------------------------

def count_ngrams(sentences: Iterable[list[str]], order: int) -> list[Counter[tuple[str, ...]]]:
    """counts[n - 1][ngram] for n = 1..order over sentences framed as `<s> w1 .. wk </s>`."""
    counts: list[Counter[tuple[str, ...]]] = [Counter() for _ in range(order)]
    for words in sentences:
        toks = (BOS, *words, EOS)
        for n in range(1, order + 1):
            c = counts[n - 1]
            for i in range(len(toks) - n + 1):
                c[toks[i : i + n]] += 1
    return counts


def discounts(adjusted: Iterable[int], order: int) -> tuple[float, float, float]:
    """Modified Kneser-Ney discounts D1, D2, D3+ from the counts of counts (see the module docstring)."""
    t = Counter(a for a in adjusted if 1 <= a <= 4)
    t1, t2, t3, t4 = (t[k] for k in (1, 2, 3, 4))
    if min(t1, t2, t3, t4) > 0:
        y = t1 / (t1 + 2 * t2)
        d = (1 - 2 * y * t2 / t1, 2 - 3 * y * t3 / t2, 3 - 4 * y * t4 / t3)
        if all(0 < dk < k for k, dk in enumerate(d, 1)):
            return d
    log.warning("order %d: counts of counts %s too few for Kneser-Ney discounts; using %s (as lmplz "
                "--discount_fallback)", order, [t1, t2, t3, t4], FALLBACK_DISCOUNTS)
    return FALLBACK_DISCOUNTS


@dataclass
class NgramModel:
    """prob[n - 1][ngram] = log10 p(last word | the others); backoff[n - 1][ngram] = log10 g(ngram)."""

    order: int
    prob: list[dict[tuple[str, ...], float]] = field(default_factory=list)
    backoff: list[dict[tuple[str, ...], float]] = field(default_factory=list)


def kneser_ney(sentences: Iterable[list[str]], order: int = 4, extra_words: Iterable[str] = ()) -> NgramModel:
    """Estimate an interpolated modified Kneser-Ney model of `order` (see the module docstring)."""
    if order < 1:
        raise ValueError(f"n-gram order must be at least 1, got {order}")
    counts = count_ngrams(sentences, order)
    if not counts[0] or set(counts[0]) == {(BOS,), (EOS,)}:
        raise ValueError("no words to estimate an n-gram model from")
    # a(g): raw counts at the highest order and for n-grams starting with <s>, continuation counts below
    adjusted: list[dict[tuple[str, ...], int]] = [dict() for _ in range(order)]
    adjusted[order - 1] = dict(counts[order - 1])
    for n in range(order - 1, 0, -1):
        cont = Counter(g[1:] for g in counts[n])
        adjusted[n - 1] = {g: c if g[0] == BOS else cont[g] for g, c in counts[n - 1].items()}
    vocab = {g[0] for g in counts[0]} | set(extra_words) | {EOS, UNK}
    vocab.discard(BOS)
    uni = adjusted[0]
    uni.pop((BOS,), None)
    for w in vocab:
        uni.setdefault((w,), 0)

    model = NgramModel(order, [dict() for _ in range(order)], [dict() for _ in range(order)])
    lower: dict[tuple[str, ...], float] = {}  # linear probabilities of the order below
    for n in range(1, order + 1):
        a = adjusted[n - 1]
        d = (0.0, *discounts(a.values(), n))
        total: dict[tuple[str, ...], int] = defaultdict(int)
        mass: dict[tuple[str, ...], float] = defaultdict(float)
        for g, c in a.items():
            total[g[:-1]] += c
            mass[g[:-1]] += d[min(c, 3)]
        gamma = {h: mass[h] / total[h] for h in total}
        prob: dict[tuple[str, ...], float] = {}
        for g, c in a.items():
            h = g[:-1]
            below = 1.0 / len(vocab) if n == 1 else lower[g[1:]]
            prob[g] = (c - d[min(c, 3)]) / total[h] + gamma[h] * below
        model.prob[n - 1] = {g: math.log10(p) for g, p in prob.items()}
        if n > 1:
            model.backoff[n - 2] = {h: math.log10(gm) for h, gm in gamma.items()}
        lower = prob
    model.prob[0][(BOS,)] = NEVER
    model.backoff[0].setdefault((BOS,), 0.0)
    return model


def format_arpa(model: NgramModel) -> str:
    """The ARPA text of `model`: n-grams sorted within each order, numbers with 7 significant digits."""
    out = ["", "\\data\\"]
    out += [f"ngram {n}={len(model.prob[n - 1])}" for n in range(1, model.order + 1)]
    for n in range(1, model.order + 1):
        out += ["", f"\\{n}-grams:"]
        bows = model.backoff[n - 1] if n < model.order else {}
        for g in sorted(model.prob[n - 1]):
            line = f"{model.prob[n - 1][g]:.7g}\t{' '.join(g)}"
            if g in bows:
                line += f"\t{bows[g]:.7g}"
            out.append(line)
    out += ["", "\\end\\", ""]
    return "\n".join(out)


def write_arpa(model: NgramModel, path: str | os.PathLike) -> Path:
    """Write `model` atomically; gzipped when `path` ends in `.gz` (no name or time in the gzip header, so the
    same model gives the same bytes)."""
    path = Path(path)
    data = format_arpa(model).encode("utf-8")
    if path.suffix == ".gz":
        buf = io.BytesIO()
        with gzip.GzipFile(filename="", mode="wb", fileobj=buf, mtime=0) as gz:
            gz.write(data)
        data = buf.getvalue()
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    tmp.write_bytes(data)
    os.replace(tmp, path)
    return path


def read_sentences(path: str | os.PathLike) -> Iterator[list[str]]:
    """Words of each non-empty line of an LM text (plain or .gz), e.g. `librispeech-lm-norm.txt`."""
    with open_text(path) as f:
        for line in f:
            words = line.split()
            if words:
                yield words


def build_arpa(text: str | os.PathLike, out: str | os.PathLike, order: int = 4,
               extra_words: Iterable[str] = ()) -> Path:
    """Estimate an interpolated modified Kneser-Ney `order`-gram model on the LM text file `text` (one
    sentence per line) and write it to `out` as ARPA (gzipped for `.gz`)."""
    model = kneser_ney(read_sentences(text), order, extra_words)
    path = write_arpa(model, out)
    log.info("%s: %d-gram model from %s (%s n-grams)", path, order, text,
             "/".join(str(len(p)) for p in model.prob))
    return path


# ---- reading and validating ----------------------------------------------------------------------------

_COUNT = re.compile(r"ngram\s+(\d+)\s*=\s*(\d+)")
_SECTION = re.compile(r"\\(\d+)-grams:")


@dataclass
class ArpaEntry:
    order: int
    words: tuple[str, ...]
    logprob: float
    backoff: float | None
    line: int


def iter_arpa(path: str | os.PathLike, max_order: int | None = None) -> Iterator[ArpaEntry]:
    """The n-grams of an ARPA file, in file order, each checked: the `\\data\\` header, one section per order
    in order, `log10p<TAB>w1 .. wn[<TAB>backoff]` lines with the section's n, as many lines as the header
    counts, and `\\end\\`. Stops after section `max_order` when given. Anything else is an ArpaError naming
    the file and line."""
    path = Path(path)
    lineno = 0
    counts: list[int] = []
    n = seen = 0  # current section (0: before the first) and its lines so far
    state = "preamble"  # text before \data\ is allowed (SRILM may write comments there)

    def fail(msg: str) -> ArpaError:
        return ArpaError(f"{path}:{lineno}: {msg}")

    with open_text(path) as f:
        try:
            for line in f:
                lineno += 1
                s = line.strip()
                if state == "preamble":
                    if s == "\\data\\":
                        state = "header"
                    continue
                if not s:
                    continue
                m = _COUNT.fullmatch(s) if state == "header" else None
                if m:
                    if int(m.group(1)) != len(counts) + 1:
                        raise fail(f"header counts must be for orders 1, 2, ... in turn; got order {m.group(1)}")
                    counts.append(int(m.group(2)))
                    continue
                if state == "header":
                    if not counts:
                        raise fail(f"expected 'ngram N=COUNT' in the \\data\\ header, got {s[:60]!r}")
                    state = "body"
                if s.startswith("\\"):
                    if n and seen != counts[n - 1]:
                        raise fail(f"the header says {counts[n - 1]} {n}-grams, the section has {seen}")
                    if max_order is not None and n >= max_order:
                        return
                    if s == "\\end\\":
                        if n != len(counts):
                            raise fail(f"'\\end\\' after {n} n-gram sections; the header announces {len(counts)}")
                        return
                    m = _SECTION.fullmatch(s)
                    if not m or int(m.group(1)) != n + 1 or n + 1 > len(counts):
                        want = f"'\\{n + 1}-grams:'" if n < len(counts) else "'\\end\\'"
                        raise fail(f"expected {want}, got {s[:60]!r}")
                    n, seen = n + 1, 0
                    continue
                if not n:
                    raise fail(f"expected '\\1-grams:', got {s[:60]!r}")
                yield _entry(s, n, n == len(counts), lineno, fail)
                seen += 1
        except (UnicodeDecodeError, EOFError, OSError, gzip.BadGzipFile) as e:
            raise ArpaError(f"{path}:{lineno + 1}: unreadable ({e})") from None
    if state == "preamble":
        raise ArpaError(f"{path}: not an ARPA language model: no '\\data\\' line")
    raise fail("the file ends before '\\end\\'")


def _entry(s: str, n: int, highest: bool, lineno: int, fail: Callable[[str], ArpaError]) -> ArpaEntry:
    parts = s.split("\t")
    if len(parts) == 1:  # some writers separate the fields by spaces only
        parts = s.split()
        parts = [parts[0], " ".join(parts[1 : n + 1]), *parts[n + 1 :]]
    words = tuple(parts[1].split()) if len(parts) > 1 else ()
    if len(words) != n or len(parts) > 3 or (len(parts) == 3 and highest):
        shape = f"log10prob<TAB>{n} word(s)" + ("" if highest else "[<TAB>backoff]")
        raise fail(f"expected '{shape}' in the {n}-gram section, got {s[:80]!r}")
    try:
        lp = float(parts[0])
        bo = float(parts[2]) if len(parts) == 3 else None
    except ValueError:
        raise fail(f"not a number in {s[:80]!r}") from None
    if not lp <= 0 or (bo is not None and not math.isfinite(bo)):
        raise fail(f"a log10 probability must be <= 0 and a back-off weight finite: {s[:80]!r}")
    return ArpaEntry(n, words, lp, bo, lineno)


def read_arpa(path: str | os.PathLike) -> NgramModel:
    """Load a (small) ARPA file completely, checked as in `iter_arpa`."""
    model = NgramModel(0)
    for e in iter_arpa(path):
        while len(model.prob) < e.order:
            model.prob.append({})
            model.backoff.append({})
        model.prob[e.order - 1][e.words] = e.logprob
        if e.backoff is not None:
            model.backoff[e.order - 1][e.words] = e.backoff
    model.order = len(model.prob)
    return model


def arpa_unigrams(path: str | os.PathLike) -> list[tuple[str, int]]:
    """(word, line) of the 1-gram section, reading nothing after it (fast on the official 4-gram)."""
    return [(e.words[0], e.line) for e in iter_arpa(path, max_order=1)]


def is_kenlm_binary(path: str | os.PathLike) -> bool:
    with open(path, "rb") as f:
        return f.read(len(KENLM_BINARY_MAGIC)) == KENLM_BINARY_MAGIC


def check_lm(path: str | os.PathLike, full: bool = False) -> str:
    """Check an n-gram LM file before decoding: missing or not ARPA (and not a KenLM binary) is an ArpaError
    naming the file and line. Reads the header and the 1-gram section (seconds, even for the official
    4-gram), or the whole file with `full` (minutes for the official 4-gram). Returns "arpa" or "binary"."""
    path = Path(path)
    if not path.is_file():
        raise ArpaError(f"{path}: no such language model file")
    if path.suffix != ".gz" and is_kenlm_binary(path):
        return "binary"
    if full:
        n = sum(1 for _ in iter_arpa(path))
    else:
        n = len(arpa_unigrams(path))
    if not n:
        raise ArpaError(f"{path}: the ARPA file has no n-grams")
    return "arpa"
