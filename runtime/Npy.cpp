//===- Npy.cpp - NumPy .npy reader and writer -----------------------------===//
//
// The header is a Python literal, not JSON; numpy writes exactly three keys
// in a fixed order, but other writers reorder them or add spaces, so the
// reader parses the dict properly (strings, True/False, tuples of integers)
// and rejects anything else.
//
//===----------------------------------------------------------------------===//

#include "runtime/Npy.h"

#include "runtime/FileUtil.h"

#include "absl/strings/str_cat.h"

#include <cctype>
#include <cstring>
#include <optional>

namespace synth::npy {

namespace {

constexpr char kMagic[] = "\x93NUMPY";
constexpr size_t kMagicSize = 6;
/// Headers beyond this are hostile (numpy caps them far lower).
constexpr size_t kMaxHeaderBytes = 1 << 20;

struct DescrInfo {
  const char *descr;
  DType dtype;
};
constexpr DescrInfo kDescrs[] = {
    {"<f8", DType::F64}, {"<f4", DType::F32}, {"<i8", DType::I64},
    {"<i4", DType::I32}, {"|u1", DType::U8},  {"|b1", DType::Bool},
};

absl::Status invalid(const std::string &source, const std::string &what) {
  return absl::InvalidArgumentError(absl::StrCat(source, ": ", what));
}

/// The parsed header dict.
struct Header {
  std::optional<std::string> descr;
  std::optional<bool> fortranOrder;
  std::optional<std::vector<int64_t>> shape;
};

/// A parser for the one dict literal numpy writes.
class HeaderParser {
public:
  HeaderParser(const std::string &text, const std::string &source)
      : text_(text), source_(source) {}

  absl::StatusOr<Header> parse() {
    Header header;
    skipSpace();
    if (!consume('{')) {
      return fail("header is not a Python dict");
    }
    while (true) {
      skipSpace();
      if (consume('}')) {
        break;
      }
      std::string key;
      if (!parseString(key)) {
        return fail("expected a quoted key in the header dict");
      }
      skipSpace();
      if (!consume(':')) {
        return fail(absl::StrCat("expected ':' after '", key, "'"));
      }
      skipSpace();
      if (key == "descr") {
        std::string descr;
        if (header.descr || !parseString(descr)) {
          return fail("'descr' must appear once, as a string");
        }
        header.descr = descr;
      } else if (key == "fortran_order") {
        bool value;
        if (header.fortranOrder || !parseBool(value)) {
          return fail("'fortran_order' must appear once, as True or False");
        }
        header.fortranOrder = value;
      } else if (key == "shape") {
        std::vector<int64_t> shape;
        if (header.shape || !parseShape(shape)) {
          return fail("'shape' must appear once, as a tuple of non-negative "
                      "integers");
        }
        header.shape = shape;
      } else {
        return fail(absl::StrCat("unknown header key '", key, "'"));
      }
      skipSpace();
      if (consume(',')) {
        continue;
      }
      skipSpace();
      if (!consume('}')) {
        return fail("expected ',' or '}' in the header dict");
      }
      break;
    }
    skipSpace();
    if (pos_ != text_.size()) {
      return fail("unexpected text after the header dict");
    }
    if (!header.descr || !header.fortranOrder || !header.shape) {
      return fail("the header needs 'descr', 'fortran_order' and 'shape'");
    }
    return header;
  }

private:
  absl::Status fail(const std::string &what) { return invalid(source_, what); }

  void skipSpace() {
    while (pos_ < text_.size() &&
           std::isspace(static_cast<unsigned char>(text_[pos_]))) {
      ++pos_;
    }
  }
  bool consume(char c) {
    if (pos_ < text_.size() && text_[pos_] == c) {
      ++pos_;
      return true;
    }
    return false;
  }
  bool parseString(std::string &out) {
    if (pos_ >= text_.size() || (text_[pos_] != '\'' && text_[pos_] != '"')) {
      return false;
    }
    char quote = text_[pos_++];
    size_t end = text_.find(quote, pos_);
    if (end == std::string::npos) {
      return false;
    }
    out = text_.substr(pos_, end - pos_);
    pos_ = end + 1;
    return true;
  }
  bool parseBool(bool &out) {
    for (const auto &[word, value] :
         {std::pair{"True", true}, {"False", false}}) {
      size_t n = std::strlen(word);
      if (text_.compare(pos_, n, word) == 0) {
        pos_ += n;
        out = value;
        return true;
      }
    }
    return false;
  }
  bool parseShape(std::vector<int64_t> &out) {
    if (!consume('(')) {
      return false;
    }
    while (true) {
      skipSpace();
      if (consume(')')) {
        return true;
      }
      size_t start = pos_;
      int64_t value = 0;
      while (pos_ < text_.size() &&
             std::isdigit(static_cast<unsigned char>(text_[pos_]))) {
        if (value > (int64_t(1) << 50)) {
          return false;
        }
        value = value * 10 + (text_[pos_++] - '0');
      }
      if (pos_ == start) {
        return false;
      }
      // Python 2 era writers put an "L" after longs.
      consume('L');
      out.push_back(value);
      skipSpace();
      if (!consume(',')) {
        skipSpace();
        return consume(')');
      }
    }
  }

