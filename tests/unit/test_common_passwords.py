"""The bundled common-password list: every entry is found whatever its case and blanks, nothing else is, and no
look matches across two entries."""

from __future__ import annotations

import gzip
import sys
import tracemalloc

from infrastructure.security.common_passwords import BUNDLED_LIST, SetCommonPasswords


def _entries() -> list[str]:
    return [line for line in gzip.decompress(BUNDLED_LIST.read_bytes()).decode().splitlines() if line.strip()]


def test_every_bundled_entry_is_found_in_any_case_and_with_blanks() -> None:
    entries = _entries()
    common = SetCommonPasswords(entries)
    assert len(common) == len({entry.strip().casefold() for entry in entries}) > 19_000
    assert all(common.contains(entry) for entry in entries)
    assert common.contains("  PassWord1 ")
    assert common.contains("Qwerty")


def test_only_whole_entries_match() -> None:
    common = SetCommonPasswords(["password", "letmein", "dragon"])
    for other in ["passwor", "assword", "password!", "letmein dragon", "letmein\ndragon", "", "   ", "\n", "\ud800"]:
        assert not common.contains(other), repr(other)


def test_the_list_stays_small_in_memory() -> None:
    entries = _entries()
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        common = SetCommonPasswords(entries)
        held = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    assert common.contains("password")
    assert held < 250_000, held  # a frozenset of the same entries holds about 1.6 MB
    assert sys.getsizeof(frozenset(entries)) > held
