"""Reading what one stage left for the next: a missing or damaged file is one line naming what to rerun.

Every stage reads its input artifacts through `read`, so a truncated msgpack, a corrupt JSON or
Parquet file, a file of the wrong shape or a missing one never reaches the user as a traceback.
The parse functions passed in only parse; anything they raise is the file's fault.
"""

from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import msgpack
import pyarrow as pa

from salesjax.errors import SalesjaxError

T = TypeVar("T")
# What parsing a damaged file raises: JSON, msgpack, Parquet, CSV and text decoding errors are
# ValueErrors; a file with the wrong keys or layout gives KeyError, TypeError or IndexError.
DAMAGED = (ValueError, KeyError, TypeError, IndexError, msgpack.exceptions.UnpackException, pa.ArrowException)


def read(path: Path, stage: str, parse: Callable[[Path], T]) -> T:
    """`parse(path)`, or one line naming the file, what is wrong, and `dvc repro <stage>` to rebuild it."""
    try:
        return parse(path)
    except FileNotFoundError:
        why = "missing"
    except IsADirectoryError:
        why = "a directory, not a file"
    except OSError as exc:
        why = f"unreadable ({exc.strerror or exc})"
    except DAMAGED as exc:
        why = f"damaged ({_reason(exc)})"
    raise SalesjaxError(f"{path}: {why}; run `dvc repro {stage}`")


def require(path: Path, stage: str) -> Path:
    """`path` when it exists, else one line naming it and the stage that writes it."""
    return read(path, stage, _existing)


def _existing(path: Path) -> Path:
    """`path`, or FileNotFoundError."""
    if not path.exists():
        raise FileNotFoundError(path)
    return path


def _reason(exc: Exception, limit: int = 100) -> str:
    """The exception's type and the first line of its message, at most `limit` characters."""
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    text = f"{type(exc).__name__}: {text}" if text else type(exc).__name__
    return text if len(text) <= limit else text[: limit - 3] + "..."
