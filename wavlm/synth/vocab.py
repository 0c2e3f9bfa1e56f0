"""The fixed vocabulary and the small grammar every synthetic corpus draws its sentences from.

A few hundred common English words in grammatical classes; `Grammar` strings them into short
sentences (LibriSpeech style: upper case, no punctuation), so that an ASR model trained on a
synthetic corpus and a language model trained on the synthetic LM text can both learn something.
"""

from __future__ import annotations

import subprocess

import numpy as np

DETERMINERS = "THE A THIS THAT EVERY ONE NO SOME HIS HER OUR THEIR MY YOUR".split()
ADJECTIVES = """
OLD YOUNG LITTLE GREAT SMALL LARGE LONG SHORT HIGH DEEP DARK BRIGHT COLD WARM GREEN RED BLUE WHITE
BLACK GOLDEN SILVER QUIET LOUD GENTLE WILD HAPPY SAD STRANGE FAIR POOR RICH KIND BRAVE WISE EMPTY
HEAVY SOFT HARD STRONG WEAK TIRED HUNGRY LONELY BEAUTIFUL DISTANT CLEAR SIMPLE SECRET FAMOUS HONEST
""".split()
NOUNS = """
MAN WOMAN CHILD BOY GIRL KING QUEEN FATHER MOTHER BROTHER SISTER FRIEND DOCTOR CAPTAIN SOLDIER FARMER
TEACHER STRANGER HORSE DOG CAT BIRD FISH WOLF HOUSE ROOM DOOR WINDOW GARDEN FIELD FOREST RIVER SEA
MOUNTAIN ROAD STREET CITY VILLAGE CASTLE CHURCH SHIP BOAT TRAIN LETTER BOOK PAPER STORY SONG WORD
NAME VOICE FACE HAND HEART EYE HEAD FIRE WATER STONE TREE FLOWER APPLE BREAD TABLE CHAIR BED LAMP
CANDLE KEY BOX BAG COAT HAT SWORD GOLD MONEY PICTURE CLOCK BELL WHEEL BRIDGE TOWER HILL ISLAND
MORNING EVENING NIGHT SUMMER WINTER SPRING STORM WIND RAIN SNOW SUN MOON STAR LIGHT SHADOW
""".split()
NAMES = """
JOHN MARY HENRY ANNE THOMAS ELIZABETH JAMES MARGARET WILLIAM ALICE ROBERT SARAH GEORGE EMMA CHARLES
LUCY EDWARD MARTHA ARTHUR HELEN
""".split()
TRANSITIVE = """
SAW FOUND TOOK GAVE MADE KNEW LOVED HELD BROUGHT KEPT LEFT MET CALLED FOLLOWED WATCHED OPENED CLOSED
CARRIED BUILT BOUGHT SOLD PAINTED WROTE READ HEARD TOUCHED LIFTED PULLED PUSHED CAUGHT CHASED
REMEMBERED FORGOT ASKED ANSWERED HELPED VISITED CROSSED CLEANED FILLED BROKE
""".split()
INTRANSITIVE = """
SLEPT LAUGHED CRIED WAITED SMILED SANG DANCED WALKED RAN FELL STOOD SAT ARRIVED RETURNED DISAPPEARED
SPOKE LISTENED WORKED PLAYED REMAINED TREMBLED WHISPERED SHOUTED STARTED STOPPED
""".split()
ADVERBS = """
SLOWLY QUICKLY QUIETLY SOFTLY SUDDENLY AGAIN ALWAYS NEVER OFTEN SOON THEN TODAY YESTERDAY TOGETHER
ALONE CAREFULLY GLADLY HAPPILY EARLY LATE HERE THERE AWAY HOME
""".split()
PREPOSITIONS = (
    "IN ON UNDER NEAR BEHIND BESIDE ACROSS THROUGH INTO FROM WITH WITHOUT ABOVE BELOW AFTER BEFORE".split()
)
CONJUNCTIONS = "AND BUT WHILE BECAUSE WHEN SO".split()
PRONOUNS = "HE SHE THEY WE I YOU IT".split()
NUMBERS = "TWO THREE FOUR FIVE SIX SEVEN EIGHT NINE TEN TWELVE HUNDRED".split()
PLURALS = [
    n + "S"
    for n in """
FRIEND HORSE DOG BIRD TREE FLOWER STAR BOOK LETTER SONG HAND EYE HILL ROAD FIELD BELL KEY SHIP STONE
""".split()
]
FILLERS = "VERY MUCH ALL OF AS NOT WAS HAD".split()

