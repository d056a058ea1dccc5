// What the policies change in the code the GPU runs, read from the compilers' assembly (no GPU needed):
// AMD gfx906 (HYGON DCU Z100), gfx90a, gfx940 assembly from hipcc, NVIDIA sm_80 / sm_90 PTX from nvcc.
// The files are produced at build time from instantiate.cpp, one per architecture and kernel of tests/test_kernels.def
// marked for codegen (<arch>_<index>.s / .ptx); which policies a kernel uses is read from its type as that file
// writes it.

#include <fstream>
#include <map>
#include <regex>
#include <sstream>
#include <string>
#include <vector>

#include <catch2/catch.hpp>

namespace {

struct Kernel {
  std::string name;  ///< the entry point's mangled name
  int rows = 0;
  bool act_order = false;
  std::vector<std::string> lines;
};

/// A kernel of tests/test_kernels.def whose assembly the build produced, and its policies.
struct Combination {
  int index = 0;
  std::string name, type;
  bool known = false;  ///< one of the paper's 8 combinations (the only kernels the checks below know)
  bool half2 = false, shared_buffered = false, inline_asm = false;
};

/// A line of tests/test_kernels.def, its kernel type as text (this file is plain C++: it does not include the library).
struct ListedKernel {
  int index;
  const char* name;
  int codegen;
  const char* type;
};

const ListedKernel kListed[] = {
#define OPT4GPTQ_TEST_KERNEL(I, Name, Codegen, ...) {I, #Name, Codegen, #__VA_ARGS__},
#include "../test_kernels.def"
#undef OPT4GPTQ_TEST_KERNEL
};

/// The kernels marked for codegen. The checks below know the paper's 8 combinations of LoadScalar / LoadHalf2,
/// ReduceGlobalAtomic / ReduceSharedBuffered and MathBuiltin / MathInlineAsm: another kernel marked for codegen fails
/// the first test case (teach the checks about it first).
std::vector<Combination> combinations() {
  const std::regex paper(
      "^\\s*DequantGemm\\s*<\\s*(LoadScalar|LoadHalf2)\\s*,\\s*(ReduceGlobalAtomic|ReduceSharedBuffered)\\s*,\\s*"
      "(MathBuiltin|MathInlineAsm)\\s*>\\s*$");
  std::vector<Combination> out;
  for (const ListedKernel& k : kListed) {
    if (k.codegen != 1) continue;  // 0: GPU tests only; 2: matrix-core kernels (their own codegen test)
    Combination c;
    c.index = k.index;
    c.name = k.name;
    c.type = k.type;
    std::smatch m;
    c.known = std::regex_match(c.type, m, paper);
    if (c.known) {
      c.half2 = m[1] == "LoadHalf2";
      c.shared_buffered = m[2] == "ReduceSharedBuffered";
      c.inline_asm = m[3] == "MathInlineAsm";
    }
    out.push_back(c);
  }
  return out;
}

/// The same Load and Math policies with the other Reduce policy, or nullptr.
const Combination* partner(const std::vector<Combination>& all, const Combination& c) {
  for (const Combination& o : all)
    if (o.known && o.half2 == c.half2 && o.inline_asm == c.inline_asm && o.shared_buffered != c.shared_buffered)
      return &o;
  return nullptr;
}

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
        kernels.push_back(Kernel{line, std::stoi(m[1]), m[2] == "1", {}});
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

std::string amd_file(const char* arch, const Combination& c) {
  return std::string(OPT4GPTQ_CODEGEN_DIR) + "/" + arch + "_" + std::to_string(c.index) + ".s";
}
std::string ptx_file(const char* arch, const Combination& c) {
  return std::string(OPT4GPTQ_CODEGEN_DIR) + "/" + arch + "_" + std::to_string(c.index) + ".ptx";
}

}  // namespace

TEST_CASE("the kernels marked for codegen in tests/test_kernels.def are the paper's 8 combinations", "[codegen]") {
  const std::vector<Combination> all = combinations();
  CHECK(all.size() == 8);
  for (const Combination& c : all) {
    INFO("tests/test_kernels.def: kernel " << c.index << " (" << c.name << "): " << c.type);
    CHECK(c.known);  // marked for codegen, but not a combination these checks know: teach them first
    int same = 0;
    for (const Combination& o : all)
      same += o.known && o.half2 == c.half2 && o.shared_buffered == c.shared_buffered && o.inline_asm == c.inline_asm;
    CHECK(same == 1);  // each combination once
  }
}

