"""Drift between hand-kept lists and the compiled core (the pydantic-core way).

The Rust core owns the protocol's facts; the Python side keeps a few hand-written lists of
them (the public ``__all__``, the stub ``_core.pyi``, the event-type registry, the transaction
table).  Each test here fails when one of those lists and the core disagree, so a new core
export, event type or transaction cannot be forgotten on the Python side.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

import mimi_signaling
from mimi_signaling import _core
from mimi_signaling.content import CONTENT_CLASSES, OPAQUE_TYPES
from mimi_signaling.room.registry import DEFAULT_EVENT_TYPES
from mimi_signaling.transport.server import TRANSACTION_TYPES as SERVER_TRANSACTION_TYPES

STUB = Path(mimi_signaling.__file__).with_name("_core.pyi")


def _stub_all() -> list:
    tree = ast.parse(STUB.read_text())
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(getattr(t, "id", None) == "__all__" for t in node.targets):
            return ast.literal_eval(node.value)
    raise AssertionError("_core.pyi has no __all__")


def test_public_api_is_the_cores_public_names():
    """Every public name of the core is re-exported once: the wire helpers under
    ``mimi_signaling.wire``, everything else at the top level; neither lists anything else."""
    from mimi_signaling import wire

    core_public = {name for name in _core.__all__ if not name.startswith("_")} | {"__version__"}
    top = set(mimi_signaling.__all__) - {"wire"}
    assert "wire" in mimi_signaling.__all__
    assert not top & set(wire.__all__), "a name is exported twice"
    assert top | set(wire.__all__) == core_public
    assert len(mimi_signaling.__all__) == len(set(mimi_signaling.__all__)), "a name is listed twice"
    for name in top:
        assert getattr(mimi_signaling, name) is getattr(_core, name)
    for name in wire.__all__:
        assert getattr(wire, name) is getattr(_core, name)
    assert "annotations" not in mimi_signaling.__all__


def test_stub_all_is_the_compiled_modules_all():
    assert sorted(_stub_all()) == sorted(_core.__all__)


def test_stub_matches_the_compiled_module(tmp_path):
    """``mypy.stubtest``: every signature in ``_core.pyi`` against the compiled module (run
    from an empty folder: mypy takes the current folder's modules for the user's own, and an
    installed package's folder would shadow the libraries beside it)."""
    pytest.importorskip("mypy")
    result = subprocess.run(
        [sys.executable, "-m", "mypy.stubtest", "mimi_signaling._core"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=240,
    )
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]


def test_event_type_registry_is_the_cores_registry():
    """PROFILE.md section 5: the Python registry holds exactly the core's registered types,
    and every typed codec is one of them."""
    assert {spec.type for spec in DEFAULT_EVENT_TYPES} == set(_core.REGISTERED_TYPES)
    assert set(CONTENT_CLASSES) | set(OPAQUE_TYPES) == set(_core.REGISTERED_TYPES)
    assert not set(CONTENT_CLASSES) & set(OPAQUE_TYPES)
    for event_type in _core.REGISTERED_TYPES:
        assert event_type.startswith("m."), event_type


def test_event_type_table_is_the_one_registry():
    """The core's table is section 5: every registered type once, in REGISTERED_TYPES' order;
    the Python registry's state-ness and codecs are the table's."""
    table = _core.EVENT_TYPE_TABLE
    assert [row[0] for row in table] == list(_core.REGISTERED_TYPES)
    for event_type, rule, codec in table:
        assert rule in {"not_state", "empty", "user_id", "role_id"}
        spec = DEFAULT_EVENT_TYPES.get(event_type)
        assert spec is not None and spec.is_state == (rule != "not_state")
        assert spec.content_codec is (getattr(_core, codec) if codec else None)
        assert CONTENT_CLASSES.get(event_type) is spec.content_codec


def test_transaction_names_are_the_cores():
    """PROFILE.md section 7: the server accepts exactly the core's transaction types."""
    assert set(SERVER_TRANSACTION_TYPES) == set(_core.TRANSACTION_TYPES)


def test_error_table_is_one_class_per_wire_code():
    """Section 7's error codes: one exception class per code, each with its wire name."""
    codes = dict(_core.ERROR_CODES)
    assert sorted(codes) == list(range(1, 13))
    for code, name in codes.items():
        cls = type(_core.error_from_code(code, "x"))
        assert issubclass(cls, _core.MimiError)
        assert (cls.code, cls.name) == (code, name)
        assert cls.__name__ in mimi_signaling.__all__
