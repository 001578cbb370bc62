"""The one error tree of cortex.

    CortexError                 anything cortex reports to a user (message only, never a traceback)
     +-- SpecError              a cortex.yaml (or a RealtimeAPI resource) is invalid
     +-- PredictorError         the user's predictor cannot be loaded or broke its contract
     +-- ClusterError           talking to a cluster or a local environment failed
          +-- TemporaryError    retry later, it may heal (an API server hiccup)
          +-- PermanentError    retrying will not help

Every message names the thing, the value seen and the fix, e.g.
``api 'iris': predictor.path 'pred.txt' must end with .py``.
"""

from __future__ import annotations

__all__ = [
    "ClusterError",
    "CortexError",
    "PermanentError",
    "PredictorError",
    "SpecError",
    "TemporaryError",
]


class CortexError(Exception):
    """Base of every error cortex reports to a user."""


class SpecError(CortexError):
    """An API spec is invalid; the message names the API, the field path, the value and the rule."""


class PredictorError(CortexError):
    """The predictor file or class cannot be loaded, or its signature breaks the contract."""


class ClusterError(CortexError):
    """An environment (local processes or a Kubernetes cluster) did not do what was asked."""


class TemporaryError(ClusterError):
    """A failure that may heal by itself; the caller may retry."""


class PermanentError(ClusterError):
    """A failure that retrying will not fix."""