  const std::string &text_;
  const std::string &source_;
  size_t pos_ = 0;
};

} // namespace

absl::StatusOr<Tensor> parse(const std::string &bytes,
                             const std::string &source) {
  if (bytes.size() < kMagicSize + 2 ||
      std::memcmp(bytes.data(), kMagic, kMagicSize) != 0) {
    return invalid(source, "not a .npy file (no \\x93NUMPY magic)");
  }
  const int major = static_cast<uint8_t>(bytes[6]);
  const int minor = static_cast<uint8_t>(bytes[7]);
  size_t lengthBytes = major == 1 ? 2 : (major == 2 || major == 3) ? 4 : 0;
  if (lengthBytes == 0 || minor != 0) {
    return invalid(source,
                   absl::StrCat("unsupported .npy version ", major, ".", minor,
                                " (this reader knows 1.0, 2.0, 3.0)"));
  }
  if (bytes.size() < 8 + lengthBytes) {
    return invalid(source, "truncated: no header length");
  }
  size_t headerSize = 0;
  for (size_t i = 0; i < lengthBytes; ++i) {
    headerSize |= size_t(static_cast<uint8_t>(bytes[8 + i])) << (8 * i);
  }
  const size_t dataStart = 8 + lengthBytes + headerSize;
  if (headerSize > kMaxHeaderBytes || dataStart > bytes.size()) {
    return invalid(source, absl::StrCat("truncated: header length ", headerSize,
                                        " exceeds the file"));
  }
  absl::StatusOr<Header> header =
      HeaderParser(bytes.substr(8 + lengthBytes, headerSize), source).parse();
  if (!header.ok()) {
    return header.status();
  }
  std::optional<DType> dtype;
  for (const DescrInfo &info : kDescrs) {
    if (*header->descr == info.descr ||
        // Byte-sized types may be written with "<" or "=" or "|".
        (info.descr[0] == '|' && header->descr->size() == 3 &&
         header->descr->substr(1) == info.descr + 1)) {
      dtype = info.dtype;
    }
  }
  if (!dtype) {
    return invalid(source,
                   absl::StrCat("unsupported dtype '", *header->descr,
                                "' (supported: <f8, <f4, <i8, <i4, |u1, |b1; "
                                "big-endian data is not)"));
  }
  if (*header->fortranOrder) {
    return invalid(source, "Fortran-order arrays are not supported (save "
                           "with numpy.ascontiguousarray)");
  }
  Tensor tensor;
  tensor.dtype = *dtype;
  tensor.shape = *header->shape;
  uint64_t elements = 1;
  for (int64_t d : tensor.shape) {
    if (d != 0 && elements > (uint64_t(1) << 50) / uint64_t(d)) {
      return invalid(source, "shape is too large");
    }
    elements *= uint64_t(d);
  }
  const uint64_t expected = elements * dtypeSize(*dtype);
  if (bytes.size() - dataStart != expected) {
    return invalid(source, absl::StrCat("data holds ", bytes.size() - dataStart,
                                        " bytes, but ", *header->descr, " ",
                                        formatShape(tensor.shape), " needs ",
                                        expected));
  }
  tensor.bytes.assign(bytes.begin() + dataStart, bytes.end());
  return tensor;
}

absl::StatusOr<Tensor> read(const std::string &path) {
  absl::StatusOr<std::string> bytes = readFileBytes(path);
  if (!bytes.ok()) {
    return bytes.status();
  }
  return parse(*bytes, path);
}

absl::StatusOr<std::string> serialize(const Tensor &tensor) {
  const char *descr = nullptr;
  for (const DescrInfo &info : kDescrs) {
    if (info.dtype == tensor.dtype) {
      descr = info.descr;
    }
  }
  if (!descr) {
    return absl::InvalidArgumentError(
        absl::StrCat("cannot write ", dtypeName(tensor.dtype), " as .npy"));
  }
  if (tensor.bytes.size() != size_t(tensor.numel()) * dtypeSize(tensor.dtype)) {
    return absl::InvalidArgumentError(
        "tensor bytes do not match its dtype and shape");
  }
  std::string shape = "(";
  for (size_t i = 0; i < tensor.shape.size(); ++i) {
    absl::StrAppend(&shape, i ? ", " : "", tensor.shape[i]);
  }
  // A 1-tuple needs its trailing comma: (5,).
  shape += tensor.shape.size() == 1 ? ",)" : ")";
  std::string header =
      absl::StrCat("{'descr': '", descr,
                   "', 'fortran_order': False, 'shape': ", shape, ", }");
  // Pad with spaces and end with a newline so the data is 64-byte aligned.
  size_t unpadded = kMagicSize + 2 + 2 + header.size() + 1;
  header.append((64 - unpadded % 64) % 64, ' ');
  header += '\n';
  if (header.size() > 0xFFFF) {
    return absl::InvalidArgumentError("shape too long for a .npy 1.0 header");
  }
  std::string out(kMagic, kMagicSize);
  out += '\x01';
  out += '\x00';
  out += static_cast<char>(header.size() & 0xFF);
  out += static_cast<char>(header.size() >> 8);
  out += header;
  out.append(reinterpret_cast<const char *>(tensor.bytes.data()),
             tensor.bytes.size());
  return out;
}

absl::Status write(const std::string &path, const Tensor &tensor) {
  absl::StatusOr<std::string> bytes = serialize(tensor);
  if (!bytes.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat(path, ": ", bytes.status().message()));
  }
  return writeFileAtomic(path, *bytes);
}

} // namespace synth::npy
