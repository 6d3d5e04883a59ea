//===- PtxSim.cpp - an interpreter of the PTX that synthc generates -------===//
//
// Parsing: LLVM's NVPTX back end writes one statement per line, so the module
// is read line by line: directives, .entry headers and parameter lists,
// .shared declarations, labels and instructions "[@[!]%p] op.mod.mod a, b;".
// Every instruction is decoded once (opcode, types, modifiers, operands with
// register numbers, label targets, shared-variable offsets) and executed from
// that form.
//
// Execution: the blocks of a grid run one after another; within a block every
// thread runs until it blocks (bar.sync, or a warp collective: shfl.sync,
// vote.sync, mma.sync) or exits. A warp whose live lanes all wait at the same
// collective executes it; when every live thread of the block waits at a
// barrier, the barrier opens. No progress is a deadlock error.
//
// Address spaces: a .shared variable's value is its offset in the block's
// shared window (as in PTX); ld/st.shared address that window, cvta.shared
// maps it into the generic space (the host address of the block's buffer).
// Global and generic addresses are host addresses that must fall inside a
// live allocation of Memory (or, generic, the shared buffer).
//
//===----------------------------------------------------------------------===//

#include "test/ptxsim/PtxSim.h"

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"

#include <algorithm>
#include <cfenv>
#include <cmath>
#include <cstring>
#include <limits>
#include <optional>
#include <set>
#include <stdexcept>
#include <unordered_map>

namespace synth::ptxsim {

//===----------------------------------------------------------------------===//
// Memory
//===----------------------------------------------------------------------===//

Memory::~Memory() {
  for (const auto &[start, size] : live_) {
    std::free(reinterpret_cast<void *>(start));
  }
}

void *Memory::allocate(size_t bytes) {
  // 256-byte alignment, as cuMemAlloc guarantees; at least one byte so that
  // every allocation has a distinct address.
  size_t rounded = std::max<size_t>(256, (bytes + 255) / 256 * 256);
  void *pointer = std::aligned_alloc(256, rounded);
  if (!pointer) {
    return nullptr;
  }
  std::memset(pointer, 0xff, rounded);
  live_[reinterpret_cast<uint64_t>(pointer)] = bytes;
  return pointer;
}

bool Memory::free(void *pointer) {
  auto found = live_.find(reinterpret_cast<uint64_t>(pointer));
  if (found == live_.end()) {
    return false;
  }
  live_.erase(found);
  std::free(pointer);
  return true;
}

bool Memory::contains(uint64_t address, size_t bytes) const {
  auto next = live_.upper_bound(address);
  if (next == live_.begin()) {
    return false;
  }
  --next;
  return address >= next->first &&
         address + bytes <= next->first + next->second;
}

namespace {

/// Errors inside the interpreter unwind to launch() / Module::parse().
struct SimError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

[[noreturn]] void fail(const std::string &message) { throw SimError(message); }

//===----------------------------------------------------------------------===//
// Decoded instructions
//===----------------------------------------------------------------------===//

enum class TypeKind : uint8_t { None, B, U, S, F, Pred };

struct Type {
  TypeKind kind = TypeKind::None;
  uint8_t bits = 0;
  bool bf16 = false; ///< F, 16 bits: bf16 rather than f16
  /// f16x2 / bf16x2 (two halves in a .b32).
  bool pair = false;
};

std::optional<Type> parseType(absl::string_view text) {
  static const std::map<absl::string_view, Type> kTypes = {
      {"b8", {TypeKind::B, 8}},
      {"b16", {TypeKind::B, 16}},
      {"b32", {TypeKind::B, 32}},
      {"b64", {TypeKind::B, 64}},
      {"u8", {TypeKind::U, 8}},
      {"u16", {TypeKind::U, 16}},
      {"u32", {TypeKind::U, 32}},
      {"u64", {TypeKind::U, 64}},
      {"s8", {TypeKind::S, 8}},
      {"s16", {TypeKind::S, 16}},
      {"s32", {TypeKind::S, 32}},
      {"s64", {TypeKind::S, 64}},
      {"f16", {TypeKind::F, 16}},
      {"bf16", {TypeKind::F, 16, true}},
      {"f32", {TypeKind::F, 32}},
      {"f64", {TypeKind::F, 64}},
      {"pred", {TypeKind::Pred, 1}},
      {"f16x2", {TypeKind::F, 16, false, true}},
      {"bf16x2", {TypeKind::F, 16, true, true}},
  };
  auto found = kTypes.find(text);
  if (found == kTypes.end()) {
    return std::nullopt;
  }
  return found->second;
}

enum class Op : uint8_t {
  Add,
  Sub,
  Mul,
  Mad,
  Fma,
  Div,
  Rem,
  Abs,
  Neg,
  Min,
  Max,
  And,
  Or,
  Xor,
  Not,
  Cnot,
  Shl,
  Shr,
  Bfe,
  Bfi,
  Popc,
  Clz,
  Brev,
  Prmt,
  Setp,
  Selp,
  Mov,
  Cvt,
  Cvta,
  Ld,
  St,
  Bra,
  Ret,
  Bar,
  Shfl,
  Vote,
  Mma,
  Ex2,
  Lg2,
  Sqrt,
  Rsqrt,
  Rcp,
  Sin,
  Cos,
  Tanh,
  Copysign,
  Testp,
  Atom,
  Red,
};

enum class Space : uint8_t { Generic, Global, Shared, Param, Local, Const };
enum class Round : uint8_t { Default, Rn, Rz, Rm, Rp, Rni, Rzi, Rmi, Rpi };

enum class Special : uint8_t {
  TidX,
  TidY,
  TidZ,
  NtidX,
  NtidY,
  NtidZ,
  CtaidX,
  CtaidY,
  CtaidZ,
  NctaidX,
  NctaidY,
  NctaidZ,
  Laneid,
  Warpid,
};

enum class OperandKind : uint8_t { Reg, Imm, Addr, Vec, Special, Sink, Label };

struct Operand {
  OperandKind kind = OperandKind::Imm;
  int reg = -1;           ///< Reg; Addr: base register or -1
  bool negate = false;    ///< "!%p"
  uint64_t imm = 0;       ///< Imm; Addr: base (shared offset / param offset)
  int64_t offset = 0;     ///< Addr
  bool paramBase = false; ///< Addr based on a .param symbol
  Special special = Special::TidX;
  std::vector<int> regs; ///< Vec (-1: "_")
  int pair = -1;         ///< "%r|%p": the predicate half
  std::string label;     ///< Label, before resolution
};

struct Inst {
  Op op = Op::Mov;
  Type type;  ///< the instruction's (last) type
  Type type2; ///< cvt: the source type; mma: the A/B type
  Space space = Space::Generic;
  Round round = Round::Default;
  bool ftz = false, sat = false, approx = false;
  bool wide = false, hi = false;
  bool toSpace = false; ///< cvta.to.<space>
  int vec = 1;          ///< ld/st .v2/.v4
  std::string cmp;      ///< setp comparison; shfl/vote mode; atom operation;
                        ///< testp property
  std::string boolOp;   ///< setp .and/.or/.xor
  int guard = -1;
  bool guardNegate = false;
  int target = -1; ///< bra: instruction index
  std::vector<Operand> ops;
  std::string text; ///< for messages
  int line = 0;
};

} // namespace

struct Kernel {
  std::string name;
  int maxThreads = 1024;
  std::vector<std::pair<int64_t, int64_t>> params; ///< (offset, bytes)
  int64_t paramBytes = 0;
  int64_t sharedBytes = 0;
  int registers = 0;
  std::vector<Inst> code;
};

namespace {

//===----------------------------------------------------------------------===//
// Parser
//===----------------------------------------------------------------------===//

class Parser {
public:
  explicit Parser(absl::string_view text) : text_(text) {}

  std::vector<std::unique_ptr<Kernel>> run() {
    std::vector<absl::string_view> lines = absl::StrSplit(text_, '\n');
    for (size_t i = 0; i < lines.size(); ++i) {
      line_ = static_cast<int>(i + 1);
      absl::string_view line = stripComment(lines[i]);
      line = absl::StripAsciiWhitespace(line);
      if (line.empty()) {
        continue;
      }
      if (!kernel_) {
        topLevel(line);
      } else if (inParams_) {
        paramLine(line);
      } else if (!inBody_) {
        headerLine(line);
      } else {
        bodyLine(line);
      }
    }
    if (kernel_) {
      fail("the PTX ends inside the body of kernel " + kernel_->name);
    }
    return std::move(kernels_);
  }

private:
  absl::string_view stripComment(absl::string_view line) {
    if (inBlockComment_) {
      size_t end = line.find("*/");
      if (end == absl::string_view::npos) {
        return {};
      }
      inBlockComment_ = false;
      line.remove_prefix(end + 2);
    }
    size_t slash = line.find("//");
    if (slash != absl::string_view::npos) {
      line = line.substr(0, slash);
    }
    size_t block = line.find("/*");
    if (block != absl::string_view::npos) {
      size_t end = line.find("*/", block + 2);
      if (end == absl::string_view::npos) {
        inBlockComment_ = true;
        line = line.substr(0, block);
      }
    }
    return line;
  }

  [[noreturn]] void error(const std::string &what) {
    fail(absl::StrCat("PTX line ", line_, ": ", what));
  }

  void topLevel(absl::string_view line) {
    if (absl::StartsWith(line, ".version") ||
        absl::StartsWith(line, ".target") ||
        absl::StartsWith(line, ".address_size")) {
      return;
    }
    size_t entry = line.find(".entry ");
    if (entry != absl::string_view::npos) {
      kernel_ = std::make_unique<Kernel>();
      absl::string_view rest = line.substr(entry + 7);
      size_t paren = rest.find('(');
      kernel_->name =
          std::string(absl::StripAsciiWhitespace(rest.substr(0, paren)));
      inParams_ = paren != absl::string_view::npos;
      if (inParams_) {
        absl::string_view after = rest.substr(paren + 1);
        after = absl::StripAsciiWhitespace(after);
        if (!after.empty()) {
          paramLine(after);
        }
      }
      return;
    }
    if (absl::StrContains(line, ".func")) {
      error("device functions (.func) are not supported");
    }
    if (absl::StartsWith(line, ".global") || absl::StartsWith(line, ".const") ||
        absl::StartsWith(line, ".extern")) {
      error(absl::StrCat("module-scope variables are not supported: ", line));
    }
    error(absl::StrCat("unexpected statement outside a kernel: ", line));
  }

