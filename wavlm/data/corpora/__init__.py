"""Data preparation for the corpora the recipes ship with: each module turns a corpus's real on-disk
layout into Kaldi data dirs. Recipes call them through `local/data.sh` -> `python -m wavlm.bin.prepare_data`;
they live here, not in each recipe, so that recipes of the same corpus (ssl1, asr1) share one copy.
A new corpus needs none of this: its `local/data.sh` may write the data dirs any way it likes."""
