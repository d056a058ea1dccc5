// What the policies change in the code the GPU runs, read from the compilers' assembly (no GPU needed):
// AMD gfx906 (HYGON DCU Z100), gfx90a, gfx940 assembly from hipcc, NVIDIA sm_80 / sm_90 PTX from nvcc.
// The files are produced at build time from instantiate.cpp, one per architecture and policy combination
// (combination indices as in tests/gpu/combinations.hpp: bit 0 = InlineAsm, bit 1 = Half2, bit 2 = SharedBuffered).

#include <fstream>
#include <map>
#include <regex>
#include <sstream>
#include <string>
#include <vector>

#include <catch2/catch.hpp>

namespace {

struct Kernel {
  int rows = 0;
  bool act_order = false;
  std::vector<std::string> lines;
};

struct Combination {
  int index;
  bool inline_asm() const { return index & 1; }
  bool half2() const { return index & 2; }
  bool shared_buffered() const { return index & 4; }
};

std::string read_file(const std::string& path) {
  std::ifstream in(path);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

/// The dequant-GEMM entry points of one assembly file, keyed by (rows, act-order) from their mangled names.
std::vector<Kernel> kernels_of(const std::string& text, bool ptx) {
  std::vector<Kernel> kernels;
  std::istringstream in(text);
  std::string line;
  // The entry point's last two template arguments (rows of M per block, act-order), whatever namespace it is in.
  const std::regex mangled_args("ELi([0-9]+)ELb([01])EEEv");
  const std::regex label("^_Z\\w+:");
  Kernel* current = nullptr;
  int depth = 0;
  while (std::getline(in, line)) {
    // PTX: ".entry name(". AMD: a function label "name:" at the start of a line (clang appends "; @name").
    const bool starts_kernel = ptx ? line.find(".entry ") != std::string::npos : std::regex_search(line, label);
    if (starts_kernel) {
      std::smatch m;
      if (line.find("dequant_gemm_kernel") != std::string::npos && std::regex_search(line, m, mangled_args)) {
        kernels.push_back(Kernel{std::stoi(m[1]), m[2] == "1", {}});
        current = &kernels.back();
        depth = 0;
        continue;
      }
      current = nullptr;
    }
    if (!current) continue;
    if (!ptx && line.rfind(".Lfunc_end", 0) == 0) {
      current = nullptr;
      continue;
    }
    current->lines.push_back(line);
    if (ptx) {
      for (char ch : line) depth += ch == '{' ? 1 : ch == '}' ? -1 : 0;
      if (depth == 0 && line.find('}') != std::string::npos) current = nullptr;
    }
  }
  return kernels;
}

/// A copy: callers pass temporaries.
Kernel find(const std::vector<Kernel>& kernels, int rows, bool act_order) {
  for (const Kernel& k : kernels)
    if (k.rows == rows && k.act_order == act_order) return k;
  FAIL("kernel with " << rows << " rows, act_order=" << act_order << " not found in the assembly");
  return Kernel{};
}

/// Instruction lines whose text matches `pattern`; `in_asm` selects lines inside / outside inline-asm blocks.
int count(const Kernel& k, const std::string& pattern, int in_asm = -1, bool ptx = false) {
  const std::regex re(pattern);
  const std::string begin = ptx ? "// begin inline asm" : ";;#ASMSTART";
  const std::string end = ptx ? "// end inline asm" : ";;#ASMEND";
  bool inside = false;
  int n = 0;
  for (const std::string& line : k.lines) {
    if (line.find(begin) != std::string::npos)
      inside = true;
    else if (line.find(end) != std::string::npos)
      inside = false;
    else if ((in_asm < 0 || inside == (in_asm == 1)) && std::regex_search(line, re))
      ++n;
  }
  return n;
}

/// Index of the first line matching `pattern`, or -1.
int first(const Kernel& k, const std::string& pattern) {
  const std::regex re(pattern);
  for (std::size_t i = 0; i < k.lines.size(); ++i)
    if (std::regex_search(k.lines[i], re)) return static_cast<int>(i);
  return -1;
}

/// True when some `pattern` instruction sits inside a loop: a later backward branch targets a label before it.
bool inside_loop(const Kernel& k, const std::string& pattern) {
  const int at = first(k, pattern);
  if (at < 0) return false;
  std::map<std::string, int> labels;
  const std::regex label("^(\\.L\\w+):");  // clang may append "; =>This Inner Loop Header"
  for (std::size_t i = 0; i < k.lines.size(); ++i) {
    std::smatch m;
    if (std::regex_search(k.lines[i], m, label)) labels[m[1]] = static_cast<int>(i);
  }
  const std::regex branch("s_cbranch_\\w+\\s+(\\.LBB\\w+)|s_branch\\s+(\\.LBB\\w+)");
  for (std::size_t i = at; i < k.lines.size(); ++i) {
    std::smatch m;
    if (std::regex_search(k.lines[i], m, branch)) {
      const std::string target = m[1].matched ? m[1].str() : m[2].str();
      const auto it = labels.find(target);
      if (it != labels.end() && it->second <= at) return true;
    }
  }
  return false;
}

const char* const kAmdArchs[] = {"gfx906", "gfx90a", "gfx940"};
const char* const kNvidiaArchs[] = {"sm_80", "sm_90"};

// Activation loads narrower than 32 bits (weights, scales and zeros are always 32 bits or wider).
const char* const kAmdNarrowLoad = "global_load_(ushort|sshort|short_d16|short_d16_hi|ubyte|sbyte)\\b";
const char* const kAmdAtomic = "global_atomic_(cmpswap|pk_add_f16)\\b";
const char* const kPtxNarrowLoad = "ld\\.global(\\.nc)?(\\.[a-zA-Z0-9:_]+)*\\.(u16|b16|s16)\\b";
const char* const kPtxAtomic = "(red|atom)(\\.global)?\\.add\\.noftz\\.f16x2";
const char* const kPtxPolicyFma = "^\\s*fma\\.rn\\.f16x2\\s";  // MathInlineAsm's statement
const char* const kPtxPolicyAdd = "^\\s*add\\.rn\\.f16x2\\s";
const char* const kPtxHeaderFma = "\\{\\s*fma\\.rn\\.f16x2\\s";  // cuda_fp16.hpp's __hfma2

std::string amd_file(const char* arch, int combination) {
  return std::string(OPT4GPTQ_CODEGEN_DIR) + "/" + arch + "_" + std::to_string(combination) + ".s";
}
std::string ptx_file(const char* arch, int combination) {
  return std::string(OPT4GPTQ_CODEGEN_DIR) + "/" + arch + "_" + std::to_string(combination) + ".ptx";
}

}  // namespace

TEST_CASE("AMD: every combination compiles for gfx906, gfx90a and gfx940", "[codegen][amd]") {
  if (!OPT4GPTQ_CODEGEN_AMD) {
    WARN("hipcc not found at configure time: AMD codegen test skipped");
    return;
  }
  for (const char* arch : kAmdArchs)
    for (int c = 0; c < 8; ++c) {
      INFO(arch << " combination " << c);
      const std::vector<Kernel> kernels = kernels_of(read_file(amd_file(arch, c)), false);
      CHECK(kernels.size() == 3);
      for (const Kernel& k : kernels) CHECK(first(k, "s_endpgm") >= 0);
    }
}

TEST_CASE("AMD InlineAsm: v_pk_fma_f16 / v_pk_add_f16 come from the inline assembly", "[codegen][amd]") {
  if (!OPT4GPTQ_CODEGEN_AMD) return;
  for (const char* arch : kAmdArchs)
    for (int c = 0; c < 8; ++c) {
      INFO(arch << " combination " << c);
      const Kernel k = find(kernels_of(read_file(amd_file(arch, c)), false), 8, false);
      if (Combination{c}.inline_asm()) {
        CHECK(count(k, "v_pk_fma_f16", 1) > 0);
        CHECK(count(k, "v_pk_add_f16", 1) > 0);
      } else {
        // The builtins become the same packed instructions, chosen by the compiler (no inline assembly).
        CHECK(count(k, "v_pk_fma_f16", 1) == 0);
        CHECK(count(k, "v_pk_fma_f16", 0) > 0);
      }
    }
}

TEST_CASE("AMD Half2: activation loads are 32 bits or wider", "[codegen][amd]") {
  if (!OPT4GPTQ_CODEGEN_AMD) return;
  for (const char* arch : kAmdArchs)
    for (int c = 0; c < 8; ++c) {
      INFO(arch << " combination " << c);
      const auto kernels = kernels_of(read_file(amd_file(arch, c)), false);
      for (const int rows : {1, 8}) {
        const Kernel k = find(kernels, rows, false);
        if (Combination{c}.half2())
          CHECK(count(k, kAmdNarrowLoad) == 0);
        else
          CHECK(count(k, kAmdNarrowLoad) > 0);  // LoadScalar: one half per load
      }
    }
}

TEST_CASE("AMD atomics: a compare-and-swap loop on gfx906, packed fp16 atomics on gfx90a/gfx940", "[codegen][amd]") {
  if (!OPT4GPTQ_CODEGEN_AMD) return;
  for (const char* arch : kAmdArchs)
    for (int c = 0; c < 8; ++c) {
      INFO(arch << " combination " << c);
      const Kernel k = find(kernels_of(read_file(amd_file(arch, c)), false), 8, false);
      if (std::string(arch) == "gfx906") {
        CHECK(count(k, "global_atomic_pk_add_f16") == 0);
        CHECK(count(k, "global_atomic_cmpswap") > 0);
        CHECK(inside_loop(k, "global_atomic_cmpswap"));
      } else {
        CHECK(count(k, "global_atomic_cmpswap") == 0);
        CHECK(count(k, "global_atomic_pk_add_f16") > 0);
      }
    }
}

TEST_CASE("AMD SharedBuffered: fewer atomics, each after the shared-memory reduction", "[codegen][amd]") {
  if (!OPT4GPTQ_CODEGEN_AMD) return;
  for (const char* arch : kAmdArchs)
    for (int c = 0; c < 4; ++c) {  // c: GlobalAtomic, c + 4: the same Load and Math with SharedBuffered
      INFO(arch << " combination " << c << " vs " << c + 4);
      const Kernel atomic = find(kernels_of(read_file(amd_file(arch, c)), false), 8, false);
      const Kernel smb = find(kernels_of(read_file(amd_file(arch, c + 4)), false), 8, false);
      // GlobalAtomic: every thread adds 8 rows x 2 column pairs, one atomic each (unrolled).
      CHECK(count(atomic, kAmdAtomic) == 16);
      // SharedBuffered: one atomic site in the commit loop, one commit per output pair per block.
      CHECK(count(smb, kAmdAtomic) >= 1);
      CHECK(count(smb, kAmdAtomic) < count(atomic, kAmdAtomic));
      const int atomic_at = first(smb, kAmdAtomic);
      const int barrier_at = first(smb, "s_barrier");
      const int lds_write_at = first(smb, "ds_write_b128");
      CHECK(barrier_at >= 0);
      CHECK(barrier_at < atomic_at);
      CHECK(lds_write_at >= 0);
      // The block's sum is read back from shared memory between the last barrier and the atomic.
      bool read_between = false;
      for (int i = barrier_at; i < atomic_at; ++i) read_between |= smb.lines[i].find("ds_read") != std::string::npos;
      CHECK(read_between);
    }
}

TEST_CASE("NVIDIA: every combination compiles for sm_80 and sm_90", "[codegen][nvidia]") {
  if (!OPT4GPTQ_CODEGEN_NVIDIA) {
    WARN("nvcc not found at configure time: NVIDIA codegen test skipped");
    return;
  }
  for (const char* arch : kNvidiaArchs)
    for (int c = 0; c < 8; ++c) {
      INFO(arch << " combination " << c);
      const std::vector<Kernel> kernels = kernels_of(read_file(ptx_file(arch, c)), true);
      CHECK(kernels.size() == 3);
      for (const Kernel& k : kernels) CHECK(first(k, "\\bret;") >= 0);
    }
}

TEST_CASE("NVIDIA InlineAsm, Half2 and SharedBuffered in PTX", "[codegen][nvidia]") {
  if (!OPT4GPTQ_CODEGEN_NVIDIA) return;
  for (const char* arch : kNvidiaArchs)
    for (int c = 0; c < 8; ++c) {
      INFO(arch << " combination " << c);
      const auto kernels = kernels_of(read_file(ptx_file(arch, c)), true);
      const Kernel k = find(kernels, 8, false);
      const Combination combo{c};
      // CUDA's own __hfma2 / __hadd2 are inline PTX too ("{fma.rn.f16x2 ...}", "{add.f16x2 ...}" in
      // cuda_fp16.hpp), so on NVIDIA ILA changes who writes the instruction, not the instruction (both are
      // HFMA2 / HADD2 in SASS). The policy's own statements are told apart by their spelling.
      CHECK((count(k, kPtxPolicyFma) > 0) == combo.inline_asm());
      CHECK((count(k, kPtxPolicyAdd) > 0) == combo.inline_asm());
      CHECK((count(k, kPtxHeaderFma) > 0) == !combo.inline_asm());
      CHECK((count(k, kPtxNarrowLoad) == 0) == combo.half2());
      if (combo.shared_buffered()) {
        CHECK(count(k, kPtxAtomic) >= 1);
        CHECK(count(k, kPtxAtomic) < 16);
        CHECK(first(k, "bar\\.sync") < first(k, kPtxAtomic));
      } else {
        CHECK(count(k, kPtxAtomic) == 16);  // 8 rows x 2 column pairs per thread
      }
    }
}
