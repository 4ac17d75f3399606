"""The Numba tokenizer's kernels over bytes, the hash table of words they fill and the code point
classes they read: no file, no thread (w2v.tokenize reads the corpus and drives them).

``_scan`` turns one buffer of bytes into word ids (``-1`` at each newline) and counts, allocating
nothing: it decodes UTF-8 (an invalid sequence is one U+FFFD, as Python's decoder makes it), splits
(the two modes of w2v.tokenize), lowercases ASCII letters, and looks each token's bytes up in the
table (``_find``: a token of at most 7 bytes is found by one integer, a longer one by its FNV-1a
hash and its bytes in the pool), adding a new word with the next id: ids in order of first
appearance. Where it cannot go on it returns a status that Python fixes before calling again: an
unclassified code point block, a full table or byte pool, a table past its cap to prune. A frozen
table is only read (threads may share it). ``_prune`` is word2vec.c's ReduceVocab on the table,
``_merge`` adds one share's table to another in the share's order, ``remap`` maps an id stream in
place; ``prune_reference`` and ``remap_reference`` are their plain Python and NumPy references.

The classes of code points come from ``unicodedata`` of the running Python: a table of 0x110000
bytes filled block by block (256 code points) the first time the kernel meets a block.
"""

from __future__ import annotations

import threading

import numpy as np
from numba import njit

from .corpus import JOINERS, is_word_char
from .kernel_cache import claim

claim()  # the kernel directory made, held in use and the other versions' pruned

SENTENCE_END = -1
_OOV = -2

# code point classes (bits); 255 = not looked up yet
_SPACE, _WORD, _JOIN = 1, 2, 4
_UNKNOWN = 255

# kernel statuses
_DONE, _NEED_BLOCK, _GROW_TABLE, _GROW_POOL, _PRUNE = 0, 1, 2, 3, 4
# state slots (_CAP: prune past this many entries, 0 = never; _FROZEN: look up, never add or count)
_POS, _NOUT, _NENT, _TOKENS, _LINES, _INVALID, _OPEN, _NEWLINE, _BLOCK, _CAP, _FROZEN = range(11)
_STATE = 11

_FNV_OFFSET = np.uint64(0xCBF29CE484222325)
_FNV_PRIME = np.uint64(0x100000001B3)

_classes = np.full(0x110000, _UNKNOWN, dtype=np.uint8)
_classes_lock = threading.Lock()


def _class_of(ch: str) -> int:
    flags = _SPACE if ch.isspace() else 0
    if is_word_char(ch):
        flags |= _WORD
    if ch in JOINERS:
        flags |= _JOIN
    return flags


def _fill_block(block: int) -> None:
    """Classify code points block*256 .. block*256+255 (surrogates: never decoded, left as 0)."""
    with _classes_lock:
        lo = block << 8
        if _classes[lo] != _UNKNOWN:
            return
        values = np.array([0 if 0xD800 <= cp < 0xE000 else _class_of(chr(cp)) for cp in range(lo, lo + 256)],
                          dtype=np.uint8)
        _classes[lo + 1:lo + 256] = values[1:]
        _classes[lo] = values[0]  # last: a block whose first entry is known is filled


_fill_block(0)


def word_class_table() -> np.ndarray:
    """The whole table, every block filled (for tests: 0.3 s)."""
    for block in range(0x1100):
        if _classes[block << 8] == _UNKNOWN:
            _fill_block(block)
    return _classes


# --- kernels ----------------------------------------------------------------------------------

@njit(cache=True, nogil=True)
def _mix(h):
    h ^= h >> np.uint64(29)
    h *= np.uint64(0xBF58476D1CE4E5B9)
    h ^= h >> np.uint64(32)
    return h


@njit(cache=True, nogil=True)
def _key(pool, start, length):
    """A token of at most 7 bytes packed with its length into one integer (0 for a longer one):
    equal keys, equal tokens."""
    if length > 7:
        return np.uint64(0)
    k = np.uint64(length) << np.uint64(56)
    for j in range(length):
        k |= np.uint64(pool[start + j]) << np.uint64(8 * j)
    return k


