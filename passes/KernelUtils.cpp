//===- KernelUtils.cpp - outlining ops into synth.kernel regions ----------===//

#include "passes/KernelUtils.h"

#include "mlir/IR/Builders.h"
#include "mlir/IR/IRMapping.h"
#include "llvm/ADT/SetVector.h"

namespace mlir::synth {

KernelOp outlineIntoKernel(ArrayRef<Operation *> ops, StringRef name) {
  llvm::SmallPtrSet<Operation *, 8> inGroup(ops.begin(), ops.end());
  // Positions (synth.to_index) are copied into the kernel rather than passed
  // as index values: kernel arguments are buffers.
  llvm::SetVector<Operation *> copied;
  for (Operation *op : ops) {
    for (Value operand : op->getOperands()) {
      if (auto toIndex = operand.getDefiningOp<ToIndexOp>()) {
        if (!inGroup.contains(toIndex)) {
          copied.insert(toIndex);
        }
      }
    }
  }
  llvm::SetVector<Value> inputs;
  SmallVector<Value> outputs;
  auto collectInputs = [&](Operation *op) {
    for (Value operand : op->getOperands()) {
      Operation *def = operand.getDefiningOp();
      if (!def || (!inGroup.contains(def) && !copied.contains(def))) {
        inputs.insert(operand);
      }
    }
  };
  for (Operation *op : copied) {
    collectInputs(op);
  }
  for (Operation *op : ops) {
    collectInputs(op);
    for (Value result : op->getResults()) {
      if (llvm::any_of(result.getUsers(), [&](Operation *user) {
            return !inGroup.contains(user);
          })) {
        outputs.push_back(result);
      }
    }
  }

  Operation *last = ops.back();
  OpBuilder b(last);
  SmallVector<Type> resultTypes;
  for (Value v : outputs) {
    resultTypes.push_back(v.getType());
  }
  auto kernel =
      KernelOp::create(b, last->getLoc(), resultTypes, b.getStringAttr(name),
                       inputs.getArrayRef(), ScheduleAttr());
  SmallVector<Type> argTypes;
  SmallVector<Location> argLocs;
  for (Value v : inputs) {
    argTypes.push_back(v.getType());
    argLocs.push_back(v.getLoc());
  }
  Block *body = b.createBlock(&kernel.getBody(), {}, argTypes, argLocs);
  IRMapping mapping;
  for (auto [input, arg] : llvm::zip(inputs, body->getArguments())) {
    mapping.map(input, arg);
  }
  for (Operation *op : copied) {
    b.clone(*op, mapping);
  }
  for (Operation *op : ops) {
    b.clone(*op, mapping);
  }
  SmallVector<Value> yielded;
  for (Value v : outputs) {
    yielded.push_back(mapping.lookup(v));
  }
  YieldOp::create(b, last->getLoc(), yielded);

  for (auto [output, result] : llvm::zip(outputs, kernel.getResults())) {
    output.replaceUsesWithIf(result, [&](OpOperand &use) {
      return !inGroup.contains(use.getOwner());
    });
  }
  for (Operation *op : llvm::reverse(ops)) {
    op->erase();
  }
  return kernel;
}

KernelOp fuseIntoKernel(ArrayRef<Operation *> units, StringRef name) {
  llvm::SmallPtrSet<Operation *, 8> inGroup(units.begin(), units.end());
  llvm::SetVector<Value> inputs;
  for (Operation *unit : units) {
    for (Value operand : unit->getOperands()) {
      Operation *def = operand.getDefiningOp();
      if (!def || !inGroup.contains(def)) {
        inputs.insert(operand);
      }
    }
  }
  SmallVector<Value> outputs;
  for (Operation *unit : units) {
    for (Value result : unit->getResults()) {
      if (llvm::any_of(result.getUsers(), [&](Operation *user) {
            return !inGroup.contains(user);
          })) {
        outputs.push_back(result);
      }
    }
  }
  Operation *last = units.back();
  OpBuilder b(last);
  SmallVector<Type> resultTypes;
  for (Value v : outputs) {
    resultTypes.push_back(v.getType());
  }
  auto kernel =
      KernelOp::create(b, last->getLoc(), resultTypes, b.getStringAttr(name),
                       inputs.getArrayRef(), ScheduleAttr());
  SmallVector<Type> argTypes;
  SmallVector<Location> argLocs;
  for (Value v : inputs) {
    argTypes.push_back(v.getType());
    argLocs.push_back(v.getLoc());
  }
  Block *body = b.createBlock(&kernel.getBody(), {}, argTypes, argLocs);
  // Values of the enclosing block -> values inside the new kernel.
  IRMapping outer;
  for (auto [input, arg] : llvm::zip(inputs, body->getArguments())) {
    outer.map(input, arg);
  }
  for (Operation *unit : units) {
    auto inner = dyn_cast<KernelOp>(unit);
    if (!inner) {
      b.clone(*unit, outer);
      continue;
    }
    Block &innerBody = inner.getBody().front();
    IRMapping mapping;
    for (auto [arg, operand] :
         llvm::zip(innerBody.getArguments(), inner->getOperands())) {
      mapping.map(arg, outer.lookup(operand));
    }
    for (Operation &op : innerBody.without_terminator()) {
      b.clone(op, mapping);
    }
    for (auto [result, yielded] : llvm::zip(
             inner->getResults(), innerBody.getTerminator()->getOperands())) {
      outer.map(result, mapping.lookup(yielded));
    }
  }
  SmallVector<Value> yielded;
  for (Value v : outputs) {
    yielded.push_back(outer.lookup(v));
  }
  YieldOp::create(b, last->getLoc(), yielded);
  for (auto [output, result] : llvm::zip(outputs, kernel.getResults())) {
    output.replaceUsesWithIf(result, [&](OpOperand &use) {
      return !inGroup.contains(use.getOwner());
    });
  }
  for (Operation *unit : llvm::reverse(units)) {
    unit->dropAllUses();
    unit->erase();
  }
  return kernel;
}

std::string cpuScheduler(KernelOp kernel) {
  if (auto attr = kernel->getAttrOfType<StringAttr>("cpu_scheduler")) {
    return attr.str();
  }
  return "";
}

void setCpuScheduler(KernelOp kernel, StringRef scheduler) {
  if (scheduler.empty()) {
    kernel->removeAttr("cpu_scheduler");
  } else {
    kernel->setAttr("cpu_scheduler",
                    StringAttr::get(kernel.getContext(), scheduler));
  }
}

int64_t tensorBytes(Type type) {
  auto tensor = cast<RankedTensorType>(type);
  int64_t bits = tensor.getElementTypeBitWidth();
  return tensor.getNumElements() * std::max<int64_t>(1, bits / 8);
}

::synth::sched::KernelTraits kernelTraits(KernelOp kernel) {
  ::synth::sched::KernelTraits traits;
  for (Operation &op : kernel.getBody().front()) {
    if (isa<YieldOp, ToIndexOp>(op)) {
      continue;
    }
    traits.ops.push_back(op.getName().stripDialect().str());
    if (auto attention = dyn_cast<FusedAttentionOp>(op)) {
      auto values = cast<RankedTensorType>(attention.getValues().getType());
      traits.keys = values.getDimSize(2);
      traits.headDim = values.getDimSize(3);
    }
  }
  return traits;
}

::synth::sched::Schedule scheduleFromAttr(DictionaryAttr fields) {
  ::synth::sched::Schedule schedule;
  for (NamedAttribute field : fields) {
    std::string name = field.getName().str();
    if (auto i = dyn_cast<IntegerAttr>(field.getValue())) {
      schedule.fields[name] = i.getInt();
    } else if (auto s = dyn_cast<StringAttr>(field.getValue())) {
      schedule.fields[name] = s.str();
    }
  }
  return schedule;
}

DictionaryAttr scheduleToAttr(MLIRContext *ctx,
                              const ::synth::sched::Schedule &schedule) {
  Builder b(ctx);
  SmallVector<NamedAttribute> fields;
  for (const auto &[name, value] : schedule.fields) {
    Attribute attr;
    if (const int64_t *i = std::get_if<int64_t>(&value)) {
      attr = b.getI64IntegerAttr(*i);
    } else {
      attr = b.getStringAttr(std::get<std::string>(value));
    }
    fields.push_back(b.getNamedAttr(name, attr));
  }
  return b.getDictionaryAttr(fields);
}

} // namespace mlir::synth