  void paramLine(absl::string_view line) {
    bool closes = false;
    if (absl::ConsumeSuffix(&line, ")")) {
      closes = true;
    }
    line = absl::StripAsciiWhitespace(line);
    absl::ConsumeSuffix(&line, ",");
    if (!line.empty()) {
      // .param .u64 .ptr .align 1 name
      std::vector<absl::string_view> words =
          absl::StrSplit(line, ' ', absl::SkipWhitespace());
      if (words.empty() || words[0] != ".param") {
        error(absl::StrCat("expected a .param declaration, got: ", line));
      }
      int64_t bytes = 0;
      for (absl::string_view word : words) {
        if (word.size() > 1 && word[0] == '.') {
          if (auto type = parseType(word.substr(1))) {
            bytes = std::max<int64_t>(1, type->bits / 8);
          }
        }
      }
      if (bytes == 0 || absl::StrContains(words.back(), '[')) {
        error(absl::StrCat("unsupported kernel parameter: ", line));
      }
      int64_t offset = (kernel_->paramBytes + bytes - 1) / bytes * bytes;
      paramOffsets_[std::string(words.back())] = offset;
      kernel_->params.push_back({offset, bytes});
      kernel_->paramBytes = offset + bytes;
    }
    if (closes) {
      inParams_ = false;
    }
  }

  void headerLine(absl::string_view line) {
    if (line == "{") {
      inBody_ = true;
      depth_ = 1;
      return;
    }
    if (line == ")") {
      return;
    }
    if (absl::StartsWith(line, ".maxntid") ||
        absl::StartsWith(line, ".reqntid")) {
      absl::string_view dims = line.substr(8);
      int product = 1;
      for (absl::string_view d :
           absl::StrSplit(dims, ',', absl::SkipWhitespace())) {
        int value = 0;
        if (!absl::SimpleAtoi(absl::StripAsciiWhitespace(d), &value) ||
            value <= 0) {
          error(absl::StrCat("bad ", line));
        }
        product *= value;
      }
      kernel_->maxThreads = product;
      return;
    }
    if (line[0] == '.') {
      return; // .minnctapersm, .maxnreg and other performance hints
    }
    error(absl::StrCat("unexpected statement in the header of kernel ",
                       kernel_->name, ": ", line));
  }

  void bodyLine(absl::string_view line) {
    // An instruction may span lines (mma's operand lists): join them up to
    // its ';'.
    if (!pending_.empty() || (line.back() != ';' && line.back() != ':' &&
                              line.back() != '{' && line.back() != '}')) {
      absl::StrAppend(&pending_, pending_.empty() ? "" : " ", line);
      if (line.back() != ';') {
        return;
      }
      std::string joined = std::move(pending_);
      pending_.clear();
      bodyStatements(joined);
      return;
    }
    bodyStatements(line);
  }

  void bodyStatements(absl::string_view line) {
    if (line == "{") {
      ++depth_;
      return;
    }
    if (line == "}") {
      if (--depth_ == 0) {
        finishKernel();
      }
      return;
    }
    // A scope on one line: "{ .reg .b32 tmp; mov.b64 {tmp, %r1}, %rd1; }".
    if (line.front() == '{' && line.back() == '}') {
      line = absl::StripAsciiWhitespace(line.substr(1, line.size() - 2));
    }
    for (absl::string_view statement : absl::StrSplit(line, ';')) {
      statement = absl::StripAsciiWhitespace(statement);
      if (statement.empty()) {
        continue;
      }
      if (statement.back() == ':') {
        labels_[std::string(statement.substr(0, statement.size() - 1))] =
            static_cast<int>(kernel_->code.size());
        continue;
      }
      if (statement[0] == '.') {
        declaration(statement);
        continue;
      }
      instruction(statement);
    }
  }

  void declaration(absl::string_view statement) {
    if (absl::StartsWith(statement, ".reg")) {
      // Registers are numbered as they are met; names without '%' (the
      // "tmp" of one-line scopes) are remembered as registers.
      std::vector<absl::string_view> words = absl::StrSplit(
          statement, absl::ByAnyChar(" \t,"), absl::SkipWhitespace());
      for (size_t i = 1; i < words.size(); ++i) {
        absl::string_view word = words[i];
        if (word[0] == '.') {
          continue;
        }
        size_t open = word.find('<');
        if (open != absl::string_view::npos) { // %r<166>: %r0 .. %r165
          int64_t count = 0;
          absl::string_view number = word.substr(open + 1);
          absl::ConsumeSuffix(&number, ">");
          if (!absl::SimpleAtoi(number, &count)) {
            error(absl::StrCat("bad register declaration ", statement));
          }
          registerRanges_[std::string(word.substr(0, open))] = count;
        } else if (word[0] == '%') {
          declaredRegisters_.insert(std::string(word));
        } else {
          namedRegisters_.insert(std::string(word));
        }
      }
      return;
    }
    if (absl::StartsWith(statement, ".shared")) {
      // .shared .align 16 .b8 name[5120]
      std::vector<absl::string_view> words =
          absl::StrSplit(statement, ' ', absl::SkipWhitespace());
      int64_t align = 1;
      int64_t elementBytes = 0;
      for (size_t i = 1; i + 1 < words.size(); ++i) {
        if (words[i] == ".align" && i + 1 < words.size()) {
          if (!absl::SimpleAtoi(words[i + 1], &align)) {
            error(absl::StrCat("bad alignment in ", statement));
          }
        } else if (words[i].size() > 1 && words[i][0] == '.') {
          if (auto type = parseType(words[i].substr(1))) {
            elementBytes = std::max(1, type->bits / 8);
          }
        }
      }
      absl::string_view declarator = words.back();
      size_t bracket = declarator.find('[');
      int64_t count = 1;
      absl::string_view name = declarator;
      if (bracket != absl::string_view::npos) {
        name = declarator.substr(0, bracket);
        absl::string_view size = declarator.substr(bracket + 1);
        absl::ConsumeSuffix(&size, "]");
        if (!absl::SimpleAtoi(size, &count) || count <= 0) {
          error(absl::StrCat("dynamic or bad shared array: ", statement));
        }
      }
      if (elementBytes == 0) {
        error(absl::StrCat("bad shared declaration: ", statement));
      }
      int64_t offset = (kernel_->sharedBytes + align - 1) / align * align;
      sharedOffsets_[std::string(name)] = offset;
      kernel_->sharedBytes = offset + count * elementBytes;
      return;
    }
    if (absl::StartsWith(statement, ".local")) {
      error(absl::StrCat("local memory (spills or stack arrays) is not "
                         "supported: ",
                         statement));
    }
    error(absl::StrCat("unsupported declaration: ", statement));
  }

  int reg(absl::string_view name) {
    if (!name.empty() && name[0] == '%' && !declared(name)) {
      error(absl::StrCat("unknown register or special register ", name));
    }
    auto [it, inserted] =
        registers_.try_emplace(std::string(name), kernel_->registers);
    if (inserted) {
      ++kernel_->registers;
    }
    return it->second;
  }

  uint64_t immediate(absl::string_view text, bool *ok) {
    *ok = true;
    if (text.size() == 10 && (text[0] == '0') &&
        (text[1] == 'f' || text[1] == 'F')) {
      uint32_t bits = 0;
      *ok = absl::SimpleHexAtoi(text.substr(2), &bits);
      return bits;
    }
    if (text.size() == 18 && text[0] == '0' &&
        (text[1] == 'd' || text[1] == 'D')) {
      uint64_t bits = 0;
      *ok = absl::SimpleHexAtoi(text.substr(2), &bits);
      return bits;
    }
    if (absl::StartsWith(text, "0x") || absl::StartsWith(text, "0X")) {
      uint64_t bits = 0;
      *ok = absl::SimpleHexAtoi(text.substr(2), &bits);
      return bits;
    }
    int64_t value = 0;
    if (absl::SimpleAtoi(text, &value)) {
      return static_cast<uint64_t>(value);
    }
    uint64_t unsignedValue = 0;
    if (absl::SimpleAtoi(text, &unsignedValue)) {
      return unsignedValue;
    }
    *ok = false;
    return 0;
  }

  Operand operand(absl::string_view text) {
    Operand o;
    text = absl::StripAsciiWhitespace(text);
    if (text.empty()) {
      error("empty operand");
    }
    if (text == "_") {
      o.kind = OperandKind::Sink;
      return o;
    }
    if (text[0] == '[') {
      o.kind = OperandKind::Addr;
      absl::string_view inner = text.substr(1);
      if (!absl::ConsumeSuffix(&inner, "]")) {
        error(absl::StrCat("bad address ", text));
      }
      absl::string_view base = inner;
      size_t plus = inner.find('+');
      if (plus != absl::string_view::npos) {
        base = inner.substr(0, plus);
        bool ok = false;
        o.offset = static_cast<int64_t>(
            immediate(absl::StripAsciiWhitespace(inner.substr(plus + 1)), &ok));
        if (!ok) {
          error(absl::StrCat("bad address offset in ", text));
        }
      }
      base = absl::StripAsciiWhitespace(base);
      if (!base.empty() && base[0] == '%') {
        o.reg = reg(base);
      } else if (auto p = paramOffsets_.find(std::string(base));
                 p != paramOffsets_.end()) {
        o.paramBase = true;
        o.imm = static_cast<uint64_t>(p->second);
      } else if (auto s = sharedOffsets_.find(std::string(base));
                 s != sharedOffsets_.end()) {
        o.imm = static_cast<uint64_t>(s->second);
      } else {
        bool ok = false;
        o.imm = immediate(base, &ok);
        if (!ok) {
          error(absl::StrCat("unknown symbol in address ", text));
        }
      }
      return o;
    }
    if (text[0] == '{') {
      o.kind = OperandKind::Vec;
      absl::string_view inner = text.substr(1);
      if (!absl::ConsumeSuffix(&inner, "}")) {
        error(absl::StrCat("bad vector operand ", text));
      }
      for (absl::string_view element : absl::StrSplit(inner, ',')) {
        element = absl::StripAsciiWhitespace(element);
        if (element == "_") {
          o.regs.push_back(-1);
        } else if (!element.empty() &&
                   (element[0] == '%' ||
                    namedRegisters_.count(std::string(element)))) {
          o.regs.push_back(reg(element));
        } else {
          error(absl::StrCat("unsupported vector element '", element, "' in ",
                             text, " (registers and _ only)"));
        }
      }
      return o;
    }
    if (text[0] == '!') {
      o = operand(text.substr(1));
      o.negate = true;
      return o;
    }
    if (namedRegisters_.count(std::string(text))) {
      o.kind = OperandKind::Reg;
      o.reg = reg(text);
      return o;
    }
    if (text[0] == '%') {
      static const std::map<absl::string_view, Special> kSpecials = {
          {"%tid.x", Special::TidX},       {"%tid.y", Special::TidY},
          {"%tid.z", Special::TidZ},       {"%ntid.x", Special::NtidX},
          {"%ntid.y", Special::NtidY},     {"%ntid.z", Special::NtidZ},
          {"%ctaid.x", Special::CtaidX},   {"%ctaid.y", Special::CtaidY},
          {"%ctaid.z", Special::CtaidZ},   {"%nctaid.x", Special::NctaidX},
          {"%nctaid.y", Special::NctaidY}, {"%nctaid.z", Special::NctaidZ},
          {"%laneid", Special::Laneid},    {"%warpid", Special::Warpid},
      };
      if (auto found = kSpecials.find(text); found != kSpecials.end()) {
        o.kind = OperandKind::Special;
        o.special = found->second;
        return o;
      }
      size_t bar = text.find('|');
      o.kind = OperandKind::Reg;
      if (bar != absl::string_view::npos) {
        o.reg = reg(text.substr(0, bar));
        o.pair = reg(text.substr(bar + 1));
      } else {
        o.reg = reg(text);
      }
      return o;
    }
    bool ok = false;
    uint64_t value = immediate(text, &ok);
    if (ok) {
      o.kind = OperandKind::Imm;
      o.imm = value;
      return o;
    }
    if (auto s = sharedOffsets_.find(std::string(text));
        s != sharedOffsets_.end()) {
      o.kind = OperandKind::Imm; // a shared variable's address: its offset
      o.imm = static_cast<uint64_t>(s->second);
      return o;
    }
    o.kind = OperandKind::Label;
    o.label = std::string(text);
    return o;
  }

