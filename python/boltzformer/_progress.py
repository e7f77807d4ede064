"""Progress of long calls: what ``progress=`` accepts, and the terminal bar drawn by default.

The library reports stages ("bigfloat forward at 512 bits", 300 sequences) and the units of each that are
done, through the same watch that lets Ctrl-C stop a call (``boltz_core::watch``). The calling thread reads
it about ten times a second and passes each change on.
"""

from __future__ import annotations

import sys
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Callable, Iterator, Optional, TextIO, Union


@dataclass(frozen=True)
class Progress:
    """One report of a long call: the stage it is in and how much of that stage is done."""

    #: What the call is doing ("decoding check at 512 bits", "reference forward", ...).
    stage: str
    #: Units of the stage done (sequences of a forward or a decoding check).
    done: int
    #: Units in the stage, when known.
    total: Optional[int]


#: What ``progress=`` accepts: a callable that receives each :class:`Progress`; ``True`` for the terminal
#: bar; ``False`` for nothing; ``None`` (the default) for the terminal bar when stderr is a terminal.
ProgressArg = Union[None, bool, Callable[[Progress], Any]]

_NativeCallback = Callable[[str, int, Optional[int]], None]


class _TerminalBar:
    """One line on stderr, redrawn in place: a ``tqdm`` bar when tqdm is installed, else plain text."""

    def __init__(self, stream: TextIO) -> None:
        self._stream = stream
        self._stage: Optional[str] = None
        self._bar: Any = None
        try:
            import tqdm

            self._tqdm: Any = tqdm.tqdm
        except ImportError:
            self._tqdm = None

    def __call__(self, stage: str, done: int, total: Optional[int]) -> None:
        if self._tqdm is not None:
            if stage != self._stage:
                self.close()
                self._bar = self._tqdm(total=total, desc=stage, file=self._stream, leave=False, unit="seq")
            self._bar.n = done
            self._bar.refresh()
        else:
            of = "" if total is None else f"/{total}"
            self._stream.write(f"\r\x1b[K{stage}: {done}{of}")
            self._stream.flush()
        self._stage = stage

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None
        elif self._stage is not None and self._tqdm is None:
            self._stream.write("\r\x1b[K")
            self._stream.flush()
        self._stage = None


@contextmanager
def reporter(progress: ProgressArg) -> Iterator[Optional[_NativeCallback]]:
    """The callback the native call receives for ``progress=`` (see :data:`ProgressArg`), and the bar's
    clean-up when the call ends (normally, by an error or by Ctrl-C)."""
    if progress is None:
        progress = sys.stderr is not None and sys.stderr.isatty()
    if progress is False:
        yield None
    elif progress is True:
        bar = _TerminalBar(sys.stderr)
        try:
            yield bar
        finally:
            bar.close()
    elif callable(progress):
        user = progress

        def forward(stage: str, done: int, total: Optional[int]) -> None:
            user(Progress(stage, done, total))

        yield forward
    else:
        from ._native import BoltzError

        raise BoltzError(f"progress: expected a callable, True, False or None, got {progress!r}")
