"""Decoding throughput: batched vs one-at-a-time greedy CTC decoding (encoder included), and the decoders that
read stored log posteriors: greedy, espnet's prefix beam search with a character Transformer LM, and the
lexicon-constrained beam search with a word 4-gram (flashlight-text), all measured in one run.

    tools/venv/bin/python bench/bench_decode.py                  # Base-size encoder, 2 threads
    tools/venv/bin/python bench/bench_decode.py --encoder debug --utts 8 --sentences 20   # a quick look

Part 1 (encoder + greedy). `--utts` utterances of 2-16 s (uniform; LibriSpeech's test utterances average 7 s)
of amplitude-modulated noise in a Kaldi data dir, a randomly initialised CTC model (`--encoder base`:
conf/model/base.yaml, 95M parameters; 32 letter units). One-at-a-time is the decoder as it was: read an
utterance, one forward, arg max. Batched is `wavlm.decode.logprobs.batched_log_probs` (length-sorted padded
batches of `--batch_seconds`, audio read in a DataLoader worker) then the arg max; both give the same text
(checked). On CPUs batching gains little (the encoder's matrix products already use the cores; padding
costs); the gain it exists for is on a GPU, where one utterance leaves most of the device idle.

Part 2 (decoders on stored posteriors). Log posteriors constructed from `--sentences` sentences of the
synthetic corpora's grammar (wavlm.synth): every character of `▁WORD▁WORD ...` is 2-4 frames whose peak has
probability 0.5-0.95, one letter in 8 confused (a wrong letter on top, the right one second), 1-3 blank
frames between characters (about 12 characters a second, as speech). Greedy reads them as they are; the
espnet beam search (`--beam`; CTC prefix scores alone, then with a character Transformer LM of the recipe's
size, conf/lm_transformer.yaml, with random weights, LM weight 0.5 and length bonus 1 as run.sh: its cost,
not its help, is what is measured) and the lexicon beam search (fairseq's defaults: beam 500, threshold
100, LM weight 2, word score -1; a 4-gram ARPA with modified Kneser-Ney from 2000 sentences of the same
grammar, a spelling lexicon of the grammar's vocabulary) decode them, one thread each (as a decoding job).
WER against the sentences is printed beside each: the lexicon and the 4-gram repair confused letters, the
random char LM cannot.

Throughput is utterances per wall second; the real-time factor is wall seconds per second of audio (50
frames a second), so lower is faster. Ratios compare rows measured in this run. The load average is
printed before and after (the machine may be shared); `--reps` repeats part 1, interleaved, and reports
the best repetition of each.
"""
from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

ROOT = Path(__file__).resolve().parents[1]


def get_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--encoder", default="base", help="model preset (conf/model/<name>.yaml): base, debug, ...")
    p.add_argument("--utts", type=int, default=12, help="utterances of part 1")
    p.add_argument("--batch_seconds", type=float, default=100.0)
    p.add_argument("--reps", type=int, default=1, help="repetitions of part 1 (best reported)")
    p.add_argument("--sentences", type=int, default=12, help="utterances of part 2")
    p.add_argument("--beam", type=int, default=8, help="espnet beam size")
    p.add_argument("--lm_config", default=str(ROOT / "egs/librispeech/asr1/conf/lm_transformer.yaml"))
    p.add_argument("--lexicon_beam", type=int, default=500, help="flashlight beam size (fairseq: 500)")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--json", default="", help="also write the results here")
    return p


def load() -> str:
    return "/".join(f"{x:.2f}" for x in os.getloadavg())


def row(name: str, n: int, audio: float, wall: float, wer: float | None = None) -> dict:
    r = {"method": name, "utts": n, "audio_s": round(audio, 2), "wall_s": round(wall, 3),
         "utts_per_s": round(n / wall, 2), "rtf": round(wall / audio, 5)}
    if wer is not None:
        r["wer"] = round(wer, 2)
    print(f"  {name:<56} {r['utts_per_s']:>9.2f} utt/s   RTF {r['rtf']:.4f}"
          + (f"   WER {wer:5.1f} %" if wer is not None else ""), flush=True)
    return r


# ---- part 1: encoder + greedy ---------------------------------------------------------------------------