_LONG = np.uint64(1 << 63)  # marks a slot's first word as the hash of a token of 8 bytes or more
_LOW = np.uint64(0xFFFFFFFF)


@njit(cache=True, nogil=True)
def _first(key, h, length):
    """A slot's first word: the key of a short token, the hash (top bit set) of a longer one."""
    return key if length <= 7 else h | _LONG


@njit(cache=True, nogil=True)
def _find(pool, start, length, h, key, slots, offsets):
    """The slot of the entry with these bytes, or the empty slot where it goes. Slot s is
    slots[2s] (``_first``) and slots[2s+1] (entry id + 1 in the low 32 bits, 0 when empty; the hash's
    high 32 bits above), read together: a short token is found without touching the entry arrays
    or the byte pool."""
    mask = (len(slots) >> 1) - 1
    first = _first(key, h, length)
    tag = h & ~_LOW
    slot = np.int64(_mix(h) & np.uint64(mask))
    while True:
        m = slots[2 * slot + 1]
        if m == 0:
            return slot
        if slots[2 * slot] == first and (m & ~_LOW) == tag:
            if length <= 7:
                return slot
            e = np.int64(m & _LOW) - 1
            if offsets[e + 1] - offsets[e] == length:
                a = offsets[e]
                same = True
                for k in range(length):
                    if pool[a + k] != pool[start + k]:
                        same = False
                        break
                if same:
                    return slot
        slot = (slot + 1) & mask


@njit(cache=True, nogil=True)
def _entry(slots, slot):
    """The entry id in a slot, -1 if it is empty."""
    return np.int64(slots[2 * slot + 1] & _LOW) - 1


@njit(cache=True, nogil=True)
def _put(slots, slot, e, h, key, length):
    slots[2 * slot] = _first(key, h, length)
    slots[2 * slot + 1] = np.uint64(e + 1) | (h & ~_LOW)


