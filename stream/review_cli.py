"""Post-call review commands (`review`, `calls list`, `analyze`); filled in by the review work."""

from __future__ import annotations

import argparse
from typing import Any


def add_commands(sub: Any) -> None:  # argparse._SubParsersAction
    """Register this module's sub-commands on the `callassist` parser."""
    _ = argparse