def make_audio_set(d: Path, n: int, rng: np.random.Generator) -> float:
    import soundfile as sf

    from wavlm.data.datadir import compute_utt2dur

    d.mkdir(parents=True)
    lines, total = [], 0.0
    for i in range(n):
        s = int(rng.uniform(2.0, 16.0) * 16000)
        x = 0.1 * rng.standard_normal(s) * (1.2 + np.sin(np.arange(s) / rng.uniform(300, 1500)))
        sf.write(d / f"u{i:03d}.wav", x.astype(np.float32), 16000)
        lines.append(f"u{i:03d} {d}/u{i:03d}.wav\n")
        total += s / 16000
    (d / "wav.scp").write_text("".join(lines))
    (d / "utt2spk").write_text("".join(f"u{i:03d} u{i:03d}\n" for i in range(n)))
    compute_utt2dur(d)
    return total


def part1(args: argparse.Namespace, tmp: Path, tok) -> list[dict]:  # noqa: ANN001
    from wavlm.data.audio import read_utterance
    from wavlm.data.datadir import DataDir
    from wavlm.decode.decoders import GreedyDecoder
    from wavlm.decode.logprobs import batched_log_probs
    from wavlm.models.ctc import WavLMForCTC, ctc_greedy
    from wavlm.models.wavlm import WavLM
    from wavlm.tasks.common import load_model_config

    torch.manual_seed(args.seed)
    model = WavLMForCTC(WavLM(load_model_config(args.encoder)), len(tok)).eval()
    audio = make_audio_set(tmp / "audio", args.utts, np.random.default_rng(args.seed))
    data = DataDir(tmp / "audio")
    utts = data.utt_ids()
    print(f"part 1: {args.utts} utterances, {audio:.1f} s of audio; encoder {args.encoder} "
          f"({sum(p.numel() for p in model.parameters()) / 1e6:.1f}M parameters), {len(tok)} units, CPU, "
          f"{args.threads} threads, batches of {args.batch_seconds:g} s", flush=True)

    def one_at_a_time() -> dict[str, str]:
        out = {}
        with torch.inference_mode():
            for u in utts:
                logp, n = model.log_probs(torch.from_numpy(read_utterance(data, u))[None])
                out[u] = tok.decode(ctc_greedy(logp, n)[0])
        return out

    def batched() -> dict[str, str]:
        greedy = GreedyDecoder(tok)
        return {u: greedy(lp) for u, lp in batched_log_probs(model, data, utts, "cpu", args.batch_seconds)}

    best: dict[str, float] = {}
    texts: dict[str, dict[str, str]] = {}
    for _ in range(args.reps):
        for name, fn in (("one", one_at_a_time), ("batched", batched)):
            t0 = time.perf_counter()
            texts[name] = fn()
            best[name] = min(best.get(name, float("inf")), time.perf_counter() - t0)
    rows = [row("greedy, one utterance at a time", len(utts), audio, best["one"]),
            row(f"greedy, batched ({args.batch_seconds:g} s batches)", len(utts), audio, best["batched"])]
    same = texts["one"] == texts["batched"]
    print(f"  batched / one-at-a-time throughput: {best['one'] / best['batched']:.2f}x; same text: "
          f"{'yes' if same else 'NO'}", flush=True)
    rows[1]["speedup_vs_one_at_a_time"] = round(best["one"] / best["batched"], 3)
    rows[1]["same_text"] = same
    return rows


# ---- part 2: decoders on stored posteriors --------------------------------------------------------------


def posteriors(text: str, tok, rng: np.random.Generator) -> np.ndarray:  # noqa: ANN001
    """Peaky CTC log posteriors [T, V] spelling `text` (see the module docstring)."""
    ids = tok.encode(text)
    letters = [i for i, t in enumerate(tok.tokens) if len(t) == 1 and t.isalpha()]
    frames: list[np.ndarray] = []

    def frame(peak: int, p: float, runner_up: int | None = None) -> None:
        v = rng.dirichlet(np.ones(len(tok))) * (1 - p) * 0.1
        v[tok.blank] += (1 - p) * 0.9
        if runner_up is None:
            v[peak] += p
        else:  # a confusion: the wrong letter on top, the right one second
            v[peak] += 0.6 * p
            v[runner_up] += 0.4 * p
        v[tok.eos] = 1e-8
        frames.append(np.log(v / v.sum()))

    for i in ids:
        for _ in range(rng.integers(1, 4)):
            frame(tok.blank, rng.uniform(0.6, 0.99))
        confused = i in letters and rng.random() < 1 / 8
        peak = int(rng.choice([j for j in letters if j != i])) if confused else i
        p = rng.uniform(0.5, 0.95)
        for _ in range(rng.integers(2, 5)):
            frame(peak, p, i if confused else None)
    frame(tok.blank, 0.99)
    return np.stack(frames).astype(np.float32)


def wer(refs: list[str], hyps: list[str]) -> float:
    import editdistance

    return 100.0 * sum(editdistance.eval(r.split(), h.split()) for r, h in zip(refs, hyps, strict=True)) / sum(
        len(r.split()) for r in refs)


