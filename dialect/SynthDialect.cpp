//===- SynthDialect.cpp - dialect registration and attributes -------------===//
//
// Registers the ops and attributes of `synth` and implements the attribute
// verifiers. Op verifiers, folders and interfaces live in SynthOps.cpp.
//
//===----------------------------------------------------------------------===//

#include "dialect/SynthDialect.h"
#include "dialect/SynthOps.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Tensor/IR/Tensor.h"
#include "mlir/IR/Builders.h"
#include "mlir/IR/DialectImplementation.h"
#include "llvm/ADT/TypeSwitch.h"

using namespace mlir;
using namespace mlir::synth;

#include "dialect/SynthDialect.cpp.inc"
#include "dialect/SynthEnums.cpp.inc"
#include "dialect/SynthInterfaces.cpp.inc"

#define GET_ATTRDEF_CLASSES
#include "dialect/SynthAttrs.cpp.inc"

void SynthDialect::initialize() {
  addOperations<
#define GET_OP_LIST
#include "dialect/SynthOps.cpp.inc"
      >();
  addAttributes<
#define GET_ATTRDEF_LIST
#include "dialect/SynthAttrs.cpp.inc"
      >();
  registerDifferentiableModels(*getContext());
}

//===----------------------------------------------------------------------===//
// ScorePartAttr
//===----------------------------------------------------------------------===//

unsigned ScorePartAttr::getNumOperands() const {
  switch (getKind()) {
  case ScoreKind::Dot:
    return 2; // q, k
  case ScoreKind::Dense:
    return 5; // x, W1, b1, W2, b2
  case ScoreKind::Random:
    return 1; // R
  case ScoreKind::FactorizedRandom:
    return 2; // R1, R2
  case ScoreKind::FactorizedDense:
    return 7; // x, W1, b1, WA, bA, WB, bB
  }
  llvm_unreachable("unknown score kind");
}

Attribute ScorePartAttr::parse(AsmParser &parser, Type) {
  std::string kindName;
  SMLoc kindLoc = parser.getCurrentLocation();
  if (parser.parseLess() || parser.parseKeywordOrString(&kindName)) {
    return {};
  }
  std::optional<ScoreKind> kind = symbolizeScoreKind(kindName);
  if (!kind) {
    parser.emitError(kindLoc) << "unknown score kind '" << kindName
                              << "' (expected dot, dense, random, "
                                 "factorized_random or factorized_dense)";
    return {};
  }
  FloatAttr scale;
  IntegerAttr maxLen;
  while (succeeded(parser.parseOptionalComma())) {
    StringRef key;
    SMLoc keyLoc = parser.getCurrentLocation();
    if (parser.parseKeyword(&key) || parser.parseEqual()) {
      return {};
    }
    if (key == "scale") {
      if (parser.parseAttribute(scale)) {
        return {};
      }
    } else if (key == "max_len") {
      if (parser.parseAttribute(maxLen)) {
        return {};
      }
    } else {
      parser.emitError(keyLoc) << "unknown score part key '" << key
                               << "' (expected scale or max_len)";
      return {};
    }
  }
  if (parser.parseGreater()) {
    return {};
  }
  return parser.getChecked<ScorePartAttr>(parser.getContext(), *kind, scale,
                                          maxLen);
}

void ScorePartAttr::print(AsmPrinter &printer) const {
  printer << '<' << stringifyScoreKind(getKind());
  if (getScale()) {
    printer << ", scale = " << getScale();
  }
  if (getMaxLen()) {
    printer << ", max_len = " << getMaxLen();
  }
  printer << '>';
}

LogicalResult
ScorePartAttr::verify(function_ref<InFlightDiagnostic()> emitError,
                      ScoreKind kind, FloatAttr scale, IntegerAttr maxLen) {
  bool isDot = kind == ScoreKind::Dot;
  if (!isDot && scale) {
    return emitError() << "score part '" << stringifyScoreKind(kind)
                       << "' takes no scale (only 'dot' does)";
  }
  if (isDot && maxLen) {
    return emitError() << "score part 'dot' takes no max_len";
  }
  if (!isDot && !maxLen) {
    return emitError() << "score part '" << stringifyScoreKind(kind)
                       << "' needs max_len (the model's L)";
  }
  if (maxLen && maxLen.getInt() <= 0) {
    return emitError() << "max_len must be positive, got " << maxLen.getInt();
  }
  return success();
}

//===----------------------------------------------------------------------===//
// ScheduleAttr
//===----------------------------------------------------------------------===//

Attribute ScheduleAttr::parse(AsmParser &parser, Type) {
  SmallVector<int64_t> tileSizes, parallelDims;
  int64_t vectorWidth = 1;
  auto parseList = [&](SmallVectorImpl<int64_t> &list) {
    return parser.parseCommaSeparatedList(AsmParser::Delimiter::Square, [&] {
      return parser.parseInteger(list.emplace_back());
    });
  };
  if (parser.parseLess()) {
    return {};
  }
  if (failed(parser.parseOptionalGreater())) {
    do {
      StringRef key;
      SMLoc keyLoc = parser.getCurrentLocation();
      if (parser.parseKeyword(&key) || parser.parseEqual()) {
        return {};
      }
      ParseResult parsed = failure();
      if (key == "tile_sizes") {
        parsed = parseList(tileSizes);
      } else if (key == "parallel_dims") {
        parsed = parseList(parallelDims);
      } else if (key == "vector_width") {
        parsed = parser.parseInteger(vectorWidth);
      } else {
        parser.emitError(keyLoc)
            << "unknown schedule key '" << key
            << "' (expected tile_sizes, vector_width or parallel_dims)";
      }
      if (failed(parsed)) {
        return {};
      }
    } while (succeeded(parser.parseOptionalComma()));
    if (parser.parseGreater()) {
      return {};
    }
  }
  return parser.getChecked<ScheduleAttr>(parser.getContext(), tileSizes,
                                         vectorWidth, parallelDims);
}

void ScheduleAttr::print(AsmPrinter &printer) const {
  printer << "<tile_sizes = [";
  llvm::interleaveComma(getTileSizes(), printer);
  printer << "], vector_width = " << getVectorWidth() << ", parallel_dims = [";
  llvm::interleaveComma(getParallelDims(), printer);
  printer << "]>";
}

LogicalResult ScheduleAttr::verify(function_ref<InFlightDiagnostic()> emitError,
                                   ArrayRef<int64_t> tileSizes,
                                   int64_t vectorWidth,
                                   ArrayRef<int64_t> parallelDims) {
  for (auto [i, size] : llvm::enumerate(tileSizes)) {
    if (size < 0) {
      return emitError() << "tile size of loop " << i
                         << " must be >= 0 (0 = untiled), got " << size;
    }
  }
  if (vectorWidth < 1 || !llvm::isPowerOf2_64(vectorWidth)) {
    return emitError() << "vector_width must be a power of two >= 1, got "
                       << vectorWidth;
  }
  for (int64_t dim : parallelDims) {
    if (dim < 0 || dim >= static_cast<int64_t>(tileSizes.size())) {
      return emitError() << "parallel dim " << dim << " is not a loop (have "
                         << tileSizes.size() << " loops)";
    }
  }
  return success();
}
