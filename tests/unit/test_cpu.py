"""The CPU description recorded with every figure and artifact."""

from runtimes.cpu import cpu_info, detect

MILAN = {"model name": "AMD EPYC 7B13", "cpu family": "25", "model": "1",
         "flags": "fpu sse2 avx fma avx2 bmi2"}
GENOA = {"model name": "AMD EPYC", "cpu family": "25", "model": "17",
         "flags": "avx2 fma avx512f avx512_vnni avx512_bf16"}


def test_avx2_only_cpu_has_neither_vnni_nor_bf16():
    cpu = detect(MILAN, {})
    assert cpu.features == ("AVX2", "FMA")
    assert not cpu.int8_dot_product and not cpu.bf16
    assert cpu.label() == "AMD EPYC 7B13, family 25 model 1 (AVX2, FMA)"


def test_avx512_cpu_lists_vnni_and_bf16():
    cpu = detect(GENOA, {})
    assert cpu.features == ("AVX2", "FMA", "AVX-512F", "AVX-512 VNNI", "AVX-512 BF16")
    assert cpu.int8_dot_product and cpu.bf16


def test_what_the_process_can_execute_wins_over_proc_cpuinfo():
    # Under an emulator /proc/cpuinfo is the host's; numpy reads CPUID as the process sees it.
    seen = {"AVX2": True, "FMA3": True, "AVX512F": False, "AVX512VNNI": False,
            "AVX512BF16": False}
    assert detect(GENOA, seen).features == ("AVX2", "FMA")


def test_this_machine_agrees_with_numpy():
    from runtimes.cpu import _numpy_features

    assert ("AVX2" in cpu_info().features) == _numpy_features().get("AVX2", False)
    assert cpu_info().to_dict()["features"] == list(cpu_info().features)