@njit(cache=True, nogil=True)
def _scan(buf, n, final, words, lower, cls, fold, st, out, slots, hashes, offsets, counts, pool):
    """Tokenise buf[st[_POS]:n] into ``out`` (entry ids, -1 at each newline) and the table.

    ``fold``: each ASCII byte as it goes into a token (lowercased or not). Returns a status: _DONE
    (st[_POS] is where unconsumed bytes start: a token or a UTF-8 sequence
    that may continue in the next read; n when ``final``), or a reason to stop early that Python
    fixes before calling again from st[_POS] (an unclassified code point block, a full table or
    byte pool, a table past st[_CAP] entries to prune). With st[_FROZEN] the table is only read
    (threads may share it; ``pool`` past its entries is this call's own scratch): a token it lacks
    writes no id. Nothing is allocated here."""
    i = st[_POS]
    cap = st[_CAP]
    frozen = st[_FROZEN] != 0
    n_out = st[_NOUT]
    n_ent = st[_NENT]
    tokens = st[_TOKENS]
    lines = st[_LINES]
    invalid = st[_INVALID]
    line_open = st[_OPEN]
    saw_newline = st[_NEWLINE]
    max_ent = len(hashes) - 1
    pool_cap = len(pool)
    base = offsets[n_ent]
    in_tok = False
    tok_start = 0
    tlen = 0
    tinv = 0
    h = _FNV_OFFSET
    pend = -1
    pend_len = 0
    status = _DONE
    stop = n
    while True:
        if in_tok and pend < 0:
            # the common case, a run of ASCII bytes inside a token, in a loop of its own
            while i < n:
                b = buf[i]
                if b >= 0x80 or base + tlen >= pool_cap:
                    break
                f = cls[b]
                if (f & _SPACE) if not words else not (f & _WORD):
                    break
                c = fold[b]
                pool[base + tlen] = c
                tlen += 1
                h = (h ^ np.uint64(c)) * _FNV_PRIME
                i += 1
        commit = False
        newline = False
        bad = False
        step = 0
        if i >= n:
            if not in_tok:
                stop = i
                break
            if not final:
                stop = tok_start
                break
            commit = True
        else:
            b = buf[i]
            valid = True
            cp = np.int64(b)
            step = 1
            if b < 0x80:
                f = cls[b]
                if b == 10:
                    newline = True
            else:
                need = 0
                lo = 0x80
                hi = 0xBF
                if b < 0xC2 or b > 0xF4:
                    valid = False
                elif b < 0xE0:
                    need = 1
                    cp = np.int64(b & 0x1F)
                elif b < 0xF0:
                    need = 2
                    cp = np.int64(b & 0x0F)
                    if b == 0xE0:
                        lo = 0xA0
                    elif b == 0xED:
                        hi = 0x9F
                else:
                    need = 3
                    cp = np.int64(b & 0x07)
                    if b == 0xF0:
                        lo = 0x90
                    elif b == 0xF4:
                        hi = 0x8F
                if valid:
                    incomplete = False
                    for k in range(1, need + 1):
                        if i + k >= n:
                            incomplete = True
                            break
                        c = buf[i + k]
                        if c < lo or c > hi:
                            valid = False
                            break
                        cp = (cp << 6) | np.int64(c & 0x3F)
                        step = k + 1
                        lo = 0x80
                        hi = 0xBF
                    if incomplete:
                        if not final:
                            stop = tok_start if in_tok else i
                            break
                        valid = False
                    if valid:
                        step = need + 1
                if valid:
                    f = cls[cp]
                    if f == _UNKNOWN:
                        st[_BLOCK] = cp >> 8
                        status = _NEED_BLOCK
                        stop = tok_start if in_tok else i
                        break
                else:
                    f = 0
            if newline:
                commit = in_tok
            elif words:
                if valid and (f & _WORD):
                    if not in_tok:
                        in_tok = True
                        tok_start = i
                        tlen = 0
                        tinv = 0
                        h = _FNV_OFFSET
                    elif pend >= 0:
                        if base + tlen + pend_len > pool_cap:
                            status = _GROW_POOL
                            stop = tok_start
                            break
                        for k in range(pend_len):
                            c = buf[pend + k]
                            pool[base + tlen] = c
                            tlen += 1
                            h = (h ^ np.uint64(c)) * _FNV_PRIME
                        pend = -1
                    if base + tlen + step > pool_cap:
                        status = _GROW_POOL
                        stop = tok_start
                        break
                    for k in range(step):
                        c = buf[i + k]
                        if lower and 65 <= c <= 90:
                            c += 32
                        pool[base + tlen] = c
                        tlen += 1
                        h = (h ^ np.uint64(c)) * _FNV_PRIME
                    i += step
                    continue
                elif valid and (f & _JOIN) and in_tok and pend < 0:
                    pend = i
                    pend_len = step
                    i += step
                    continue
                else:
                    bad = not valid
                    commit = in_tok
            else:
                if valid and (f & _SPACE):
                    commit = in_tok
                else:
                    if not in_tok:
                        in_tok = True
                        tok_start = i
                        tlen = 0
                        tinv = 0
                        h = _FNV_OFFSET
                    if base + tlen + 3 > pool_cap:
                        status = _GROW_POOL
                        stop = tok_start
                        break
                    if valid:
                        for k in range(step):
                            c = buf[i + k]
                            if lower and 65 <= c <= 90:
                                c += 32
                            pool[base + tlen] = c
                            tlen += 1
                            h = (h ^ np.uint64(c)) * _FNV_PRIME
                    else:
                        tinv += 1
                        for c in (0xEF, 0xBF, 0xBD):
                            pool[base + tlen] = c
                            tlen += 1
                            h = (h ^ np.uint64(c)) * _FNV_PRIME
                    i += step
                    continue
        if commit:
            key = _key(pool, base, tlen)
            slot = _find(pool, base, tlen, h, key, slots, offsets)
            e = _entry(slots, slot)
            if e < 0 and not frozen:
                if n_ent >= max_ent:
                    status = _GROW_TABLE
                    stop = tok_start
                    break
                e = n_ent
                _put(slots, slot, e, h, key, tlen)
                hashes[e] = h
                counts[e] = 1
                base += tlen
                offsets[e + 1] = base
                n_ent += 1
            elif not frozen:
                counts[e] += 1
            if e >= 0:
                out[n_out] = e
                n_out += 1
            tokens += 1
            invalid += tinv
            line_open = 1
            in_tok = False
            pend = -1
            if cap > 0 and n_ent > cap:
                status = _PRUNE  # the byte at i (a separator) is read again after the prune
                stop = i
                break
        if i >= n:
            stop = n
            break
        if bad:
            invalid += 1
        if newline:
            out[n_out] = -1
            n_out += 1
            lines += 1
            line_open = 0
            saw_newline = 1
        i += step
    st[_POS] = stop
    st[_NOUT] = n_out
    st[_NENT] = n_ent
    st[_TOKENS] = tokens
    st[_LINES] = lines
    st[_INVALID] = invalid
    st[_OPEN] = line_open
    st[_NEWLINE] = saw_newline
    return status


