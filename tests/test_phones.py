"""Phone transcripts for SUPERB PR (wavlm.data.phones, wavlm.bin.text_to_phones): first pronunciation of each
word, missing words (skipped with a count, or an error naming the utterance), stress stripping, malformed
lexicons, the CLI on a hand-written data dir (idempotent) and on the synthetic LibriSpeech with its lexicon."""
from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from conftest import run

from wavlm.bin import text_to_phones
from wavlm.data import datadir
from wavlm.data.phones import MissingWordsError, read_lexicons, strip_stress_digit, to_phones
from wavlm.decode.lexicon import LexiconError

LEXICON = """\
I\tAY1
READ\tR IY1 D
READ  R EH1 D
A\tAH0
A\tEY1
BOOK\tB UH1 K
YESTERDAY\tY EH1 S T ER0 D EY2
"""


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


@pytest.fixture
def lexicon(tmp_path) -> Path:
    return write(tmp_path / "lexicon.txt", LEXICON)


def test_all_pronunciations_kept_first_one_used(lexicon):
    lex = read_lexicons(lexicon)
    assert lex["READ"] == [("R", "IY1", "D"), ("R", "EH1", "D")]  # tab or spaces, file order
    assert lex["A"] == [("AH0",), ("EY1",)]
    assert to_phones("I READ A BOOK".split(), lex) == ["AY1", "R", "IY1", "D", "AH0", "B", "UH1", "K"]
    assert to_phones([], lex) == []


def test_several_lexicons_in_order(lexicon, tmp_path):
    extra = write(tmp_path / "extra.txt", "READ\tR EY1 D\nREAD R IY1 D\nBOOKS\tB UH1 K S\n")
    lex = read_lexicons([extra, lexicon])
    assert lex["READ"] == [("R", "EY1", "D"), ("R", "IY1", "D"), ("R", "EH1", "D")]  # repeat kept once
    assert to_phones(["READ", "BOOKS"], lex) == ["R", "EY1", "D", "B", "UH1", "K", "S"]
    assert read_lexicons([lexicon, extra])["READ"][0] == ("R", "IY1", "D")


def test_missing_words_named(lexicon):
    lex = read_lexicons(lexicon)
    with pytest.raises(MissingWordsError) as e:
        to_phones("I READ THE BOOK THE END".split(), lex, where="text:7 (utterance u1)")
    assert e.value.words == ["THE", "END"]
    assert str(e.value).startswith("text:7 (utterance u1): words THE END not in the lexicon")
    with pytest.raises(MissingWordsError, match=r"case-sensitively; the lexicon has READ for read") as e:
        to_phones(["I", "read"], lex)
    assert e.value.words == ["read"]


def test_strip_stress():
    assert to_phones(["YESTERDAY"], {"YESTERDAY": [("Y", "EH1", "S", "T", "ER0", "D", "EY2")]}, strip_stress=True) \
        == ["Y", "EH", "S", "T", "ER", "D", "EY"]
    # espeak-ng mnemonics: stress appended to a phone named with a digit; a one-character phone stays
    assert [strip_stress_digit(p) for p in ("@21", "01", "3", "0", "i:1", "aI", "t#")] == \
        ["@2", "0", "3", "0", "i:", "aI", "t#"]


def test_arpabet_69_to_39_phones():
    vowels = "AA AE AH AO AW AY EH ER EY IH IY OW OY UH UW".split()
    consonants = "B CH D DH F G HH JH K L M N NG P R S SH T TH V W Y Z ZH".split()
    stressed = [v + s for v in vowels for s in "012"] + consonants
    assert len(stressed) == 69
    lex = {f"W{i}": [(p,)] for i, p in enumerate(stressed)}
    assert sorted(set(to_phones(list(lex), lex, strip_stress=True))) == sorted(vowels + consonants)
    assert len(set(to_phones(list(lex), lex))) == 69


def test_malformed_lexicon_names_file_and_line(tmp_path):
    bad = write(tmp_path / "bad.txt", "I\tAY1\nHELLO\nBOOK B UH1 K\n")
    with pytest.raises(LexiconError, match=r"bad\.txt:2: .*HELLO"):
        read_lexicons([bad])
    with pytest.raises(LexiconError, match="empty"):
        read_lexicons(write(tmp_path / "empty.txt", "\n"))
    with pytest.raises(LexiconError, match="no such"):
        read_lexicons(tmp_path / "absent.txt")


# ---- the CLI on a hand-written data dir ------------------------------------------------------------------

