"""Process memory as the OS sees it (Linux), so every runtime is measured the same way."""

from __future__ import annotations

import resource
import sys


def _status_mb(field: str) -> float | None:
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith(field):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return None


def current_rss_mb() -> float:
    """Resident set size now, from /proc/self/status (falls back to the peak elsewhere)."""
    value = _status_mb("VmRSS:")
    return peak_rss_mb() if value is None else value


def peak_rss_mb() -> float:
    """Peak resident set size of this process's own memory so far.

    VmHWM, not ``ru_maxrss``: Linux carries ``ru_maxrss`` over from the parent at fork and
    across exec, so a worker started by a large parent (the comparison script, after its
    exports) would report the parent's peak instead of its own.
    """
    value = _status_mb("VmHWM:")
    if value is not None:
        return value
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / (1024 * 1024) if sys.platform == "darwin" else peak / 1024


class VramMeter:
    """GPU memory of this process on GPU 0, as a deployment must budget it.

    NVML's figure for this process where the driver reports processes (the CUDA context,
    every allocator: torch's, ONNX Runtime's arena, TensorRT's, CTranslate2's); else the
    growth of the device's used memory since the meter was made (a machine running one
    benchmark at a time); else torch's peak reserved memory (its allocator only).
    ``how`` says which one a reading is.
    """

    def __init__(self) -> None:
        self._nvml = _nvml_handle()
        self._baseline = self._device_used() if self._nvml else 0.0
        self.how = "none"

    def _device_used(self) -> float:
        import pynvml

        return pynvml.nvmlDeviceGetMemoryInfo(self._nvml).used / 2**20

    def _process_used(self) -> float | None:
        import os

        import pynvml

        try:
            processes = pynvml.nvmlDeviceGetComputeRunningProcesses(self._nvml)
        except pynvml.NVMLError:
            return None
        mine = [p.usedGpuMemory for p in processes if p.pid == os.getpid() and p.usedGpuMemory]
        return mine[0] / 2**20 if mine else None

    def read_mb(self) -> float:
        """Memory now (NVML) or the peak so far (torch); NaN without either."""
        if self._nvml:
            used = self._process_used()
            self.how = "NVML, this process" if used is not None else "NVML, device growth"
            return used if used is not None else self._device_used() - self._baseline
        try:
            import torch
        except ImportError:
            return float("nan")
        if not torch.cuda.is_available():
            return float("nan")
        self.how = "torch peak reserved"
        return torch.cuda.max_memory_reserved() / 2**20


def _nvml_handle():
    try:
        import pynvml

        pynvml.nvmlInit()
        return pynvml.nvmlDeviceGetHandleByIndex(0)
    except Exception:  # noqa: BLE001 - no NVML library, no driver, no GPU: not measured
        return None


def gpu_description() -> str | None:
    """"NVIDIA H200, driver 580.159.04, CUDA 13.0 (torch)", or None without a GPU."""
    try:
        import torch
    except ImportError:
        return None
    if not torch.cuda.is_available():
        return None
    driver = "unknown"
    if (handle := _nvml_handle()) is not None:
        import pynvml

        driver = pynvml.nvmlSystemGetDriverVersion()
        driver = driver.decode() if isinstance(driver, bytes) else driver
    del handle
    return f"{torch.cuda.get_device_name(0)}, driver {driver}, CUDA {torch.version.cuda} (torch)"
