"""--int8-kernels: resolved from the CPU, refused where it means nothing, warned about on a
CPU the artifact was not tuned for."""


import pytest

from exporters.options import ExportOptions
from exporters.recorded import int8_kernels
from exporters.registry import get
from runtimes import cpu, loading
from runtimes.errors import OptionError


def test_auto_follows_this_machine_and_explicit_choices_win():
    expected = "vnni" if cpu.cpu_info().int8_dot_product else "avx2"
    assert ExportOptions("onnx", "int8").resolved_int8_kernels() == expected
    assert ExportOptions("onnx", "int8", int8_kernels="avx2").resolved_int8_kernels() == "avx2"
    with pytest.raises(OptionError, match="'sse4' is not one of: auto, vnni, avx2"):
        ExportOptions("onnx", "int8", int8_kernels="sse4")


def test_recorded_for_onnx_int8_and_refused_where_it_changes_nothing():
    options = ExportOptions("onnx", "int8", int8_kernels="vnni")
    assert int8_kernels(get("onnx"), "int8", options) == {"int8_kernels": "vnni"}
    assert int8_kernels(get("onnx"), "fp32", ExportOptions("onnx")) == {}
    with pytest.raises(OptionError, match="applies to onnx int8 and int4; ctranslate2 int8_float32"):
        int8_kernels(get("ctranslate2"), "int8_float32",
                      ExportOptions("ctranslate2", "int8", int8_kernels="avx2"))


def test_loading_a_vnni_artifact_on_an_avx2_cpu_warns(monkeypatch, tmp_path):
    monkeypatch.setattr(cpu, "cpu_info", lambda: cpu.CpuInfo("test CPU", ("AVX2", "FMA")))
    with pytest.warns(UserWarning, match="tuned for CPUs with VNNI.*--int8-kernels avx2"):
        loading._warn_int8_kernels(tmp_path, "vnni")
    monkeypatch.setattr(cpu, "cpu_info", lambda: cpu.CpuInfo("test CPU", ("AVX-512 VNNI",)))
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        loading._warn_int8_kernels(tmp_path, "vnni")
        loading._warn_int8_kernels(tmp_path, "avx2")
