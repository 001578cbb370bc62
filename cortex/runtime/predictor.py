"""Loads the user's predictor class from its file and checks its signatures.

The contract (DESIGN.md section 1): ``__init__(self, config)`` and
``predict(self, payload, query_params, headers)`` where every argument of ``predict`` is
optional and passed by name. A multi-model predictor (``predictor.models``) also takes
``python_client`` in ``__init__`` and defines ``load_model(self, model_path)``, and may define
``unload_model(self, model)`` and ``model_size(self, model, path)`` (docs/multi-model.md).
An unknown argument name is a ``PredictorError`` that names the
file, the class and the argument, raised before ``__init__`` runs. :class:`Predictor` states
the contract as a type.
"""

from __future__ import annotations

import importlib.util
import inspect
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, cast

from cortex.errors import PredictorError

PREDICT_ARGS = ("payload", "query_params", "headers")
INIT_ARGS = ("config", "python_client")
MODEL_HOOKS = {
    "load_model": ("model_path",),
    "unload_model": ("model",),
    "model_size": ("model", "path"),
}
POST_PREDICT_ARGS = ("response", "payload", "query_params", "headers")


class Predictor(Protocol):
    """What a user's predictor instance offers (DESIGN.md section 1).

    ``predict`` takes any subset of ``payload``, ``query_params`` and ``headers`` by name, and
    may be ``async``, a generator or an async generator. A predictor may also define
    ``post_predict(response, payload, query_params, headers)`` (any subset), run after the
    response is sent; a Protocol cannot say "optional", so :class:`PostPredictor` names it.
    """

    def __init__(self, config: dict[str, Any]) -> None: ...

    def predict(self, *args: Any, **kwargs: Any) -> Any: ...


class PostPredictor(Predictor, Protocol):
    """A predictor that defines the optional ``post_predict`` hook."""

    def post_predict(self, *args: Any, **kwargs: Any) -> Any: ...


@dataclass(frozen=True)
class PredictorClass:
    """A predictor class that passed the signature checks, not yet instantiated."""

    cls: type
    file: Path
    predict_args: tuple[str, ...]
    post_predict_args: tuple[str, ...] | None
    is_async: bool
    is_async_gen: bool
    is_gen: bool
    init_args: tuple[str, ...] = ("config",)
    model_hooks: frozenset[str] = frozenset()

    def check_model_hooks(self) -> None:
        """The multi-model hooks' signatures (checked only for an API with
        ``predictor.models``: elsewhere a method named ``load_model`` is the user's own)."""
        where = f"{self.file.name}: {self.cls.__name__}"
        for name in sorted(self.model_hooks):
            args = _declared_args(getattr(self.cls, name), f"{where}.{name}")
            _check_args(args, MODEL_HOOKS[name], f"{where}.{name}", required=MODEL_HOOKS[name])

    def instantiate(
        self,
        config: dict[str, Any],
        python_client: Any = None,
        bind: Callable[[Any], None] | None = None,
    ) -> Predictor:
        """Run the user's ``__init__``; whatever it raises propagates.

        ``bind`` sees the instance before ``__init__`` runs, so that the model client can call
        its ``load_model`` from ``__init__`` already (Cortex allowed that too).
        """
        kwargs: dict[str, Any] = {"config": config}
        if "python_client" in self.init_args:
            kwargs["python_client"] = python_client
        # load_predictor_class checked the signatures; mypy cannot see that it did.
        if bind is None:
            return cast(Predictor, self.cls(**kwargs))
        instance = cast(Any, self.cls).__new__(self.cls)
        bind(instance)
        instance.__init__(**kwargs)
        return cast(Predictor, instance)


def load_predictor_class(
    file: Path, class_name: str = "PythonPredictor", python_path: Path | None = None
) -> PredictorClass:
    """Import ``file`` as a module and return its checked predictor class."""
    if not file.is_file():
        raise PredictorError(f"predictor file {file} does not exist")
    for folder in (python_path, file.parent):
        if folder is not None and str(folder) not in sys.path:
            sys.path.insert(0, str(folder))
    module = _import_file(file)
    cls = getattr(module, class_name, None)
    if not inspect.isclass(cls):
        raise PredictorError(
            f"{file}: no class named {class_name!r} (define `class {class_name}:`)"
        )
    where = f"{file.name}: {class_name}"
    init_args = _declared_args(cls.__init__, where + ".__init__")
    _check_args(init_args, INIT_ARGS, where + ".__init__", required=("config",))
    predict = getattr(cls, "predict", None)
    if predict is None or not callable(predict):
        raise PredictorError(
            f"{where} has no predict method (define `def predict(self, payload):`)"
        )
    predict_args = _declared_args(predict, where + ".predict")
    _check_args(predict_args, PREDICT_ARGS, where + ".predict")
    post = getattr(cls, "post_predict", None)
    post_args = None
    if post is not None:
        post_args = _declared_args(post, where + ".post_predict")
        _check_args(post_args, POST_PREDICT_ARGS, where + ".post_predict")
    hooks = frozenset(name for name in MODEL_HOOKS if callable(getattr(cls, name, None)))
    return PredictorClass(
        cls=cls,
        file=file,
        predict_args=predict_args,
        post_predict_args=post_args,
        is_async=inspect.iscoroutinefunction(predict),
        is_async_gen=inspect.isasyncgenfunction(predict),
        is_gen=inspect.isgeneratorfunction(predict),
        init_args=init_args,
        model_hooks=hooks,
    )


def _import_file(file: Path) -> Any:
    name = f"cortex_predictor_{file.stem}"
    spec = importlib.util.spec_from_file_location(name, file)
    if spec is None or spec.loader is None:
        raise PredictorError(f"{file}: cannot be imported as a Python module")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except Exception as exc:
        raise PredictorError(f"{file}: import failed: {type(exc).__name__}: {exc}") from exc
    return module


def _declared_args(func: Callable[..., Any], where: str) -> tuple[str, ...]:
    params = list(inspect.signature(func).parameters.values())
    if not params or params[0].name != "self":
        raise PredictorError(f"{where}: the first argument must be self")
    names = []
    for param in params[1:]:
        if param.kind in (param.VAR_POSITIONAL, param.VAR_KEYWORD):
            raise PredictorError(f"{where}: *args/**kwargs are not supported; name the arguments")
        names.append(param.name)
    return tuple(names)


def _check_args(
    declared: tuple[str, ...], allowed: tuple[str, ...], where: str, required: tuple[str, ...] = ()
) -> None:
    for name in declared:
        if name not in allowed:
            raise PredictorError(
                f"{where}: argument {name!r} is not supported (allowed: {', '.join(allowed)})"
            )
    for name in required:
        if name not in declared:
            raise PredictorError(f"{where}: missing required argument {name!r}")
