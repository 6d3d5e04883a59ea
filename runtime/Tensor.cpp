//===- Tensor.cpp - dtypes and shapes -------------------------------------===//

#include "runtime/Tensor.h"

namespace synth {

namespace {
struct DTypeInfo {
  DType dtype;
  const char *name;
  size_t size;
};
constexpr DTypeInfo kDTypes[] = {
    {DType::F64, "F64", 8},   {DType::F32, "F32", 4},   {DType::F16, "F16", 2},
    {DType::BF16, "BF16", 2}, {DType::I64, "I64", 8},   {DType::I32, "I32", 4},
    {DType::U8, "U8", 1},     {DType::Bool, "BOOL", 1},
};
} // namespace

size_t dtypeSize(DType dtype) {
  for (const DTypeInfo &info : kDTypes) {
    if (info.dtype == dtype) {
      return info.size;
    }
  }
  return 0;
}

const char *dtypeName(DType dtype) {
  for (const DTypeInfo &info : kDTypes) {
    if (info.dtype == dtype) {
      return info.name;
    }
  }
  return "?";
}

std::optional<DType> parseDType(const std::string &name) {
  for (const DTypeInfo &info : kDTypes) {
    if (name == info.name) {
      return info.dtype;
    }
  }
  return std::nullopt;
}

std::string formatShape(const std::vector<int64_t> &shape) {
  std::string out = "[";
  for (size_t i = 0; i < shape.size(); ++i) {
    if (i) {
      out += ", ";
    }
    out += std::to_string(shape[i]);
  }
  return out + "]";
}

Tensor Tensor::zeros(DType dtype, std::vector<int64_t> shape) {
  Tensor t;
  t.dtype = dtype;
  t.shape = std::move(shape);
  t.bytes.assign(static_cast<size_t>(t.numel()) * dtypeSize(dtype), 0);
  return t;
}

int64_t Tensor::numel() const {
  int64_t n = 1;
  for (int64_t d : shape) {
    n *= d;
  }
  return n;
}

} // namespace synth