  std::vector<absl::string_view> splitOperands(absl::string_view text) {
    std::vector<absl::string_view> out;
    int depth = 0;
    size_t start = 0;
    for (size_t i = 0; i < text.size(); ++i) {
      char c = text[i];
      if (c == '{' || c == '[') {
        ++depth;
      } else if (c == '}' || c == ']') {
        --depth;
      } else if (c == ',' && depth == 0) {
        out.push_back(text.substr(start, i - start));
        start = i + 1;
      }
    }
    if (start < text.size()) {
      out.push_back(text.substr(start));
    }
    return out;
  }

  void instruction(absl::string_view statement) {
    Inst inst;
    inst.text = std::string(statement);
    inst.line = line_;
    if (statement[0] == '@') {
      size_t space = statement.find_first_of(" \t");
      absl::string_view guard = statement.substr(1, space - 1);
      if (!guard.empty() && guard[0] == '!') {
        inst.guardNegate = true;
        guard.remove_prefix(1);
      }
      inst.guard = reg(guard);
      statement = absl::StripAsciiWhitespace(statement.substr(space));
    }
    size_t space = statement.find_first_of(" \t");
    absl::string_view opcode = statement.substr(0, space);
    absl::string_view rest =
        space == absl::string_view::npos ? "" : statement.substr(space + 1);
    std::vector<absl::string_view> parts = absl::StrSplit(opcode, '.');
    decodeOpcode(inst, parts);
    for (absl::string_view text : splitOperands(rest)) {
      inst.ops.push_back(operand(text));
    }
    kernel_->code.push_back(std::move(inst));
  }

  void decodeOpcode(Inst &inst, const std::vector<absl::string_view> &parts) {
    static const std::map<absl::string_view, Op> kOps = {
        {"add", Op::Add},     {"sub", Op::Sub},   {"mul", Op::Mul},
        {"mad", Op::Mad},     {"fma", Op::Fma},   {"div", Op::Div},
        {"rem", Op::Rem},     {"abs", Op::Abs},   {"neg", Op::Neg},
        {"min", Op::Min},     {"max", Op::Max},   {"and", Op::And},
        {"or", Op::Or},       {"xor", Op::Xor},   {"not", Op::Not},
        {"cnot", Op::Cnot},   {"shl", Op::Shl},   {"shr", Op::Shr},
        {"bfe", Op::Bfe},     {"bfi", Op::Bfi},   {"popc", Op::Popc},
        {"clz", Op::Clz},     {"brev", Op::Brev}, {"prmt", Op::Prmt},
        {"setp", Op::Setp},   {"selp", Op::Selp}, {"mov", Op::Mov},
        {"cvt", Op::Cvt},     {"cvta", Op::Cvta}, {"ld", Op::Ld},
        {"st", Op::St},       {"bra", Op::Bra},   {"ret", Op::Ret},
        {"exit", Op::Ret},    {"bar", Op::Bar},   {"barrier", Op::Bar},
        {"shfl", Op::Shfl},   {"vote", Op::Vote}, {"mma", Op::Mma},
        {"ex2", Op::Ex2},     {"lg2", Op::Lg2},   {"sqrt", Op::Sqrt},
        {"rsqrt", Op::Rsqrt}, {"rcp", Op::Rcp},   {"sin", Op::Sin},
        {"cos", Op::Cos},     {"tanh", Op::Tanh}, {"copysign", Op::Copysign},
        {"testp", Op::Testp}, {"atom", Op::Atom}, {"red", Op::Red},
    };
    auto found = kOps.find(parts[0]);
    if (found == kOps.end()) {
      error(absl::StrCat("unsupported instruction ", parts[0], " (", inst.text,
                         ")"));
    }
    inst.op = found->second;
    std::vector<Type> types;
    for (size_t i = 1; i < parts.size(); ++i) {
      absl::string_view m = parts[i];
      if (auto type = parseType(m)) {
        types.push_back(*type);
        continue;
      }
      if (m == "global") {
        inst.space = Space::Global;
      } else if (m == "shared") {
        inst.space = Space::Shared;
      } else if (m == "param") {
        inst.space = Space::Param;
      } else if (m == "local") {
        inst.space = Space::Local;
      } else if (m == "const") {
        inst.space = Space::Const;
      } else if (m == "to") {
        inst.toSpace = true;
      } else if (m == "v2") {
        inst.vec = 2;
      } else if (m == "v4") {
        inst.vec = 4;
      } else if (m == "rn") {
        inst.round = Round::Rn;
      } else if (m == "rz") {
        inst.round = Round::Rz;
      } else if (m == "rm") {
        inst.round = Round::Rm;
      } else if (m == "rp") {
        inst.round = Round::Rp;
      } else if (m == "rni") {
        inst.round = Round::Rni;
      } else if (m == "rzi") {
        inst.round = Round::Rzi;
      } else if (m == "rmi") {
        inst.round = Round::Rmi;
      } else if (m == "rpi") {
        inst.round = Round::Rpi;
      } else if (m == "ftz") {
        inst.ftz = true;
      } else if (m == "sat") {
        inst.sat = true;
      } else if (m == "approx" || m == "full") {
        inst.approx = true;
      } else if (m == "wide") {
        inst.wide = true;
      } else if (m == "hi" && inst.op != Op::Setp) {
        inst.hi = true;
      } else if (m == "lo" && inst.op != Op::Setp) {
      } else if (inst.op == Op::Setp &&
                 (m == "and" || m == "or" || m == "xor") && !inst.cmp.empty()) {
        inst.boolOp = std::string(m);
      } else if ((m == "uni" && inst.op != Op::Vote) || m == "sync" ||
                 m == "aligned" || m == "nc" || m == "ptr" || m == "row" ||
                 m == "col" || m == "m16n8k16" || m == "relaxed" ||
                 m == "gpu" || m == "cta" || m == "sys" || m == "ca" ||
                 m == "cg" || m == "cs" || m == "lu" || m == "cv" ||
                 m == "wb" || m == "wt") {
      } else if (inst.op == Op::Setp || inst.op == Op::Shfl ||
                 inst.op == Op::Vote || inst.op == Op::Atom ||
                 inst.op == Op::Red || inst.op == Op::Testp) {
        if (!inst.cmp.empty()) {
          error(absl::StrCat("unsupported modifier .", m, " in ", inst.text));
        }
        inst.cmp = std::string(m);
      } else {
        error(absl::StrCat("unsupported modifier .", m, " in ", inst.text));
      }
    }
    if (inst.op == Op::Mma) {
      // mma.sync.aligned.m16n8k16.row.col.<d>.<a>.<b>.<c>
      if (std::find(parts.begin(), parts.end(), "m16n8k16") == parts.end() ||
          types.size() != 4 || types[0].kind != TypeKind::F ||
          types[0].bits != 32 || types[3].bits != 32 || types[1].bits != 16 ||
          types[1].bf16 != types[2].bf16 || types[2].bits != 16) {
        error(absl::StrCat("unsupported mma form (only m16n8k16 row.col with "
                           "f16/bf16 inputs and f32 accumulators): ",
                           inst.text));
      }
      inst.type = types[0];
      inst.type2 = types[1];
      return;
    }
    if (inst.op == Op::Cvt) {
      if (types.size() != 2) {
        error(absl::StrCat("cvt needs two types: ", inst.text));
      }
      inst.type = types[0];
      inst.type2 = types[1];
      return;
    }
    if (!types.empty()) {
      inst.type = types.back();
    }
  }

  void finishKernel() {
    for (Inst &inst : kernel_->code) {
      if (inst.op == Op::Bra) {
        if (inst.ops.size() != 1 || inst.ops[0].kind != OperandKind::Label) {
          fail(
              absl::StrCat("PTX line ", inst.line, ": bad branch ", inst.text));
        }
        auto found = labels_.find(inst.ops[0].label);
        if (found == labels_.end()) {
          fail(absl::StrCat("PTX line ", inst.line, ": unknown label ",
                            inst.ops[0].label));
        }
        inst.target = found->second;
        continue;
      }
      for (const Operand &o : inst.ops) {
        if (o.kind == OperandKind::Label) {
          fail(absl::StrCat("PTX line ", inst.line, ": unknown symbol ",
                            o.label, " in ", inst.text));
        }
      }
    }
    // A kernel that runs off its end returns.
    Inst ret;
    ret.op = Op::Ret;
    ret.text = "ret (end of kernel)";
    kernel_->code.push_back(ret);
    kernels_.push_back(std::move(kernel_));
    registers_.clear();
    namedRegisters_.clear();
    registerRanges_.clear();
    declaredRegisters_.clear();
    labels_.clear();
    paramOffsets_.clear();
    sharedOffsets_.clear();
    inBody_ = false;
  }

