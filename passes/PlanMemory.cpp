//===- PlanMemory.cpp - arena offsets from kernel result lifetimes --------===//
//
// Linear scan in program order. At kernel i: allocate its results first
// (first fit among the free gaps of the arena), then free the buffers whose
// last reader is kernel i, so that outputs never overlap the inputs they are
// computed from.
//
//===----------------------------------------------------------------------===//

#include "passes/Passes.h"

#include "dialect/SynthOps.h"
#include "passes/KernelUtils.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/IR/Builders.h"

#include <map>

namespace mlir::synth {
#define GEN_PASS_DEF_PLANMEMORY
#include "passes/Passes.h.inc"
} // namespace mlir::synth

using namespace mlir;
using namespace mlir::synth;

namespace {

constexpr int64_t kAlignment = 64;

int64_t alignUp(int64_t n) {
  return (n + kAlignment - 1) / kAlignment * kAlignment;
}

/// Live intervals of the arena: offset -> size.
class Arena {
public:
  int64_t allocate(int64_t bytes) {
    bytes = alignUp(std::max<int64_t>(bytes, 1));
    int64_t offset = 0;
    for (auto [start, size] : live) {
      if (start - offset >= bytes) {
        break;
      }
      offset = std::max(offset, start + size);
    }
    live[offset] = bytes;
    high = std::max(high, offset + bytes);
    return offset;
  }
  void release(int64_t offset) { live.erase(offset); }
  int64_t highWater() const { return high; }

private:
  std::map<int64_t, int64_t> live;
  int64_t high = 0;
};

struct PlanMemoryPass
    : public mlir::synth::impl::PlanMemoryBase<PlanMemoryPass> {
  void runOnOperation() override {
    func::FuncOp func = getOperation();
    if (!func.getBody().hasOneBlock()) {
      func.emitError("synth-plan-memory expects a single-block function");
      return signalPassFailure();
    }
    Block &block = func.getBody().front();
    // Program position of every op, and the last position reading each value.
    DenseMap<Operation *, int64_t> position;
    int64_t next = 0;
    for (Operation &op : block) {
      position[&op] = next++;
    }
    Arena arena;
    DenseMap<Value, int64_t> offsetOf;
    // Buffers to free after each position.
    std::map<int64_t, SmallVector<int64_t>> freeAfter;
    Operation *terminator = block.getTerminator();
    for (Operation &op : block) {
      auto kernel = dyn_cast<KernelOp>(op);
      if (!kernel) {
        if (&op != terminator) {
          op.emitError("synth-plan-memory expects only synth.kernel ops; run "
                       "synth-form-kernels first");
          return signalPassFailure();
        }
        continue;
      }
      SmallVector<int64_t> offsets;
      for (Value result : kernel.getResults()) {
        bool returned = llvm::is_contained(terminator->getOperands(), result);
        if (returned) {
          offsets.push_back(-1);
          continue;
        }
        int64_t last = position[kernel];
        for (Operation *user : result.getUsers()) {
          last = std::max(last, position[block.findAncestorOpInBlock(*user)]);
        }
        int64_t offset = arena.allocate(tensorBytes(result.getType()));
        offsets.push_back(offset);
        freeAfter[last].push_back(offset);
      }
      kernel->setAttr("synth.arena_offsets",
                      DenseI64ArrayAttr::get(&getContext(), offsets));
      for (int64_t offset : freeAfter[position[kernel]]) {
        arena.release(offset);
      }
    }
    func->setAttr("synth.arena_bytes",
                  IntegerAttr::get(IntegerType::get(&getContext(), 64),
                                   arena.highWater()));
  }
};

} // namespace
