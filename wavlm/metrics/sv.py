"""Speaker verification scoring: trial lists, cosine scoring, AS-norm, EER, minDCF and the DET curve.

Trial lists are Kaldi style, one trial a line: `enroll_utt test_utt target|nontarget` (the VoxCeleb
recipe converts the official `1|0 enroll test` lists to this). A trial is accepted when its score is
`>= threshold`; every threshold below is meant that way.

Operating points: for each distinct score value t (ascending) the miss rate P_miss(t) (targets scored
below t) and false-alarm rate P_fa(t) (non-targets scored t or above), plus the point "reject all"
(P_miss 1, P_fa 0) at a threshold just above the highest score (`error_rates`).

EER: the ROC (P_fa, P_miss) is the polyline through these points; the EER is where it crosses
P_miss == P_fa, linearly interpolated between the two points that bracket the crossing. This is the
usual `interp1d(fpr, tpr)` + `brentq` computation, done exactly. Without tied target/non-target scores
the EER is always one of the two error rates at a point (no interpolated value in between); ties
give diagonal ROC segments and interpolated values. The reported threshold is interpolated the same way.

minDCF: min over the operating points of C_miss * p_target * P_miss + C_fa * (1 - p_target) * P_fa,
divided by min(C_miss * p_target, C_fa * (1 - p_target)) (NIST SRE; Kaldi's compute_min_dcf.py,
which uses the same points on tie-free scores), so 1.0 is what a system that always accepts or always
rejects achieves.

AS-norm (adaptive symmetric score normalisation, Matejka et al. 2017; Cumani et al. 2011): for each
side take the top_n highest cosine scores of its embedding against a cohort (the training speakers'
mean embeddings, `speaker_means`), and normalise s' = ((s - mu_e) / sd_e + (s - mu_t) / sd_t) / 2,
with mean and standard deviation (population, ddof 0) of those top_n scores.
"""
from __future__ import annotations

import io
import logging
import os
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from wavlm.data.datadir import c_sorted

logger = logging.getLogger(__name__)

LABELS = {"target": True, "nontarget": False}
_CHUNK = 4096  # rows of the [n_utts, n_cohort] score matrix computed at once in AS-norm


class SvError(ValueError):
    """Bad scoring input; the message names the file (and line) or the utterance."""


@dataclass
class Trials:
    """A trial list: enroll and test utterance ids and the target labels, with the lines they came from."""

    path: Path
    enroll: list[str] = field(default_factory=list)
    test: list[str] = field(default_factory=list)
    labels: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=bool))
    lineno: list[int] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.enroll)

    def where(self, i: int) -> str:
        return f"{self.path}:{self.lineno[i]}"

    @property
    def name(self) -> str:
        """The list's name: the file name (`vox1_O` for data/trials/vox1_O)."""
        return self.path.name


