"""Hot-path statements: built from a peewee query once per database, run with parameters."""

import datetime
import threading
import weakref
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

import peewee

from tornpay.storage.db import database_proxy

# Why: peewee rebuilds a statement's SQL text on every execute, and on the
# notify path that building cost more than SQLite running the statements.
# A Statement asks peewee for the SQL once per database (so quoting and the
# placeholder style are the database's own, SQLite "?" or PostgreSQL "%s")
# with named markers where the per-call values go, and afterwards only fills
# the markers in. Values pass through the field's ``db_value``, as peewee
# would, so a datetime or a foreign key is stored exactly as before.


class _Marker:
    """Stands for one per-call value while peewee renders the statement."""

    __slots__ = ("name", "convert")

    def __init__(self, name: str, convert: Optional[Callable[[Any], Any]]):
        self.name = name
        self.convert = convert

    def __repr__(self) -> str:
        return f"<param {self.name}>"


def param(field_or_name: Any, name: Optional[str] = None) -> peewee.Value:
    """A placeholder for a value given at execute time.

    ``param(Order.total_fee)`` is named ``total_fee`` and converted with the
    field's ``db_value``; ``param("limit")`` is passed through unchanged. Use
    ``name`` when one field appears twice (e.g. ``param(Delivery.id, "id_3")``).
    """
    if isinstance(field_or_name, peewee.Field):
        field = field_or_name
        return peewee.Value(_Marker(name or field.name, field.db_value), converter=False,
                            unpack=False)
    return peewee.Value(_Marker(name or field_or_name, None), converter=False, unpack=False)


# One slot per placeholder: (name, converter) for a marker, (None, value) for a
# constant peewee rendered itself (e.g. the states of ``state IN (...)``).
Slot = Tuple[Optional[str], Any]


class Statement:
    """One hot statement; ``build()`` returns the peewee query, with ``param()`` markers."""

    def __init__(self, name: str, build: Callable[[], Any]):
        self.name = name
        self.build = build
        # Keyed by the Database object, so a test (or an app) binding a new
        # database gets SQL in that database's dialect; dropped with it.
        self._compiled: "weakref.WeakKeyDictionary[peewee.Database, Tuple[str, List[Slot]]]" = \
            weakref.WeakKeyDictionary()
        self._lock = threading.Lock()

    def compiled(self, db: Optional[peewee.Database] = None) -> Tuple[str, List[Slot]]:
        """``(sql, slots)`` for ``db`` (default: the bound database), built on first use."""
        db = db if db is not None else database_proxy.obj
        try:
            return self._compiled[db]
        except KeyError:
            pass
        with self._lock:  # plugin worker threads may reach a transition too
            if db not in self._compiled:
                self._compiled[db] = self._compile(db)
            return self._compiled[db]

    def _compile(self, db: peewee.Database) -> Tuple[str, List[Slot]]:
        query = self.build()
        sql, params = query.bind(db).sql()
        slots: List[Slot] = []
        for value in params:
            if isinstance(value, _Marker):
                slots.append((value.name, value.convert))
            elif isinstance(value, (datetime.datetime, datetime.date)):
                # A timestamp frozen into cached SQL (e.g. a field default of
                # utcnow) would be written on every later call: refuse it.
                raise ValueError(f"statement {self.name}: constant timestamp {value!r}; "
                                 f"pass it with param()")
            else:
                slots.append((None, value))
        return sql, slots

    def params(self, values: Dict[str, Any], db: Optional[peewee.Database] = None) -> list:
        _, slots = self.compiled(db)
        return _fill(slots, values)

    def execute(self, **values: Any):
        """Run the statement on the bound database; return the cursor."""
        db = database_proxy.obj
        sql, slots = self.compiled(db)
        return db.execute_sql(sql, _fill(slots, values))

    def rowcount(self, **values: Any) -> int:
        """Run an UPDATE/DELETE; return how many rows it changed."""
        return self.execute(**values).rowcount

    def one(self, **values: Any) -> Optional[tuple]:
        """Run a SELECT; return its first row (a tuple) or None."""
        return self.execute(**values).fetchone()

    def all(self, **values: Any) -> List[tuple]:
        """Run a SELECT; return every row."""
        return self.execute(**values).fetchall()


def _fill(slots: Sequence[Slot], values: Dict[str, Any]) -> list:
    out = []
    for name, conv in slots:
        if name is None:
            out.append(conv)
        else:
            value = values[name]
            out.append(conv(value) if conv is not None else value)
    return out


class Family:
    """Statements that differ by a small key (e.g. an INSERT of n rows): one Statement per key."""

    def __init__(self, name: str, build: Callable[[Any], Any]):
        self.name = name
        self.build = build
        self._members: Dict[Any, Statement] = {}

    def __getitem__(self, key: Any) -> Statement:
        stmt = self._members.get(key)
        if stmt is None:
            stmt = self._members.setdefault(
                key, Statement(f"{self.name}[{key!r}]", lambda: self.build(key)))
        return stmt
