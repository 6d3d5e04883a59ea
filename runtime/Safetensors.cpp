//===- Safetensors.cpp - safetensors reader and writer --------------------===//
//
// Reading checks, in order: the 8-byte length, that the header fits in the
// file, that it is a JSON object, each entry's dtype/shape/offsets, that the
// byte count matches dtype x shape, that entries stay inside the data region
// and do not overlap, and that the data region has no unindexed bytes.
//
//===----------------------------------------------------------------------===//

#include "runtime/Safetensors.h"

#include "runtime/FileUtil.h"
#include "runtime/Json.h"

#include "absl/strings/str_cat.h"

#include <algorithm>

namespace synth::safetensors {

const Tensor *File::find(const std::string &name) const {
  for (const auto &[key, tensor] : tensors) {
    if (key == name) {
      return &tensor;
    }
  }
  return nullptr;
}

Tensor *File::find(const std::string &name) {
  return const_cast<Tensor *>(static_cast<const File *>(this)->find(name));
}

namespace {

/// Header larger than this is rejected outright (the reference implementation
/// uses the same 100 MB limit).
constexpr uint64_t kMaxHeaderBytes = 100u << 20;

absl::Status invalid(const std::string &source, const std::string &what) {
  return absl::InvalidArgumentError(absl::StrCat(source, ": ", what));
}

/// Reads a non-negative integer member of a header entry.
absl::StatusOr<uint64_t> nonNegative(const std::string &source,
                                     const std::string &tensor,
                                     const char *field,
                                     const json::Value &value) {
  if (!value.isInteger() || value.asInt() < 0) {
    return invalid(source,
                   absl::StrCat("tensor ", json::quote(tensor), ": ", field,
                                " must hold non-negative integers"));
  }
  return static_cast<uint64_t>(value.asInt());
}

struct Entry {
  std::string name;
  uint64_t begin, end;
};

} // namespace

absl::StatusOr<File> parse(const std::string &bytes,
                           const std::string &source) {
  if (bytes.size() < 8) {
    return invalid(source,
                   absl::StrCat("truncated: ", bytes.size(),
                                " bytes, fewer than the 8-byte header length"));
  }
  uint64_t headerSize = 0;
  for (int i = 7; i >= 0; --i) {
    headerSize = (headerSize << 8) | static_cast<uint8_t>(bytes[i]);
  }
  if (headerSize > kMaxHeaderBytes) {
    return invalid(source, absl::StrCat("header length ", headerSize,
                                        " exceeds the 100 MB limit"));
  }
  if (headerSize > bytes.size() - 8) {
    return invalid(source, absl::StrCat("truncated: header length ", headerSize,
                                        " exceeds the ", bytes.size() - 8,
                                        " bytes after the length field"));
  }
  absl::StatusOr<json::Value> header = json::parse(
      bytes.substr(8, headerSize), absl::StrCat(source, " (header)"));
  if (!header.ok()) {
    return header.status();
  }
  if (!header->isObject()) {
    return invalid(source, "header is not a JSON object");
  }
  const uint64_t dataSize = bytes.size() - 8 - headerSize;
  const char *data = bytes.data() + 8 + headerSize;

  File file;
  std::vector<Entry> entries;
  for (const auto &[name, info] : header->members()) {
    if (name == "__metadata__") {
      if (!info.isObject()) {
        return invalid(source, "__metadata__ must be an object of strings");
      }
      for (const auto &[key, value] : info.members()) {
        if (!value.isString()) {
          return invalid(source,
                         absl::StrCat("__metadata__ value of ",
                                      json::quote(key), " must be a string"));
        }
        file.metadata.emplace_back(key, value.asString());
      }
      continue;
    }
    std::string where = absl::StrCat("tensor ", json::quote(name));
    if (!info.isObject()) {
      return invalid(source, absl::StrCat(where, ": entry must be an object"));
    }
    for (const auto &[key, unused] : info.members()) {
      if (key != "dtype" && key != "shape" && key != "data_offsets") {
        return invalid(
            source, absl::StrCat(where, ": unknown field ", json::quote(key)));
      }
    }
    const json::Value *dtypeValue = info.find("dtype");
    const json::Value *shapeValue = info.find("shape");
    const json::Value *offsetsValue = info.find("data_offsets");
    if (!dtypeValue || !shapeValue || !offsetsValue) {
      return invalid(source, absl::StrCat(where, ": needs dtype, shape and "
                                                 "data_offsets"));
    }
    if (!dtypeValue->isString()) {
      return invalid(source, absl::StrCat(where, ": dtype must be a string"));
    }
    std::optional<DType> dtype = parseDType(dtypeValue->asString());
    if (!dtype) {
      return invalid(source,
                     absl::StrCat(where, ": unsupported dtype ",
                                  json::quote(dtypeValue->asString()),
                                  " (supported: F64, F32, F16, BF16, I64, I32, "
                                  "U8, BOOL)"));
    }
    if (!shapeValue->isArray()) {
      return invalid(source, absl::StrCat(where, ": shape must be an array"));
    }
    Tensor tensor;
    tensor.dtype = *dtype;
    uint64_t elements = 1;
    for (const json::Value &dim : shapeValue->items()) {
      absl::StatusOr<uint64_t> size = nonNegative(source, name, "shape", dim);
      if (!size.ok()) {
        return size.status();
      }
      // Guard the element count against overflow from hostile shapes.
      if (*size != 0 && elements > (uint64_t(1) << 62) / *size) {
        return invalid(source, absl::StrCat(where, ": shape is too large"));
      }
      elements *= *size;
      tensor.shape.push_back(static_cast<int64_t>(*size));
    }
    if (!offsetsValue->isArray() || offsetsValue->items().size() != 2) {
      return invalid(source,
                     absl::StrCat(where, ": data_offsets must be [begin, "
                                         "end]"));
    }
    absl::StatusOr<uint64_t> begin =
        nonNegative(source, name, "data_offsets", offsetsValue->items()[0]);
    absl::StatusOr<uint64_t> end =
        nonNegative(source, name, "data_offsets", offsetsValue->items()[1]);
    if (!begin.ok()) {
      return begin.status();
    }
    if (!end.ok()) {
      return end.status();
    }
    if (*end < *begin || *end > dataSize) {
      return invalid(source,
                     absl::StrCat(where, ": data_offsets [", *begin, ", ", *end,
                                  "] lie outside the data region of ", dataSize,
                                  " bytes"));
    }
    uint64_t expected = elements * dtypeSize(*dtype);
    if (*end - *begin != expected) {
      return invalid(source, absl::StrCat(where, ": data_offsets [", *begin,
                                          ", ", *end, "] hold ", *end - *begin,
                                          " bytes, but ", dtypeName(*dtype),
                                          " ", formatShape(tensor.shape),
                                          " needs ", expected));
    }
    tensor.bytes.assign(data + *begin, data + *end);
    entries.push_back({name, *begin, *end});
    file.add(name, std::move(tensor));
  }

  // Entries must tile the data region exactly: no overlaps, no holes.
  std::sort(entries.begin(), entries.end(), [](const Entry &a, const Entry &b) {
    return a.begin != b.begin ? a.begin < b.begin : a.end < b.end;
  });
  uint64_t covered = 0;
  for (size_t i = 0; i < entries.size(); ++i) {
    if (entries[i].begin < covered) {
      return invalid(source,
                     absl::StrCat("tensors ", json::quote(entries[i - 1].name),
                                  " and ", json::quote(entries[i].name),
                                  " overlap"));
    }
    if (entries[i].begin > covered) {
      return invalid(source,
                     absl::StrCat("bytes [", covered, ", ", entries[i].begin,
                                  ") of the data region belong to no tensor"));
    }
    covered = entries[i].end;
  }
  if (covered != dataSize) {
    return invalid(source, absl::StrCat("bytes [", covered, ", ", dataSize,
                                        ") of the data region belong to no "
                                        "tensor"));
  }
  return file;
}

absl::StatusOr<File> read(const std::string &path) {
  absl::StatusOr<std::string> bytes = readFileBytes(path);
  if (!bytes.ok()) {
    return bytes.status();
  }
  return parse(*bytes, path);
}

std::string serialize(const File &file) {
  json::Value header = json::Value::object();
  if (!file.metadata.empty()) {
    json::Value metadata = json::Value::object();
    for (const auto &[key, value] : file.metadata) {
      metadata.set(key, json::Value::string(value));
    }
    header.set("__metadata__", std::move(metadata));
  }
  uint64_t offset = 0;
  for (const auto &[name, tensor] : file.tensors) {
    json::Value shape = json::Value::array();
    for (int64_t dim : tensor.shape) {
      shape.push(json::Value::integer(dim));
    }
    json::Value entry = json::Value::object();
    entry.set("dtype", json::Value::string(dtypeName(tensor.dtype)));
    entry.set("shape", std::move(shape));
    uint64_t end = offset + tensor.bytes.size();
    entry.set("data_offsets", json::Value::array({json::Value::integer(offset),
                                                  json::Value::integer(end)}));
    header.set(name, std::move(entry));
    offset = end;
  }
  std::string text = json::serialize(header);
  // Pad with spaces so the data region starts 8-byte aligned.
  text.append((8 - text.size() % 8) % 8, ' ');
  std::string out;
  uint64_t size = text.size();
  for (int i = 0; i < 8; ++i) {
    out += static_cast<char>((size >> (8 * i)) & 0xFF);
  }
  out += text;
  for (const auto &[name, tensor] : file.tensors) {
    out.append(reinterpret_cast<const char *>(tensor.bytes.data()),
               tensor.bytes.size());
  }
  return out;
}

absl::Status write(const std::string &path, const File &file) {
  return writeFileAtomic(path, serialize(file));
}

} // namespace synth::safetensors
