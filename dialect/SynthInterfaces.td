//===- SynthInterfaces.td - interfaces of the synth dialect ---------------===//
//
// The reverse-mode differentiation interface: every differentiable synth op
// states its vector-Jacobian product, which the autodiff pass composes.
//
//===----------------------------------------------------------------------===//

#ifndef SYNTH_INTERFACES_TD
#define SYNTH_INTERFACES_TD

include "mlir/IR/OpBase.td"

def Synth_DifferentiableOpInterface : OpInterface<"DifferentiableOpInterface"> {
  let cppNamespace = "::mlir::synth";
  let description = [{
    An op that can be differentiated in reverse mode. Given the cotangents of
    its results (gradients of the loss with respect to each result; a null
    value means zero), the op builds IR that computes the cotangent of each of
    its operands (a null value for an operand that is not differentiable, such
    as token ids, masks, or a fixed random matrix).
  }];
  let methods = [
    InterfaceMethod<
      /*desc=*/[{Whether the operand at `index` receives a gradient.}],
      /*retTy=*/"bool",
      /*methodName=*/"isDifferentiableOperand",
      /*args=*/(ins "unsigned":$index),
      /*methodBody=*/"",
      /*defaultImplementation=*/[{
        return ::llvm::isa<::mlir::FloatType>(
            ::mlir::getElementTypeOrSelf($_op->getOperand(index).getType()));
      }]>,
    InterfaceMethod<
      /*desc=*/[{
        Builds the vector-Jacobian product at the builder's insertion point:
        appends one value per operand to `operandCotangents` (null where
        `isDifferentiableOperand` is false).
      }],
      /*retTy=*/"::llvm::LogicalResult",
      /*methodName=*/"buildVectorJacobianProduct",
      /*args=*/(ins "::mlir::OpBuilder &":$builder,
                    "::mlir::ValueRange":$resultCotangents,
                    "::llvm::SmallVectorImpl<::mlir::Value> &":$operandCotangents)>
  ];
}

#endif // SYNTH_INTERFACES_TD
