"""What the CPU offers onnxruntime's int8 kernels, and the int8 recipe that suits it.

onnxruntime's MLAS multiplies uint8 activations by int8 weights (its U8S8 kernels) with ``vpmaddubsw`` on x86 CPUs
without VNNI (AVX2 alone, or AVX-512 without VNNI): each pair of products is added in 16 bits and saturates when
8-bit weights meet large activations (lowest cosine to fp32 0.96 on all-MiniLM-L6-v2). Its uint8-weight (U8U8)
kernels widen to 16 bits before multiplying and add in 32 bits, so they are exact there, as are the U8S8 kernels of
VNNI (``vpdpbusds``), AMX (``tdpbusd``) and ARM (``udot``/``sdot``; without dot products ``smull`` + ``sadalp``,
whose 16-bit pairs cannot overflow with symmetric weights in [-127, 127]). Weights in [-64, 64] (7-bit) cannot
overflow anywhere: 255 * 64 * 2 < 32767.
"""

from __future__ import annotations

import functools
import platform

_X86 = ("x86_64", "amd64", "i386", "i686", "x86")
_WIDE_INT8 = ("avx512_vnni", "avx_vnni", "amx_int8")  # int8 dot products that add in 32 bits
# The instruction sets fp32 and int8 speed depend on, in the order benchmark reports list them.
_REPORTED = ("avx2", "avx512f", "avx512_vnni", "avx_vnni", "avx512_bf16", "amx_tile", "amx_int8", "amx_bf16")


@functools.cache
def cpu_flags() -> frozenset[str] | None:
    """The flags /proc/cpuinfo lists, or None where it cannot be read (not Linux). Read once per process."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as handle:
            return frozenset(handle.read().split())
    except OSError:
        return None


def is_x86() -> bool:
    """True on an x86 CPU."""
    return platform.machine().lower() in _X86


def int8_pairs_saturate() -> bool:
    """True where onnxruntime's int8-weight kernels add pairs of products in 16 bits (x86 without VNNI or AMX).

    An x86 CPU whose flags cannot be read counts as one: the safe answer.
    """
    if not is_x86():
        return False
    flags = cpu_flags()
    return flags is None or not any(flag in flags for flag in _WIDE_INT8)


def int8_recipe_for_this_cpu() -> str:
    """The int8 recipe fastest on this CPU that keeps the vectors (onnx_quantize.RECIPES).

    "int8" (8-bit weights) where int8 products add in 32 bits; "qint8_avx2" (7-bit weights, which the fast kernels
    cannot overflow) where they add pairs in 16 bits. 8-bit weights would run there too, exactly, but through
    the slower uint8 kernels (see onnx.inference_session).
    """
    return "qint8_avx2" if int8_pairs_saturate() else "int8"


def flag_summary() -> str:
    """The instruction sets fp32 and int8 speed depend on, e.g. "avx2, avx512f, avx512_vnni"."""
    flags = cpu_flags()
    if flags is None:
        return f"unknown ({platform.machine()}, {platform.processor()})"
    return (
        ", ".join(flag for flag in _REPORTED if flag in flags) or f"none of avx2/avx512/vnni/amx ({platform.machine()})"
    )


def int8_kernel() -> str:
    """Which int8 kernels run 8-bit weights on this CPU, in words (for errors and ``embedstack info``)."""
    if not is_x86():
        return f"{platform.machine()}: int8 dot products add in 32 bits"
    if int8_pairs_saturate():
        return "no VNNI/AMX: 8-bit weights run as uint8 (exact, slower); 7-bit weights run the int8 kernels"
    return "VNNI/AMX: int8 products add in 32 bits"