SRC = {
    # two recordings cut into segments; spk3's only utterance (on its own recording) has the missing word
    "wav.scp": "rec1 /audio/rec1.flac\nrec2 /audio/rec2.flac\nrec3 sox /audio/rec3.flac -t wav - |\n",
    "segments": "spk1-u1 rec1 0.00 1.50\nspk1-u2 rec1 1.50 3.00\nspk2-u1 rec2 0.00 2.00\nspk3-u1 rec3 0.0 1.0\n",
    "utt2spk": "spk1-u1 spk1\nspk1-u2 spk1\nspk2-u1 spk2\nspk3-u1 spk3\n",
    "spk2utt": "spk1 spk1-u1 spk1-u2\nspk2 spk2-u1\nspk3 spk3-u1\n",
    "utt2dur": "spk1-u1 1.500\nspk1-u2 1.500\nspk2-u1 2.000\nspk3-u1 1.000\n",
    "spk2gender": "spk1 f\nspk2 m\nspk3 f\n",
    "text": "spk1-u1 I READ A BOOK\nspk1-u2 BOOK\nspk2-u1 A BOOK YESTERDAY\nspk3-u1 I READ THE BOOK\n",
}
# hand-computed: spk3-u1 and everything only it uses (rec3, spk3) left out; first pronunciations
WANT = {
    "wav.scp": "rec1 /audio/rec1.flac\nrec2 /audio/rec2.flac\n",
    "segments": "spk1-u1 rec1 0.00 1.50\nspk1-u2 rec1 1.50 3.00\nspk2-u1 rec2 0.00 2.00\n",
    "utt2spk": "spk1-u1 spk1\nspk1-u2 spk1\nspk2-u1 spk2\n",
    "spk2utt": "spk1 spk1-u1 spk1-u2\nspk2 spk2-u1\n",
    "utt2dur": "spk1-u1 1.500\nspk1-u2 1.500\nspk2-u1 2.000\n",
    "spk2gender": "spk1 f\nspk2 m\n",
    "text": "spk1-u1 AY1 R IY1 D AH0 B UH1 K\nspk1-u2 B UH1 K\nspk2-u1 AH0 B UH1 K Y EH1 S T ER0 D EY2\n",
    "phones.txt": "AH0\nAY1\nB\nD\nEH1\nER0\nEY2\nIY1\nK\nR\nS\nT\nUH1\nY\n",
}


@pytest.fixture
def src(tmp_path) -> Path:
    d = tmp_path / "data" / "dev"
    for name, text in SRC.items():
        write(d / name, text)
    assert datadir.validate(d) == []
    return d


def files(d: Path) -> dict[str, str]:
    return {f.name: f.read_text() for f in d.iterdir() if f.is_file() and not f.name.startswith(".")}


def test_cli_skip_drops_the_utterance_from_every_file(src, lexicon, tmp_path, capsys):
    dst = tmp_path / "data" / "dev_phones"
    assert text_to_phones.main(["--lexicon", str(lexicon), str(src), str(dst)]) == 0
    assert files(dst) == WANT
    assert datadir.validate(dst) == []
    err = capsys.readouterr().err
    assert f"{src}/text:4 (utterance spk3-u1): left out, word THE not in the lexicon" in err
    assert "left out 1 of 4 utterances" in err
    assert json.loads((dst / ".text_to_phones").read_text())["missing"] == "skip"


def test_cli_fail_names_line_utterance_and_word(src, lexicon, tmp_path, capsys):
    dst = tmp_path / "dst"
    assert text_to_phones.main(["--lexicon", str(lexicon), "--missing", "fail", str(src), str(dst)]) == 1
    errors = [x for x in capsys.readouterr().err.splitlines() if "ERROR" in x]
    assert len(errors) == 1
    assert f"{src}/text:4 (utterance spk3-u1): word THE not in the lexicon" in errors[0]
    assert not dst.exists()


def test_cli_strip_stress_and_second_lexicon(src, lexicon, tmp_path):
    dst = tmp_path / "dst"
    extra = write(tmp_path / "extra.txt", "THE\tDH AH0\n")
    assert text_to_phones.main(["--lexicon", str(lexicon), "--lexicon", str(extra), "--missing", "fail",
                                "--strip_stress", str(src), str(dst)]) == 0
    got = datadir.read_table(dst / "text").rows
    assert got["spk3-u1"] == "AY R IY D DH AH B UH K"
    assert got["spk2-u1"] == "AH B UH K Y EH S T ER D EY"
    assert (dst / "phones.txt").read_text().split() == ["AH", "AY", "B", "D", "DH", "EH", "ER", "EY", "IY", "K",
                                                         "R", "S", "T", "UH", "Y"]
    assert (dst / "spk2gender").read_text() == SRC["spk2gender"]


def test_cli_idempotent(src, lexicon, tmp_path, capsys):
    dst = tmp_path / "dst"
    args = ["--lexicon", str(lexicon), str(src), str(dst)]
    assert text_to_phones.main(args) == 0
    capsys.readouterr()
    mtimes = {f.name: f.stat().st_mtime_ns for f in dst.iterdir()}
    assert text_to_phones.main(args) == 0
    assert "up to date" in capsys.readouterr().err
    assert {f.name: f.stat().st_mtime_ns for f in dst.iterdir()} == mtimes

    def newer(f: Path) -> None:  # a change after DST was written
        t = (dst / ".text_to_phones").stat().st_mtime_ns + 10**9
        os.utime(f, ns=(t, t))

    newer(lexicon)  # a changed lexicon rebuilds
    assert text_to_phones.main(args) == 0
    assert "up to date" not in capsys.readouterr().err and files(dst) == WANT
    newer(src / "utt2dur")  # so does a changed source file
    assert text_to_phones.main(args) == 0
    assert "up to date" not in capsys.readouterr().err
    assert text_to_phones.main(["--strip_stress", *args]) == 0  # and other options
    assert "up to date" not in capsys.readouterr().err
    assert "AY R IY D" in (dst / "text").read_text()
    (dst / "text").unlink()  # and a lost output
    assert text_to_phones.main(["--strip_stress", *args]) == 0
    assert "up to date" not in capsys.readouterr().err and (dst / "text").is_file()


