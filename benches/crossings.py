"""Python -> Rust crossings per event on the three hot paths (issue 14, section 1).

A crossing is one call from Python into ``mimi_signaling._core``: a module function, a method
(static, class or instance), a property getter of a core object, a constructor, or a special
method (``==``, ``hash``, ``repr`` ...).  Each costs the argument and result conversions
(a getter that returns a ``str`` makes a new Python string every time), so the per-event paths
should read what they need in few calls.

    python benches/crossings.py                 # 256 events per path, a table per path
    python benches/crossings.py --events 64 --json

The paths, on one room (an ``m.0`` hub with durable SQLite and one follower server whose
user sends ordinary ``m.room.encrypted`` messages; caches warmed by a first batch):

* ``hub``: ``Hub.accept_many`` on a batch of decoded limited events (the server decodes them
  before the group starts);
* ``follower``: ``Follower.receive_many`` on the hub's encoded events (the fan-out's batch);
* ``verify``: ``mimi verify``'s per-event policy pass (``roomfile.verify._policy_pass``) on
  the same events as the ``ChainValidator`` hands them over.

How the counting is sound:

* calls: ``sys.setprofile`` (and ``threading.setprofile`` for threads started meanwhile) sees
  a ``c_call`` for every call of a built-in function or method; it counts those whose
  ``__self__`` is the core module, a core class or an instance of one.
* getters (``getset_descriptor``: every ``#[getter]``/``#[pyo3(get)]``, each running Rust
  code): not calls to the profiler, so while counting each one is replaced on its class by a
  ``property`` that counts and then calls the original descriptor.  Member descriptors
  (``Py<...>`` fields exposed with ``get_all``) are read by CPython without entering Rust and
  are not counted.
* special methods (``wrapper_descriptor`` in the class: ``__eq__``, ``__hash__``, ``__repr__``
  ...): called through type slots, invisible to the profiler, so they are wrapped the same way.
* constructors: a type call is not a ``c_call`` either; a counting ``__init__`` is installed on
  each core class (they have none of their own: pyo3 builds the object in ``__new__``), which
  ``type.__call__`` runs after the Rust ``__new__``.
Everything is put back on exit (CPython restores the C slot when the original descriptor is
assigned again).  The patched classes are process-wide: run it in a process of its own (the
test does).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import threading
import types
from collections import Counter
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Callable, Dict, Iterator, List, Optional, Tuple

from mimi_signaling import _core
from mimi_signaling.content import JoinRule, Participation
from mimi_signaling.node.follower import Follower
from mimi_signaling.node.hub import Hub
from mimi_signaling.node.keys import KeyStore
from mimi_signaling.roomfile.verify import _policy_pass
from mimi_signaling.storage import open_store

HUB = "hub.example"
FOLLOWER = "f1.example"
SENDER = f"@u1:{FOLLOWER}"
PAYLOAD = 256
#: Messages accepted and delivered before the measured batch, so that per-sender caches are
#: in their steady state (the first message of a sender fills them).
WARMUP = 8
PATHS = ("hub", "follower", "verify")


def _core_classes() -> List[type]:
    """The pyo3 classes of the core (exceptions are plain Python classes made by the core)."""
    found = []
    for name in dir(_core):
        obj = getattr(_core, name)
        if isinstance(obj, type) and not issubclass(obj, (BaseException, tuple)):
            found.append(obj)
    return found


class CrossingCounter:
    """Counts crossings into the core while active (see the module docstring)."""

    def __init__(self) -> None:
        self.counts: Counter[str] = Counter()
        self._lock = threading.Lock()
        self._classes = _core_classes()
        self._class_set = frozenset(self._classes)
        self._static: Dict[int, str] = {}  # id of a static method's function -> name
        self._saved: List[Tuple[type, str, Any]] = []  # (class, name, original or None)

    def _count(self, name: str) -> None:
        with self._lock:
            self.counts[name] += 1

    def _profile(self, frame: Any, event: str, arg: Any) -> None:
        if event != "c_call":
            return
        owner = getattr(arg, "__self__", None)
        if owner is _core:
            self._count(f"{arg.__name__}()")
        elif type(owner) in self._class_set:
            self._count(f"{type(owner).__name__}.{arg.__name__}()")
        elif isinstance(owner, type) and owner in self._class_set:
            self._count(f"{owner.__name__}.{arg.__name__}()")
        else:
            name = self._static.get(id(arg))
            if name is not None:
                self._count(name)

    def _getter(self, cls: type, name: str, descriptor: Any) -> property:
        label, get, count = f"{cls.__name__}.{name}", descriptor.__get__, self._count

        def read(obj: Any) -> Any:
            count(label)
            return get(obj, type(obj))

        return property(read, doc=descriptor.__doc__)

    def _special(self, cls: type, name: str, descriptor: Any) -> Callable[..., Any]:
        label, count = f"{cls.__name__}.{name}", self._count

        def call(*args: Any, **kwargs: Any) -> Any:
            count(label)
            return descriptor(*args, **kwargs)

        return call

    def _constructor(self, cls: type) -> Callable[..., None]:
        label, count = f"{cls.__name__}()", self._count

        def init(obj: Any, *args: Any, **kwargs: Any) -> None:
            count(label)  # the object was made by the core's __new__ just before

        return init

    def _patch(self, cls: type, name: str, value: Any) -> None:
        self._saved.append((cls, name, cls.__dict__.get(name)))
        setattr(cls, name, value)

    def __enter__(self) -> CrossingCounter:
        for cls in self._classes:
            for name, value in list(cls.__dict__.items()):
                if isinstance(value, types.GetSetDescriptorType) and name not in ("__dict__", "__weakref__"):
                    self._patch(cls, name, self._getter(cls, name, value))
                elif isinstance(value, types.WrapperDescriptorType):
                    self._patch(cls, name, self._special(cls, name, value))
                elif isinstance(value, (staticmethod, classmethod)):
                    self._static[id(getattr(cls, name))] = f"{cls.__name__}.{name}()"
            if "__init__" not in cls.__dict__:
                self._patch(cls, "__init__", self._constructor(cls))
        threading.setprofile(self._profile)
        sys.setprofile(self._profile)
        return self

    def __exit__(self, *exc: Any) -> None:
        sys.setprofile(None)
        threading.setprofile(None)  # type: ignore[arg-type]
        for cls, name, original in reversed(self._saved):
            if original is None:
                delattr(cls, name)
            else:
                setattr(cls, name, original)
        self._saved.clear()


@contextmanager
def counting() -> Iterator[Counter[str]]:
    counter = CrossingCounter()
    with counter:
        yield counter.counts


# --- the scenario ------------------------------------------------------------------------------


class Scenario:
    """A hub room on SQLite that a follower server's user has joined, followed by that server."""

    def __init__(self, directory: Path) -> None:
        self.hub_key = _core.SigningKey.generate("ed25519:hub")
        self.follower_key = _core.SigningKey.generate("ed25519:f1")
        self.hub_store = open_store(f"sqlite:///{directory}/hub.db")
        self.follower_store = open_store(f"sqlite:///{directory}/f1.db")
        hub_keys = KeyStore(HUB, self.hub_key, self.hub_store)
        hub_keys.add_server_keys(_core.ServerKeys(FOLLOWER, [self.follower_key.verify_key()]))
        follower_keys = KeyStore(FOLLOWER, self.follower_key, self.follower_store)
        follower_keys.add_server_keys(_core.ServerKeys(HUB, [self.hub_key.verify_key()]))
        self.ring = _core.KeyRing([_core.ServerKeys(HUB, [self.hub_key.verify_key()]),
                                   _core.ServerKeys(FOLLOWER, [self.follower_key.verify_key()])])
        self.hub = Hub(HUB, hub_keys, self.hub_store)
        self.follower = Follower(
            FOLLOWER, follower_keys, self.follower_store,
            backfill=lambda room_id, before, limit: self.hub.backfill(room_id, before, limit, for_server=FOLLOWER),
        )
        public = _core.JoinRulesContent(int(JoinRule.PUBLIC)).encode()
        created = self.hub.create_room(f"@admin:{HUB}", initial_state=[("m.room.join_rules", "", public)])
        self.room_id = created[0].room_id
        join = _core.UserContent(int(Participation.JOIN)).encode()
        joined = self.hub.accept(self.limited("m.room.user", SENDER, join), peer=FOLLOWER)
        self.follower.sync(self.room_id, joined)
        self._counter = 0

    def limited(self, event_type: str, state_key: Optional[str], content: bytes) -> _core.LimitedEvent:
        return _core.LimitedEvent.create(self.room_id, event_type, state_key, SENDER, content, self.follower_key)

    def messages(self, count: int) -> List[_core.LimitedEvent]:
        out = []
        for _ in range(count):
            self._counter += 1
            content = self._counter.to_bytes(8, "big") + bytes(PAYLOAD - 8)
            out.append(self.limited("m.room.encrypted", None, content))
        return out

    def accept(self, limited: List[_core.LimitedEvent]) -> List[bytes]:
        results = self.hub.accept_many([(event, FOLLOWER) for event in limited])
        for result in results:
            if isinstance(result, BaseException):
                raise result
        return [result.encode() for result in results]  # type: ignore[union-attr]

    def receive(self, blobs: List[bytes]) -> None:
        errors = [e for e in self.follower.receive_many(blobs, peer=HUB) if e is not None]
        if errors:
            raise errors[0]

    def close(self) -> None:
        self.hub_store.close()
        self.follower_store.close()


