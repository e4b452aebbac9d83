"""Seqtalk's data preparation in Python, step for step, so the PyTorch baseline trains and decodes
exactly the rows, vocabularies and batches our engine does (bench/baseline/workloads.py).

- `DotNetRandom`: .NET's seeded `System.Random` (the Knuth subtractive generator .NET keeps for
  seeded instances), so `Batcher.Shuffle` and `DataSplit` give the same orders as in C#.
- `split_words`: `TextNormalizer.SplitWords` in the default mode (docs/text.md).
- `build_vocab`: `WordTokenizer.Train` / `TokenCounter.Build` (MaxVocabulary counts the specials).
- `split`, `make_batches`: `DataSplit.Split` (random mode) and `Batcher.MakeBatches`.

Pure Python, no torch: importable by any python3.
"""

import csv
import unicodedata

PAD, UNK, START, END = 0, 1, 2, 3                    # src/Seqtalk/Text/SpecialTokens.cs
SPECIALS = ["<pad>", "<unk>", "<s>", "</s>"]
MAX_SEQUENCE_LENGTH = 60                             # TrainingOptions.DefaultMaxSequenceLength
CHUNK_BATCHES = 50                                   # Batcher.ChunkBatches

_INT_MAX = 2147483647


class DotNetRandom:
    """`new System.Random(seed)` (seeded instances use the .NET Framework algorithm, Net5CompatSeedImpl)."""

    def __init__(self, seed):
        seed_array = [0] * 56
        subtraction = _INT_MAX if seed == -2147483648 else abs(seed)
        mj = 161803398 - subtraction
        seed_array[55] = mj
        mk, ii = 1, 0
        for _ in range(1, 55):
            ii += 21
            if ii >= 55:
                ii -= 55
            seed_array[ii] = mk
            mk = mj - mk
            if mk < 0:
                mk += _INT_MAX
            mj = seed_array[ii]
        for _ in range(1, 5):
            for i in range(1, 56):
                n = i + 30
                if n >= 55:
                    n -= 55
                v = seed_array[i] - seed_array[1 + n]
                # C# int arithmetic wraps; the values stay in [-(2^31-1), 2^31-1] so no wrap happens here.
                if v < 0:
                    v += _INT_MAX
                seed_array[i] = v
        self._a, self._inext, self._inextp = seed_array, 0, 21

    def _sample_int(self):
        a = self._a
        i = self._inext + 1
        if i >= 56:
            i = 1
        j = self._inextp + 1
        if j >= 56:
            j = 1
        r = a[i] - a[j]
        if r == _INT_MAX:
            r -= 1
        if r < 0:
            r += _INT_MAX
        a[i] = r
        self._inext, self._inextp = i, j
        return r

    def next(self, max_value):
        """`Next(maxValue)`: an int in [0, max_value)."""
        return int(self._sample_int() * (1.0 / _INT_MAX) * max_value)


def shuffle(items, rng):
    """`Batcher.Shuffle`: Fisher-Yates from the end, in place."""
    for i in range(len(items) - 1, 0, -1):
        j = rng.next(i + 1)
        items[i], items[j] = items[j], items[i]


# ---------------------------------------------------------------------------------------------
# Text: TextNormalizer (default mode, no lower-casing) and WordTokenizer
# ---------------------------------------------------------------------------------------------

_SPACE_CATEGORIES = {"Zs", "Zl", "Zp", "Cc"}
_SPLIT_CATEGORIES = {"Pd", "Ps", "Pe", "Pi", "Pf", "Po", "Sm", "Sc", "Sk", "So"}


def _is_noncharacter(cp):
    return 0xFDD0 <= cp <= 0xFDEF or (cp & 0xFFFE) == 0xFFFE


def normalize(text):
    """`TextNormalizer.Normalize` in the default mode: noncharacters and lone surrogates to U+FFFD,
    NFC, control and separator characters to spaces, whitespace runs collapsed, trimmed."""
    text = "".join("\ufffd" if (0xD800 <= ord(ch) <= 0xDFFF or _is_noncharacter(ord(ch))) else ch for ch in text)
    text = unicodedata.normalize("NFC", text)
    out, pending = [], False
    for ch in text:
        if unicodedata.category(ch) in _SPACE_CATEGORIES:
            pending = bool(out)
        else:
            if pending:
                out.append(" ")
            pending = False
            out.append(ch)
    return "".join(out)