TEST_CASE("AMD: every combination compiles for gfx906, gfx90a and gfx940", "[codegen][amd]") {
  if (!OPT4GPTQ_CODEGEN_AMD) {
    WARN("hipcc not found at configure time: AMD codegen test skipped");
    return;
  }
  for (const char* arch : kAmdArchs)
    for (const Combination& c : combinations()) {
      INFO(arch << " combination " << c.index << " (" << c.name << ")");
      const std::vector<Kernel> kernels = kernels_of(read_file(amd_file(arch, c)), false);
      CHECK(kernels.size() == 3);
      for (const Kernel& k : kernels) CHECK(first(k, "s_endpgm") >= 0);
    }
}

TEST_CASE("AMD InlineAsm: v_pk_fma_f16 / v_pk_add_f16 come from the inline assembly", "[codegen][amd]") {
  if (!OPT4GPTQ_CODEGEN_AMD) return;
  for (const char* arch : kAmdArchs)
    for (const Combination& c : combinations()) {
      if (!c.known) continue;
      INFO(arch << " combination " << c.index << " (" << c.name << ")");
      const Kernel k = find(kernels_of(read_file(amd_file(arch, c)), false), 8, false);
      if (c.inline_asm) {
        CHECK(count(k, "v_pk_fma_f16", 1) > 0);
        CHECK(count(k, "v_pk_add_f16", 1) > 0);
      } else {
        // The builtins become the same packed instructions, chosen by the compiler (no inline assembly).
        CHECK(count(k, "v_pk_fma_f16", 1) == 0);
        CHECK(count(k, "v_pk_fma_f16", 0) > 0);
      }
    }
}

TEST_CASE("AMD codec: each magic-number pair is one v_and_or_b32 (inline assembly)", "[codegen][amd]") {
  // clang 15 emits v_and_b32 + v_or_b32 for (word & mask) | magic (VOP3 takes no literal); the codec's and_or()
  // issues v_and_or_b32 with the mask in an SGPR: 4 per packed word, 16 per 4-column batch word at least.
  if (!OPT4GPTQ_CODEGEN_AMD) return;
  for (const char* arch : kAmdArchs)
    for (const Combination& c : combinations())
      for (const int rows : {1, 8}) {
        INFO(arch << " combination " << c.index << " (" << c.name << "), " << rows << " rows");
        const Kernel k = find(kernels_of(read_file(amd_file(arch, c)), false), rows, false);
        CHECK(count(k, "v_and_or_b32", 1) >= 16);
      }
}

TEST_CASE("AMD Half2: activation loads are 32 bits or wider", "[codegen][amd]") {
  if (!OPT4GPTQ_CODEGEN_AMD) return;
  for (const char* arch : kAmdArchs)
    for (const Combination& c : combinations()) {
      if (!c.known) continue;
      INFO(arch << " combination " << c.index << " (" << c.name << ")");
      const auto kernels = kernels_of(read_file(amd_file(arch, c)), false);
      for (const int rows : {1, 8}) {
        const Kernel k = find(kernels, rows, false);
        if (c.half2)
          CHECK(count(k, kAmdNarrowLoad) == 0);
        else
          CHECK(count(k, kAmdNarrowLoad) > 0);  // LoadScalar: one half per load
      }
    }
}

