//===- SynthDialect.h - the synth dialect ---------------------------------===//
//
// Declares the `synth` dialect class. Include SynthOps.h for its ops and
// attributes.
//
//===----------------------------------------------------------------------===//

#ifndef SYNTHC_DIALECT_SYNTHDIALECT_H
#define SYNTHC_DIALECT_SYNTHDIALECT_H

#include "mlir/IR/Dialect.h"

#include "dialect/SynthDialect.h.inc"

#endif // SYNTHC_DIALECT_SYNTHDIALECT_H