def _is_latin_letter(ch):
    return ch < "\u0250" and ch.isalpha()


def split_words(text):
    """`TextNormalizer.SplitWords`, default mode: words, and every punctuation or symbol character a
    token of its own, except an apostrophe between two Latin letters inside a word (`don't`)."""
    s = normalize(text)
    tokens, start = [], -1
    for i, ch in enumerate(s):
        if ch == " ":
            if start >= 0:
                tokens.append(s[start:i])
                start = -1
        elif unicodedata.category(ch) in _SPLIT_CATEGORIES and not (
                ch in "'\u2019" and start >= 0 and i + 1 < len(s)
                and _is_latin_letter(s[i - 1]) and _is_latin_letter(s[i + 1])):
            if start >= 0:
                tokens.append(s[start:i])
                start = -1
            tokens.append(ch)
        elif start < 0:
            start = i
    if start >= 0:
        tokens.append(s[start:])
    return tokens


def build_vocab(texts, max_vocabulary=None):
    """`WordTokenizer.Train`: specials at 0..3, then words by descending count, ties by first
    occurrence; `max_vocabulary` counts the specials. Returns (word -> id, id -> word)."""
    counts, first = {}, {}
    for text in texts:
        for t in split_words(text):
            if t in SPECIALS:
                continue
            if t not in counts:
                counts[t] = 0
                first[t] = len(first)
            counts[t] += 1
    words = sorted(counts, key=lambda w: (-counts[w], first[w]))
    if max_vocabulary is not None:
        words = words[:max_vocabulary - len(SPECIALS)]
    itos = SPECIALS + words
    return {w: i for i, w in enumerate(itos)}, itos


def encode(text, vocab, max_length=MAX_SEQUENCE_LENGTH):
    """`Tokenizer.EncodeToIds` then `Trainer.Cut`."""
    return [vocab.get(t, UNK) for t in split_words(text)][:max_length]


# ---------------------------------------------------------------------------------------------
# Rows, split, batches
# ---------------------------------------------------------------------------------------------

def read_pairs(path):
    """(question, answer) per row, by the Q and A columns; rows with an empty side after trimming are
    skipped, as PairReader does."""
    with open(path, encoding="utf-8-sig", newline="") as f:
        rows = [(row["Q"], row["A"]) for row in csv.DictReader(f)]
    return [r for r in rows if r[0].strip() and r[1].strip()]


def split(count, fraction, seed):
    """`DataSplit.Split` in random mode: (train indices, validation indices), both ascending."""
    n_val = int(count * fraction + 0.5)                 # Math.Round(…, AwayFromZero) for positives
    order = list(range(count))
    shuffle(order, DotNetRandom(seed))
    return sorted(order[n_val:]), sorted(order[:n_val])


def make_batches(pairs, batch_size, rng):
    """`Batcher.MakeBatches`: lists of encoded (source, target) rows per batch, each batch ordered
    by source length, longest first (stable). With `rng` (a DotNetRandom): shuffle, sort chunks of
    50 batches by source then target length (longest first, stable), cut, shuffle the batch order."""
    n = len(pairs)
    order = list(range(n))
    src_len = [max(1, len(s)) for s, _ in pairs]
    groups = []
    if rng is None:
        groups = [order[s:s + batch_size] for s in range(0, n, batch_size)]
    else:
        shuffle(order, rng)
        chunk = batch_size * CHUNK_BATCHES
        for s in range(0, n, chunk):
            part = sorted(order[s:s + chunk], key=lambda i: (-src_len[i], -len(pairs[i][1])))
            groups += [part[b:b + batch_size] for b in range(0, len(part), batch_size)]
        shuffle(groups, rng)
    batches = []
    for members in groups:
        rows = sorted(members, key=lambda i: -src_len[i])
        batches.append([(pairs[i][0] if pairs[i][0] else [UNK], pairs[i][1]) for i in rows])
    return batches
