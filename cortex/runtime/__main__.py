"""``python -m cortex.runtime --spec cortex.yaml --api NAME [--port 8888]``: serve one API."""

from __future__ import annotations

from cortex.runtime import master

if __name__ == "__main__":
    raise SystemExit(master.main())
