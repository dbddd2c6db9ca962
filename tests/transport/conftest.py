from __future__ import annotations

import pytest

from support.transport_helpers import PKI, make_pki


@pytest.fixture
def pki(tmp_path) -> PKI:
    return make_pki(tmp_path)