@njit(cache=True, nogil=True)
def _rehash(slots, hashes, offsets, pool, n_ent):
    mask = (len(slots) >> 1) - 1
    for e in range(n_ent):
        slot = np.int64(_mix(hashes[e]) & np.uint64(mask))
        while slots[2 * slot + 1] != 0:
            slot = (slot + 1) & mask
        length = offsets[e + 1] - offsets[e]
        _put(slots, slot, e, hashes[e], _key(pool, offsets[e], length), length)


@njit(cache=True, nogil=True)
def _prune(slots, hashes, offsets, counts, pool, n_ent, min_reduce):
    """word2vec.c's ReduceVocab on the table: the entries counted more than ``min_reduce`` times
    kept, in order (renumbered), their bytes moved down the pool, the slots rebuilt; returns how
    many are left."""
    k = 0
    at = 0
    for e in range(n_ent):
        if counts[e] > min_reduce:
            a = offsets[e]
            length = offsets[e + 1] - a
            for j in range(length):  # at <= a: a forward copy never overwrites bytes still to move
                pool[at + j] = pool[a + j]
            hashes[k] = hashes[e]
            counts[k] = counts[e]
            at += length
            offsets[k + 1] = at  # k + 1 <= e + 1: offsets still to read lie beyond
            k += 1
    slots[:] = 0
    _rehash(slots, hashes, offsets, pool, k)
    return k


def prune_reference(counts: dict, min_reduce: int) -> dict:
    """``_prune`` on a dict of counts (insertion order: first appearance)."""
    return {w: c for w, c in counts.items() if c > min_reduce}


@njit(cache=True, nogil=True)
def _merge(pool, offsets, hashes, counts, n_ent, gslots, ghashes, goffsets, gcounts, gpool, gstate, local_to_global):
    """Add one share's table to the global one (entries in the share's order of first
    appearance, so global ids stay in corpus order). gstate: [entries, pool bytes]."""
    g_ent = gstate[0]
    for e in range(n_ent):
        a = offsets[e]
        length = offsets[e + 1] - a
        # the candidate's bytes go to the end of the global pool first (kept only if new)
        gbase = goffsets[g_ent]
        for k in range(length):
            gpool[gbase + k] = pool[a + k]
        key = _key(gpool, gbase, length)
        slot = _find(gpool, gbase, length, hashes[e], key, gslots, goffsets)
        g = _entry(gslots, slot)
        if g < 0:
            g = g_ent
            _put(gslots, slot, g, hashes[e], key, length)
            ghashes[g] = hashes[e]
            gcounts[g] = counts[e]
            goffsets[g + 1] = gbase + length
            g_ent += 1
        else:
            gcounts[g] += counts[e]
        local_to_global[e] = g
    gstate[0] = g_ent


@njit(cache=True, nogil=True)
def remap(ids, mapping):
    """ids[:k] = the ids mapped (negative ids stay -1; ids mapped to -2, out of the vocabulary,
    are dropped), in place; returns k."""
    k = 0
    for j in range(len(ids)):
        x = ids[j]
        if x < 0:
            ids[k] = -1
            k += 1
        else:
            y = mapping[x]
            if y != _OOV:
                ids[k] = y
                k += 1
    return k


def remap_reference(ids: np.ndarray, mapping: np.ndarray) -> np.ndarray:
    out = np.where(ids < 0, -1, mapping[np.maximum(ids, 0)])
    return out[out != _OOV].astype(np.int32)
