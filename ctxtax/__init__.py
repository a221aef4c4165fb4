"""ctxtax: find the tokens an LLM session pays for and does not need, price them, take them out.

The public door. Everything is imported on first use, so ``import ctxtax`` is light: no tokenizer
encoding, no numba, no langchain until a name that needs them is touched.

    >>> import ctxtax
    >>> report = ctxtax.audit([{"role": "user", "content": "hello"}], model="gpt-4")
    >>> report.total_tokens
    8
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

_EXPORTS: dict[str, str] = {
    "Accuracy": "ctxtax._report",
    "AppliedEdit": "ctxtax._edits",
    "Audited": "ctxtax._context_audit",
    "Auditor": "ctxtax._auditor",
    "Edit": "ctxtax._findings",
    "Call": "ctxtax._model",
    "Config": "ctxtax._config",
    "ConfigError": "ctxtax.errors",
    "Context": "ctxtax._model",
    "CtxtaxError": "ctxtax.errors",
    "Finding": "ctxtax._findings",
    "FormatError": "ctxtax.errors",
    "Image": "ctxtax._model",
    "InputError": "ctxtax.errors",
    "Loc": "ctxtax._findings",
    "Message": "ctxtax._model",
    "Optimized": "ctxtax._optimize",
    "Optimizer": "ctxtax._optimizer",
    "MessageError": "ctxtax.errors",
    "PRICES": "ctxtax._pricing",
    "PRICES_DATE": "ctxtax._pricing",
    "PairingError": "ctxtax.errors",
    "ParseError": "ctxtax.errors",
    "Part": "ctxtax._model",
    "Price": "ctxtax._pricing",
    "Replay": "ctxtax._replay",
    "Report": "ctxtax._report",
    "Step": "ctxtax._optimizer",
    "TiktokenCounter": "ctxtax._tokens",
    "TokenCounter": "ctxtax._tokens",
    "ToolSpec": "ctxtax._model",
    "Usage": "ctxtax._model",
    "audit": "ctxtax._engine",
    "load": "ctxtax._load",
    "lint_paths": "ctxtax.lint",
    "load_config": "ctxtax._config",
    "optimize": "ctxtax._optimize",
    "replay": "ctxtax._replay",
    "revert": "ctxtax._optimize",
    "load_all": "ctxtax._load",
    "write": "ctxtax._load",
}

__all__ = [
    "PRICES",
    "PRICES_DATE",
    "Accuracy",
    "AppliedEdit",
    "Audited",
    "Auditor",
    "Call",
    "Config",
    "ConfigError",
    "Context",
    "CtxtaxError",
    "Edit",
    "Finding",
    "FormatError",
    "Image",
    "InputError",
    "Loc",
    "Message",
    "MessageError",
    "Optimized",
    "Optimizer",
    "PairingError",
    "ParseError",
    "Part",
    "Price",
    "Replay",
    "Report",
    "Step",
    "TiktokenCounter",
    "TokenCounter",
    "ToolSpec",
    "Usage",
    "__version__",
    "audit",
    "lint_paths",
    "load",
    "load_all",
    "load_config",
    "optimize",
    "replay",
    "revert",
    "write",
]


def __getattr__(name: str) -> Any:
    module_name = _EXPORTS.get(name)
    if module_name is None:
        raise AttributeError(f"module 'ctxtax' has no attribute {name!r}")
    value = getattr(importlib.import_module(module_name), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return __all__


if TYPE_CHECKING:
    from ctxtax._auditor import Auditor as Auditor
    from ctxtax._config import Config as Config
    from ctxtax._config import load_config as load_config
    from ctxtax._context_audit import Audited as Audited
    from ctxtax._edits import AppliedEdit as AppliedEdit
    from ctxtax._engine import audit as audit
    from ctxtax._findings import Edit as Edit
    from ctxtax._findings import Finding as Finding
    from ctxtax._findings import Loc as Loc
    from ctxtax._load import load as load
    from ctxtax._load import load_all as load_all
    from ctxtax._load import write as write
    from ctxtax._model import Call as Call
    from ctxtax._model import Context as Context
    from ctxtax._model import Image as Image
    from ctxtax._model import Message as Message
    from ctxtax._model import Part as Part
    from ctxtax._model import ToolSpec as ToolSpec
    from ctxtax._model import Usage as Usage
    from ctxtax._optimize import Optimized as Optimized
    from ctxtax._optimize import optimize as optimize
    from ctxtax._optimize import revert as revert
    from ctxtax._optimizer import Optimizer as Optimizer
    from ctxtax._optimizer import Step as Step
    from ctxtax._pricing import PRICES as PRICES
    from ctxtax._pricing import PRICES_DATE as PRICES_DATE
    from ctxtax._pricing import Price as Price
    from ctxtax._replay import Replay as Replay
    from ctxtax._replay import replay as replay
    from ctxtax._report import Accuracy as Accuracy
    from ctxtax._report import Report as Report
    from ctxtax._tokens import TiktokenCounter as TiktokenCounter
    from ctxtax._tokens import TokenCounter as TokenCounter
    from ctxtax.errors import ConfigError as ConfigError
    from ctxtax.errors import CtxtaxError as CtxtaxError
    from ctxtax.errors import FormatError as FormatError
    from ctxtax.errors import InputError as InputError
    from ctxtax.errors import MessageError as MessageError
    from ctxtax.errors import PairingError as PairingError
    from ctxtax.errors import ParseError as ParseError
    from ctxtax.lint import lint_paths as lint_paths