  absl::string_view text_;
  int line_ = 0;
  bool inBlockComment_ = false;
  std::unique_ptr<Kernel> kernel_;
  bool inParams_ = false;
  bool inBody_ = false;
  int depth_ = 0;
  std::unordered_map<std::string, int> registers_;
  std::set<std::string> namedRegisters_;
  /// Declared registers: ranges (%r<N>) and single names with '%'.
  std::map<std::string, int64_t> registerRanges_;
  std::set<std::string> declaredRegisters_;

  bool declared(absl::string_view name) const {
    if (declaredRegisters_.count(std::string(name))) {
      return true;
    }
    size_t digits = name.size();
    while (digits > 0 && absl::ascii_isdigit(name[digits - 1])) {
      --digits;
    }
    if (digits == name.size()) {
      return false;
    }
    auto range = registerRanges_.find(std::string(name.substr(0, digits)));
    int64_t index = 0;
    return range != registerRanges_.end() &&
           absl::SimpleAtoi(name.substr(digits), &index) &&
           index < range->second;
  }
  std::string pending_; ///< an instruction continued on the next line
  std::unordered_map<std::string, int> labels_;
  std::unordered_map<std::string, int64_t> paramOffsets_;
  std::unordered_map<std::string, int64_t> sharedOffsets_;
  std::vector<std::unique_ptr<Kernel>> kernels_;
};

//===----------------------------------------------------------------------===//
// Numbers
//===----------------------------------------------------------------------===//

template <class To, class From> To bitCast(const From &from) {
  static_assert(sizeof(To) == sizeof(From));
  To to;
  std::memcpy(&to, &from, sizeof(To));
  return to;
}

uint64_t maskOf(int bits) {
  return bits >= 64 ? ~uint64_t{0} : (uint64_t{1} << bits) - 1;
}
int64_t signExtend(uint64_t value, int bits) {
  if (bits >= 64) {
    return static_cast<int64_t>(value);
  }
  uint64_t sign = uint64_t{1} << (bits - 1);
  value &= maskOf(bits);
  return static_cast<int64_t>((value ^ sign) - sign);
}
float asF32(uint64_t bits) {
  return bitCast<float>(static_cast<uint32_t>(bits));
}
double asF64(uint64_t bits) { return bitCast<double>(bits); }
uint64_t bitsOf(float value) { return bitCast<uint32_t>(value); }
uint64_t bitsOf(double value) { return bitCast<uint64_t>(value); }

float flushF32(float x) {
  return std::fpclassify(x) == FP_SUBNORMAL ? std::copysign(0.0f, x) : x;
}

float bf16ToF32(uint16_t bits) {
  return bitCast<float>(static_cast<uint32_t>(bits) << 16);
}
float f16ToF32(uint16_t h) {
  uint32_t sign = (h >> 15) & 1, exponent = (h >> 10) & 0x1f,
           mantissa = h & 0x3ff;
  float magnitude;
  if (exponent == 0) {
    magnitude = std::ldexp(static_cast<float>(mantissa), -24);
  } else if (exponent == 31) {
    magnitude = mantissa ? std::numeric_limits<float>::quiet_NaN()
                         : std::numeric_limits<float>::infinity();
  } else {
    magnitude =
        std::ldexp(static_cast<float>(mantissa | 0x400), int(exponent) - 25);
  }
  return sign ? -magnitude : magnitude;
}
/// `x` rounded once, to nearest even, to f16 or bf16 (subnormals included;
/// NaN gives the canonical 0x7fff). Every f32, and every result of the
/// 16-bit arithmetic computed exactly in double, rounds correctly here.
uint16_t toHalf16(double x, bool bf16) {
  const int mantissa = bf16 ? 7 : 10; // stored fraction bits
  const int bias = bf16 ? 127 : 15;
  const int maxBiased = bf16 ? 255 : 31; // all ones: inf / NaN
  if (std::isnan(x)) {
    return 0x7fff;
  }
  const uint16_t sign = std::signbit(x) ? 0x8000 : 0;
  const double a = std::fabs(x);
  if (a == 0) {
    return sign;
  }
  if (std::isinf(a)) {
    return sign | static_cast<uint16_t>(maxBiased << mantissa);
  }
  const int minExponent = 1 - bias; // of the smallest normal
  int exponent = 0;
  std::frexp(a, &exponent); // a = f * 2^exponent, f in [0.5, 1)
  --exponent;               // a in [2^exponent, 2^(exponent + 1))
  // The spacing of the format at a; nearbyint rounds ties to even.
  int quantum = std::max(exponent, minExponent) - mantissa;
  double rounded = std::ldexp(std::nearbyint(std::ldexp(a, -quantum)), quantum);
  if (rounded == 0) { // below half the smallest subnormal
    return sign;
  }
  std::frexp(rounded, &exponent);
  --exponent;
  if (exponent < minExponent) { // subnormal
    return sign |
           static_cast<uint16_t>(std::ldexp(rounded, mantissa - minExponent));
  }
  if (exponent + bias >= maxBiased) {
    return sign | static_cast<uint16_t>(maxBiased << mantissa);
  }
  uint16_t fraction = static_cast<uint16_t>(
      std::ldexp(rounded, mantissa - exponent) - std::ldexp(1.0, mantissa));
  return sign | static_cast<uint16_t>((exponent + bias) << mantissa) | fraction;
}
uint16_t f32ToBf16(float value) { return toHalf16(value, true); }
uint16_t f32ToF16(float value) { return toHalf16(value, false); }

float half16ToF32(uint16_t bits, bool bf16) {
  return bf16 ? bf16ToF32(bits) : f16ToF32(bits);
}

/// Sets the rounding mode of one float operation.
class RoundingScope {
public:
  explicit RoundingScope(Round round) {
    int mode = FE_TONEAREST;
    switch (round) {
    case Round::Rz:
      mode = FE_TOWARDZERO;
      break;
    case Round::Rm:
      mode = FE_DOWNWARD;
      break;
    case Round::Rp:
      mode = FE_UPWARD;
      break;
    default:
      break;
    }
    if (mode != FE_TONEAREST) {
      saved_ = std::fegetround();
      std::fesetround(mode);
      active_ = true;
    }
  }
  ~RoundingScope() {
    if (active_) {
      std::fesetround(saved_);
    }
  }

private:
  int saved_ = FE_TONEAREST;
  bool active_ = false;
};

double roundToInteger(double x, Round round) {
  switch (round) {
  case Round::Rzi:
    return std::trunc(x);
  case Round::Rmi:
    return std::floor(x);
  case Round::Rpi:
    return std::ceil(x);
  default:
    return std::nearbyint(x); // rni: nearest even
  }
}

//===----------------------------------------------------------------------===//
// The interpreter
//===----------------------------------------------------------------------===//

enum class State : uint8_t { Ready, AtBarrier, AtCollective, Exited };

struct Thread {
  std::vector<uint64_t> regs;
  int pc = 0;
  State state = State::Ready;
  unsigned tid[3] = {0, 0, 0};
  unsigned linear = 0;
  /// Barriers this thread has passed.
  uint64_t barriers = 0;
};

class Block {
public:
  Block(const Kernel &kernel, Dim3 grid, Dim3 block, const Memory &memory,
        const std::vector<uint8_t> &params, std::vector<uint8_t> &shared)
      : kernel_(kernel), grid_(grid), block_(block), memory_(memory),
        params_(params), shared_(shared) {
    unsigned count = block.x * block.y * block.z;
    threads_.resize(count);
    for (unsigned i = 0; i < count; ++i) {
      Thread &t = threads_[i];
      t.regs.assign(static_cast<size_t>(kernel.registers), 0);
      t.linear = i;
      t.tid[0] = i % block.x;
      t.tid[1] = (i / block.x) % block.y;
      t.tid[2] = i / (block.x * block.y);
    }
  }

  void run(unsigned cx, unsigned cy, unsigned cz) {
    ctaid_[0] = cx;
    ctaid_[1] = cy;
    ctaid_[2] = cz;
    std::fill(shared_.begin(), shared_.end(), 0xff);
    for (Thread &t : threads_) {
      t.pc = 0;
      t.state = State::Ready;
      t.barriers = 0;
      std::fill(t.regs.begin(), t.regs.end(), 0);
    }
    while (true) {
      for (Thread &t : threads_) {
        if (t.state == State::Ready) {
          runThread(t);
        }
      }
      bool progressed = false;
      const unsigned warps = (static_cast<unsigned>(threads_.size()) + 31) / 32;
      for (unsigned w = 0; w < warps; ++w) {
        progressed |= tryCollective(w);
      }
      if (progressed) {
        continue;
      }
      bool anyLive = false, allAtBarrier = true;
      for (const Thread &t : threads_) {
        if (t.state == State::Exited) {
          continue;
        }
        anyLive = true;
        if (t.state != State::AtBarrier) {
          allAtBarrier = false;
        }
      }
      if (!anyLive) {
        return;
      }
      if (allAtBarrier) {
        openBarrier();
        continue;
      }
      deadlock();
    }
  }

private:
  /// Every live thread waits at a barrier. A thread that exited without
  /// reaching it is an error (a barrier in divergent code: undefined on a
  /// GPU, where it may hang or pass).
  void openBarrier() {
    uint64_t generation = 0;
    for (const Thread &t : threads_) {
      if (t.state == State::AtBarrier) {
        generation = t.barriers;
        break;
      }
    }
    for (const Thread &t : threads_) {
      if (t.state == State::Exited && t.barriers <= generation) {
        const Thread *waiting = nullptr;
        for (const Thread &w : threads_) {
          if (w.state == State::AtBarrier) {
            waiting = &w;
            break;
          }
        }
        fail(absl::StrCat(
            "kernel ", kernel_.name, ", block ", blockName(), ": thread ",
            t.linear, " exited without reaching the barrier at PTX line ",
            kernel_.code[waiting->pc].line, " that thread ", waiting->linear,
            " waits at (a barrier in divergent code)"));
      }
    }
    for (Thread &t : threads_) {
      if (t.state == State::AtBarrier) {
        t.state = State::Ready;
        ++t.barriers;
        ++t.pc;
      }
    }
  }

