from os import PathLike
from typing import Any, Optional, Sequence, Union

import numpy as np
import numpy.typing as npt

__version__: str

ArrayLike = npt.ArrayLike
F64 = npt.NDArray[np.float64]

def simulate(
    W: Optional[ArrayLike] = ..., x0: Optional[ArrayLike] = ..., t1: float = ..., *, b: Optional[ArrayLike] = ..., activation: str = ...,
    tau: Union[float, ArrayLike] = ..., method: str = ..., rtol: float = ..., atol: float = ..., dt: float = ...,
    t_eval: Optional[ArrayLike] = ..., checkpoint: Optional[Union[str, PathLike[str]]] = ...,
) -> tuple[F64, F64]: ...
def simulate_ensemble(
    W: ArrayLike, X0: ArrayLike, t_eval: ArrayLike, *, b: Optional[ArrayLike] = ..., activation: str = ...,
    tau: Union[float, ArrayLike] = ..., method: str = ..., rtol: float = ..., atol: float = ..., dt: float = ...,
) -> F64: ...
def jacobian(
    W: ArrayLike, x: ArrayLike, *, b: Optional[ArrayLike] = ..., activation: str = ...,
    tau: Union[float, ArrayLike] = ..., map: bool = ...,
) -> F64: ...
def eigenvalues(J: ArrayLike) -> npt.NDArray[np.complex128]: ...
def cycle(
    W: ArrayLike, x0: ArrayLike, *, period: Optional[float] = ..., b: Optional[ArrayLike] = ...,
    activation: str = ..., tau: Union[float, ArrayLike] = ..., window: float = ..., steps: int = ...,
    tol: float = ..., max_iter: int = ...,
) -> dict[str, Any]: ...
def fixed_points(
    W: Optional[ArrayLike] = ..., *, b: Optional[ArrayLike] = ..., activation: str = ..., tau: Union[float, ArrayLike] = ...,
    map: bool = ..., starts: int = ..., seed: int = ..., box: tuple[float, float] = ...,
    x0: Optional[ArrayLike] = ..., checkpoint: Optional[Union[str, PathLike[str]]] = ...,
) -> dict[str, Any]: ...
def lyapunov(
    W: Optional[ArrayLike] = ..., h0: Optional[ArrayLike] = ..., *, b: Optional[ArrayLike] = ..., map: str = ..., warmup: int = ...,
    steps: int = ..., k: Optional[int] = ..., flow: bool = ..., dt: Optional[float] = ...,
    seed: Optional[int] = ..., tau: Union[float, ArrayLike] = ...,
    checkpoint: Optional[Union[str, PathLike[str]]] = ..., euler: bool = ...,
) -> F64: ...
def fracdiff(f: ArrayLike, alpha: float, dt: float, *, method: str = ...) -> F64: ...
def estimate_order(
    signals: ArrayLike, targets: ArrayLike, alphas: ArrayLike, dt: float, *, anchor: int = ...,
    window: Optional[tuple[int, int]] = ...,
) -> tuple[float, F64, F64]: ...
def continuation(
    W: ArrayLike, x0: ArrayLike, *, param: str = ..., start: float, stop: float,
    b: Optional[ArrayLike] = ..., activation: str = ..., map: bool = ..., ds: Optional[float] = ...,
    max_points: int = ..., input_pattern: Optional[ArrayLike] = ..., cycles: bool = ...,
) -> dict[str, Any]: ...
def load_checkpoint(path: Union[str, PathLike[str]]) -> dict[str, Any]: ...
def stability_sweep(config: Union[str, PathLike[str]], out: Optional[Union[str, PathLike[str]]] = ...,
                    threads: Optional[int] = ...) -> Any: ...

class Organics:
    @property
    def n(self) -> int: ...
    def fixed_point(self) -> F64: ...
    def rhs(self, x: ArrayLike) -> F64: ...
    def jacobian(self, x: ArrayLike) -> F64: ...
    def simulate(self, x0: ArrayLike, t1: float, *, method: str = ..., rtol: float = ...,
                 atol: float = ..., dt: float = ..., t_eval: Optional[ArrayLike] = ...) -> tuple[F64, F64]: ...

def organics(
    n: Optional[int] = ..., *, W_r: Any = ..., W: Any = ..., b0: Any = ..., b1: Any = ...,
    sigma: Any = ..., tau_y: Any = ..., tau_a: Any = ..., z: Optional[ArrayLike] = ...,
    variant: str = ...,
) -> Organics: ...
