"""A vocabulary's words packed: their UTF-8 bytes end to end and int64 offsets [V + 1].

A list of V Python strings costs ~65 bytes a word (the str object with its header and the list's
pointer; worked out), and a training process only reads them to write its files: loading the
1.16M-word vocabulary of 20x text8 held 92 MiB as a list (and its counts); packed, 26 MiB. ``Words`` holds
~16 bytes a word (the bytes and an offset) and decodes a word, or a block of them, when asked: it
is a read-only sequence of str, so code that indexes, slices (a list back), iterates or compares
it with a list works unchanged. The checkpoint stores the same two arrays.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence

import numpy as np

_BLOCK = 1 << 16  # words encoded or decoded at a time


class Words(Sequence):
    __slots__ = ("utf8", "offsets")

    def __init__(self, utf8: np.ndarray, offsets: np.ndarray):
        """``utf8`` uint8 [B], ``offsets`` int64 [V + 1]: word i is utf8[offsets[i]:offsets[i + 1]].
        Trusted as given: arrays read from a file are checked by their reader first (the
        checkpoint's: ``checkpoint.unpack_words``)."""
        self.utf8, self.offsets = utf8, offsets

    @classmethod
    def of(cls, words: Iterable[str]) -> Words:
        return words if isinstance(words, Words) else cls.pack(list(words))

    @classmethod
    def pack(cls, words: list[str]) -> Words:
        """Encoded in blocks of words joined by newlines (a word from the tokenizer holds none:
        it is whitespace): no bytes object per word and no temporary of the whole list's size."""
        data = bytearray()  # grown block by block: at most one copy of it at a time
        offsets = np.zeros(len(words) + 1, np.int64)
        for start in range(0, len(words), _BLOCK):
            block = words[start:start + _BLOCK]
            joined = np.frombuffer("\n".join(block).encode("utf-8"), np.uint8)
            newline = joined == 10
            breaks = np.flatnonzero(newline)
            if len(breaks) != len(block) - 1:  # a word with a newline in it: one at a time
                for i, w in enumerate(block):
                    data += w.encode("utf-8")
                    offsets[start + i + 1] = len(data)
                continue
            ends = offsets[start + 1:start + len(block) + 1]
            ends[:-1] = breaks
            ends[:-1] -= np.arange(len(breaks))  # word i ends at its newline, less the i newlines before it
            ends[-1] = len(joined) - len(breaks)
            ends += len(data)
            data += joined[np.logical_not(newline, out=newline)].tobytes()
        return cls(np.frombuffer(data, np.uint8), offsets)

    def __len__(self) -> int:
        return len(self.offsets) - 1

    @property
    def utf8_size(self) -> int:
        """Bytes of all the words' UTF-8, separators not counted."""
        return len(self.utf8)

    def __getitem__(self, i):
        if isinstance(i, slice):
            start, stop, step = i.indices(len(self))
            if step != 1:
                return [self[j] for j in range(start, stop, step)]
            return self._decode(start, max(start, stop))
        n = len(self)
        if not -n <= i < n:
            raise IndexError("word index out of range")
        i %= n
        return self.utf8[self.offsets[i]:self.offsets[i + 1]].tobytes().decode("utf-8")

    def _decode(self, start: int, stop: int) -> list[str]:
        offsets = self.offsets[start:stop + 1]
        if not len(offsets):
            return []
        raw = self.utf8[offsets[0]:offsets[-1]].tobytes()
        bounds = (offsets - offsets[0]).tolist()
        return [raw[a:b].decode("utf-8") for a, b in zip(bounds[:-1], bounds[1:], strict=True)]

    def blocks(self) -> Iterator[list[str]]:
        """The words in lists of up to 65,536, in order."""
        for start in range(0, len(self), _BLOCK):
            yield self._decode(start, min(start + _BLOCK, len(self)))

    def __iter__(self) -> Iterator[str]:
        for block in self.blocks():
            yield from block

    def __eq__(self, other) -> bool:
        if isinstance(other, Words):
            return np.array_equal(self.offsets, other.offsets) and np.array_equal(self.utf8, other.utf8)
        if isinstance(other, (list, tuple)):
            return len(other) == len(self) and all(a == b for a, b in zip(self, other, strict=True))
        return NotImplemented

    __hash__ = None  # mutable arrays inside, like a list

    def __repr__(self) -> str:
        head = ", ".join(repr(w) for w in self[:5])
        return f"Words([{head}{', ...' if len(self) > 5 else ''}], {len(self):,} words)"

    def __getstate__(self):
        return self.utf8, self.offsets

    def __setstate__(self, state):
        self.utf8, self.offsets = state


def utf8_size(words: Sequence[str]) -> int:
    """Bytes of the words' UTF-8, for a list or Words alike."""
    return words.utf8_size if isinstance(words, Words) else sum(len(w.encode("utf-8")) for w in words)
