"""Optional C++ CPU kernel for the fused neuron: one memory pass per time step, forward and backward.

The pure-PyTorch fused loop (:mod:`spikeforge.functional._fused_torch`) costs ~4 elementwise passes
per step in the forward and ~12 in the backward (every ATen op reads and writes the whole ``[B, ...]`` slice);
on CPU that is memory-bandwidth bound. This kernel walks each block of neurons through all T steps with the
state in registers/L1, so the forward reads ``x`` once and writes ``s`` and ``h`` once, and the backward reads
``g_s`` and ``h`` once and writes ``g_x`` once.

Same math as the Python fused path, restricted to what it is compiled for: binary or ternary spikes (symmetric
thresholds), no pre-fire rectifier, scalar ``decay`` and a time-invariant ``threshold`` (scalar, or one value per
neuron for per-channel / per-element thresholds, e.g. a folded MPBN) that need no gradient, reset hard (any
``v_reset``) / soft (by a scalar amount) / none, ``detach_reset`` and ``decay_input`` either way, and the built-in
surrogates (rectangular, ste, triangle, sigmoid, atan, dspike). Everything else keeps the Python path. Rounding
follows the Python path: the charge is ``decay * v + x`` rounded twice (no fused multiply-add,
``-ffp-contract=off``), so spikes are bit-identical to :func:`~spikeforge.functional.reference_multistep`; gradients
agree to float rounding.

The source is ``csrc/neuron_cpu.cpp`` (package data). It is built at first use with
:func:`torch.utils.cpp_extension.load` (~30-60 s once; a :class:`KernelBuildNotice` warning names the directory)
into ``<torch extensions root>/spikeforge/<name>``, where the name carries a hash of the source, the compiler
flags, the torch build (version, CUDA, C++ ABI), the Python version and the environment (``sys.prefix``): a
different torch or venv never picks up a stale binary. ``TORCH_EXTENSIONS_DIR`` moves the root.
``SPIKEFORGE_CPU_KERNEL=0`` disables the kernel. If the build fails (no compiler, no Python headers) a
``RuntimeWarning`` says so once and the Python fused path runs instead.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import sys
import threading
import warnings
from pathlib import Path
from types import ModuleType

__all__ = ["SURROGATE_IDS", "KernelBuildNotice", "build_name", "kernel", "kernel_status", "source_path"]

_FLAGS = ["-O3", "-ffp-contract=off", "-fno-trapping-math", "-fno-math-errno", "-fopenmp"]


class KernelBuildNotice(UserWarning):
    """Emitted once when a neuron kernel is compiled (it takes a while the first time)."""


def source_path() -> Path:
    """The C++ source shipped with the package."""
    return Path(__file__).with_name("csrc") / "neuron_cpu.cpp"


def build_name() -> str:
    """Extension name keyed by the source (text and location), the flags, the torch build and the Python environment.

    The location counts because the build directory's ``build.ninja`` names the source file: two checkouts of
    the same source sharing one directory would make ninja rebuild (~1 min) every time the other one loads it.
    """
    import torch

    key = "\n".join([
        source_path().read_text(encoding="utf-8"), str(source_path().resolve()), " ".join(_FLAGS),
        torch.__version__, str(torch.version.cuda),
        str(torch._C._GLIBCXX_USE_CXX11_ABI), sys.version, sys.prefix,
    ])
    return "spikeforge_neuron_cpu_" + hashlib.sha256(key.encode()).hexdigest()[:16]


def _build_dir(name: str) -> Path:
    from torch.utils.cpp_extension import get_default_build_root

    return Path(get_default_build_root()) / "spikeforge" / name

# surrogate name -> id in the C++ switch; the formulas mirror functional/surrogate.py
SURROGATE_IDS: dict[str, int] = {"rectangular": 0, "ste": 1, "triangle": 2, "sigmoid": 3, "atan": 4, "dspike": 5}

_lock = threading.Lock()
_module: ModuleType | None = None
_status = "not built yet"


def _ensure_ninja_on_path() -> None:
    """torch builds extensions with the ``ninja`` executable found on PATH; when none is there (a venv used
    without activating it), use the one shipped by the ``ninja`` Python package, a dependency of spikeforge."""
    if shutil.which("ninja"):
        return
    try:
        import ninja
    except ImportError:
        return
    os.environ["PATH"] = ninja.BIN_DIR + os.pathsep + os.environ.get("PATH", "")


def kernel() -> ModuleType | None:
    """The compiled module (``lif_forward``, ``lif_backward``), or ``None`` when disabled or unbuildable."""
    global _module, _status
    if _module is not None or _status.startswith(("disabled", "unavailable")):
        return _module
    with _lock:
        if _module is not None or _status.startswith(("disabled", "unavailable")):
            return _module
        if os.environ.get("SPIKEFORGE_CPU_KERNEL", "1").strip().lower() in ("0", "false", "no", "off"):
            _status = "disabled by SPIKEFORGE_CPU_KERNEL"
            return None
        try:
            from torch.utils.cpp_extension import load

            _ensure_ninja_on_path()
            name = build_name()
            build_dir = _build_dir(name)
            build_dir.mkdir(parents=True, exist_ok=True)
            if not any(build_dir.glob(f"{name}*.so")):
                warnings.warn(f"spikeforge: compiling the C++ CPU neuron kernel (once, ~1 min) into {build_dir}",
                              KernelBuildNotice, stacklevel=3)
            _module = load(name=name, sources=[str(source_path())], extra_cflags=_FLAGS,
                           extra_ldflags=["-fopenmp"], build_directory=str(build_dir), verbose=False)
            _status = "built"
        except Exception as exc:  # no compiler / headers: keep working, but say so loudly
            _status = f"unavailable: {type(exc).__name__}: {str(exc).strip().splitlines()[-1] if str(exc) else ''}"
            warnings.warn(
                "spikeforge: the C++ CPU neuron kernel could not be built "
                f"({_status}); using the slower pure-PyTorch fused path. "
                "Install a C++ compiler and the Python headers, or set SPIKEFORGE_CPU_KERNEL=0 to silence this.",
                RuntimeWarning, stacklevel=3,
            )
    return _module


def kernel_status() -> str:
    """``'built'``, ``'not built yet'``, ``'disabled by ...'`` or ``'unavailable: <reason>'``."""
    return _status