def part2(args: argparse.Namespace, tmp: Path, tok, lm_text: Path) -> list[dict]:  # noqa: ANN001
    import yaml

    from wavlm.decode.decoders import BeamSearchDecoder, GreedyDecoder
    from wavlm.synth.utterances import sentences
    from wavlm.tasks.lm import build_lm

    rng = np.random.default_rng(args.seed + 1)
    refs = sentences(rng, args.sentences)
    mats = [posteriors(s, tok, rng) for s in refs]
    audio = sum(m.shape[0] for m in mats) / 50.0
    print(f"part 2: {len(mats)} utterances, {audio:.1f} s of constructed posteriors ({len(tok)} units), "
          "one thread per decoder (as a decoding job)", flush=True)
    torch.set_num_threads(1)
    lm_cfg = yaml.safe_load(Path(args.lm_config).read_text())
    torch.manual_seed(args.seed)
    lm = build_lm(lm_cfg["kind"], lm_cfg["conf"], len(tok)).lm.eval()
    lm_size = f"{lm_cfg['conf'].get('layer', '?')} layers, {sum(p.numel() for p in lm.parameters()) / 1e6:.1f}M"
    decoders = [("greedy (stored posteriors)", GreedyDecoder(tok)),
                (f"espnet beam {args.beam}, no LM", BeamSearchDecoder(tok, args.beam, None, length_bonus=0.0)),
                (f"espnet beam {args.beam} + char Transformer LM ({lm_size})",
                 BeamSearchDecoder(tok, args.beam, lm, lm_weight=0.5, length_bonus=1.0))]
    try:  # the lexicon decoder (wavlm.decode.flashlight, flashlight-text)
        from wavlm.decode.flashlight import LexiconCTCDecoder
        from wavlm.decode.lexicon import build_spelling_lexicon
        from wavlm.decode.ngram import build_arpa
        from wavlm.synth.vocab import VOCABULARY

        arpa = build_arpa(lm_text, tmp / "4-gram.arpa", order=4, extra_words=VOCABULARY)
        (tmp / "vocab.txt").write_text("".join(f"{w}\n" for w in VOCABULARY))
        lexicon = build_spelling_lexicon(tmp / "vocab.txt", set(tok.tokens), tmp / "lexicon.txt")
        flashlight = LexiconCTCDecoder(tok.tokens, lexicon, arpa, beam_size=args.lexicon_beam)
        decoders.append((f"lexicon beam {args.lexicon_beam} + word 4-gram (flashlight)",
                         lambda lp: " ".join(flashlight(lp)[0].words)))
    except ImportError as e:
        print(f"  (lexicon decoder unavailable: {e})")
    rows = []
    for name, dec in decoders:
        t0 = time.perf_counter()
        hyps = [dec(m) for m in mats]
        rows.append(row(name, len(mats), audio, time.perf_counter() - t0, wer(refs, hyps)))
    by = {r["method"].split(" ")[0]: r for r in rows}  # the last espnet row: the one with the LM
    if "lexicon" in by:
        ratio = by["espnet"]["wall_s"] / by["lexicon"]["wall_s"]
        by["lexicon"]["speedup_vs_espnet_beam"] = round(ratio, 3)
        print(f"  lexicon 4-gram beam / espnet char-LM beam throughput: {ratio:.2f}x", flush=True)
    return rows


def main() -> None:
    args = get_parser().parse_args()
    logging.basicConfig(level=logging.WARNING)
    torch.set_num_threads(args.threads)
    from wavlm.data.tokenizer import Tokenizer, train_tokenizer
    from wavlm.synth.utterances import sentences

    print(f"load average before: {load()} ({os.cpu_count()} CPUs); torch {torch.__version__}", flush=True)
    with tempfile.TemporaryDirectory() as t:
        tmp = Path(t)
        lm_text = tmp / "lm.txt"
        lm_text.write_text("".join(f"{s}\n" for s in sentences(np.random.default_rng(args.seed + 2), 2000)))
        train_tokenizer(lm_text.read_text().splitlines() + ["ABCDEFGHIJKLMNOPQRSTUVWXYZ'"], tmp / "units", "char")
        tok = Tokenizer(tmp / "units")
        rows = part1(args, tmp, tok) + part2(args, tmp, tok, lm_text)
    print(f"load average after: {load()}", flush=True)
    if args.json:
        Path(args.json).write_text(json.dumps({"args": vars(args), "rows": rows}, indent=1) + "\n")


if __name__ == "__main__":
    main()