TEST_CASE("AMD atomics: a compare-and-swap loop on gfx906, packed fp16 atomics on gfx90a/gfx940", "[codegen][amd]") {
  if (!OPT4GPTQ_CODEGEN_AMD) return;
  for (const char* arch : kAmdArchs)
    for (const Combination& c : combinations()) {
      if (!c.known) continue;
      INFO(arch << " combination " << c.index << " (" << c.name << ")");
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
  const std::vector<Combination> all = combinations();
  for (const char* arch : kAmdArchs)
    for (const Combination& c : all) {
      // c: GlobalAtomic; its partner: the same Load and Math with SharedBuffered
      if (!c.known || c.shared_buffered) continue;
      const Combination* p = partner(all, c);
      INFO(arch << " combination " << c.index << " (" << c.name << ") vs its SharedBuffered partner");
      REQUIRE(p != nullptr);
      INFO("partner: combination " << p->index << " (" << p->name << ")");
      const Kernel atomic = find(kernels_of(read_file(amd_file(arch, c)), false), 8, false);
      const Kernel smb = find(kernels_of(read_file(amd_file(arch, *p)), false), 8, false);
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
    for (const Combination& c : combinations()) {
      INFO(arch << " combination " << c.index << " (" << c.name << ")");
      const std::vector<Kernel> kernels = kernels_of(read_file(ptx_file(arch, c)), true);
      CHECK(kernels.size() == 3);
      for (const Kernel& k : kernels) CHECK(first(k, "\\bret;") >= 0);
    }
}

TEST_CASE("NVIDIA InlineAsm, Half2 and SharedBuffered in PTX", "[codegen][nvidia]") {
  if (!OPT4GPTQ_CODEGEN_NVIDIA) return;
  for (const char* arch : kNvidiaArchs)
    for (const Combination& c : combinations()) {
      if (!c.known) continue;
      INFO(arch << " combination " << c.index << " (" << c.name << ")");
      const auto kernels = kernels_of(read_file(ptx_file(arch, c)), true);
      const Kernel k = find(kernels, 8, false);
      // CUDA's own __hfma2 / __hadd2 are inline PTX too ("{fma.rn.f16x2 ...}", "{add.f16x2 ...}" in
      // cuda_fp16.hpp), so on NVIDIA ILA changes who writes the instruction, not the instruction (both are
      // HFMA2 / HADD2 in SASS). The policy's own statements are told apart by their spelling.
      CHECK((count(k, kPtxPolicyFma) > 0) == c.inline_asm);
      CHECK((count(k, kPtxPolicyAdd) > 0) == c.inline_asm);
      CHECK((count(k, kPtxHeaderFma) > 0) == !c.inline_asm);
      CHECK((count(k, kPtxNarrowLoad) == 0) == c.half2);
      if (c.shared_buffered) {
        CHECK(count(k, kPtxAtomic) >= 1);
        CHECK(count(k, kPtxAtomic) < 16);
        CHECK(first(k, "bar\\.sync") < first(k, kPtxAtomic));
      } else {
        CHECK(count(k, kPtxAtomic) == 16);  // 8 rows x 2 column pairs per thread
      }
    }
}

std::size_t count_matches(const std::string& text, const std::regex& pattern) {
  return static_cast<std::size_t>(
      std::distance(std::sregex_iterator(text.begin(), text.end(), pattern), std::sregex_iterator()));
}

/// The lines of one function of an assembly file: from its label (AMD) or `.entry` (PTX) whose name contains `name`
/// and the mangled (rows, act-order) arguments, to the next function.
Kernel kernel_named(const std::string& text, bool ptx, const std::string& name, int rows, bool act_order) {
  std::vector<Kernel> all = kernels_of(text, ptx);
  std::istringstream in(text);
  std::string line;
  std::vector<std::string> names;
  const std::regex mangled_args("ELi([0-9]+)ELb([01])EEEv");
  while (std::getline(in, line)) {
    const bool starts =
        ptx ? line.find(".entry ") != std::string::npos : std::regex_search(line, std::regex("^_Z\\w+:"));
    std::smatch m;
    if (starts && line.find("dequant_gemm_kernel") != std::string::npos && std::regex_search(line, m, mangled_args))
      names.push_back(line);
  }
  for (std::size_t i = 0; i < all.size() && i < names.size(); ++i)
    if (names[i].find(name) != std::string::npos && all[i].rows == rows && all[i].act_order == act_order) return all[i];
  FAIL(name << " kernel with " << rows << " rows, act_order=" << act_order << " not found in the assembly");
  return Kernel{};
}

TEST_CASE("the matrix instructions: mma.sync in sm_80/sm_90 PTX, v_mfma on gfx90a/gfx940, none on gfx906",
          "[codegen][mma]") {
  if (OPT4GPTQ_CODEGEN_NVIDIA) {
    for (const char* arch : {"sm_80", "sm_90"}) {
      INFO(arch);
      const std::string ptx = read_file(std::string(OPT4GPTQ_CODEGEN_DIR) + "/mma_" + arch + ".ptx");
      CHECK(ptx.find("mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32") != std::string::npos);
      // The TensorCore preset's 16-row entry point: 4 chunks x 4 n-tiles x 2 K steps per stage; and its 16-byte
      // weight loads.
      const Kernel tc = kernel_named(ptx, true, "MainloopMmaINS", 16, false);
      CHECK(count(tc, "mma\\.sync\\.aligned\\.m16n8k16") == 32);
      CHECK(count(tc, "ld\\.global\\.v4\\.u32") >= 4);
      // The pipelined preset: weights and activations reach shared memory through cp.async (16 bytes, L2 only); a
      // stage's chunks are one branch-free block when a stage lies in one group (DefaultMmaPipelineTile on NVIDIA:
      // 2 chunks x 4 n-tiles x 2 K steps = 16 instructions) and, for smaller groups and act-order, a block per chunk
      // (16 more); its 16-row entry has the same count per M tile.
      for (const int rows : {8, 16}) {
        INFO("TensorCorePipelined, " << rows << " rows");
        const Kernel k = kernel_named(ptx, true, "MainloopMmaPipelined", rows, false);
        CHECK(count(k, "cp\\.async\\.cg\\.shared\\.global") >= 2);
        CHECK(count(k, "cp\\.async\\.wait_group") >= 1);
        CHECK(count(k, "mma\\.sync\\.aligned\\.m16n8k16") == 32);
        CHECK(count(k, "prmt\\.b32") > 0);  // A interleaved on the way to its registers
      }
    }
  }
  if (OPT4GPTQ_CODEGEN_AMD) {
    for (const char* arch : {"gfx90a", "gfx940"}) {
      INFO(arch);
      const std::string s = read_file(std::string(OPT4GPTQ_CODEGEN_DIR) + "/mma_" + arch + ".s");
      // LLVM spells it v_mfma_f32_16x16x16f16 on gfx90a and v_mfma_f32_16x16x16_f16 on gfx940.
      CHECK(std::regex_search(s, std::regex("v_mfma_f32_16x16x16_?f16")));
      // The TensorCore preset's 16-row entry point: 32 per stage.
      CHECK(count(kernel_named(s, false, "MainloopMmaINS", 16, false), "v_mfma_f32_16x16x16_?f16") == 32);
      // The pipelined preset (its copies are plain loads and LDS stores on AMD): 32 per stage in each of its two
      // chunk paths.
      CHECK(count(kernel_named(s, false, "MainloopMmaPipelined", 16, false), "v_mfma_f32_16x16x16_?f16") == 64);
    }
    // The DCU Z100's ISA has no matrix instructions: none of the gfx906 kernels contains one.
    for (const Combination& c : combinations()) {
      INFO("gfx906 combination " << c.index << " (" << c.name << ")");
      CHECK(read_file(amd_file("gfx906", c)).find("v_mfma") == std::string::npos);
    }
  }
  if (!OPT4GPTQ_CODEGEN_NVIDIA && !OPT4GPTQ_CODEGEN_AMD) WARN("no hipcc and no nvcc: codegen test skipped");
}

namespace {
/// `; NumVgprs: N` (or `; ScratchSize: N`, `; LDSByteSize: N bytes/workgroup`) after the function starting at the
/// label that contains `name`.
int amd_resource(const std::string& text, const std::string& name, const std::string& what) {
  const std::size_t at = text.find(name + ":");
  if (at == std::string::npos) return -1;
  const std::size_t field = text.find("; " + what + ": ", at);
  if (field == std::string::npos) return -1;
  return std::stoi(text.substr(field + what.size() + 4));
}

/// The mangled name of the decode preset's entry point with `rows` rows of M per block, without act-order.
std::string decode_entry(const std::string& text, int rows) {
  const std::regex label("^(_Z\\w*MainloopDecode\\w*ELi" + std::to_string(rows) + "ELb0EEEv\\w*):");
  std::istringstream lines(text);
  for (std::string line; std::getline(lines, line);) {
    std::smatch m;
    if (std::regex_search(line, m, label)) return m[1];
  }
  return "";
}

/// The hot loop of an AMD kernel: among LLVM's innermost loops (the loop comments it writes on each basic block:
/// "=>This Inner Loop Header" on the header, "in Loop: Header=BB0_19" on the others), the one that holds 16-byte
/// weight loads and the most dot products (packed fp16 math when there are none). The compiler's own loop nesting,
/// not a guess from branch targets: guards and group changes branch backwards inside a loop without being loops.
/// bench/amd_static_report.py makes the same choice.
Kernel innermost_weight_loop(const Kernel& k) {
  const std::regex block("^(?:\\.L(BB\\w+):|; %bb\\.\\d+:)(.*)$");
  const std::regex member("in Loop: Header=(BB\\w+)");
  std::map<std::string, Kernel> loops;  // loop header -> the lines of its own blocks
  std::vector<std::string> innermost;
  std::string block_name, owner;  // the current block, and the innermost loop it belongs to ("" outside loops)
  for (const std::string& line : k.lines) {
    std::smatch m;
    if (std::regex_search(line, m, block)) {
      block_name = m[1];
      const std::string comment = m[2];
      std::smatch in;
      owner = std::regex_search(comment, in, member) ? in[1].str() : "";
    }
    // On the label's line, or on a comment line after it when the header also names its parent loops.
    if (line.find("This Inner Loop Header") != std::string::npos) {
      owner = block_name;
      innermost.push_back(block_name);
    }
    if (!owner.empty()) loops[owner].lines.push_back(line);
  }
  Kernel best{k.name, k.rows, k.act_order, {}};
  int best_math = -1;
  for (const std::string& header : innermost) {
    const Kernel& loop = loops[header];
    if (count(loop, "global_load_dwordx4\\b") == 0) continue;
    const int math = 1000 * count(loop, "v_dot2c?_f32_f16") + count(loop, "v_pk_fma_f16");
    if (math > best_math) {
      best_math = math;
      best = loop;
    }
  }
  return best;
}

/// VALU instructions (`v_...`) of AMD assembly lines.
int valu(const Kernel& k) { return count(k, "^\\s+v_\\w+"); }

// The NVIDIA build's SASS instructions per 16-byte weight load in the same loop (presets::Decode, M = 1, sm_90: the
// fp16 chain on range-scaled activations, 993 instructions, NOPs left out, for 4 LDG.E.128; since 2026-12-03 the loop
// holds two copies of the word loop, the whole-batch one and the guarded one, so this static count is above what an
// iteration runs: ncu counted ~106 per load executed), counted by bench/decode_isa_compare.py with nvcc 13.0. CI has
// no SASS disassembler, so the NVIDIA side is this recorded count: when the NVIDIA build changes, run the script and
// update it (docs/amd_gfx906_static_report.md shows both).
constexpr double kSm90SassPer16BytesAtM1 = 248.25;
}  // namespace

TEST_CASE("the decode preset: v_dot2_f32_f16 in the gfx906 innermost loop, 3 waves per SIMD at M = 1, no scratch",
          "[codegen][decode]") {
  if (OPT4GPTQ_CODEGEN_AMD) {
    for (const char* arch : kAmdArchs) {
      INFO(arch);
      const std::string s = read_file(std::string(OPT4GPTQ_CODEGEN_DIR) + "/decode_" + arch + ".s");
      const std::vector<Kernel> kernels = kernels_of(s, false);
      REQUIRE(kernels.size() == 9);  // 1 .. 8 rows, and 1 row with act-order (tests/codegen/decode_kernels.cpp)
      for (const Kernel& k : kernels) {
        INFO(k.rows << " rows, act_order=" << k.act_order);
        // fp32 dot products of fp16 pairs (no fp16 partial sums), in the innermost loop, the one that streams the
        // weights (gfx90a and gfx940 spell it v_dot2c_f32_f16, the form that accumulates in place).
        const Kernel loop = innermost_weight_loop(k);
        CHECK(count(loop, "v_dot2c?_f32_f16(_e32|_e64)?\\b") > 0);
        CHECK(count(k, "v_mfma") == 0);
        CHECK(count(loop, "global_load_dwordx4\\b") > 0);  // 16-byte weight loads
      }
      for (int rows = 1; rows <= 8; ++rows) {
        INFO(rows << " rows");
        const std::string name = decode_entry(s, rows);
        REQUIRE(!name.empty());
        CHECK(amd_resource(s, name, "ScratchSize") == 0);
      }
    }
    // The HYGON DCU Z100 (gfx906, wave64): 256 VGPRs per SIMD lane in granules of 4, 64 KiB of LDS per compute unit
    // in 512-byte granules, one wave of each 4-wave block per SIMD.
    const std::string s = read_file(std::string(OPT4GPTQ_CODEGEN_DIR) + "/decode_gfx906.s");
    const std::vector<Kernel> kernels = kernels_of(s, false);
    const std::string name = decode_entry(s, 1);
    REQUIRE(!name.empty());
    const int vgprs = amd_resource(s, name, "NumVgprs");
    const int lds = amd_resource(s, name, "LDSByteSize");
    INFO("gfx906, M = 1 entry point: " << vgprs << " VGPRs, " << lds << " bytes of LDS");
    CHECK(vgprs > 0);
    CHECK(vgprs <= 84);  // 3 waves per SIMD: floor(256 / 84) = 3
    CHECK(lds > 0);
    CHECK(lds <= 21504);  // 3 blocks per compute unit: floor(65536 / 21504) = 3, i.e. 3 waves per SIMD
    // The innermost loop at M = 1: per 16-byte load (4 packed words, one per column, of 8 rows each), 16 dot products
    // (4 per word) and 16 v_and_or_b32 (the codec's magic-number pairs); the whole loop (the group-change path and the
    // guards included) issues fewer VALU instructions per 16-byte load than the NVIDIA build's SASS per 16 bytes.
    const Kernel loop = innermost_weight_loop(find(kernels, 1, false));
    const int loads = count(loop, "global_load_dwordx4\\b");
    REQUIRE(loads > 0);
    CHECK(count(loop, "v_dot2_f32_f16\\b") == 16 * loads);
    CHECK(count(loop, "v_and_or_b32\\b") == 16 * loads);
    const double valu_per_load = static_cast<double>(valu(loop)) / loads;
    INFO("gfx906 VALU per 16-byte load: " << valu_per_load << " (sm_90 SASS: " << kSm90SassPer16BytesAtM1 << ")");
    CHECK(valu_per_load <= kSm90SassPer16BytesAtM1);
  }
  if (OPT4GPTQ_CODEGEN_NVIDIA) {
    for (const char* arch : kNvidiaArchs) {
      INFO(arch);
      const std::vector<Kernel> kernels =
          kernels_of(read_file(std::string(OPT4GPTQ_CODEGEN_DIR) + "/decode_" + arch + ".ptx"), true);
      REQUIRE(kernels.size() == 9);
      for (const Kernel& k : kernels) CHECK(count(k, "ld\\.global(\\.nc)?\\.v4\\.u32") > 0);
    }
  }
  if (!OPT4GPTQ_CODEGEN_NVIDIA && !OPT4GPTQ_CODEGEN_AMD) WARN("no hipcc and no nvcc: codegen test skipped");
}

TEST_CASE("bf16 kernels: the bf16 magic number, fp32 products, bf16 rounding and atomics, no fp16 arithmetic",
          "[codegen][bf16]") {
  // 0x43004300 (bf16 pair 128, 128) and 0x000F000F: the codec's AND-OR (codec/int4.hpp); PTX writes the inline
  // assembly's immediates in decimal. Kernels whose ReducePolicy adds into C (GlobalAtomic, SharedBuffered) have bf16
  // atomics; ReduceSharedSerial stores.
  auto atomics = [](const Kernel& k) {
    return k.name.find("ReduceGlobalAtomic") != std::string::npos ||
           k.name.find("ReduceSharedBuffered") != std::string::npos;
  };
  if (OPT4GPTQ_CODEGEN_AMD) {
    for (const char* arch : kAmdArchs) {
      INFO(arch);
      const std::vector<Kernel> kernels =
          kernels_of(read_file(std::string(OPT4GPTQ_CODEGEN_DIR) + "/bf16_" + arch + ".s"), false);
      REQUIRE(kernels.size() == 3);
      for (const Kernel& k : kernels) {
        INFO(k.name);
        CHECK(count(k, "0x43004300") > 0);                         // the bf16 magic number
        CHECK(count(k, "v_and_or_b32\\b") > 0);                    // the AND-OR of each pair
        CHECK(count(k, "v_(pk_)?(fma|fmac|mac|mad)_f32\\b") > 0);  // fp32 products
        CHECK(count(k, "v_pk_(fma|add|mul)_f16\\b") == 0);         // no packed fp16 arithmetic
        CHECK(count(k, "v_dot2c?_f32_f16\\b") == 0);               // nor fp16 dot products
        CHECK(count(k, "v_mfma") == 0);                            // SIMT kernels
        CHECK(count(k, "global_atomic_pk_add_f16\\b") == 0);       // C is bf16: never an fp16 atomic
        // No target here has a bf16 atomic add the library relies on: a 32-bit compare-and-swap loop.
        CHECK((count(k, "global_atomic_cmpswap\\b") > 0) == atomics(k));
        if (std::string(arch) == "gfx906") CHECK(count(k, "bf16") == 0);  // gfx906: no bf16 instruction at all
      }
    }
  }
  if (OPT4GPTQ_CODEGEN_NVIDIA) {
    for (const char* arch : kNvidiaArchs) {
      INFO(arch);
      const std::vector<Kernel> kernels =
          kernels_of(read_file(std::string(OPT4GPTQ_CODEGEN_DIR) + "/bf16_" + arch + ".ptx"), true);
      REQUIRE(kernels.size() == 3);
      for (const Kernel& k : kernels) {
        INFO(k.name);
        CHECK(count(k, "lop3\\.b32.*983055, 1124090624") > 0);  // (word & 0x000F000F) | 0x43004300
        CHECK(count(k, "cvt\\.rn\\.bf16x2\\.f32") > 0);         // one rounding per output pair (sm_80+)
        CHECK(count(k, "fma\\.rn\\.f32") > 0);                  // fp32 products
        CHECK(count(k, "\\.f16x2\\b") == 0);                    // no fp16 arithmetic, no fp16 atomics
        if (std::string(arch) == "sm_90")
          CHECK((count(k, "red\\.global\\.add\\.noftz\\.bf16x2") > 0) == atomics(k));
        else
          CHECK((count(k, "atom(\\.global)?\\.cas\\.b32") > 0) == atomics(k));  // sm_80: a compare-and-swap loop
      }
    }
  }
  if (!OPT4GPTQ_CODEGEN_NVIDIA && !OPT4GPTQ_CODEGEN_AMD) WARN("no hipcc and no nvcc: codegen test skipped");
}

TEST_CASE("bf16 decode: bf16 activations converted to range-scaled fp16, then the fp16 decode arithmetic",
          "[codegen][bf16][decode]") {
  // tests/codegen/bf16_decode_kernels.cpp: presets::Bf16Decode at 1 and 2 rows of M, and at 1 row with act-order.
  if (OPT4GPTQ_CODEGEN_AMD) {
    for (const char* arch : kAmdArchs) {
      INFO(arch);
      const std::string s = read_file(std::string(OPT4GPTQ_CODEGEN_DIR) + "/bf16_decode_" + arch + ".s");
      const std::vector<Kernel> kernels = kernels_of(s, false);
      REQUIRE(kernels.size() == 3);
      for (const Kernel& k : kernels) {
        INFO(k.rows << " rows, act_order=" << k.act_order);
        // The staged window, widened and scaled in fp32, rounded to fp16.
        CHECK(count(k, "v_cvt_f16_f32(_e32|_e64)?\\b") > 0);
        const Kernel loop = innermost_weight_loop(k);
        CHECK(count(loop, "v_dot2c?_f32_f16(_e32|_e64)?\\b") > 0);  // then Decode's fp16 dot products into fp32
        CHECK(count(loop, "global_load_dwordx4\\b") > 0);
        CHECK(count(k, "v_mfma") == 0);
        CHECK(count(k, "bf16") == 0);  // no bf16 instruction on any AMD target: integer and fp32 work do the widening
        CHECK(amd_resource(s, k.name.substr(0, k.name.find(':')), "ScratchSize") == 0);  // the label line's name
      }
    }
    // gfx906 (HYGON DCU Z100) at M = 1: as Decode, 3 waves per SIMD (the fp32 bf16 path it replaces needed 93 VGPRs).
    const std::string s = read_file(std::string(OPT4GPTQ_CODEGEN_DIR) + "/bf16_decode_gfx906.s");
    const std::string name = decode_entry(s, 1);
    REQUIRE(!name.empty());
    const int vgprs = amd_resource(s, name, "NumVgprs");
    INFO("gfx906 bf16 decode, M = 1: " << vgprs << " VGPRs");
    CHECK(vgprs > 0);
    CHECK(vgprs <= 84);
  }
  if (OPT4GPTQ_CODEGEN_NVIDIA) {
    for (const char* arch : kNvidiaArchs) {
      INFO(arch);
      const std::vector<Kernel> kernels =
          kernels_of(read_file(std::string(OPT4GPTQ_CODEGEN_DIR) + "/bf16_decode_" + arch + ".ptx"), true);
      REQUIRE(kernels.size() == 3);
      for (const Kernel& k : kernels) {
        INFO(k.name);
        CHECK(count(k, "cvt\\.rn\\.f16x2\\.f32") > 0);   // the staged window rounded to fp16, a pair at a time
        CHECK(count(k, "fma\\.rn\\.f16x2") > 0);         // Decode's packed fp16 chain (range-scaled: no overflow)
        CHECK(count(k, "fma\\.rn\\.bf16x2") == 0);       // no bf16 arithmetic
        CHECK(count(k, "cvt\\.rn\\.bf16x2\\.f32") > 0);  // one rounding to bf16 per output pair
        CHECK(count(k, "ld\\.global(\\.nc)?\\.v4\\.u32") > 0);  // 16-byte weight loads
      }
    }
  }
  if (!OPT4GPTQ_CODEGEN_NVIDIA && !OPT4GPTQ_CODEGEN_AMD) WARN("no hipcc and no nvcc: codegen test skipped");
}

TEST_CASE("bf16 matrix cores: mma.sync .bf16 on sm_80/sm_90, v_mfma bf16 on gfx90a/gfx940, no fp16 instruction",
          "[codegen][bf16][mma]") {
  if (OPT4GPTQ_CODEGEN_AMD) {
    // gfx90a spells the instruction v_mfma_f32_16x16x16bf16_1k, gfx940 v_mfma_f32_16x16x16_bf16 (the same one).
    for (const char* arch : {"gfx90a", "gfx940"}) {
      INFO(arch);
      const std::vector<Kernel> kernels =
          kernels_of(read_file(std::string(OPT4GPTQ_CODEGEN_DIR) + "/bf16_mma_" + arch + ".s"), false);
      REQUIRE(kernels.size() == 4);
      for (const Kernel& k : kernels) {
        INFO(k.name);
        CHECK(count(k, "v_mfma_f32_16x16x16_?bf16(_1k)?\\b") > 0);
        CHECK(count(k, "v_mfma_f32_\\w+x[0-9]+f16\\b") == 0);  // no fp16 MFMA (v_mfma_f32_16x16x16f16)
        CHECK(count(k, "0x43004300") > 0);                     // B from the bf16 magic number
        CHECK(count(k, "v_pk_(fma|add|mul)_f16\\b") == 0);
      }
    }
  }
  if (OPT4GPTQ_CODEGEN_NVIDIA) {
    for (const char* arch : kNvidiaArchs) {
      INFO(arch);
      const std::vector<Kernel> kernels =
          kernels_of(read_file(std::string(OPT4GPTQ_CODEGEN_DIR) + "/bf16_mma_" + arch + ".ptx"), true);
      REQUIRE(kernels.size() == 4);
      for (const Kernel& k : kernels) {
        INFO(k.name);
        CHECK(count(k, "mma\\.sync\\.aligned\\.m16n8k16\\.row\\.col\\.f32\\.bf16\\.bf16\\.f32") > 0);
        CHECK(count(k, "mma\\.sync\\S*\\.f16\\.f16") == 0);
        CHECK(count(k, "cvt\\.rn\\.bf16x2\\.f32") > 0);  // the outputs rounded to bf16
        // B: (q - z)·scale rounded once to bf16 by packed bf16 arithmetic (CodecInt4::dequant_scaled_bf16)
        CHECK(count(k, "fma\\.rn\\.bf16x2") > 0);
        CHECK(count(k, "\\.f16x2\\b") == 0);
      }
    }
  }
  if (!OPT4GPTQ_CODEGEN_NVIDIA && !OPT4GPTQ_CODEGEN_AMD) WARN("no hipcc and no nvcc: codegen test skipped");
}
