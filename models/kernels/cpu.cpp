#include "models/kernels/cpu.h"

#include <cpuid.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cstring>
#include <fstream>

#include "engine/error.h"

namespace inpaint {
namespace {

struct Regs {
  unsigned a = 0, b = 0, c = 0, d = 0;
};

Regs cpuid(unsigned leaf, unsigned subleaf) {
  Regs r;
  if (leaf > __get_cpuid_max(leaf & 0x80000000u, nullptr)) return r;
  __cpuid_count(leaf, subleaf, r.a, r.b, r.c, r.d);
  return r;
}

bool bit(unsigned v, int n) { return (v >> n) & 1u; }

// The OS saves these register states (XCR0): AVX (YMM), AVX-512 (opmask, ZMM), AMX tiles.
unsigned long long enabled_states() {
  if (!bit(cpuid(1, 0).c, 27)) return 0;  // no OSXSAVE
  unsigned lo = 0, hi = 0;
  __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
  return (static_cast<unsigned long long>(hi) << 32) | lo;
}

// Linux (5.16+) hands out AMX's tile data state only to processes that ask for it; oneDNN
// asks too (the same request: granting it twice is harmless).
bool request_amx() {
  constexpr long kArchReqXcompPerm = 0x1023, kXfeatureXtiledata = 18;
  return syscall(SYS_arch_prctl, kArchReqXcompPerm, kXfeatureXtiledata) == 0;
}

std::string model_name() {
  std::ifstream in("/proc/cpuinfo");
  std::string line;
  while (std::getline(in, line))
    if (line.rfind("model name", 0) == 0) {
      const size_t colon = line.find(':');
      if (colon != std::string::npos) return line.substr(line.find_first_not_of(" \t", colon + 1));
    }
  return "unknown processor";
}

CpuFeatures detect() {
  CpuFeatures f;
  f.name = model_name();
  const unsigned long long states = enabled_states();
  const bool ymm = (states & 0x6) == 0x6, zmm = (states & 0xe6) == 0xe6;
  const Regs l1 = cpuid(1, 0), l7 = cpuid(7, 0), l7s1 = cpuid(7, 1);
  f.fma = ymm && bit(l1.c, 12);
  f.avx2 = ymm && bit(l7.b, 5);
  f.f16c = ymm && bit(l1.c, 29);
  f.avx512 = zmm && bit(l7.b, 16) && bit(l7.b, 17) && bit(l7.b, 30) && bit(l7.b, 31);
  f.avx512_bf16 = f.avx512 && bit(l7s1.a, 5);
  f.amx_bf16 = bit(l7.d, 22) && bit(l7.d, 24);  // AMX-BF16 and AMX-TILE
  // XCR0's tile bits may stay clear until permission is granted: ask when the CPU has AMX.
  f.amx_permitted = f.amx_bf16 && request_amx();
  return f;
}

}  // namespace

std::string CpuFeatures::native_bf16() const {
  if (amx_bf16 && amx_permitted && avx512) return "amx-bf16";
  if (avx512_bf16) return "avx512-bf16";
  return "";
}

const CpuFeatures& cpu_features() {
  static const CpuFeatures features = detect();
  return features;
}

const char* precision_name(Precision p) { return p == Precision::bf16 ? "bf16" : "fp32"; }

std::optional<Precision> parse_precision(const std::string& text) {
  if (text == "fp32") return Precision::fp32;
  if (text == "bf16") return Precision::bf16;
  if (text == "auto") return cpu_features().native_bf16().empty() ? Precision::fp32 : Precision::bf16;
  return std::nullopt;
}

Precision choose_precision(const std::string& text, const std::string& option) {
  const auto p = parse_precision(text);
  if (!p) throw Error(option + " is '" + text + "'; it must be auto, fp32 or bf16");
  if (text == "bf16" && cpu_features().native_bf16().empty())
    throw Error(option + " bf16: this processor (" + cpu_features().name +
                ") has no native bf16 arithmetic (AMX or AVX512-BF16); emulated, it would be slower than fp32. "
                "Use " + option + " fp32, or auto (fp32 here)");
  return *p;
}

}  // namespace inpaint
