"""Type stubs of the extension module ``boltzformer._native`` (python/src/lib.rs): the Rust side of the
package. Users call the typed wrappers in ``boltzformer`` instead."""

from typing import Dict, List, Optional, Tuple

import numpy as np
import numpy.typing as npt

__version__: str
REVISION: str

class BoltzError(ValueError): ...
class DataError(BoltzError): ...
class PrecisionError(BoltzError): ...
class BackendError(BoltzError): ...

class Model:
    @property
    def dim(self) -> int: ...
    @property
    def construction(self) -> str: ...
    @property
    def layers(self) -> str: ...
    @property
    def params(self) -> str: ...
    @property
    def build_json(self) -> Optional[str]: ...
    def metadata(self) -> Dict[str, str]: ...
    def tensors_exact(self) -> Dict[str, Tuple[List[int], List[str]]]: ...
    def forward_exact(
        self, inputs: npt.NDArray[np.float64], backend: str, precision: str, threads: Optional[int] = None
    ) -> List[str]: ...
    def save(self, path: str, encoding: str = "exact") -> None: ...

def memorize(
    inputs: npt.NDArray[np.float64],
    targets: Optional[npt.NDArray[np.float64]] = None,
    labels: Optional[npt.NDArray[np.int64]] = None,
    *,
    construction: str = "one-layer",
    policy: str = "measured",
    delta: str = "dyadic",
    task: str = "seq2seq",
    seed: int = 0,
    threads: Optional[int] = None,
) -> Model: ...
def verify(
    model: Model,
    inputs: npt.NDArray[np.float64],
    targets: Optional[npt.NDArray[np.float64]] = None,
    labels: Optional[npt.NDArray[np.int64]] = None,
    *,
    backend: str = "reference",
    precision: str = "f64",
    threads: Optional[int] = None,
) -> str: ...
def fewest_bits(
    model: Model,
    inputs: npt.NDArray[np.float64],
    targets: Optional[npt.NDArray[np.float64]] = None,
    labels: Optional[npt.NDArray[np.int64]] = None,
    *,
    min_bits: int = 8,
    max_bits: int = 4096,
    threads: Optional[int] = None,
) -> str: ...
def load(path: str) -> Model: ...
def load_dataset(
    path: str, labels: Optional[str] = None, targets: Optional[str] = None
) -> Tuple[npt.NDArray[np.float64], npt.NDArray[np.float64], List[int]]: ...
def save_dataset(
    path: str,
    inputs: npt.NDArray[np.float64],
    targets: Optional[npt.NDArray[np.float64]] = None,
    labels: Optional[npt.NDArray[np.int64]] = None,
    encoding: str = "f64",
) -> None: ...
def parse_exact(s: str) -> Tuple[bool, str, int]: ...
def choices() -> Dict[str, List[str]]: ...