VOCABULARY: tuple[str, ...] = tuple(
    sorted(
        set(
            DETERMINERS
            + ADJECTIVES
            + NOUNS
            + NAMES
            + TRANSITIVE
            + INTRANSITIVE
            + ADVERBS
            + PREPOSITIONS
            + CONJUNCTIONS
            + PRONOUNS
            + NUMBERS
            + PLURALS
            + FILLERS
        )
    )
)


# Words given a second pronunciation in the synthetic pronunciation lexicon, as the official
# librispeech-lexicon.txt lists several for some words (READ R IY1 D / R EH1 D): the respelling that
# espeak-ng reads for the second one.
ALTERNATE_PRONUNCIATIONS = {"A": "uh", "READ": "red", "THE": "thee", "WIND": "wined"}


def pronunciations(words: list[str], voice: str = "en-us") -> list[tuple[str, tuple[str, ...]]]:
    """(word, phones) entries of a pronunciation lexicon for `words`, from espeak-ng's phoneme mnemonics
    (`espeak-ng -x`), with the stress marks moved behind the vowel as ARPAbet writes stress
    (`'oU` -> `oU1`, `,aI` -> `aI2`); a word of ALTERNATE_PRONUNCIATIONS gets its second entry after the first.
    One espeak-ng process for all words (deterministic for a given espeak-ng version)."""
    from wavlm.synth.speech import _espeak_exe

    items = [(w, w) for w in words] + [(w, ALTERNATE_PRONUNCIATIONS[w]) for w in words if w in ALTERNATE_PRONUNCIATIONS]
    text = "".join(f"{say}.\n" for _, say in items)  # one clause, so one output line, per word
    proc = subprocess.run([_espeak_exe(), "-q", "-x", "--sep= ", "-v", voice], input=text.encode(),
                          capture_output=True, check=False)
    lines = proc.stdout.decode().splitlines()
    if proc.returncode != 0 or len(lines) != len(items):
        raise RuntimeError(f"espeak-ng gave {len(lines)} pronunciations for {len(items)} words "
                           f"(exit {proc.returncode}): {proc.stderr.decode(errors='replace')[:200]}")
    phones = {}
    for (word, say), line in zip(items, lines, strict=True):
        ph = tuple(p[1:] + {"'": "1", ",": "2"}[p[0]] if p[0] in "',"  else p for p in line.split())
        if not ph:
            raise RuntimeError(f"espeak-ng gave no phones for {say!r}")
        phones.setdefault(word, []).append(ph)
    return [(w, ph) for w in words for ph in dict.fromkeys(phones[w])]


class Grammar:
    """Draws sentences (lists of upper-case words) from the vocabulary with a given generator."""

    def __init__(self, rng: np.random.Generator) -> None:
        self.rng = rng

    def _pick(self, words: list[str]) -> str:
        return words[int(self.rng.integers(len(words)))]

    def noun_phrase(self) -> list[str]:
        r = self.rng.random()
        if r < 0.15:
            return [self._pick(NAMES)]
        if r < 0.25:
            return [self._pick(NUMBERS), self._pick(PLURALS)]
        words = [self._pick(DETERMINERS)]
        if self.rng.random() < 0.5:
            if self.rng.random() < 0.15:
                words.append("VERY")
            words.append(self._pick(ADJECTIVES))
        words.append(self._pick(NOUNS))
        return words

    def subject(self) -> list[str]:
        return [self._pick(PRONOUNS)] if self.rng.random() < 0.3 else self.noun_phrase()

    def clause(self) -> list[str]:
        words = self.subject()
        if self.rng.random() < 0.1:
            words.append("HAD")
        if self.rng.random() < 0.6:
            words += [self._pick(TRANSITIVE)] + self.noun_phrase()
        else:
            words.append(self._pick(INTRANSITIVE))
        if self.rng.random() < 0.5:
            words += [self._pick(PREPOSITIONS)] + self.noun_phrase()
        if self.rng.random() < 0.35:
            words.append(self._pick(ADVERBS))
        return words

    def sentence(self, max_clauses: int = 2) -> list[str]:
        words = self.clause()
        for _ in range(max_clauses - 1):
            if self.rng.random() < 0.4:
                words += [self._pick(CONJUNCTIONS)] + self.clause()
        return words
