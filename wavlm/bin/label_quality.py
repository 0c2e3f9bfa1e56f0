"""Score frame labels against frame-level reference labels (e.g. phone alignments): PNMI and purities.

    python -m wavlm.bin.label_quality --labels dump/km100/train --ref data/train/phone_ali.txt --ref_rate 100

`--labels` is a label dir (km.txt + labels_info.json) or a label file; `--ref` is a text file `utt p1 p2 ...`
with one symbol per frame. Lengths may differ by up to --tol frames (the shorter is used); more is an error.
When label and reference rates differ by an integer factor the coarser labels are repeated. Prints JSON.
"""
from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path

from wavlm.bin import setup_logging
from wavlm.cluster.labels import INFO, LABELS, LabelError, read_labels
from wavlm.cluster.quality import label_quality, resample_labels

logger = logging.getLogger(__name__)


def get_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--labels", required=True, help="label dir from wavlm.bin.dump_km_label, or a label file")
    p.add_argument("--ref", required=True, help="reference frame labels `utt p1 p2 ...`")
    p.add_argument("--label_rate", type=float, default=None, help="labels/s (default: from labels_info.json)")
    p.add_argument("--ref_rate", type=float, default=None, help="reference labels/s (default: the label rate)")
    p.add_argument("--tol", type=int, default=2, help="largest tolerated length difference in frames")
    p.add_argument("--out", default=None, help="also write the JSON here")
    p.add_argument("-v", "--verbose", type=int, default=0)
    return p


def main(argv: list[str] | None = None) -> None:
    args = get_parser().parse_args(argv)
    setup_logging(args.verbose)
    lab_path = Path(args.labels)
    rate = args.label_rate
    if lab_path.is_dir():
        if rate is None and (lab_path / INFO).is_file():
            rate = float(json.loads((lab_path / INFO).read_text())["label_rate"])
        lab_path = lab_path / LABELS
    hyp = read_labels(lab_path, as_int=False)
    ref = read_labels(args.ref, as_int=False)
    ref_rate = args.ref_rate if args.ref_rate is not None else rate
    factor = 1
    if rate is not None and ref_rate is not None and abs(rate - ref_rate) > 1e-6:
        hi, lo = max(rate, ref_rate), min(rate, ref_rate)
        factor = round(hi / lo)
        if abs(factor * lo - hi) > 1e-6:
            raise LabelError(f"label rate {rate:g}/s and reference rate {ref_rate:g}/s are not integer multiples")
        if rate < ref_rate:
            hyp = {u: resample_labels(v, factor) for u, v in hyp.items()}
        else:
            ref = {u: resample_labels(v, factor) for u, v in ref.items()}
    q = label_quality(hyp, ref, tol=args.tol * factor, what=str(lab_path)).to_dict()
    q.update({"labels": str(lab_path), "ref": str(args.ref)})
    text = json.dumps(q, indent=1, sort_keys=True)
    logger.info("PNMI %.4f, phone purity %.4f, cluster purity %.4f over %d frames",
                q["pnmi"], q["phone_purity"], q["cluster_purity"], q["num_frames"])
    if args.out:
        from wavlm.data.datadir import atomic_write_text

        atomic_write_text(args.out, text + "\n")
    sys.stdout.write(text + "\n")


if __name__ == "__main__":
    main()