  [[noreturn]] void deadlock() {
    std::string where;
    for (const Thread &t : threads_) {
      if (t.state == State::Exited) {
        continue;
      }
      absl::StrAppend(&where, "\n  thread ", t.linear, ": ",
                      t.state == State::AtBarrier ? "barrier" : "collective",
                      " at '", kernel_.code[t.pc].text, "'");
      if (where.size() > 2000) {
        absl::StrAppend(&where, "\n  ...");
        break;
      }
    }
    fail(absl::StrCat("deadlock in block ", blockName(),
                      ": live threads wait "
                      "at different barriers or collectives:",
                      where));
  }

  std::string blockName() const {
    return absl::StrCat("(", ctaid_[0], ",", ctaid_[1], ",", ctaid_[2], ")");
  }

  [[noreturn]] void error(const Thread &t, const Inst &inst,
                          const std::string &what) {
    fail(absl::StrCat("kernel ", kernel_.name, ", block ", blockName(),
                      ", thread (", t.tid[0], ",", t.tid[1], ",", t.tid[2],
                      "), PTX line ", inst.line, " '", inst.text, "': ", what));
  }

  uint64_t special(const Thread &t, Special s) const {
    switch (s) {
    case Special::TidX:
      return t.tid[0];
    case Special::TidY:
      return t.tid[1];
    case Special::TidZ:
      return t.tid[2];
    case Special::NtidX:
      return block_.x;
    case Special::NtidY:
      return block_.y;
    case Special::NtidZ:
      return block_.z;
    case Special::CtaidX:
      return ctaid_[0];
    case Special::CtaidY:
      return ctaid_[1];
    case Special::CtaidZ:
      return ctaid_[2];
    case Special::NctaidX:
      return grid_.x;
    case Special::NctaidY:
      return grid_.y;
    case Special::NctaidZ:
      return grid_.z;
    case Special::Laneid:
      return t.linear % 32;
    case Special::Warpid:
      return t.linear / 32;
    }
    return 0;
  }

  uint64_t read(const Thread &t, const Inst &inst, size_t i) {
    if (i >= inst.ops.size()) {
      error(t, inst, absl::StrCat("missing operand ", i));
    }
    const Operand &o = inst.ops[i];
    uint64_t value = 0;
    switch (o.kind) {
    case OperandKind::Reg:
      value = t.regs[o.reg];
      break;
    case OperandKind::Imm:
      value = o.imm;
      break;
    case OperandKind::Special:
      value = special(t, o.special);
      break;
    default:
      error(t, inst, absl::StrCat("operand ", i, " is not a value"));
    }
    return o.negate ? (value ^ 1) & 1 : value;
  }

  void write(Thread &t, const Inst &inst, size_t i, uint64_t value) {
    const Operand &o = inst.ops.at(i);
    if (o.kind == OperandKind::Sink) {
      return;
    }
    if (o.kind != OperandKind::Reg) {
      error(t, inst, absl::StrCat("operand ", i, " is not a register"));
    }
    t.regs[o.reg] = value;
  }

  float f32(const Thread &t, const Inst &inst, size_t i) {
    float x = asF32(read(t, inst, i));
    return inst.ftz ? flushF32(x) : x;
  }
  double f64(const Thread &t, const Inst &inst, size_t i) {
    return asF64(read(t, inst, i));
  }

  uint64_t finishF32(const Inst &inst, float x) {
    if (inst.sat) {
      x = std::isnan(x) ? 0.0f : std::clamp(x, 0.0f, 1.0f);
    }
    if (inst.ftz) {
      x = flushF32(x);
    }
    return bitsOf(x);
  }

  /// The host address an ld/st/atom accesses, checked against its space.
  uint8_t *address(const Thread &t, const Inst &inst, size_t i, size_t bytes,
                   bool store) {
    const Operand &o = inst.ops.at(i);
    if (o.kind != OperandKind::Addr) {
      error(t, inst, "expected an address operand");
    }
    uint64_t base = o.reg >= 0 ? t.regs[o.reg] : o.imm;
    uint64_t addr = base + static_cast<uint64_t>(o.offset);
    const char *access = store ? "store" : "load";
    switch (inst.space) {
    case Space::Param:
      if (store || !o.paramBase || addr + bytes > params_.size()) {
        error(t, inst, "bad parameter access");
      }
      return const_cast<uint8_t *>(params_.data()) + addr;
    case Space::Shared:
      if (addr + bytes > shared_.size() || addr > shared_.size()) {
        error(t, inst,
              absl::StrCat("shared ", access, " of ", bytes,
                           " bytes at offset ", addr, " outside the block's ",
                           shared_.size(), " bytes of shared memory"));
      }
      return shared_.data() + addr;
    case Space::Global:
      if (!memory_.contains(addr, bytes)) {
        error(t, inst,
              absl::StrCat("global ", access, " of ", bytes, " bytes at 0x",
                           absl::Hex(addr), " outside every allocation"));
      }
      return reinterpret_cast<uint8_t *>(addr);
    case Space::Generic: {
      uint64_t sharedStart = reinterpret_cast<uint64_t>(shared_.data());
      if (addr >= sharedStart && addr + bytes <= sharedStart + shared_.size()) {
        return reinterpret_cast<uint8_t *>(addr);
      }
      if (!memory_.contains(addr, bytes)) {
        error(t, inst,
              absl::StrCat("generic ", access, " of ", bytes, " bytes at 0x",
                           absl::Hex(addr),
                           " outside every allocation and the "
                           "shared memory"));
      }
      return reinterpret_cast<uint8_t *>(addr);
    }
    default:
      error(t, inst, "unsupported state space");
    }
  }

  void runThread(Thread &t) {
    // A thread runs until it blocks or exits; a runaway loop is an error.
    for (uint64_t steps = 0;; ++steps) {
      if (steps > (uint64_t{1} << 32)) {
        error(t, kernel_.code[t.pc],
              "more than 2^32 instructions in one "
              "thread without blocking");
      }
      const Inst &inst = kernel_.code[static_cast<size_t>(t.pc)];
      if (inst.guard >= 0) {
        bool taken = (t.regs[inst.guard] & 1) != 0;
        if (taken == inst.guardNegate) {
          ++t.pc;
          continue;
        }
      }
      switch (inst.op) {
      case Op::Bra:
        t.pc = inst.target;
        continue;
      case Op::Ret:
        t.state = State::Exited;
        return;
      case Op::Bar:
        t.state = State::AtBarrier;
        return;
      case Op::Shfl:
      case Op::Vote:
      case Op::Mma:
        t.state = State::AtCollective;
        return;
      default:
        execute(t, inst);
        ++t.pc;
      }
    }
  }

  bool tryCollective(unsigned warp) {
    unsigned begin = warp * 32;
    unsigned end =
        std::min<unsigned>(begin + 32, static_cast<unsigned>(threads_.size()));
    int pc = -1;
    for (unsigned i = begin; i < end; ++i) {
      const Thread &t = threads_[i];
      if (t.state == State::Exited) {
        continue;
      }
      if (t.state != State::AtCollective) {
        return false;
      }
      if (pc >= 0 && t.pc != pc) {
        return false;
      }
      pc = t.pc;
    }
    if (pc < 0) {
      return false;
    }
    const Inst &inst = kernel_.code[static_cast<size_t>(pc)];
    std::vector<Thread *> lanes(32, nullptr);
    for (unsigned i = begin; i < end; ++i) {
      if (threads_[i].state == State::AtCollective) {
        lanes[i - begin] = &threads_[i];
      }
    }
    switch (inst.op) {
    case Op::Shfl:
      shuffle(inst, lanes);
      break;
    case Op::Vote:
      vote(inst, lanes);
      break;
    case Op::Mma:
      mma(inst, lanes);
      break;
    default:
      break;
    }
    for (Thread *t : lanes) {
      if (t) {
        t->state = State::Ready;
        ++t->pc;
      }
    }
    return true;
  }

  void shuffle(const Inst &inst, const std::vector<Thread *> &lanes) {
    // shfl.sync.mode.b32 d[|p], a, b, c, membermask
    std::vector<uint64_t> values(32, 0);
    for (unsigned lane = 0; lane < 32; ++lane) {
      if (lanes[lane]) {
        values[lane] = read(*lanes[lane], inst, 1) & 0xffffffffu;
      }
    }
    for (unsigned lane = 0; lane < 32; ++lane) {
      Thread *t = lanes[lane];
      if (!t) {
        continue;
      }
      // The ISA uses b[4:0] (an out-of-range b still names a lane).
      uint32_t b = static_cast<uint32_t>(read(*t, inst, 2)) & 0x1f;
      uint32_t c = static_cast<uint32_t>(read(*t, inst, 3));
      uint32_t mask = static_cast<uint32_t>(read(*t, inst, 4));
      uint32_t clamp = c & 0x1f, segmask = (c >> 8) & 0x1f;
      uint32_t maxLane = (lane & segmask) | (clamp & ~segmask);
      uint32_t minLane = lane & segmask;
      int64_t j = lane;
      bool valid = false;
      if (inst.cmp == "up") {
        j = int64_t(lane) - b;
        valid = j >= int64_t(maxLane);
      } else if (inst.cmp == "down") {
        j = int64_t(lane) + b;
        valid = j <= int64_t(maxLane);
      } else if (inst.cmp == "bfly") {
        j = lane ^ b;
        valid = j <= int64_t(maxLane);
      } else if (inst.cmp == "idx") {
        j = minLane | (b & ~segmask);
        valid = j <= int64_t(maxLane);
      } else {
        error(*t, inst, "unknown shuffle mode");
      }
      if (!valid) {
        j = lane;
      }
      if (!(mask >> j & 1) || !lanes[j]) {
        error(*t, inst,
              absl::StrCat("lane ", lane, " reads lane ", j,
                           ", which is not in the member mask or "
                           "has exited"));
      }
      const Operand &d = inst.ops[0];
      t->regs[d.reg] = values[j];
      if (d.pair >= 0) {
        t->regs[d.pair] = valid ? 1 : 0;
      }
    }
  }

  void vote(const Inst &inst, const std::vector<Thread *> &lanes) {
    uint32_t ballot = 0;
    for (unsigned lane = 0; lane < 32; ++lane) {
      if (lanes[lane] && (read(*lanes[lane], inst, 1) & 1)) {
        ballot |= 1u << lane;
      }
    }
    uint32_t live = 0;
    for (unsigned lane = 0; lane < 32; ++lane) {
      if (lanes[lane]) {
        live |= 1u << lane;
      }
    }
    for (unsigned lane = 0; lane < 32; ++lane) {
      Thread *t = lanes[lane];
      if (!t) {
        continue;
      }
      // all/any/uni are over the non-exited lanes of the member mask.
      uint32_t mask = static_cast<uint32_t>(read(*t, inst, 2)) & live;
      if (inst.cmp == "ballot") {
        write(*t, inst, 0, ballot & mask);
      } else if (inst.cmp == "all") {
        write(*t, inst, 0, (ballot & mask) == mask ? 1 : 0);
      } else if (inst.cmp == "any") {
        write(*t, inst, 0, (ballot & mask) != 0 ? 1 : 0);
      } else if (inst.cmp == "uni") {
        write(*t, inst, 0, (ballot & mask) == 0 || (ballot & mask) == mask);
      } else {
        error(*t, inst, "unsupported vote mode");
      }
    }
  }

