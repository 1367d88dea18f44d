"""What a SOAR sink remembers about the events it sent, bounded: a long-running process (a gateway fanning
out for weeks) must not keep every event id it ever delivered."""
from __future__ import annotations

from collections import OrderedDict
from typing import Generic, Hashable, Iterator, MutableMapping, TypeVar

#: Event ids (and what was learned about them) a SOAR sink keeps, the most recently used first out last.
#: A re-send or retry of an id further back than this is still answered right: the server is asked again
#: (Splunk SOAR: existing_container_id; XSOAR: the search before create). About 2 MB per table at this size.
RECENT_IDS_KEPT = 10_000

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


class RecentMap(MutableMapping[K, V], Generic[K, V]):
    """A dict keeping at most `limit` entries: setting a key makes it the most recent, the least recently
    set is dropped beyond the limit. Reading does not reorder (iterating over values stays safe)."""

    def __init__(self, limit: int = RECENT_IDS_KEPT) -> None:
        if limit < 1:
            raise ValueError(f"limit must be at least 1, not {limit}")
        self.limit = limit
        self._entries: OrderedDict[K, V] = OrderedDict()

    def __getitem__(self, key: K) -> V:
        return self._entries[key]

    def __setitem__(self, key: K, value: V) -> None:
        self._entries[key] = value
        self._entries.move_to_end(key)
        while len(self._entries) > self.limit:
            self._entries.popitem(last=False)

    def __delitem__(self, key: K) -> None:
        del self._entries[key]

    def __contains__(self, key: object) -> bool:
        return key in self._entries

    def __iter__(self) -> Iterator[K]:
        return iter(self._entries)

    def __len__(self) -> int:
        return len(self._entries)

    def __repr__(self) -> str:
        return f"<RecentMap {len(self._entries)}/{self.limit}>"


class RecentSet(Generic[K]):
    """A set keeping at most `limit` members, the least recently added dropped first."""

    def __init__(self, limit: int = RECENT_IDS_KEPT) -> None:
        self._members: RecentMap[K, None] = RecentMap(limit)

    def add(self, key: K) -> None:
        self._members[key] = None

    def discard(self, key: K) -> None:
        self._members.pop(key, None)

    def __contains__(self, key: object) -> bool:
        return key in self._members

    def __len__(self) -> int:
        return len(self._members)

    def __iter__(self) -> Iterator[K]:
        return iter(self._members)