def read_trials(path: str | os.PathLike) -> Trials:
    """Read `enroll test target|nontarget` lines; malformed lines and a trial repeated with the other label are
    errors naming file:line; a trial repeated with the same label is scored each time (a warning)."""
    path = Path(path)
    enroll: list[str] = []
    test: list[str] = []
    labels: list[bool] = []
    lineno: list[int] = []
    first: dict[tuple[str, str], int] = {}
    repeats = 0
    with open(path, encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            parts = line.split()
            if len(parts) != 3:
                raise SvError(f"{path}:{n}: expected `enroll_utt test_utt target|nontarget`, got {line.rstrip()!r}")
            e, t, lab = parts
            if lab not in LABELS:
                raise SvError(f"{path}:{n}: label must be `target` or `nontarget`, got {lab!r}")
            if (e, t) in first:
                k = first[e, t]
                if labels[lineno.index(k)] != LABELS[lab]:
                    raise SvError(f"{path}:{n}: trial {e} {t} repeats line {k} with the other label")
                repeats += 1  # counted as often as listed, as the official scoring does
            first.setdefault((e, t), n)
            enroll.append(e)
            test.append(t)
            labels.append(LABELS[lab])
            lineno.append(n)
    if not enroll:
        raise SvError(f"{path}: no trials")
    if repeats:
        logger.warning("%s: %d trials are listed more than once (each occurrence is scored)", path, repeats)
    return Trials(path, enroll, test, np.asarray(labels, dtype=bool), lineno)


# ---- error rates, EER, minDCF ----------------------------------------------------------------------------


def _check(scores: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    s = np.asarray(scores, dtype=np.float64)
    lab = np.asarray(labels)
    if s.ndim != 1 or lab.shape != s.shape:
        raise SvError(f"scores and labels must be 1-D of equal length, got shapes {s.shape} and {lab.shape}")
    if lab.dtype != bool:
        if not np.isin(lab, (0, 1)).all():
            raise SvError("labels must be booleans or 0/1 (1 = target)")
        lab = lab.astype(bool)
    if not np.isfinite(s).all():
        raise SvError(f"{int((~np.isfinite(s)).sum())} scores are not finite (nan or inf)")
    if lab.all() or not lab.any():
        raise SvError(f"need target and non-target trials, got {int(lab.sum())} targets and "
                      f"{int((~lab).sum())} non-targets")
    return s, lab


def error_rates(scores: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(thresholds, p_miss, p_fa), thresholds ascending: each distinct score, then one just above the maximum.

    At threshold t (accept when score >= t): p_miss = fraction of targets below t, p_fa = fraction of
    non-targets at or above t. The first point accepts all (0, 1), the last rejects all (1, 0).
    """
    s, lab = _check(scores, labels)
    uniq, inv = np.unique(s, return_inverse=True)
    n_tar_at = np.bincount(inv, weights=lab, minlength=len(uniq))
    n_non_at = np.bincount(inv, weights=~lab, minlength=len(uniq))
    n_tar, n_non = n_tar_at.sum(), n_non_at.sum()
    below_tar = np.concatenate([[0.0], np.cumsum(n_tar_at)])  # targets strictly below uniq[k], k = 0..K
    below_non = np.concatenate([[0.0], np.cumsum(n_non_at)])
    thresholds = np.append(uniq, np.nextafter(uniq[-1], np.inf))
    return thresholds, below_tar / n_tar, 1.0 - below_non / n_non


def eer(scores: np.ndarray, labels: np.ndarray) -> tuple[float, float]:
    """(equal error rate in percent, threshold): the ROC crossing of P_miss == P_fa, linearly interpolated."""
    thr, p_miss, p_fa = error_rates(scores, labels)
    diff = p_fa - p_miss  # 1 at the first point, -1 at the last, non-increasing
    i = int(np.argmax(diff <= 0))  # first point at or past the crossing; i >= 1
    d0, d1 = diff[i - 1], diff[i]
    a = d0 / (d0 - d1)  # d0 > 0 >= d1
    rate = p_fa[i - 1] + a * (p_fa[i] - p_fa[i - 1])
    threshold = thr[i - 1] + a * (thr[i] - thr[i - 1])
    return 100.0 * float(rate), float(threshold)


def min_dcf(scores: np.ndarray, labels: np.ndarray, p_target: float, c_miss: float = 1.0,
            c_fa: float = 1.0) -> tuple[float, float]:
    """(normalised minimum detection cost, its threshold) as NIST SRE and Kaldi's compute_min_dcf.py.

    The lowest threshold wins among equal costs.
    """
    if not 0.0 < p_target < 1.0 or c_miss <= 0 or c_fa <= 0:
        raise SvError(f"need 0 < p_target < 1 and positive costs, got p_target={p_target} c_miss={c_miss} "
                      f"c_fa={c_fa}")
    thr, p_miss, p_fa = error_rates(scores, labels)
    dcf = c_miss * p_target * p_miss + c_fa * (1.0 - p_target) * p_fa
    k = int(np.argmin(dcf))
    return float(dcf[k] / min(c_miss * p_target, c_fa * (1.0 - p_target))), float(thr[k])


# ---- embeddings and scoring ------------------------------------------------------------------------------


def read_embeddings(scp: str | os.PathLike) -> dict[str, np.ndarray]:
    """`{utt: float32 [D]}` from a kaldiio scp of vectors (or [1, D] matrices); all of one dimension D."""
    import kaldiio

    from wavlm.features.shards import ShardError, read_scp

    try:
        table = read_scp(scp)  # validates lines and duplicates, naming file:line
    except ShardError as e:
        raise SvError(str(e)) from None
    if not table:
        raise SvError(f"{scp}: no embeddings")
    loader = kaldiio.load_scp(str(scp), max_cache_fd=8)
    out: dict[str, np.ndarray] = {}
    dim = None
    for n, utt in enumerate(table, 1):
        try:
            v = np.asarray(loader[utt], dtype=np.float32)
        except Exception as e:
            raise SvError(f"{scp}:{n}: cannot read the embedding of {utt} ({table[utt]}): {e}") from e
        if v.ndim == 2 and v.shape[0] == 1:
            v = v[0]
        if v.ndim != 1:
            raise SvError(f"{scp}:{n}: embedding of {utt} has shape {v.shape}, expected a vector")
        if dim is None:
            dim = v.shape[0]
        elif v.shape[0] != dim:
            raise SvError(f"{scp}:{n}: embedding of {utt} has dimension {v.shape[0]}, earlier ones {dim}")
        out[utt] = v
    return out


def _unit(x: np.ndarray, names: Sequence[str], what: str) -> np.ndarray:
    """Rows of x scaled to unit length; a zero or non-finite row is an error naming it."""
    x = np.asarray(x, dtype=np.float64)
    norm = np.linalg.norm(x, axis=-1, keepdims=True)
    bad = ~np.isfinite(norm[..., 0]) | (norm[..., 0] == 0)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise SvError(f"{what} {names[i]}: embedding is zero or not finite (cosine undefined)")
    return x / norm


def _stack(emb: Mapping[str, np.ndarray], utts: Sequence[str]) -> np.ndarray:
    try:
        return np.stack([np.asarray(emb[u], dtype=np.float64).reshape(-1) for u in utts])
    except ValueError as e:
        raise SvError(f"embeddings differ in dimension ({e})") from None


def _index(trials: Trials, emb: Mapping[str, np.ndarray]) -> tuple[list[str], np.ndarray, np.ndarray]:
    """Distinct utterances of the trials, and each trial's enroll and test row into them."""
    for i, (e, t) in enumerate(zip(trials.enroll, trials.test, strict=True)):
        for u in (e, t):
            if u not in emb:
                raise SvError(f"{trials.where(i)}: no embedding for utterance {u}")
    utts = c_sorted(set(trials.enroll) | set(trials.test))
    pos = {u: k for k, u in enumerate(utts)}
    return (utts, np.fromiter((pos[u] for u in trials.enroll), dtype=np.int64, count=len(trials)),
            np.fromiter((pos[u] for u in trials.test), dtype=np.int64, count=len(trials)))


def cosine_scores(emb: Mapping[str, np.ndarray], trials: Trials) -> np.ndarray:
    """Cosine similarity (dot product of length-normalised embeddings) of each trial, in trial order.

    A trial naming an utterance without embedding is an error naming the trial file:line.
    """
    utts, ie, it = _index(trials, emb)
    x = _unit(_stack(emb, utts), utts, "utterance")
    return np.einsum("nd,nd->n", x[ie], x[it])


def speaker_means(emb: Mapping[str, np.ndarray], utt2spk: Mapping[str, str]) -> tuple[list[str], np.ndarray]:
    """(speakers in C order, [N, D] means of their length-normalised embeddings): the AS-norm cohort.

    Every embedding needs a speaker; utt2spk entries without embedding are skipped (logged).
    """
    missing_spk = [u for u in emb if u not in utt2spk]
    if missing_spk:
        raise SvError(f"{len(missing_spk)} cohort embeddings have no speaker in utt2spk, e.g. {missing_spk[0]}")
    skipped = sum(u not in emb for u in utt2spk)
    if skipped:
        logger.info("cohort: %d of %d utterances of utt2spk have no embedding; skipped", skipped, len(utt2spk))
    if not emb:
        raise SvError("cohort: no embeddings")
    utts = list(emb)
    x = _unit(_stack(emb, utts), utts, "cohort utterance")
    spks = c_sorted({utt2spk[u] for u in utts})
    pos = {s: k for k, s in enumerate(spks)}
    idx = np.fromiter((pos[utt2spk[u]] for u in utts), dtype=np.int64, count=len(utts))
    sums = np.zeros((len(spks), x.shape[1]))
    np.add.at(sums, idx, x)
    return spks, sums / np.bincount(idx, minlength=len(spks))[:, None]


def top_n_stats(x: np.ndarray, cohort: np.ndarray, top_n: int) -> tuple[np.ndarray, np.ndarray]:
    """Mean and std (ddof 0) of the top_n highest cosine scores of each row of x [M, D] against cohort [N, D].

    Rows are taken as already length-normalised; the cohort is normalised here.
    """
    c = _unit(cohort, [f"#{i}" for i in range(len(cohort))], "cohort row")
    n = min(top_n, len(c))
    mu, sd = np.empty(len(x)), np.empty(len(x))
    for s in range(0, len(x), _CHUNK):
        sc = x[s : s + _CHUNK] @ c.T
        top = np.partition(sc, len(c) - n, axis=1)[:, len(c) - n :] if n < len(c) else sc
        mu[s : s + _CHUNK] = top.mean(axis=1)
        sd[s : s + _CHUNK] = top.std(axis=1)
    return mu, sd


def as_norm(scores: np.ndarray, enroll_ids: Sequence[str], test_ids: Sequence[str],
            emb: Mapping[str, np.ndarray], cohort: np.ndarray, top_n: int) -> np.ndarray:
    """Adaptive s-norm of trial scores (see the module doc): 0.5 * ((s - mu_e) / sd_e + (s - mu_t) / sd_t).

    mu/sd of each side come from the top_n highest cosine scores of that side's embedding in `emb`
    against the cohort rows [N, D] (top_n is capped at N). Raw `scores` are given, so they may come
    from any cosine-like backend.
    """
    s = np.asarray(scores, dtype=np.float64)
    if s.shape != (len(enroll_ids),) or len(test_ids) != len(enroll_ids):
        raise SvError(f"as_norm: {s.shape} scores for {len(enroll_ids)} enroll and {len(test_ids)} test ids")
    cohort = np.asarray(cohort, dtype=np.float64)
    if cohort.ndim != 2 or len(cohort) < 2:
        raise SvError(f"as_norm: the cohort must be [N >= 2, D], got shape {cohort.shape}")
    if top_n < 2:
        raise SvError(f"as_norm: top_n must be >= 2 (a standard deviation of one score is 0), got {top_n}")
    if top_n > len(cohort):
        logger.warning("as_norm: top_n %d > cohort size %d; using the whole cohort", top_n, len(cohort))
    missing = [u for u in (*enroll_ids, *test_ids) if u not in emb]
    if missing:
        raise SvError(f"as_norm: no embedding for utterance {missing[0]}")
    utts = c_sorted(set(enroll_ids) | set(test_ids))
    x = _unit(_stack(emb, utts), utts, "utterance")
    if x.shape[1] != cohort.shape[1]:
        raise SvError(f"as_norm: embeddings have dimension {x.shape[1]}, the cohort {cohort.shape[1]}")
    mu, sd = top_n_stats(x, cohort, top_n)
    if (sd <= 0).any():
        raise SvError(f"as_norm: utterance {utts[int(np.flatnonzero(sd <= 0)[0])]} has identical top-{top_n} "
                      "cohort scores (standard deviation 0)")
    pos = {u: k for k, u in enumerate(utts)}
    ie = np.fromiter((pos[u] for u in enroll_ids), dtype=np.int64, count=len(enroll_ids))
    it = np.fromiter((pos[u] for u in test_ids), dtype=np.int64, count=len(test_ids))
    return 0.5 * ((s - mu[ie]) / sd[ie] + (s - mu[it]) / sd[it])


# ---- DET curve -------------------------------------------------------------------------------------------

_DET_TICKS = (0.001, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.4, 0.6, 0.8, 0.9, 0.95, 0.99)
_MAX_POINTS = 5000


def write_bytes_atomic(path: str | os.PathLike, data: bytes) -> None:
    """Write a binary file through a temporary name in the same directory, then rename it."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        mask = os.umask(0)
        os.umask(mask)
        os.chmod(tmp, 0o644 & ~mask)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def det_curve_png(scores: np.ndarray, labels: np.ndarray, path: str | os.PathLike, title: str = "") -> None:
    """Plot the DET curve (P_miss against P_fa on normal-deviate axes) with the EER point, as a PNG at path."""
    from matplotlib.figure import Figure  # no pyplot: no global figure state, Agg canvas for savefig
    from scipy.stats import norm

    _, p_miss, p_fa = error_rates(scores, labels)
    e, _ = eer(scores, labels)
    if len(p_miss) > _MAX_POINTS:
        keep = np.unique(np.linspace(0, len(p_miss) - 1, _MAX_POINTS).round().astype(np.int64))
        p_miss, p_fa = p_miss[keep], p_fa[keep]
    lo, hi = 5e-4, 0.995

    def dev(p: np.ndarray | float) -> np.ndarray:
        return norm.ppf(np.clip(p, lo, hi))

    fig = Figure(figsize=(6, 6), dpi=100)
    ax = fig.add_subplot()
    ax.plot(dev(p_fa), dev(p_miss), lw=1.5, label="DET")
    ax.plot(dev(e / 100), dev(e / 100), "o", color="C3", label=f"EER {e:.2f}%")
    ax.plot(dev(np.array([lo, hi])), dev(np.array([lo, hi])), ":", color="0.6", lw=0.8)
    ticks = dev(np.array(_DET_TICKS))
    labels_txt = [f"{100 * t:g}" for t in _DET_TICKS]
    ax.set_xticks(ticks, labels_txt, fontsize=8)
    ax.set_yticks(ticks, labels_txt, fontsize=8)
    ax.set_xlim(dev(lo), dev(hi))
    ax.set_ylim(dev(lo), dev(hi))
    ax.set_xlabel("false alarm rate (%)")
    ax.set_ylabel("miss rate (%)")
    ax.grid(True, lw=0.4, alpha=0.6)
    ax.legend(loc="upper right")
    if title:
        ax.set_title(title)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    write_bytes_atomic(path, buf.getvalue())
