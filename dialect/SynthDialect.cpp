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

DictionaryAttr ScheduleAttr::getTarget(StringRef cls) const {
  return getTargets().getAs<DictionaryAttr>(cls);
}

LogicalResult ScheduleAttr::verify(function_ref<InFlightDiagnostic()> emitError,
                                   DictionaryAttr targets) {
  // Which fields a kernel has depends on its ops: synth-assign-schedules and
  // the back ends check them (passes/CpuSchedule.h). Here, the shape only.
  for (NamedAttribute target : targets) {
    StringRef cls = target.getName().getValue();
    if (cls != "avx512" && cls != "avx2" && cls != "sse41") {
      return emitError() << "unknown schedule target '" << cls
                         << "' (expected avx512, avx2 or sse41)";
    }
    auto fields = dyn_cast<DictionaryAttr>(target.getValue());
    if (!fields) {
      return emitError() << "schedule of target '" << cls
                         << "' must be a dictionary of fields";
    }
    for (NamedAttribute field : fields) {
      Attribute value = field.getValue();
      auto integer = dyn_cast<IntegerAttr>(value);
      if (!(integer && integer.getType().isSignlessInteger(64)) &&
          !isa_and_nonnull<StringAttr>(value)) {
        return emitError() << "schedule field '" << field.getName().getValue()
                           << "' of target '" << cls
                           << "' must be an i64 or a string";
      }
    }
  }
  return success();
}