def measure(events: int, directory: Optional[Path] = None) -> Dict[str, Counter[str]]:
    """Crossings by name on each path for one batch of ``events`` messages."""
    with tempfile.TemporaryDirectory(prefix="mimi-crossings-") as tmp:
        scenario = Scenario(directory or Path(tmp))
        try:
            scenario.receive(scenario.accept(scenario.messages(WARMUP)))
            batch = scenario.messages(events)
            with counting() as hub:
                results = scenario.hub.accept_many([(event, FOLLOWER) for event in batch])
            for result in results:
                if isinstance(result, BaseException):
                    raise result
            blobs = [result.encode() for result in results]  # type: ignore[union-attr]
            with counting() as follower:
                errors = scenario.follower.receive_many(blobs, peer=HUB)
            if any(e is not None for e in errors):
                raise next(e for e in errors if e is not None)
            # mimi verify: the whole room through the ChainValidator, the policy pass measured
            # on the batch (the events before it build the state, uncounted).
            stored = [raw for _, raw in scenario.hub_store.iter_events(scenario.room_id)]
            validator = _core.ChainValidator(scenario.ring)
            head = validator.validate(stored[:-events])
            failure, chain, _ = _policy_pass(head.events, None, 0)
            if failure is not None or head.error is not None:
                raise AssertionError(f"the room's head does not verify: {failure or head.error}")
            tail = validator.validate(stored[-events:])
            if tail.error is not None:
                raise tail.error
            tail_events = tail.events
            with counting() as verify:
                failure, _, passed = _policy_pass(tail_events, chain, len(stored) - events)
            if failure is not None or passed != events:
                raise AssertionError(f"the batch does not verify: {failure}")
        finally:
            scenario.close()
    return {"hub": hub, "follower": follower, "verify": verify}


def per_event(counts: Dict[str, Counter[str]], events: int) -> Dict[str, Dict[str, Any]]:
    """Per path: the crossings of the batch (total and by name) and per event."""
    return {
        path: {
            "total": sum(names.values()),
            "per_event": sum(names.values()) / events,
            "counts": dict(names.most_common()),
            "by_name": {name: n / events for name, n in names.most_common()},
        }
        for path, names in counts.items()
    }


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=256, help="messages per batch (default 256)")
    parser.add_argument("--json", action="store_true", help="print the figures as one JSON object")
    args = parser.parse_args(argv)
    if args.events < 1:
        parser.error("--events must be at least 1")
    figures = per_event(measure(args.events), args.events)
    if args.json:
        print(json.dumps({"events": args.events, "paths": figures}, indent=2))
        return 0
    for path in PATHS:
        fig = figures[path]
        print(f"{path}: {fig['per_event']:.2f} crossings/event (batch of {args.events})")
        for name, n in fig["by_name"].items():
            print(f"  {n:8.3f}  {name}")
        print()
    return 0


if __name__ == "__main__":
    sys.exit(main())
