"""Simulate LibriCSS-style training mixtures for continuous speech separation (see wavlm.data.css_sim).

    python -m wavlm.bin.simulate_css --data data/train_clean_100 --out data/css_train \\
        --num_segments 10000 --seed 0 [--channels 7] [--config conf/css_sim.yaml] [key=value ...] \\
        [--nj N --job K | --nj N --merge]

Segment k (css-0000000 ...) is a pure function of (seed, k, data, config), so any --nj gives the same
files. Job K writes OUT/wav/<seg>.wav (mixture, C channels), OUT/{spk1,spk2,noise}/<seg>.wav (reference
mic targets) and OUT/css.K.{wav.scp,spk1.scp,spk2.scp,noise.scp,utt2spk,info}, then OUT/css.K.done;
a finished job is skipped on rerun. The merge writes the Kaldi-style dir OUT/{wav.scp,spk1.scp,spk2.scp,
noise.scp,utt2spk,spk2utt,utt2dur}, OUT/segments_info.json (per segment: kind, speakers, utterances,
placement, overlap ratio, SIR, SNR, room, RT60, positions) and OUT/css_config.json.
"""
from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path

from tqdm import tqdm

from wavlm.bin import setup_logging
from wavlm.config import ConfigError, apply_overrides, from_dict, load_yaml, to_dict
from wavlm.data.css_sim import CssSimConfig, CssSimError, NoiseSource, load_speakers, simulate_segment, write_wav
from wavlm.data.datadir import atomic_write_text, c_sorted
from wavlm.features.shards import ShardError, Shards, add_shard_args

logger = logging.getLogger(__name__)

TARGETS = ("spk1", "spk2", "noise")


def get_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", required=True, help="Kaldi data dir of single-speaker utterances (with utt2spk)")
    p.add_argument("--out", required=True, help="output dir (Kaldi-style, plus wav/ spk1/ spk2/ noise/)")
    p.add_argument("--num_segments", type=int, required=True)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--channels", type=int, choices=(1, 7), default=None,
                   help="7: LibriCSS array; 1: centre mic only (overrides the config)")
    p.add_argument("--segment_seconds", type=float, default=None, help="overrides the config")
    p.add_argument("--noise_data", default=None, help="Kaldi data dir of noise (default: coloured noise)")
    p.add_argument("--config", default=None, help="YAML with CssSimConfig fields")
    p.add_argument("overrides", nargs="*", default=[], help="config overrides key=value (value as YAML)")
    add_shard_args(p)
    p.add_argument("-v", "--verbose", type=int, default=0)
    return p


def build_config(args: argparse.Namespace) -> CssSimConfig:
    data = load_yaml(args.config) if args.config else {}
    for key in ("channels", "segment_seconds", "noise_data"):
        if getattr(args, key) is not None:
            data[key] = getattr(args, key)
    data = apply_overrides(data, args.overrides)
    cfg = from_dict(CssSimConfig, data, args.config or "css config")
    cfg.check()
    return cfg


def segment_ids(num_segments: int) -> list[str]:
    return [f"css-{k:07d}" for k in range(num_segments)]


def main(argv: list[str] | None = None) -> None:
    args = get_parser().parse_args(argv)
    setup_logging(args.verbose)
    if args.num_segments < 1:
        raise SystemExit(f"--num_segments must be >= 1, got {args.num_segments}")
    try:
        cfg = build_config(args)
        speakers = load_speakers(args.data)
        noises = NoiseSource(cfg)
    except (CssSimError, ConfigError) as e:
        raise SystemExit(f"simulate_css: {e}") from None
    out = Path(args.out)
    ids = segment_ids(args.num_segments)
    config = {"data": str(Path(args.data).resolve()), "seed": args.seed, "num_segments": args.num_segments,
              "css": to_dict(cfg)}
    shards = Shards(out, "css", args.nj, config)

    def process(part: list[str], job: int) -> dict:
        rows: dict[str, list[str]] = {name: [] for name in ("wav.scp", *(f"{t}.scp" for t in TARGETS), "info")}
        kinds: dict[str, int] = {}
        for seg in tqdm(part, desc=f"css job {job}", mininterval=10):
            s = simulate_segment(int(seg.split("-")[1]), args.seed, speakers, noises, cfg)
            paths = {"wav.scp": out / "wav" / f"{seg}.wav", **{f"{t}.scp": out / t / f"{seg}.wav" for t in TARGETS}}
            write_wav(paths["wav.scp"], s.mixture.T, cfg.sample_rate, cfg.wav_subtype)
            for t in TARGETS:
                write_wav(paths[f"{t}.scp"], getattr(s, t), cfg.sample_rate, cfg.wav_subtype)
            for name, p in paths.items():
                rows[name].append(f"{seg} {p}\n")
            rows["info"].append(f"{seg} {json.dumps(s.info, sort_keys=True)}\n")
            kinds[s.info["kind"]] = kinds.get(s.info["kind"], 0) + 1
        for name, lines in rows.items():
            atomic_write_text(shards.path(job, name), "".join(lines))
        atomic_write_text(shards.path(job, "utt2spk"), "".join(f"{seg} {seg}\n" for seg in part))
        return {"num_segments": len(part), "kinds": kinds}

    def merge() -> None:
        for name in ("wav.scp", *(f"{t}.scp" for t in TARGETS), "utt2spk"):
            shards.merge_text(name, name, expect=ids)
        info_file = shards.merge_text("info", ".segments_info.txt", expect=ids)
        info = {}
        for line in info_file.read_text(encoding="utf-8").splitlines():
            seg, _, js = line.partition(" ")
            try:
                info[seg] = json.loads(js)
            except json.JSONDecodeError as e:
                raise ShardError(f"{info_file}: bad info of segment {seg}: {e}") from None
        info_file.unlink()
        atomic_write_text(out / "segments_info.json", json.dumps(info, sort_keys=True, indent=1) + "\n")
        sorted_ids = c_sorted(ids)
        atomic_write_text(out / "spk2utt", "".join(f"{seg} {seg}\n" for seg in sorted_ids))
        atomic_write_text(out / "utt2dur", "".join(f"{seg} {cfg.segment_seconds:g}\n" for seg in sorted_ids))
        atomic_write_text(out / "css_config.json", json.dumps(config, sort_keys=True, indent=1) + "\n")
        logger.info("%s: %d segments", out, len(ids))

    shards.run(ids, args.job, args.merge, process, merge)


if __name__ == "__main__":
    main()
