#!/usr/bin/env bash
# Kaldi data dirs from the LibriSpeech layout:
#   <root>/<subset>/<spk>/<chapter>/<spk>-<chapter>-<nnnn>.flac and <spk>-<chapter>.trans.txt
# -> data/<subset with _>/{wav.scp,text,utt2spk,spk2utt,spk2gender,utt2dur} for each subset present.
# Speakers are <spk>-<chapter>, as in Kaldi's and ESPnet's LibriSpeech recipes.
set -euo pipefail
# shellcheck source=/dev/null  # run from the recipe directory, where path.sh is
. ./path.sh

librispeech_root=   # the directory holding train-clean-100/, dev-clean/, ... (LibriSpeech/)
subsets="train-clean-100 train-clean-360 train-other-500 dev-clean dev-other test-clean test-other"
data=data           # where the data dirs go
. utils/parse_options.sh

if [ -z "$librispeech_root" ] || [ ! -d "$librispeech_root" ]; then
  log "ERROR: --librispeech_root '$librispeech_root' is not a directory. Expected the LibriSpeech/"
  log "directory holding subsets such as train-clean-100/ and dev-clean/ (download them from"
  log "openslr.org resource 12 and unpack: tar xzf train-clean-100.tar.gz gives LibriSpeech/...)."
  exit 1
fi
root=$(cd "$librispeech_root" && pwd)

found=0
for part in $subsets; do
  src=$root/$part
  [ -d "$src" ] || continue
  found=$((found + 1))
  dst=$data/${part//-/_}
  # skip when the data dir is complete, made from the same number of files, none changed since
  stamp="$src $(find -L "$src" -name '*.flac' -o -name '*.trans.txt' | wc -l)"
  if [ -f "$dst/.done" ] && [ "$(cat "$dst/.done")" = "$stamp" ] &&
     [ -z "$(find -L "$src" -newer "$dst/.done" -name '*.trans.txt' | head -n 1)" ]; then
    log "$dst is up to date"
    continue
  fi
  log "preparing $dst from $src"
  tmp=$dst.tmp
  rm -rf "$tmp"
  mkdir -p "$tmp"
  find -L "$src" -mindepth 3 -maxdepth 3 -name '*.flac' |
    awk -F/ '{ id = $NF; sub(/\.flac$/, "", id); print id, $0 }' | sort > "$tmp/wav.scp"
  if [ ! -s "$tmp/wav.scp" ]; then
    log "ERROR: no <spk>/<chapter>/*.flac files under $src; is this a LibriSpeech subset?"
    exit 1
  fi
  find -L "$src" -mindepth 3 -maxdepth 3 -name '*.trans.txt' -print0 | sort -z | xargs -0 cat |
    sort > "$tmp/text"
  awk '{ n = split($1, p, "-"); print $1, p[1] "-" p[2] }' "$tmp/wav.scp" > "$tmp/utt2spk"
  if [ -f "$root/SPEAKERS.TXT" ]; then
    # SPEAKERS.TXT: `ID | SEX | SUBSET | MINUTES | NAME`, comments start with ;
    awk -F'|' 'NR == FNR { if ($0 !~ /^;/) { gsub(/ /, "", $1); gsub(/ /, "", $2); g[$1] = tolower($2) }; next }
               { split($2, p, "-"); if (p[1] in g) print $2, g[p[1]] }' \
      "$root/SPEAKERS.TXT" "$tmp/utt2spk" | sort -u > "$tmp/spk2gender"
  fi
  utils/fix_data_dir.sh "$tmp"
  rm -rf "$tmp/.backup"
  n_wav=$(wc -l < "$tmp/wav.scp") n_txt=$(wc -l < "$tmp/text")
  if [ "$n_wav" != "$n_txt" ]; then
    log "ERROR: $src has $n_wav flac files but $n_txt transcript lines; a *.trans.txt file is missing or short"
    exit 1
  fi
  utils/data/get_utt2dur.sh "$tmp"
  utils/validate_data_dir.sh --text "$tmp"
  rm -rf "$dst"
  mv "$tmp" "$dst"
  echo "$stamp" > "$dst/.done"
  log "$dst: $(wc -l < "$dst/utt2spk") utterances, $(wc -l < "$dst/spk2utt") speakers"
done

if [ "$found" = 0 ]; then
  log "ERROR: none of the subsets ($subsets) is under $root."
  log "Expected e.g. $root/train-clean-100/<spk>/<chapter>/*.flac (download from openslr.org resource 12)."
  exit 1
fi
