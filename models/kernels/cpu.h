// What the processor under us can do, read once at run time (the machines change: AVX2
// only, AVX-512 with AVX512-BF16, AVX-512 with AMX), and the precision a run computes in.
#pragma once
#include <optional>
#include <string>

namespace inpaint {

struct CpuFeatures {
  std::string name;          // the model name /proc/cpuinfo gives, or the CPUID brand string
  bool avx2 = false, fma = false;
  bool f16c = false;         // f16 <-> f32 conversions in vector registers
  bool avx512 = false;       // F, DQ, BW and VL: what the AVX-512 kernels use
  bool avx512_bf16 = false;  // bf16 dot products in AVX-512 registers (Zen 4/5, Xeon from Cooper Lake)
  bool amx_bf16 = false;     // bf16 matrix tiles (Xeon from Sapphire Rapids) ...
  bool amx_permitted = false;  // ... which Linux lets a process use only once it asked (arch_prctl)
  // The best native bf16 instructions, "amx-bf16", "avx512-bf16", or "" (none).
  std::string native_bf16() const;
};
const CpuFeatures& cpu_features();

enum class Precision { fp32, bf16 };
const char* precision_name(Precision p);

// "auto" (bf16 where the processor multiplies bf16 natively, else fp32), "fp32" or
// "bf16"; nullopt for anything else.
std::optional<Precision> parse_precision(const std::string& text);
// parse_precision, or an Error naming `option`: for an unknown word, and for "bf16" on a
// processor without native bf16 (oneDNN would emulate it, slower than fp32).
Precision choose_precision(const std::string& text, const std::string& option);

}  // namespace inpaint
