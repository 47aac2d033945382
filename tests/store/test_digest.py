"""Digests: stable, sensitive to every byte, the same whether hashed whole, in pieces or from a file."""

from __future__ import annotations

import os

import blake3
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ledgerflow.store import Hasher, digest_bytes, digest_file, is_digest, validate_digest
from ledgerflow.store.digest import PREFIX, THREADED_MIN
from ledgerflow.store.readahead import CHUNK_SIZE


def test_digest_format():
    d = digest_bytes(b"abc")
    assert d == PREFIX + blake3.blake3(b"abc").hexdigest()
    assert len(d) == len("blake3:") + 64 and d == d.lower()
    assert validate_digest(d) == d and is_digest(d)


@given(st.binary(max_size=4096))
def test_equal_content_equal_digest(data):
    assert digest_bytes(data) == digest_bytes(bytes(data)) == digest_bytes(bytearray(data)) == digest_bytes(memoryview(data))


@given(st.binary(min_size=1, max_size=2048), st.data())
def test_any_changed_byte_changes_the_digest(data, draw):
    i = draw.draw(st.integers(0, len(data) - 1))
    flip = draw.draw(st.integers(1, 255))
    changed = bytearray(data)
    changed[i] ^= flip
    assert digest_bytes(changed) != digest_bytes(data)


@given(st.binary(max_size=2048), st.lists(st.integers(0, 2048), max_size=6))
def test_hasher_matches_one_shot_whatever_the_pieces(data, cuts):
    h = Hasher()
    bounds = sorted({0, len(data), *(c % (len(data) + 1) for c in cuts)})
    for a, b in zip(bounds, bounds[1:]):
        h.update(data[a:b])
    assert h.digest() == digest_bytes(data)
    assert h.size == len(data)


@pytest.mark.parametrize(
    "size",
    [0, 1, THREADED_MIN - 1, THREADED_MIN, CHUNK_SIZE - 1, CHUNK_SIZE, CHUNK_SIZE + 1, 3 * CHUNK_SIZE + 7],
)
def test_digest_file_equals_digest_bytes_across_chunk_boundaries(tmp_path, size):
    data = bytes((i * 7 + i // 251) & 0xFF for i in range(min(size, 1 << 16))) * (size // (1 << 16) + 1)
    data = data[:size]
    p = tmp_path / "f"
    p.write_bytes(data)
    assert digest_file(p) == (digest_bytes(data), size)
    assert digest_file(str(p)) == (digest_bytes(data), size)


def test_digest_file_of_a_missing_file_raises(tmp_path):
    with pytest.raises(FileNotFoundError):
        digest_file(tmp_path / "nope")


@settings(max_examples=50)
@given(st.text(max_size=80))
def test_validate_digest_refuses_anything_else(s):
    if is_digest(s):
        assert validate_digest(s) == s
    else:
        with pytest.raises(ValueError, match="is not a digest: expected 'blake3:' followed by 64 hex characters"):
            validate_digest(s)


@pytest.mark.parametrize(
    "bad",
    ["", "blake3:", "blake3:" + "A" * 64, "blake3:" + "0" * 63, "blake3:" + "0" * 65, "sha256:" + "0" * 64,
     "blake3:../../" + "0" * 58, "blake3:" + "0" * 64 + "\n", None, 42],
)
def test_malformed_digests(bad):
    assert not is_digest(bad)
    with pytest.raises(ValueError):
        validate_digest(bad)


def test_a_forked_child_hashes_without_the_parents_thread_pool(tmp_path):
    """blake3's threads are not copied by fork(); a child must not wait for them."""
    import multiprocessing

    from ledgerflow.store.digest import digest_bytes as parent_digest

    big = os.urandom(8 << 20)
    expected = parent_digest(big)  # starts the thread pool in this process
    ctx = multiprocessing.get_context("fork")
    with ctx.Pool(1) as pool:
        result = pool.apply_async(parent_digest, (big,))
        assert result.get(timeout=60) == expected
