"""Seqtalk's seeded validation split, reproduced exactly in Python.

Seqtalk splits rows with `new System.Random(seed)` (.NET's seeded generator, Knuth's subtractive
method, stable across .NET versions) and a Fisher-Yates shuffle from the end (Data/DataSplit.cs,
Data/Batcher.cs). Porting the generator lets a baseline hold out exactly the rows Seqtalk holds out,
so validation losses are compared on the same data. Checked against .NET 10: seeds 0, 1, 42,
123456789 and -5 give the same Next(n) sequences.
"""


class DotNetRandom:
    """System.Random(int seed): the seeded (Net5Compat) implementation."""

    MBIG = 2147483647
    MSEED = 161803398

    def __init__(self, seed):
        a = [0] * 56
        sub = 2147483647 if seed == -2147483648 else abs(seed)
        mj = self.MSEED - sub
        a[55] = mj
        mk = 1
        for i in range(1, 55):
            ii = (21 * i) % 55
            a[ii] = mk
            mk = mj - mk
            if mk < 0:
                mk += self.MBIG
            mj = a[ii]
        for _ in range(1, 5):
            for i in range(1, 56):
                a[i] -= a[1 + (i + 30) % 55]
                if a[i] < 0:
                    a[i] += self.MBIG
        self._a, self._inext, self._inextp = a, 0, 21

    def _sample(self):
        self._inext = 1 if self._inext + 1 >= 56 else self._inext + 1
        self._inextp = 1 if self._inextp + 1 >= 56 else self._inextp + 1
        r = self._a[self._inext] - self._a[self._inextp]
        if r == self.MBIG:
            r -= 1
        if r < 0:
            r += self.MBIG
        self._a[self._inext] = r
        return r

    def next(self, max_value):
        """Random.Next(maxValue): 0 <= result < maxValue."""
        return int(self._sample() * (1.0 / self.MBIG) * max_value)


def seqtalk_validation_count(count, validation_size):
    """DataSplit.ValidationCount: a fraction below 1 rounds half away from zero; 1 or more is a count."""
    if validation_size == 0:
        return 0
    if validation_size < 1:
        x = count * validation_size
        return int(x + 0.5) if x >= 0 else -int(-x + 0.5)
    return int(validation_size)


def seqtalk_split(count, validation_size, seed):
    """DataSplit.Split(count, size, SplitMode.Random, seed) -> (train indices, validation indices), both sorted."""
    order = list(range(count))
    rng = DotNetRandom(seed)
    for i in range(count - 1, 0, -1):
        j = rng.next(i + 1)
        order[i], order[j] = order[j], order[i]
    n_val = seqtalk_validation_count(count, validation_size)
    return sorted(order[n_val:]), sorted(order[:n_val])
