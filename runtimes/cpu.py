"""Which CPU this process runs on, and the instruction-set features that change results.

Machines of one kind are not one CPU: int8 kernels take other code paths without VNNI (AVX2's
u8 x s8 multiply-add saturates), OpenVINO computes in bf16 only where the CPU has it, and
speeds differ by about 2x. So every figure and every artifact records this.

Features come from CPUID as numpy's dispatcher reads it (what this process can execute, also
under an emulator), with /proc/cpuinfo for the few numpy does not report (AVX-VNNI, AMX).
"""

from __future__ import annotations

import platform
from dataclasses import asdict, dataclass
from functools import cache
from pathlib import Path

#: (label, numpy's CPUID feature name or None, /proc/cpuinfo flag) in report order.
_FEATURES = (
    ("AVX2", "AVX2", "avx2"),
    ("FMA", "FMA3", "fma"),
    ("AVX-512F", "AVX512F", "avx512f"),
    ("AVX-512 VNNI", "AVX512VNNI", "avx512_vnni"),
    ("AVX-VNNI", None, "avx_vnni"),
    ("AVX-512 BF16", "AVX512BF16", "avx512_bf16"),
    ("AMX", None, "amx_tile"),
)


@dataclass(frozen=True)
class CpuInfo:
    """The CPU and the features among ``_FEATURES`` it has.

    Attributes:
        model: model name, with family/model numbers where the name is generic
            (virtual machines often report only "AMD EPYC").
        features: labels of the features present, in ``_FEATURES`` order.
    """

    model: str
    features: tuple[str, ...]

    @property
    def int8_dot_product(self) -> bool:
        """VNNI of either width: int8 GEMMs without AVX2's saturating 16-bit intermediates."""
        return "AVX-512 VNNI" in self.features or "AVX-VNNI" in self.features

    @property
    def bf16(self) -> bool:
        return "AVX-512 BF16" in self.features or "AMX" in self.features

    def label(self) -> str:
        """E.g. "AMD EPYC, family 25 model 17 (AVX2, FMA, AVX-512F, AVX-512 VNNI, AVX-512 BF16)"."""
        return f"{self.model} ({', '.join(self.features) or 'no AVX2'})"

    def to_dict(self) -> dict:
        return {**asdict(self), "features": list(self.features)}


def _cpuinfo() -> dict[str, str]:
    """The first processor's fields of /proc/cpuinfo ({} where there is none)."""
    fields: dict[str, str] = {}
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return fields
    for line in text.splitlines():
        if not line.strip():
            break
        key, _, value = line.partition(":")
        fields[key.strip()] = value.strip()
    return fields


def _numpy_features() -> dict[str, bool]:
    try:
        from numpy._core._multiarray_umath import __cpu_features__
    except ImportError:  # numpy < 2
        try:
            from numpy.core._multiarray_umath import __cpu_features__
        except ImportError:
            return {}
    return dict(__cpu_features__)


def _model_name(fields: dict[str, str]) -> str:
    name = fields.get("model name") or platform.processor() or platform.machine() or "unknown"
    if "cpu family" in fields and "model" in fields:
        name += f", family {fields['cpu family']} model {fields['model']}"
    return name


@cache
def cpu_info() -> CpuInfo:
    """This machine's CPU (read once per process)."""
    return detect(_cpuinfo(), _numpy_features())


def detect(fields: dict[str, str], detected: dict[str, bool]) -> CpuInfo:
    """CpuInfo from /proc/cpuinfo ``fields`` and numpy's CPUID ``detected`` features; the
    latter win where both speak (an emulator shows the host's /proc/cpuinfo)."""
    flags = set(fields.get("flags", "").split())
    present = tuple(
        label for label, numpy_name, flag in _FEATURES
        if detected.get(numpy_name, flag in flags)
    )
    return CpuInfo(_model_name(fields), present)
