"""What the tests share, imported one way (``from support.X import ...``; ``tests/`` is on
pytest's ``pythonpath``): the process clusters and fake peers (``e2ekit``, ``relkit``,
``peerkit``, ``killloop``), the node and room kits (``nodekit``, ``roomkit``, ``hubpolicykit``),
the m.0 case tables and independent models (``m0_cases``, ``policy_model``,
``permission_oracle``), HTTP and storage helpers, PostgreSQL (``pg``), the public vectors
(``vectors``) and builders."""