  /// mma.sync.aligned.m16n8k16.row.col.f32.{bf16,f16}.{bf16,f16}.f32
  /// d{4}, a{4}, b{2}, c{4}: the fragment layouts of the PTX ISA
  /// ("Matrix Fragments for mma.m16n8k16 with floating point type").
  void mma(const Inst &inst, const std::vector<Thread *> &lanes) {
    for (unsigned lane = 0; lane < 32; ++lane) {
      if (!lanes[lane]) {
        fail(absl::StrCat("kernel ", kernel_.name, ", PTX line ", inst.line,
                          ": mma.sync with lane ", lane, " exited"));
      }
    }
    const Operand &dOp = inst.ops.at(0), &aOp = inst.ops.at(1),
                  &bOp = inst.ops.at(2), &cOp = inst.ops.at(3);
    auto hasSink = [](const Operand &o) {
      return std::find(o.regs.begin(), o.regs.end(), -1) != o.regs.end();
    };
    if (dOp.regs.size() != 4 || aOp.regs.size() != 4 || bOp.regs.size() != 2 ||
        cOp.regs.size() != 4 || hasSink(aOp) || hasSink(bOp) || hasSink(cOp)) {
      error(*lanes[0], inst,
            "mma m16n8k16 expects {d x4}, {a x4}, {b x2}, {c x4}");
    }
    const bool bf16 = inst.type2.bf16;
    float A[16][16], B[16][8], C[16][8];
    for (unsigned lane = 0; lane < 32; ++lane) {
      const Thread &t = *lanes[lane];
      unsigned group = lane / 4, inGroup = lane % 4;
      for (int i = 0; i < 8; ++i) {
        uint32_t reg = static_cast<uint32_t>(t.regs[aOp.regs[i / 2]]);
        uint16_t half = static_cast<uint16_t>(i % 2 ? reg >> 16 : reg);
        unsigned row = group + ((i % 4) >= 2 ? 8 : 0);
        unsigned col = inGroup * 2 + (i % 2) + (i >= 4 ? 8 : 0);
        A[row][col] = half16ToF32(half, bf16);
      }
      for (int i = 0; i < 4; ++i) {
        uint32_t reg = static_cast<uint32_t>(t.regs[bOp.regs[i / 2]]);
        uint16_t half = static_cast<uint16_t>(i % 2 ? reg >> 16 : reg);
        unsigned row = inGroup * 2 + (i % 2) + (i >= 2 ? 8 : 0);
        B[row][group] = half16ToF32(half, bf16);
      }
      for (int i = 0; i < 4; ++i) {
        unsigned row = group + (i >= 2 ? 8 : 0);
        unsigned col = inGroup * 2 + (i % 2);
        C[row][col] = asF32(t.regs[cOp.regs[i]]);
      }
    }
    for (unsigned lane = 0; lane < 32; ++lane) {
      Thread &t = *lanes[lane];
      unsigned group = lane / 4, inGroup = lane % 4;
      for (int i = 0; i < 4; ++i) {
        unsigned row = group + (i >= 2 ? 8 : 0);
        unsigned col = inGroup * 2 + (i % 2);
        // Products of 16-bit inputs are exact in f32; the sum is rounded
        // once, in double, which is at least as accurate as the hardware.
        double sum = C[row][col];
        for (int k = 0; k < 16; ++k) {
          sum += static_cast<double>(A[row][k]) * B[k][col];
        }
        if (dOp.regs[i] >= 0) {
          t.regs[dOp.regs[i]] = bitsOf(static_cast<float>(sum));
        }
      }
    }
  }

  void execute(Thread &t, const Inst &inst);
  void executeInteger(Thread &t, const Inst &inst);
  void executeFloat(Thread &t, const Inst &inst);
  void executeSetp(Thread &t, const Inst &inst);
  void executeCvt(Thread &t, const Inst &inst);
  void executeMemory(Thread &t, const Inst &inst);

