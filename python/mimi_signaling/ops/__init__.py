"""Operating a server: metrics (``ops.metrics``), health checks and the status page on a
listener of their own (``ops.listener``), the snapshot they share with ``mimi destinations``
(``ops.status``) and logging (``ops.logs``).  Submodules are imported where used, so that
importing the configuration does not load ``prometheus_client``."""
