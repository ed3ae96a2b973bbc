"""The one LRU cache of the library: ``cachetools.LRUCache`` behind a lock (cachetools' caches
are not thread-safe, and the API answers from a thread pool). Used for finished answers
(service.py), question embeddings (retrieval.py) and the Milvus store's records and vectors."""

from __future__ import annotations

import threading
from collections.abc import Hashable, Iterable, Mapping
from typing import Any

from cachetools import LRUCache


class LRU:
    """A thread-safe LRU map of at most ``size`` items; size 0 disables it (nothing is kept).

    ``get`` and ``put`` make a key the most recently used; ``in`` and ``len`` do not."""

    def __init__(self, size: int):
        self._size = size
        self._data: LRUCache = LRUCache(maxsize=max(size, 1))
        self._lock = threading.Lock()

    @property
    def size(self) -> int:
        return self._size

    @size.setter
    def size(self, size: int) -> None:
        """Resize, keeping the most recently used items that fit."""
        with self._lock:
            fresh: LRUCache = LRUCache(maxsize=max(size, 1))
            while self._data:
                key, value = self._data.popitem()  # least recently used first
                if size:
                    fresh[key] = value  # evicts the oldest beyond the new size
            self._data, self._size = fresh, size

    def get(self, key: Hashable, default: Any = None) -> Any:
        if not self.size:
            return default
        with self._lock:
            return self._data.get(key, default)

    def put(self, key: Hashable, value: Any) -> None:
        if not self.size:
            return
        with self._lock:
            self._data[key] = value

    def get_many(self, keys: Iterable[Hashable]) -> dict:
        """{key: value} of the keys that are cached (one lock for all of them)."""
        if not self.size:
            return {}
        with self._lock:
            return {k: self._data[k] for k in keys if k in self._data}

    def put_many(self, items: Mapping) -> None:
        if not self.size:
            return
        with self._lock:
            for k, v in items.items():
                self._data[k] = v

    def clear(self) -> None:
        with self._lock:
            self._data.clear()

    def __contains__(self, key: Hashable) -> bool:
        with self._lock:
            return key in self._data

    def __len__(self) -> int:
        return len(self._data)