  const Kernel &kernel_;
  Dim3 grid_, block_;
  const Memory &memory_;
  const std::vector<uint8_t> &params_;
  std::vector<uint8_t> &shared_;
  std::vector<Thread> threads_;
  unsigned ctaid_[3] = {0, 0, 0};
};

void Block::execute(Thread &t, const Inst &inst) {
  switch (inst.op) {
  case Op::Ld:
  case Op::St:
  case Op::Atom:
  case Op::Red:
    executeMemory(t, inst);
    return;
  case Op::Setp:
    executeSetp(t, inst);
    return;
  case Op::Cvt:
    executeCvt(t, inst);
    return;
  case Op::Selp:
    write(t, inst, 0,
          (read(t, inst, 3) & 1) ? read(t, inst, 1) : read(t, inst, 2));
    return;
  case Op::Mov: {
    const Operand &d = inst.ops.at(0), &s = inst.ops.at(1);
    if (s.kind == OperandKind::Vec) { // pack
      int each = inst.type.bits / static_cast<int>(s.regs.size());
      uint64_t value = 0;
      for (size_t i = 0; i < s.regs.size(); ++i) {
        uint64_t part = s.regs[i] >= 0 ? t.regs[s.regs[i]] : 0;
        value |= (part & maskOf(each)) << (each * i);
      }
      write(t, inst, 0, value);
    } else if (d.kind == OperandKind::Vec) { // unpack
      int each = inst.type.bits / static_cast<int>(d.regs.size());
      uint64_t value = read(t, inst, 1);
      for (size_t i = 0; i < d.regs.size(); ++i) {
        if (d.regs[i] >= 0) {
          t.regs[d.regs[i]] = (value >> (each * i)) & maskOf(each);
        }
      }
    } else {
      write(t, inst, 0, read(t, inst, 1) & maskOf(inst.type.bits));
    }
    return;
  }
  case Op::Cvta: {
    uint64_t value = read(t, inst, 1);
    uint64_t sharedStart = reinterpret_cast<uint64_t>(shared_.data());
    if (inst.space == Space::Shared) {
      value = inst.toSpace ? value - sharedStart : value + sharedStart;
    } else if (inst.space != Space::Global) {
      error(t, inst, "cvta supports the global and shared spaces only");
    }
    write(t, inst, 0, value & maskOf(inst.type.bits));
    return;
  }
  default:
    break;
  }
  if (inst.type.kind == TypeKind::F) {
    executeFloat(t, inst);
  } else {
    executeInteger(t, inst);
  }
}

void Block::executeInteger(Thread &t, const Inst &inst) {
  const Type type = inst.type;
  const int w = type.bits;
  const bool isSigned = type.kind == TypeKind::S;
  auto u = [&](size_t i) { return read(t, inst, i) & maskOf(w); };
  auto s = [&](size_t i) { return signExtend(read(t, inst, i), w); };
  auto put = [&](uint64_t value) { write(t, inst, 0, value & maskOf(w)); };
  switch (inst.op) {
  case Op::Add:
    if (inst.sat && isSigned) {
      put(static_cast<uint64_t>(
          std::clamp<int64_t>(s(1) + s(2), std::numeric_limits<int32_t>::min(),
                              std::numeric_limits<int32_t>::max())));
    } else {
      put(u(1) + u(2));
    }
    return;
  case Op::Sub:
    if (inst.sat && isSigned) {
      put(static_cast<uint64_t>(
          std::clamp<int64_t>(s(1) - s(2), std::numeric_limits<int32_t>::min(),
                              std::numeric_limits<int32_t>::max())));
    } else {
      put(u(1) - u(2));
    }
    return;
  case Op::Mul:
  case Op::Mad: {
    uint64_t addend = inst.op == Op::Mad ? read(t, inst, 3) : 0;
    if (inst.wide) {
      uint64_t product =
          isSigned ? static_cast<uint64_t>(s(1) * s(2)) : u(1) * u(2);
      write(t, inst, 0, (product + addend) & maskOf(2 * w));
    } else if (inst.hi) {
      unsigned __int128 product;
      if (isSigned) {
        product =
            static_cast<unsigned __int128>(static_cast<__int128>(s(1)) * s(2));
      } else {
        product = static_cast<unsigned __int128>(u(1)) * u(2);
      }
      put(static_cast<uint64_t>(product >> w) + addend);
    } else {
      put(u(1) * u(2) + addend);
    }
    return;
  }
  case Op::Div:
  case Op::Rem: {
    if (u(2) == 0) {
      put(maskOf(w)); // unspecified on a GPU; no trap
      return;
    }
    if (isSigned) {
      int64_t a = s(1), b = s(2);
      if (b == -1) {
        put(inst.op == Op::Div ? static_cast<uint64_t>(-a) : 0);
        return;
      }
      put(static_cast<uint64_t>(inst.op == Op::Div ? a / b : a % b));
    } else {
      put(inst.op == Op::Div ? u(1) / u(2) : u(1) % u(2));
    }
    return;
  }
  case Op::Abs:
    put(static_cast<uint64_t>(std::llabs(s(1))));
    return;
  case Op::Neg:
    put(static_cast<uint64_t>(-s(1)));
    return;
  case Op::Min:
    put(isSigned ? static_cast<uint64_t>(std::min(s(1), s(2)))
                 : std::min(u(1), u(2)));
    return;
  case Op::Max:
    put(isSigned ? static_cast<uint64_t>(std::max(s(1), s(2)))
                 : std::max(u(1), u(2)));
    return;
  case Op::And:
    put(u(1) & u(2));
    return;
  case Op::Or:
    put(u(1) | u(2));
    return;
  case Op::Xor:
    put(u(1) ^ u(2));
    return;
  case Op::Not:
    put(~u(1));
    return;
  case Op::Cnot:
    put(u(1) == 0 ? 1 : 0);
    return;
  case Op::Shl: {
    uint64_t amount = read(t, inst, 2) & 0xffffffffu;
    put(amount >= static_cast<uint64_t>(w) ? 0 : u(1) << amount);
    return;
  }
  case Op::Shr: {
    uint64_t amount = read(t, inst, 2) & 0xffffffffu;
    if (isSigned) {
      put(static_cast<uint64_t>(s(1) >> std::min<uint64_t>(amount, w - 1)));
    } else {
      put(amount >= static_cast<uint64_t>(w) ? 0 : u(1) >> amount);
    }
    return;
  }
  case Op::Bfe: {
    // The ISA, bit by bit: d[i] = (i < len && pos + i <= msb) ? a[pos + i]
    // : sbit, sbit = signed && len > 0 ? a[min(pos + len - 1, msb)] : 0.
    uint64_t pos = read(t, inst, 2) & 0xff, len = read(t, inst, 3) & 0xff;
    uint64_t a = u(1), msb = static_cast<uint64_t>(w) - 1;
    uint64_t sbit =
        isSigned && len > 0 ? (a >> std::min(pos + len - 1, msb)) & 1 : 0;
    uint64_t d = 0;
    for (uint64_t i = 0; i <= msb; ++i) {
      uint64_t bit = (i < len && pos + i <= msb) ? (a >> (pos + i)) & 1 : sbit;
      d |= bit << i;
    }
    put(d);
    return;
  }
  case Op::Bfi: {
    uint64_t a = u(1), b = u(2);
    uint64_t pos = read(t, inst, 3) & 0xff, len = read(t, inst, 4) & 0xff;
    uint64_t fieldMask =
        (len >= 64 ? ~uint64_t{0} : maskOf(static_cast<int>(len)));
    if (pos < static_cast<uint64_t>(w)) {
      b = (b & ~(fieldMask << pos)) | ((a & fieldMask) << pos);
    }
    put(b);
    return;
  }
  case Op::Popc:
    write(t, inst, 0, __builtin_popcountll(u(1)));
    return;
  case Op::Clz:
    write(t, inst, 0, (u(1) == 0 ? 64 : __builtin_clzll(u(1))) - (64 - w));
    return;
  case Op::Brev: {
    uint64_t a = u(1), r = 0;
    for (int i = 0; i < w; ++i) {
      r |= ((a >> i) & 1) << (w - 1 - i);
    }
    put(r);
    return;
  }
  case Op::Prmt: {
    uint64_t bytes = (u(1) & 0xffffffffu) | ((u(2) & 0xffffffffu) << 32);
    uint32_t selector = static_cast<uint32_t>(read(t, inst, 3));
    uint32_t r = 0;
    for (int i = 0; i < 4; ++i) {
      uint32_t n = (selector >> (4 * i)) & 0xf;
      uint32_t byte = (bytes >> (8 * (n & 7))) & 0xff;
      if (n & 8) {
        byte = (byte & 0x80) ? 0xff : 0;
      }
      r |= byte << (8 * i);
    }
    write(t, inst, 0, r);
    return;
  }
  default:
    error(t, inst, "not an integer instruction (or an unsupported type)");
  }
}

/// The arithmetic f32 and f64 (and, through f32, f16/bf16) share, on operands
/// read by `in(i)`; nullopt for other ops.
template <class F, class In> std::optional<F> floatArithmetic(Op op, In in) {
  switch (op) {
  case Op::Add:
    return in(1) + in(2);
  case Op::Sub:
    return in(1) - in(2);
  case Op::Mul:
    return in(1) * in(2);
  case Op::Mad:
  case Op::Fma:
    return std::fma(in(1), in(2), in(3));
  case Op::Div:
    return in(1) / in(2);
  case Op::Abs:
    return std::fabs(in(1));
  case Op::Neg:
    return -in(1);
  case Op::Min:
    return std::fmin(in(1), in(2));
  case Op::Max:
    return std::fmax(in(1), in(2));
  case Op::Sqrt:
    return std::sqrt(in(1));
  case Op::Rsqrt:
    return F(1) / std::sqrt(in(1));
  case Op::Rcp:
    return F(1) / in(1);
  case Op::Copysign: // copysign.type d, a, b: b with the sign of a
    return std::copysign(in(2), in(1));
  default:
    return std::nullopt;
  }
}

/// testp.<property>: nullopt for an unknown property.
template <class F>
std::optional<bool> floatProperty(const std::string &property, F x) {
  if (property == "finite") {
    return std::isfinite(x);
  }
  if (property == "infinite") {
    return std::isinf(x);
  }
  if (property == "number") {
    return !std::isnan(x);
  }
  if (property == "notanumber") {
    return std::isnan(x);
  }
  if (property == "normal") { // zeros count as normal in the ISA
    return std::isnormal(x) || x == 0;
  }
  if (property == "subnormal") {
    return std::fpclassify(x) == FP_SUBNORMAL;
  }
  return std::nullopt;
}

void Block::executeFloat(Thread &t, const Inst &inst) {
  const int bits = inst.type.bits;
  if (inst.op == Op::Testp && (bits == 32 || bits == 64)) {
    std::optional<bool> r =
        bits == 32 ? floatProperty(inst.cmp, asF32(read(t, inst, 1)))
                   : floatProperty(inst.cmp, f64(t, inst, 1));
    if (!r) {
      error(t, inst, "unsupported testp");
    }
    write(t, inst, 0, *r ? 1 : 0);
    return;
  }
  if (bits == 32) {
    RoundingScope scope(inst.round);
    auto in = [&](size_t i) { return f32(t, inst, i); };
    std::optional<float> r = floatArithmetic<float>(inst.op, in);
    if (!r) {
      switch (inst.op) { // the approximate unary functions of f32 only
      case Op::Ex2:
        r = std::exp2(in(1));
        break;
      case Op::Lg2:
        r = std::log2(in(1));
        break;
      case Op::Sin:
        r = std::sin(in(1));
        break;
      case Op::Cos:
        r = std::cos(in(1));
        break;
      case Op::Tanh:
        r = std::tanh(in(1));
        break;
      default:
        break;
      }
    }
    if (r) {
      write(t, inst, 0, finishF32(inst, *r));
      return;
    }
  } else if (bits == 64) {
    RoundingScope scope(inst.round);
    auto in = [&](size_t i) { return f64(t, inst, i); };
    if (std::optional<double> r = floatArithmetic<double>(inst.op, in)) {
      write(t, inst, 0, bitsOf(*r));
      return;
    }
  } else if (bits == 16 && !inst.type.pair) {
    // Scalar f16/bf16 arithmetic in double (exact for add, sub, mul and fma
    // of 16-bit inputs), rounded once to the 16-bit type.
    bool bf16 = inst.type.bf16;
    auto in = [&](size_t i) -> double {
      return half16ToF32(static_cast<uint16_t>(read(t, inst, i)), bf16);
    };
    if (std::optional<double> r = floatArithmetic<double>(inst.op, in)) {
      write(t, inst, 0, toHalf16(*r, bf16));
      return;
    }
  }
  error(t, inst, "unsupported floating-point instruction or type");
}

void Block::executeSetp(Thread &t, const Inst &inst) {
  const Type type = inst.type;
  if (type.pair) {
    error(t, inst, "packed comparisons are not supported");
  }
  const std::string &c = inst.cmp;
  bool r = false;
  if (type.kind == TypeKind::F) {
    double a, b;
    if (type.bits == 32) {
      a = f32(t, inst, 1);
      b = f32(t, inst, 2);
    } else if (type.bits == 64) {
      a = f64(t, inst, 1);
      b = f64(t, inst, 2);
    } else {
      a = half16ToF32(static_cast<uint16_t>(read(t, inst, 1)), type.bf16);
      b = half16ToF32(static_cast<uint16_t>(read(t, inst, 2)), type.bf16);
    }
    bool unordered = std::isnan(a) || std::isnan(b);
    if (c == "eq") {
      r = !unordered && a == b;
    } else if (c == "ne") {
      r = !unordered && a != b;
    } else if (c == "lt") {
      r = !unordered && a < b;
    } else if (c == "le") {
      r = !unordered && a <= b;
    } else if (c == "gt") {
      r = !unordered && a > b;
    } else if (c == "ge") {
      r = !unordered && a >= b;
    } else if (c == "equ") {
      r = unordered || a == b;
    } else if (c == "neu") {
      r = unordered || a != b;
    } else if (c == "ltu") {
      r = unordered || a < b;
    } else if (c == "leu") {
      r = unordered || a <= b;
    } else if (c == "gtu") {
      r = unordered || a > b;
    } else if (c == "geu") {
      r = unordered || a >= b;
    } else if (c == "num") {
      r = !unordered;
    } else if (c == "nan") {
      r = unordered;
    } else {
      error(t, inst, "unsupported float comparison");
    }
  } else {
    const int w = type.bits;
    uint64_t ua = read(t, inst, 1) & maskOf(w),
             ub = read(t, inst, 2) & maskOf(w);
    int64_t sa = signExtend(ua, w), sb = signExtend(ub, w);
    bool isSigned = type.kind == TypeKind::S;
    if (c == "eq") {
      r = ua == ub;
    } else if (c == "ne") {
      r = ua != ub;
    } else if (c == "lt") {
      r = isSigned ? sa < sb : ua < ub;
    } else if (c == "le") {
      r = isSigned ? sa <= sb : ua <= ub;
    } else if (c == "gt") {
      r = isSigned ? sa > sb : ua > ub;
    } else if (c == "ge") {
      r = isSigned ? sa >= sb : ua >= ub;
    } else if (c == "lo") {
      r = ua < ub;
    } else if (c == "ls") {
      r = ua <= ub;
    } else if (c == "hi") {
      r = ua > ub;
    } else if (c == "hs") {
      r = ua >= ub;
    } else {
      error(t, inst, "unsupported integer comparison");
    }
  }
  bool q = !r;
  if (!inst.boolOp.empty()) {
    bool other = read(t, inst, 3) & 1;
    if (inst.boolOp == "and") {
      r = r && other;
      q = q && other;
    } else if (inst.boolOp == "or") {
      r = r || other;
      q = q || other;
    } else {
      r = r != other;
      q = q != other;
    }
  }
  const Operand &d = inst.ops.at(0);
  t.regs[d.reg] = r ? 1 : 0;
  if (d.pair >= 0) {
    t.regs[d.pair] = q ? 1 : 0;
  }
}

void Block::executeCvt(Thread &t, const Inst &inst) {
  const Type to = inst.type, from = inst.type2;
  if (to.pair) {
    // cvt.rn.{f16x2,bf16x2}.f32 d, a, b: a to the upper half, b the lower.
    if (from.kind != TypeKind::F || from.bits != 32 || inst.ops.size() != 3) {
      error(t, inst, "unsupported packed conversion");
    }
    auto convert = [&](size_t i) -> uint64_t {
      float f = asF32(read(t, inst, i));
      if (inst.sat) {
        f = std::isnan(f) ? 0.0f : std::clamp(f, 0.0f, 1.0f);
      }
      return to.bf16 ? f32ToBf16(f) : f32ToF16(f);
    };
    write(t, inst, 0, (convert(1) << 16) | convert(2));
    return;
  }
  if (from.pair) {
    error(t, inst, "unsupported conversion from a packed type");
  }
  uint64_t raw = read(t, inst, 1);
  // The source as a double (floats) or an integer.
  if (from.kind == TypeKind::F) {
    double x;
    if (from.bits == 32) {
      float f = asF32(raw);
      x = inst.ftz ? flushF32(f) : f;
    } else if (from.bits == 64) {
      x = asF64(raw);
    } else {
      x = half16ToF32(static_cast<uint16_t>(raw), from.bf16);
    }
    if (to.kind == TypeKind::F) {
      if (inst.round >= Round::Rni) {
        x = roundToInteger(x, inst.round);
      }
      if (to.bits == 64) {
        write(t, inst, 0, bitsOf(x));
      } else if (to.bits == 32) {
        float f;
        {
          RoundingScope scope(inst.round);
          f = static_cast<float>(x);
        }
        write(t, inst, 0, finishF32(inst, f));
      } else {
        // f32/f64 -> f16/bf16, rounded once (.rn, the form LLVM emits).
        if (inst.round != Round::Default && inst.round != Round::Rn) {
          error(t, inst, "only .rn conversions to 16-bit are supported");
        }
        if (inst.sat) {
          x = std::isnan(x) ? 0.0 : std::clamp(x, 0.0, 1.0);
        }
        write(t, inst, 0, toHalf16(x, to.bf16));
      }
      return;
    }
    // float -> integer: round, saturate to the range, NaN -> 0.
    double r = roundToInteger(x, inst.round == Round::Default ? Round::Rzi
                                                              : inst.round);
    uint64_t value = 0;
    if (std::isnan(r)) {
      value = 0;
    } else if (to.kind == TypeKind::S) {
      // Compare against the powers of two, which doubles hold exactly
      // (2^63 - 1 is not a double).
      double limit = std::ldexp(1.0, to.bits - 1);
      if (r >= limit) {
        value = maskOf(to.bits - 1); // the largest value
      } else if (r < -limit) {
        value = uint64_t{1} << (to.bits - 1); // the smallest
      } else {
        value = static_cast<uint64_t>(static_cast<int64_t>(r));
      }
    } else {
      double limit = std::ldexp(1.0, to.bits);
      value = r <= 0       ? 0
              : r >= limit ? maskOf(to.bits)
                           : static_cast<uint64_t>(r);
    }
    write(t, inst, 0, value & maskOf(to.bits));
    return;
  }
  // Integer source.
  const bool fromSigned = from.kind == TypeKind::S;
  int64_t s = signExtend(raw, from.bits);
  uint64_t u = raw & maskOf(from.bits);
  if (to.kind == TypeKind::F) {
    RoundingScope scope(inst.round);
    if (to.bits == 64) {
      write(
          t, inst, 0,
          bitsOf(fromSigned ? static_cast<double>(s) : static_cast<double>(u)));
    } else if (to.bits == 32) {
      write(t, inst, 0,
            bitsOf(fromSigned ? static_cast<float>(s) : static_cast<float>(u)));
    } else {
      // Exact in double for |value| < 2^53, then one rounding.
      double d = fromSigned ? static_cast<double>(s) : static_cast<double>(u);
      write(t, inst, 0, toHalf16(d, to.bf16));
    }
    return;
  }
  uint64_t value = fromSigned ? static_cast<uint64_t>(s) : u;
  if (inst.sat) {
    if (to.kind == TypeKind::S) {
      int64_t lo = -(int64_t{1} << (to.bits - 1)),
              hi = (int64_t{1} << (to.bits - 1)) - 1;
      int64_t v = fromSigned
                      ? s
                      : static_cast<int64_t>(std::min<uint64_t>(u, INT64_MAX));
      value = static_cast<uint64_t>(std::clamp(v, lo, hi));
    } else {
      uint64_t hi = maskOf(to.bits);
      value = fromSigned ? (s < 0 ? 0 : std::min<uint64_t>(s, hi))
                         : std::min(u, hi);
    }
  }
  if (to.kind == TypeKind::S) {
    value = static_cast<uint64_t>(signExtend(value, to.bits));
  }
  write(t, inst, 0, value & maskOf(to.bits));
}

void Block::executeMemory(Thread &t, const Inst &inst) {
  const int elementBytes = inst.type.pair ? 4 : std::max(1, inst.type.bits / 8);
  const size_t bytes = static_cast<size_t>(elementBytes) * inst.vec;
  if (inst.op == Op::Ld) {
    uint8_t *p = address(t, inst, 1, bytes, false);
    const Operand &d = inst.ops.at(0);
    for (int i = 0; i < inst.vec; ++i) {
      uint64_t value = 0;
      std::memcpy(&value, p + i * elementBytes, elementBytes);
      if (inst.type.kind == TypeKind::S) {
        value = static_cast<uint64_t>(signExtend(value, inst.type.bits));
      }
      if (d.kind == OperandKind::Vec) {
        if (d.regs.at(i) >= 0) {
          t.regs[d.regs[i]] = value;
        }
      } else {
        write(t, inst, 0, value);
      }
    }
    return;
  }
  if (inst.op == Op::St) {
    uint8_t *p = address(t, inst, 0, bytes, true);
    const Operand &s = inst.ops.at(1);
    for (int i = 0; i < inst.vec; ++i) {
      uint64_t value = s.kind == OperandKind::Vec
                           ? (s.regs.at(i) >= 0 ? t.regs[s.regs[i]] : 0)
                           : read(t, inst, 1);
      std::memcpy(p + i * elementBytes, &value, elementBytes);
    }
    return;
  }
  // atom.space.op.type d, [a], b[, c]; red.space.op.type [a], b
  const bool isAtom = inst.op == Op::Atom;
  const size_t addrIndex = isAtom ? 1 : 0;
  uint8_t *p = address(t, inst, addrIndex, bytes, true);
  uint64_t old = 0;
  std::memcpy(&old, p, elementBytes);
  uint64_t b = read(t, inst, addrIndex + 1);
  const Type type = inst.type;
  const std::string &op = inst.cmp;
  uint64_t result = 0;
  if (type.kind == TypeKind::F) {
    if (op != "add") {
      error(t, inst, "only floating-point atomic add is supported");
    }
    if (type.bits == 32) {
      result = bitsOf(asF32(old) + asF32(b));
    } else {
      result = bitsOf(asF64(old) + asF64(b));
    }
  } else {
    const int w = type.bits;
    uint64_t ua = old & maskOf(w), ub = b & maskOf(w);
    int64_t sa = signExtend(ua, w), sb = signExtend(ub, w);
    bool isSigned = type.kind == TypeKind::S;
    if (op == "add") {
      result = ua + ub;
    } else if (op == "and") {
      result = ua & ub;
    } else if (op == "or") {
      result = ua | ub;
    } else if (op == "xor") {
      result = ua ^ ub;
    } else if (op == "exch") {
      result = ub;
    } else if (op == "min") {
      result =
          isSigned ? static_cast<uint64_t>(std::min(sa, sb)) : std::min(ua, ub);
    } else if (op == "max") {
      result =
          isSigned ? static_cast<uint64_t>(std::max(sa, sb)) : std::max(ua, ub);
    } else if (op == "cas") {
      result = ua == ub ? read(t, inst, addrIndex + 2) : ua;
    } else {
      error(t, inst, "unsupported atomic operation");
    }
  }
  std::memcpy(p, &result, elementBytes);
  if (isAtom) {
    write(t, inst, 0, old & maskOf(type.bits));
  }
}

} // namespace

//===----------------------------------------------------------------------===//
// Module and launch
//===----------------------------------------------------------------------===//

Module::~Module() = default;

absl::StatusOr<std::unique_ptr<Module>> Module::parse(absl::string_view ptx) {
  std::unique_ptr<Module> module(new Module());
  try {
    module->kernels_ = Parser(ptx).run();
  } catch (const SimError &e) {
    return absl::InvalidArgumentError(e.what());
  }
  if (module->kernels_.empty()) {
    return absl::InvalidArgumentError("the PTX module has no .entry kernel");
  }
  return module;
}

const Kernel *Module::kernel(absl::string_view name) const {
  for (const auto &kernel : kernels_) {
    if (kernel->name == name) {
      return kernel.get();
    }
  }
  return nullptr;
}

int maxThreadsPerBlock(const Kernel &kernel) { return kernel.maxThreads; }
int64_t sharedBytes(const Kernel &kernel) { return kernel.sharedBytes; }
const std::string &kernelName(const Kernel &kernel) { return kernel.name; }

absl::Status launch(const Kernel &kernel, Dim3 grid, Dim3 block, void **params,
                    const Memory &memory) {
  const uint64_t threads = uint64_t{block.x} * block.y * block.z;
  if (threads == 0 || grid.x == 0 || grid.y == 0 || grid.z == 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("kernel ", kernel.name, ": empty grid or block"));
  }
  if (threads > static_cast<uint64_t>(kernel.maxThreads)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "kernel ", kernel.name, ": ", threads,
        " threads per block, more than its .maxntid ", kernel.maxThreads));
  }
  std::vector<uint8_t> paramBuffer(static_cast<size_t>(kernel.paramBytes), 0);
  for (size_t i = 0; i < kernel.params.size(); ++i) {
    if (!params || !params[i]) {
      return absl::InvalidArgumentError(
          absl::StrCat("kernel ", kernel.name, ": parameter ", i, " missing"));
    }
    std::memcpy(paramBuffer.data() + kernel.params[i].first, params[i],
                static_cast<size_t>(kernel.params[i].second));
  }
  std::vector<uint8_t> shared(static_cast<size_t>(kernel.sharedBytes));
  try {
    Block runner(kernel, grid, block, memory, paramBuffer, shared);
    for (unsigned z = 0; z < grid.z; ++z) {
      for (unsigned y = 0; y < grid.y; ++y) {
        for (unsigned x = 0; x < grid.x; ++x) {
          runner.run(x, y, z);
        }
      }
    }
  } catch (const SimError &e) {
    return absl::InternalError(e.what());
  }
  return absl::OkStatus();
}

} // namespace synth::ptxsim
