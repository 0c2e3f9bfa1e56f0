"""ASR output units: a sentencepiece model (characters by default, BPE as an option) and the token list
the CTC head and the beam search share.

Token ids: 0 = `<blank>` (CTC), 1.. = the sentencepiece pieces in order (`<unk>` first, `▁` is the word
boundary, as fairseq's letter units use `|`), last = `<sos/eos>` (espnet's beam search and LM need one).
"""
from __future__ import annotations

import logging
import os
import tempfile
from pathlib import Path

from wavlm.data.datadir import atomic_write_text

log = logging.getLogger(__name__)

BLANK, SOS_EOS = "<blank>", "<sos/eos>"
MODEL_NAME = "spm.model"


class TokenizerError(ValueError):
    pass


def train_tokenizer(texts: list[str], out_dir: str | os.PathLike, model_type: str = "char",
                    vocab_size: int = 5000) -> Path:
    """Train a sentencepiece model on transcripts (lines without utterance ids) into out_dir/spm.model
    and write out_dir/tokens.txt. Characters: every character seen becomes a unit (vocab_size is only
    an upper bound); word: every whitespace-separated token seen (phones of phone transcripts, SUPERB PR;
    vocab_size an upper bound); bpe: exactly vocab_size pieces."""
    import sentencepiece as spm

    if model_type not in ("char", "bpe", "unigram", "word"):
        raise TokenizerError(f"model_type must be char, bpe, unigram or word, got {model_type!r}")
    lines = [t for t in texts if t.strip()]
    if not lines:
        raise TokenizerError("no non-empty transcript to train the units on")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=out) as tmp:
        src = Path(tmp) / "text"
        src.write_text("\n".join(lines) + "\n", encoding="utf-8")
        spm.SentencePieceTrainer.train(
            input=str(src), model_prefix=str(Path(tmp) / "spm"), model_type=model_type, vocab_size=vocab_size,
            hard_vocab_limit=model_type not in ("char", "word"), character_coverage=1.0, bos_id=-1, eos_id=-1, unk_id=0,
            input_sentence_size=10_000_000, shuffle_input_sentence=True, minloglevel=2)
        for suffix in ("model", "vocab"):
            os.replace(Path(tmp) / f"spm.{suffix}", out / f"spm.{suffix}")
    tok = Tokenizer(out / MODEL_NAME)
    atomic_write_text(out / "tokens.txt", "\n".join(tok.tokens) + "\n")
    log.info("%s: %d %s units (+ blank, sos/eos) from %d transcripts", out, len(tok.tokens) - 2, model_type,
             len(lines))
    return out / MODEL_NAME


class Tokenizer:
    def __init__(self, model: str | os.PathLike | bytes):
        """`model`: a spm.model file, its directory, or the model's bytes (as ASR checkpoints keep them)."""
        import sentencepiece as spm

        if not isinstance(model, bytes):
            path = Path(model)
            if path.is_dir():
                path = path / MODEL_NAME
            if not path.is_file():
                raise TokenizerError(f"{path}: no sentencepiece model (train one with wavlm.bin.train_tokenizer)")
            model = path.read_bytes()
        self.model_bytes = model
        self.sp = spm.SentencePieceProcessor(model_proto=model)
        pieces = [self.sp.id_to_piece(i) for i in range(self.sp.get_piece_size())]
        self.tokens = [BLANK, *pieces, SOS_EOS]
        self.blank, self.eos = 0, len(self.tokens) - 1
        self.unk = self.sp.unk_id() + 1

    def __len__(self) -> int:
        return len(self.tokens)

    def encode(self, text: str) -> list[int]:
        return [i + 1 for i in self.sp.encode(text)]

    def decode(self, ids: list[int]) -> str:
        return self.sp.decode([i - 1 for i in ids if 0 < i < self.eos])

    def check(self, text: str) -> str | None:
        """Why `text` cannot be a CTC target (empty, characters outside the units), or None."""
        if not text.strip():
            return "empty transcript"
        ids = self.encode(text)
        if self.unk in ids:
            bad = sorted({c for c in text if not c.isspace() and self.unk in self.encode(c)})
            return f"characters outside the unit set: {''.join(bad)!r}"
        return None