def test_cli_refuses_bad_input(src, lexicon, tmp_path, capsys):
    assert text_to_phones.main(["--lexicon", str(lexicon), str(src), str(src)]) == 1
    assert "must differ" in capsys.readouterr().err
    bad = write(tmp_path / "bad.txt", "I\tAY1\nBOOK\n")
    assert text_to_phones.main(["--lexicon", str(bad), str(src), str(tmp_path / "x")]) == 1
    assert f"{bad}:2:" in capsys.readouterr().err
    (src / "text").unlink()
    assert text_to_phones.main(["--lexicon", str(lexicon), str(src), str(tmp_path / "x")]) == 1
    assert "text: missing" in capsys.readouterr().err


def test_cli_module_end_to_end(src, lexicon, tmp_path, env):
    dst = tmp_path / "out"
    p = run(["python", "-m", "wavlm.bin.text_to_phones", "--lexicon", str(lexicon), str(src), str(dst)], env)
    assert files(dst) == WANT
    assert "left out 1 of 4 utterances" in p.stderr
    p = run(["python", "-m", "wavlm.bin.text_to_phones", "--lexicon", str(lexicon), "--missing", "fail", str(src),
             str(tmp_path / "out2")], env, check=False)
    assert p.returncode == 1 and "utterance spk3-u1): word THE not in the lexicon" in p.stderr


# ---- the synthetic LibriSpeech and its lexicon -----------------------------------------------------------

@pytest.fixture(scope="module")
def synth(tmp_path_factory, env) -> Path:
    """A tiny synthetic LibriSpeech (dev-clean, test-clean) with librispeech_lm/, prepared as data dirs."""
    out = tmp_path_factory.mktemp("ls_phones")
    run(["python", "-m", "wavlm.bin.synth", "--corpus", "librispeech", "--out", str(out), "--seed", "0", "--nj", "1",
         "--subsets", "dev-clean,test-clean", "--num_eval_speakers", "2", "--chapters_per_speaker", "1",
         "--utts_per_speaker", "4", "--lm_sentences", "300", "--no_finetuning"], env)
    run(["python", "-m", "wavlm.bin.prepare_data", "librispeech", "--root", str(out / "LibriSpeech"),
         "--data", str(out / "data"), "--subsets", "dev-clean", "test-clean"], env)
    return out


def test_synthetic_librispeech_fully_covered(synth, tmp_path):
    from wavlm.synth.vocab import ALTERNATE_PRONUNCIATIONS, VOCABULARY

    lexfile = synth / "librispeech_lm" / "librispeech-lexicon.txt"
    # independent reading: the first line of each word
    first: dict[str, list[str]] = {}
    for line in lexfile.read_text().splitlines():
        word, *phones = line.split()
        first.setdefault(word, phones)
    lex = read_lexicons(lexfile)
    assert {w for w, p in lex.items() if len(p) == 2} == set(ALTERNATE_PRONUNCIATIONS)
    assert set(lex) == set(VOCABULARY)
    lm_words = (synth / "librispeech_lm" / "librispeech-lm-norm.txt").read_text().split()
    assert to_phones(lm_words, lex) == [p for w in lm_words for p in first[w]]

    dirs = sorted((synth / "data").glob("*_clean"))
    assert [d.name for d in dirs] == ["dev_clean", "test_clean"]
    used = set()
    for d in dirs:
        dst = tmp_path / f"{d.name}_phones"
        assert text_to_phones.main(["--lexicon", str(lexfile), "--missing", "fail", str(d), str(dst)]) == 0
        src_text = datadir.read_table(d / "text").rows
        got = datadir.read_table(dst / "text").rows
        assert list(got) == list(src_text) and len(got) == 8  # every utterance kept
        for utt, words in src_text.items():
            used |= set(words.split())
            assert got[utt].split() == [p for w in words.split() for p in first[w]], utt
        assert (dst / "phones.txt").read_text().split() == sorted({p for v in got.values() for p in v.split()})
        for name in ("wav.scp", "utt2spk", "spk2utt", "spk2gender", "utt2dur"):
            assert (dst / name).read_text() == (d / name).read_text(), name
        assert datadir.validate(dst) == []
    assert "THE" in used and first["THE"] == list(lex["THE"][0])  # a two-pronunciation word, its first one
