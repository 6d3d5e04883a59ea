//===- CudaKernels.cpp - synth.kernel -> gpu.func (stage 1) ---------------===//
//
// Every synth.kernel is an anchor op followed by a chain of pointwise
// epilogue ops (bias, activation, residual add, head split/merge). Each
// becomes one gpu.func on memrefs, written with scf/arith/math/memref and an
// explicit mapping to blocks and threads, chosen per anchor:
//   pointwise        one thread per element, 256 threads per block
//   linear           64x64 output tile per block of 16x16 threads, 4x4
//                    outputs per thread in registers, A/B tiles of 16 along
//                    the reduction staged in shared memory; with precision
//                    bf16/f16: 64x64 per block of 4 warps, 32x32 per warp as
//                    2x4 nvgpu.mma.sync m16n8k16 tiles (f32 accumulators),
//                    16-bit A/B tiles of 32 along the reduction in shared
//                    memory, fragments read as 1-D vector<2x16-bit> loads
//   layer_norm       one warp per row (4 rows per block), shuffle reductions
//   mean_pool        one thread per output element
//   cross_entropy    one block; per-thread partial sums (f64) reduced in
//                    shared memory
//   fused_attention  flash style: one block per (query tile, head, batch);
//                    key/value tiles staged in shared memory; scores of one
//                    tile in shared memory; running max, sum and output
//                    columns in registers (loop-carried scalars); causal
//                    blocks stop after their last visible key tile; with
//                    bf16/f16 the tensor-core version (emitAttentionMma)
//   attention_stats  the fused attention's pass without values: row lse
//   fused_attention_grad  scores, P and dS recomputed per tile of 16 x 32
//                    (never stored); a block per (batch, head), head or
//                    batch row adds each tile's contribution to the part of
//                    the gradient it owns (no atomics); dQ/dK/dV on tensor
//                    cores with bf16/f16
//   backward and optimizer ops (linear_weight_grad, layer norm, softmax
//                    and embedding gradients, sum_squares, learning_rate,
//                    adamw with three outputs updated in place): see each
//                    emitter
// The epilogue is applied to each computed element on its way to memory, so
// no intermediate of a kernel is written to global memory.
//
//===----------------------------------------------------------------------===//

#include "codegen/cuda/CudaCodegen.h"

#include "dialect/SynthOps.h"

#include "absl/strings/str_cat.h"
#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/Dialect/GPU/IR/GPUDialect.h"
#include "mlir/Dialect/Math/IR/Math.h"
#include "mlir/Dialect/MemRef/IR/MemRef.h"
#include "mlir/Dialect/NVGPU/IR/NVGPUDialect.h"
#include "mlir/Dialect/SCF/IR/SCF.h"
#include "mlir/Dialect/Vector/IR/VectorOps.h"
#include "mlir/IR/Builders.h"
#include "llvm/ADT/TypeSwitch.h"
#include "llvm/Support/raw_ostream.h"

#include <cmath>
#include <functional>
#include <tuple>

namespace synth::cuda {

using namespace mlir;

namespace {

/// Masked scores: far below any real score, yet finite, so that differences
/// of masked scores never produce NaN (as the CPU back end).
constexpr float kMaskedScore = -1e30f;
/// Attention tiling: queries per block, keys per tile.
constexpr int64_t kQueryTile = 16;
constexpr int64_t kKeyTile = 32;
/// Tensor-core attention: queries per block (one warp per 16).
constexpr int64_t kMmaQueryTile = 64;
/// Its register budget per thread (.maxnreg), also the attention gradients'.
constexpr int32_t kMmaAttentionRegs = 128;
/// Static shared memory per block without opting in to more.
constexpr int64_t kMaxSharedBytes = 48 * 1024;

std::string where(Operation *op) {
  std::string text;
  llvm::raw_string_ostream os(text);
  os << op->getName() << " at " << op->getLoc();
  return text;
}

absl::Status unsupported(Operation *op, const std::string &why) {
  return absl::UnimplementedError(
      absl::StrCat("CUDA back end: ", where(op), ": ", why));
}

int64_t product(ArrayRef<int64_t> shape) {
  int64_t n = 1;
  for (int64_t d : shape) {
    n *= d;
  }
  return n;
}

ArrayRef<int64_t> shapeOf(Value v) {
  return cast<RankedTensorType>(v.getType()).getShape();
}

/// The memref a kernel argument of tensor type `type` is passed as: same
/// shape, f32/i32 as is, i1 masks as bytes (docs/artifact-format.md).
FailureOr<MemRefType> bufferType(Type type) {
  auto tensor = dyn_cast<RankedTensorType>(type);
  if (!tensor || !tensor.hasStaticShape()) {
    return failure();
  }
  Type element = tensor.getElementType();
  if (element.isInteger(1)) {
    element = IntegerType::get(type.getContext(), 8);
  } else if (!element.isF32() && !element.isInteger(32)) {
    return failure();
  }
  return MemRefType::get(tensor.getShape(), element);
}

//===----------------------------------------------------------------------===//
// Emitter: arithmetic and control flow on one OpBuilder, short to read.
//===----------------------------------------------------------------------===//

class Emitter {
public:
  Emitter(OpBuilder &b, Location loc) : b(b), loc(loc) {}

  OpBuilder &b;
  Location loc;

  Value idx(int64_t v) { return arith::ConstantIndexOp::create(b, loc, v); }
  Value f32(double v) {
    return arith::ConstantOp::create(b, loc,
                                     b.getF32FloatAttr(static_cast<float>(v)));
  }
  Value f64(double v) {
    return arith::ConstantOp::create(b, loc, b.getF64FloatAttr(v));
  }
  Value i32(int64_t v) {
    return arith::ConstantOp::create(b, loc, b.getI32IntegerAttr(v));
  }

  // Index arithmetic (indices are never negative here: unsigned div/rem).
  Value add(Value x, Value y) { return arith::AddIOp::create(b, loc, x, y); }
  Value add(Value x, int64_t y) { return add(x, idx(y)); }
  Value mul(Value x, int64_t y) {
    return arith::MulIOp::create(b, loc, x, idx(y));
  }
  Value mul(Value x, Value y) { return arith::MulIOp::create(b, loc, x, y); }
  Value div(Value x, int64_t y) {
    return arith::DivUIOp::create(b, loc, x, idx(y));
  }
  Value rem(Value x, int64_t y) {
    return arith::RemUIOp::create(b, loc, x, idx(y));
  }
  Value minI(Value x, int64_t y) {
    return arith::MinUIOp::create(b, loc, x, idx(y));
  }
  Value lt(Value x, int64_t y) { return lt(x, idx(y)); }
  Value lt(Value x, Value y) {
    return arith::CmpIOp::create(b, loc, arith::CmpIPredicate::ult, x, y);
  }
  Value le(Value x, Value y) {
    return arith::CmpIOp::create(b, loc, arith::CmpIPredicate::ule, x, y);
  }
  Value andI(Value x, Value y) { return arith::AndIOp::create(b, loc, x, y); }
  /// ceil(x / y) for index x.
  Value ceilDiv(Value x, int64_t y) { return div(add(x, y - 1), y); }

  // Float arithmetic.
  Value fadd(Value x, Value y) { return arith::AddFOp::create(b, loc, x, y); }
  Value fsub(Value x, Value y) { return arith::SubFOp::create(b, loc, x, y); }
  Value fmul(Value x, Value y) { return arith::MulFOp::create(b, loc, x, y); }
  Value fdiv(Value x, Value y) { return arith::DivFOp::create(b, loc, x, y); }
  Value fmax(Value x, Value y) {
    return arith::MaxNumFOp::create(b, loc, x, y);
  }
  Value fma(Value x, Value y, Value acc) {
    return math::FmaOp::create(b, loc, x, y, acc);
  }
  Value fgt(Value x, Value y) {
    return arith::CmpFOp::create(b, loc, arith::CmpFPredicate::OGT, x, y);
  }
  Value exp(Value x) { return math::ExpOp::create(b, loc, x); }
  Value select(Value c, Value x, Value y) {
    return arith::SelectOp::create(b, loc, c, x, y);
  }
  Value toIndex(Value i32Value) {
    return arith::IndexCastOp::create(b, loc, b.getIndexType(), i32Value);
  }

  Value load(Value memref, ValueRange indices) {
    return memref::LoadOp::create(b, loc, memref, indices);
  }
  void store(Value v, Value memref, ValueRange indices) {
    memref::StoreOp::create(b, loc, v, memref, indices);
  }

  Value threadId() {
    return gpu::ThreadIdOp::create(b, loc, gpu::Dimension::x);
  }
  Value blockId(gpu::Dimension d) { return gpu::BlockIdOp::create(b, loc, d); }
  void barrier() { gpu::BarrierOp::create(b, loc); }

  /// scf.for lb..ub step with loop-carried `inits`; `body` returns the next
  /// values. Returns the loop's results.
  SmallVector<Value>
  loop(Value lb, Value ub, int64_t step, ValueRange inits,
       const std::function<SmallVector<Value>(Value, ValueRange)> &body) {
    auto forOp = scf::ForOp::create(b, loc, lb, ub, idx(step), inits);
    OpBuilder::InsertionGuard guard(b);
    Block *block = forOp.getBody();
    if (!block->empty()) {
      block->getTerminator()->erase();
    }
    b.setInsertionPointToEnd(block);
    SmallVector<Value> next =
        body(forOp.getInductionVar(), forOp.getRegionIterArgs());
    scf::YieldOp::create(b, loc, next);
    return SmallVector<Value>(forOp.getResults());
  }
  void loop(Value lb, Value ub, int64_t step,
            const std::function<void(Value)> &body) {
    loop(lb, ub, step, {}, [&](Value iv, ValueRange) {
      body(iv);
      return SmallVector<Value>();
    });
  }
  /// for (e = tid; e < count; e += threads): cooperative loops of a block.
  void strided(Value tid, int64_t count, int64_t threads,
               const std::function<void(Value)> &body) {
    loop(tid, idx(count), threads, body);
  }

  void ifThen(Value cond, const std::function<void()> &body) {
    auto ifOp = scf::IfOp::create(b, loc, cond, /*withElseRegion=*/false);
    OpBuilder::InsertionGuard guard(b);
    b.setInsertionPointToStart(&ifOp.getThenRegion().front());
    body();
  }

  /// Row-major unflattening of a linear index over `shape`.
  SmallVector<Value> unflatten(Value linear, ArrayRef<int64_t> shape) {
    SmallVector<Value> out(shape.size());
    for (int i = static_cast<int>(shape.size()) - 1; i >= 0; --i) {
      out[i] = i == 0 ? linear : rem(linear, shape[i]);
      if (i > 0) {
        linear = div(linear, shape[i]);
      }
    }
    return out;
  }

  /// Butterfly max over the 32 lanes of a warp.
  Value warpMax(Value v) {
    for (int offset = 16; offset >= 1; offset /= 2) {
      auto shuffle =
          gpu::ShuffleOp::create(b, loc, v, offset, 32, gpu::ShuffleMode::XOR);
      v = fmax(v, shuffle.getShuffleResult());
    }
    return v;
  }

  /// Butterfly sum over the 32 lanes of a warp (every lane gets the total).
  Value warpSum(Value v) {
    for (int offset = 16; offset >= 1; offset /= 2) {
      auto shuffle =
          gpu::ShuffleOp::create(b, loc, v, offset, 32, gpu::ShuffleMode::XOR);
      v = fadd(v, shuffle.getShuffleResult());
    }
    return v;
  }
};

/// An element on its way to memory: its value and row-major index in the
/// shape of the op that produced it.
struct Element {
  Value value;
  SmallVector<Value> index;
};

/// What the attention kernels read of a fused attention, of its statistics
/// (attention_stats) or of one of its gradients (fused_attention_grad): the
/// score parts and their operands, the mixture logits, the values, the masks.
struct AttentionOperands {
  Operation *op = nullptr;
  SmallVector<mlir::synth::ScorePartAttr> parts;
  SmallVector<SmallVector<Value>> partOperands;
  Value logits, values, keyMask, queryOffset;
  bool causal = false;
  int64_t queries = 0; ///< N, the number of query rows
};

template <typename OpT>
AttentionOperands attentionOperands(OpT op, int64_t queries) {
  AttentionOperands a;
  a.op = op.getOperation();
  for (auto [i, attr] : llvm::enumerate(
           op.getScoreParts()
               .template getAsRange<mlir::synth::ScorePartAttr>())) {
    a.parts.push_back(attr);
    auto operands = op.getPartOperands(i);
    a.partOperands.emplace_back(operands.begin(), operands.end());
  }
  a.logits = op.getMixtureLogits();
  a.values = op.getValues();
  a.keyMask = op.getKeyMask();
  a.causal = op.getCausal();
  a.queries = queries;
  return a;
}

AttentionOperands attentionOperands(mlir::synth::FusedAttentionOp op) {
  AttentionOperands a = attentionOperands(op, shapeOf(op.getResult())[2]);
  a.queryOffset = op.getQueryOffset();
  return a;
}
AttentionOperands attentionOperands(mlir::synth::AttentionStatsOp op) {
  return attentionOperands(op, shapeOf(op.getResult())[2]);
}
AttentionOperands attentionOperands(mlir::synth::FusedAttentionGradOp op) {
  return attentionOperands(op, shapeOf(op.getOutput())[2]);
}

//===----------------------------------------------------------------------===//
// KernelLowering: one synth.kernel -> one gpu.func
//===----------------------------------------------------------------------===//

class KernelLowering {
public:
  KernelLowering(mlir::synth::KernelOp kernel, OpBuilder &b,
                 const std::string &precision)
      : kernel_(kernel), b_(b), e_(b, kernel.getLoc()), precision_(precision) {}

  absl::StatusOr<LaunchInfo> run(gpu::GPUModuleOp module) {
    Block &body = kernel_.getBody().front();
    if (body.without_terminator().empty()) {
      return unsupported(kernel_, "empty kernel");
    }
    // Positions (decoding) come first: synth.to_index of 0-d i32 inputs.
    auto ops = body.without_terminator();
    auto it = ops.begin();
    for (; it != ops.end() && isa<mlir::synth::ToIndexOp>(*it); ++it) {
      indexOps_.push_back(cast<mlir::synth::ToIndexOp>(*it));
    }
    if (it == ops.end()) {
      return unsupported(kernel_, "kernel without an anchor op");
    }
    anchor_ = &*it;
    info_.name = kernel_.getKernelName().str();
    info_.anchor = anchor_->getName().stripDialect().str();
    Operation *terminator = body.getTerminator();
    // A multi-result anchor (adamw: parameter and moments) is the whole
    // kernel: one output buffer per result.
    if (anchor_->getNumResults() > 1) {
      if (std::next(it) != ops.end() ||
          terminator->getOperands() != anchor_->getResults()) {
        return unsupported(anchor_,
                           "kernel " + info_.name +
                               ": a multi-result op must be the "
                               "kernel's only op, its results yielded");
      }
      return build(module, SmallVector<Value>(anchor_->getResults()));
    }
    // The chain: each op after the anchor consumes the previous op's result.
    Value previous = anchor_->getResult(0);
    for (Operation &op : llvm::make_range(std::next(it), ops.end())) {
      if (op.getNumResults() != 1 ||
          !llvm::is_contained(op.getOperands(), previous)) {
        return unsupported(&op, "kernel " + info_.name +
                                    ": only a chain of pointwise ops may "
                                    "follow the kernel's first op");
      }
      chain_.push_back(&op);
      previous = op.getResult(0);
    }
    if (terminator->getNumOperands() != 1 ||
        terminator->getOperand(0) != previous) {
      return unsupported(terminator,
                         "kernel " + info_.name +
                             ": expected one result, the chain's last value");
    }
    return build(module, {previous});
  }

private:
  /// Builds the gpu.func: every input, then one buffer per result.
  absl::StatusOr<LaunchInfo> build(gpu::GPUModuleOp module,
                                   SmallVector<Value> results) {
    Block &body = kernel_.getBody().front();
    // Signature: every input, then the outputs, as memrefs.
    SmallVector<Type> args;
    for (BlockArgument arg : body.getArguments()) {
      FailureOr<MemRefType> type = bufferType(arg.getType());
      if (failed(type)) {
        return unsupported(kernel_, "input #" +
                                        std::to_string(arg.getArgNumber()) +
                                        " is not a static f32/i32/i1 tensor");
      }
      args.push_back(*type);
    }
    for (Value result : results) {
      FailureOr<MemRefType> outType = bufferType(result.getType());
      if (failed(outType)) {
        return unsupported(kernel_, "the result is not a static f32 tensor");
      }
      args.push_back(*outType);
    }

    OpBuilder::InsertionGuard guard(b_);
    b_.setInsertionPointToStart(module.getBody());
    // Shared memory is declared per anchor before the function is built.
    if (absl::Status s = planShared(); !s.ok()) {
      return s;
    }
    SmallVector<Type> shared;
    for (const SharedBuffer &buffer : shared_) {
      shared.push_back(MemRefType::get(
          buffer.shape, buffer.element, MemRefLayoutAttrInterface{},
          gpu::AddressSpaceAttr::get(b_.getContext(),
                                     gpu::AddressSpace::Workgroup)));
      info_.sharedBytes +=
          product(buffer.shape) * (buffer.element.getIntOrFloatBitWidth() / 8);
    }
    if (info_.sharedBytes > kMaxSharedBytes) {
      return unsupported(anchor_, absl::StrCat("kernel ", info_.name, " needs ",
                                               info_.sharedBytes,
                                               " bytes of shared memory (at "
                                               "most 49152 supported)"));
    }
    func_ = gpu::GPUFuncOp::create(b_, kernel_.getLoc(), info_.name,
                                   b_.getFunctionType(args, {}), shared,
                                   TypeRange{});
    func_->setAttr(gpu::GPUDialect::getKernelFuncAttrName(), b_.getUnitAttr());
    if (useMma() || mmaAttention_ || mmaGrad_) {
      // Fragments are read as 32-bit words: align the shared tiles.
      for (size_t i = 0; i < shared_.size(); ++i) {
        func_.setWorkgroupAttributionAttr(i, "llvm.align",
                                          b_.getI64IntegerAttr(16));
      }
    }
    Block &entry = func_.getBody().front();
    b_.setInsertionPointToStart(&entry);
    for (BlockArgument arg : body.getArguments()) {
      buffers_[arg] = func_.getArgument(arg.getArgNumber());
    }
    for (size_t r = 0; r < results.size(); ++r) {
      outputs_.push_back(func_.getArgument(body.getNumArguments() + r));
    }
    output_ = outputs_[0];
    for (auto [i, buffer] : llvm::enumerate(shared_)) {
      shared_[i].memref = func_.getWorkgroupAttributions()[i];
    }
    // Positions: loaded once per thread; negative ones clamp to 0 (and each
    // use clamps to its op's range: kernels do not report bad positions).
    for (mlir::synth::ToIndexOp op : indexOps_) {
      Value source = buffer(op.getInput());
      if (!source) {
        return unsupported(op, "position defined inside the kernel");
      }
      Value raw = memref::LoadOp::create(b_, e_.loc, source, ValueRange{});
      Value nonNegative = arith::MaxSIOp::create(b_, e_.loc, raw, e_.i32(0));
      indices_[op.getResult()] = arith::IndexCastOp::create(
          b_, e_.loc, b_.getIndexType(), nonNegative);
    }

    if (absl::Status s = emitAnchor(); !s.ok()) {
      return s;
    }
    gpu::ReturnOp::create(b_, kernel_.getLoc());
    func_.setKnownBlockSizeAttr(
        b_.getDenseI32ArrayAttr({static_cast<int32_t>(info_.block[0]),
                                 static_cast<int32_t>(info_.block[1]),
                                 static_cast<int32_t>(info_.block[2])}));
    if (mmaAttention_ || isa<mlir::synth::FusedAttentionGradOp>(anchor_)) {
      // Left to itself, ptxas (sm_80) squeezes the tensor-core attention
      // into 72 registers and spills (the attention gradients into 64, on
      // sm_90a too); a budget of 128 (4 blocks of 128 threads per SM) keeps
      // every value in registers.
      func_->setAttr("nvvm.maxnreg", b_.getI32IntegerAttr(kMmaAttentionRegs));
    }
    return info_;
  }

  struct SharedBuffer {
    std::string name;
    SmallVector<int64_t> shape;
    Type element;
    Value memref;
  };

  mlir::synth::KernelOp kernel_;
  OpBuilder &b_;
  Emitter e_;
  std::string precision_;
  Operation *anchor_ = nullptr;
  SmallVector<Operation *> chain_;
  LaunchInfo info_;
  gpu::GPUFuncOp func_;
  DenseMap<Value, Value> buffers_;
  SmallVector<mlir::synth::ToIndexOp> indexOps_;
  DenseMap<Value, Value> indices_; ///< to_index results -> index values
  Value output_;                   ///< the (first) output buffer
  SmallVector<Value> outputs_;
  SmallVector<SharedBuffer> shared_;

  Value buffer(Value synthValue) { return buffers_.lookup(synthValue); }
  /// The value of a synth.to_index result (an index), or null.
  Value position(Value synthIndex) {
    return synthIndex ? indices_.lookup(synthIndex) : Value();
  }

  int addShared(const std::string &name, ArrayRef<int64_t> shape,
                Type element) {
    shared_.push_back({name, SmallVector<int64_t>(shape), element, Value()});
    return static_cast<int>(shared_.size()) - 1;
  }
  Value shared(int id) { return shared_[id].memref; }

  //===--------------------------------------------------------------------===//
  // Pointwise ops: the epilogue chain (and pointwise anchors)
  //===--------------------------------------------------------------------===//

  static bool isPointwise(Operation *op) {
    return isa<mlir::synth::ReluOp, mlir::synth::GeluOp, mlir::synth::AddOp,
               mlir::synth::AddPositionsOp, mlir::synth::SplitHeadsOp,
               mlir::synth::MergeHeadsOp>(op);
  }

  /// Applies pointwise `op` to `in`, the element of its operand `from`.
  FailureOr<Element> pointwise(Operation *op, Value from, Element in) {
    Element out = in;
    if (isa<mlir::synth::ReluOp>(op)) {
      out.value = e_.fmax(in.value, e_.f32(0.0));
    } else if (auto gelu = dyn_cast<mlir::synth::GeluOp>(op)) {
      Value x = in.value;
      Value half = e_.fmul(e_.f32(0.5), x);
      Value inner;
      if (gelu.getApproximation() == mlir::synth::GeluApproximation::Tanh) {
        Value cube = e_.fmul(e_.fmul(x, x), x);
        Value arg = e_.fmul(e_.f32(0.7978845608028654),
                            e_.fma(e_.f32(0.044715), cube, x));
        inner = math::TanhOp::create(b_, e_.loc, arg);
      } else {
        inner = math::ErfOp::create(b_, e_.loc,
                                    e_.fmul(x, e_.f32(0.7071067811865476)));
      }
      out.value = e_.fmul(half, e_.fadd(e_.f32(1.0), inner));
    } else if (isa<mlir::synth::AddOp>(op)) {
      Value other =
          op->getOperand(0) == from ? op->getOperand(1) : op->getOperand(0);
      if (!buffer(other)) {
        return failure();
      }
      out.value = e_.fadd(in.value, e_.load(buffer(other), in.index));
    } else if (auto positions = dyn_cast<mlir::synth::AddPositionsOp>(op)) {
      if (from != positions.getInput() || !buffer(positions.getTable()) ||
          (positions.getOffset() && !position(positions.getOffset()))) {
        return failure();
      }
      Value row = in.index[1];
      if (positions.getOffset()) {
        int64_t rows = shapeOf(positions.getTable())[0];
        row = e_.minI(e_.add(row, position(positions.getOffset())), rows - 1);
      }
      out.value = e_.fadd(
          in.value, e_.load(buffer(positions.getTable()), {row, in.index[2]}));
    } else if (isa<mlir::synth::SplitHeadsOp>(op)) {
      // [b, n, H*d] -> [b, H, n, d]
      int64_t d = shapeOf(op->getResult(0))[3];
      out.index = {in.index[0], e_.div(in.index[2], d), in.index[1],
                   e_.rem(in.index[2], d)};
    } else if (isa<mlir::synth::MergeHeadsOp>(op)) {
      // [b, H, n, d] -> [b, n, H*d]
      int64_t d = shapeOf(op->getOperand(0))[3];
      out.index = {in.index[0], in.index[2],
                   e_.add(e_.mul(in.index[1], d), in.index[3])};
    } else {
      return failure();
    }
    return out;
  }

  /// Runs the chain on an element of the anchor's result and stores it.
  absl::Status finish(Element element) {
    Value from = anchor_->getResult(0);
    for (Operation *op : chain_) {
      FailureOr<Element> next = pointwise(op, from, element);
      if (failed(next)) {
        return unsupported(op, "not supported in a kernel's epilogue");
      }
      element = *next;
      from = op->getResult(0);
    }
    e_.store(element.value, output_, element.index);
    return absl::OkStatus();
  }

  //===--------------------------------------------------------------------===//
  // Anchors
  //===--------------------------------------------------------------------===//

  absl::Status planShared() {
    if (useMma()) {
      // Both tiles k-contiguous (W stored n-major), rows padded.
      addShared("a_tile", {kLinearTile, kMmaRow}, halfType());
      addShared("b_tile", {kLinearTile, kMmaRow}, halfType());
    } else if (isa<mlir::synth::LinearOp, mlir::synth::LinearWeightGradOp>(
                   anchor_)) {
      // x tile stored transposed; one padding column avoids bank conflicts.
      addShared("a_tile", {kLinearK, kLinearTile + 1}, b_.getF32Type());
      addShared("b_tile", {kLinearK, kLinearTile}, b_.getF32Type());
    } else if (isa<mlir::synth::CrossEntropyOp>(anchor_)) {
      addShared("loss_partial", {kReduceThreads}, b_.getF64Type());
      addShared("count_partial", {kReduceThreads}, b_.getF64Type());
    } else if (auto attention =
                   dyn_cast<mlir::synth::FusedAttentionOp>(anchor_)) {
      attn_ = attentionOperands(attention);
      return planAttentionShared(attn_);
    } else if (auto stats = dyn_cast<mlir::synth::AttentionStatsOp>(anchor_)) {
      attn_ = attentionOperands(stats);
      return planAttentionShared(attn_);
    } else if (auto grad =
                   dyn_cast<mlir::synth::FusedAttentionGradOp>(anchor_)) {
      attn_ = attentionOperands(grad);
      return planAttentionGradShared(grad);
    } else if (isa<mlir::synth::SumSquaresOp>(anchor_)) {
      addShared("partial", {kReduceThreads}, b_.getF64Type());
    } else if (isa<mlir::synth::LayerNormGammaGradOp>(anchor_)) {
      addShared("row_stats", {kGammaRows, 2}, b_.getF32Type());
      addShared("partial", {kGammaRows, 32}, b_.getF32Type());
    }
    return absl::OkStatus();
  }

  absl::Status emitAnchor() {
    namespace synth = mlir::synth;
    Operation *op = anchor_;
    if (isPointwise(op)) {
      return emitPointwise(op);
    }
    return llvm::TypeSwitch<Operation *, absl::Status>(op)
        .Case<synth::LinearOp>([&](auto o) { return emitLinear(o); })
        .Case<synth::LayerNormOp>([&](auto o) { return emitLayerNorm(o); })
        .Case<synth::MeanPoolOp>([&](auto o) { return emitMeanPool(o); })
        .Case<synth::CrossEntropyOp>(
            [&](auto o) { return emitCrossEntropy(o); })
        .Case<synth::FusedAttentionOp, synth::AttentionStatsOp>(
            [&](auto) { return emitAttention(attn_); })
        .Case<synth::FusedAttentionGradOp>(
            [&](auto o) { return emitAttentionGrad(o); })
        .Case<synth::LinearWeightGradOp>(
            [&](auto o) { return emitLinearWeightGrad(o); })
        .Case<synth::SumRowsOp>([&](auto o) { return emitSumRows(o); })
        .Case<synth::LayerNormGradOp>(
            [&](auto o) { return emitLayerNormGrad(o); })
        .Case<synth::LayerNormGammaGradOp>(
            [&](auto o) { return emitLayerNormGammaGrad(o); })
        .Case<synth::ReluGradOp, synth::GeluGradOp>(
            [&](auto) { return emitActivationGrad(op); })
        .Case<synth::PositionsGradOp>(
            [&](auto o) { return emitPositionsGrad(o); })
        .Case<synth::MeanPoolGradOp>(
            [&](auto o) { return emitMeanPoolGrad(o); })
        .Case<synth::EmbeddingGradOp>(
            [&](auto o) { return emitEmbeddingGrad(o); })
        .Case<synth::CrossEntropyGradOp>(
            [&](auto o) { return emitCrossEntropyGrad(o); })
        .Case<synth::SumSquaresOp>([&](auto o) { return emitSumSquares(o); })
        .Case<synth::LearningRateOp>(
            [&](auto o) { return emitLearningRate(o); })
        .Case<synth::AdamWOp>([&](auto o) { return emitAdamW(o); })
        .Case<synth::EmbeddingOp>([&](auto o) { return emitEmbedding(o); })
        .Case<synth::AttentionProbsOp>(
            [&](auto o) { return emitAttentionProbs(o); })
        .Case<synth::AttendProbsOp>([&](auto o) { return emitAttendProbs(o); })
        .Case<synth::CacheUpdateOp>([&](auto o) { return emitCacheUpdate(o); })
        .Case<synth::SliceRowsOp>([&](auto o) { return emitSliceRows(o); })
        .Default([&](Operation *) {
          return unsupported(op, "no CUDA kernel for this op (standalone "
                                 "score ops and attend must go through "
                                 "synth-fuse-attention)");
        });
  }

  static constexpr int64_t kPointwiseThreads = 256;

  /// One thread per element of `shape`; `body` receives the index.
  void elementGrid(ArrayRef<int64_t> shape,
                   const std::function<void(SmallVector<Value>)> &body) {
    int64_t total = product(shape);
    info_.block = {kPointwiseThreads, 1, 1};
    info_.grid = {(total + kPointwiseThreads - 1) / kPointwiseThreads, 1, 1};
    Value linear =
        e_.add(e_.mul(e_.blockId(gpu::Dimension::x), kPointwiseThreads),
               e_.threadId());
    e_.ifThen(e_.lt(linear, total), [&] { body(e_.unflatten(linear, shape)); });
  }

  /// cache_update: the cache with rows [p, p + n) of every (batch, head)
  /// replaced by the update's n rows; one thread per element.
  absl::Status emitCacheUpdate(mlir::synth::CacheUpdateOp op) {
    Value cache = buffer(op.getCache()), update = buffer(op.getUpdate());
    Value at = position(op.getPosition());
    if (!cache || !update || !at) {
      return unsupported(op, "operands defined inside the kernel");
    }
    ArrayRef<int64_t> shape = shapeOf(op.getCache());
    int64_t n = shapeOf(op.getUpdate())[2];
    Value p = e_.minI(at, shape[2] - n);
    absl::Status status;
    elementGrid(shape, [&](SmallVector<Value> index) {
      Value row = index[2];
      // Unsigned index arithmetic: row - p wraps for rows before p.
      Value local = arith::SubIOp::create(b_, e_.loc, row, p);
      Value fresh = e_.lt(local, n);
      Value fromUpdate = e_.load(
          update, {index[0], index[1], e_.minI(local, n - 1), index[3]});
      Value v = e_.select(fresh, fromUpdate, e_.load(cache, index));
      status = finish({v, index});
    });
    return status;
  }

  /// slice_rows: rows [p, p + n) of x[h, rows, m]; one thread per element.
  absl::Status emitSliceRows(mlir::synth::SliceRowsOp op) {
    Value x = buffer(op.getInput());
    Value at = position(op.getOffset());
    if (!x || !at) {
      return unsupported(op, "operands defined inside the kernel");
    }
    int64_t rows = shapeOf(op.getInput())[1];
    absl::Status status;
    elementGrid(shapeOf(op.getResult()), [&](SmallVector<Value> index) {
      Value row = e_.minI(e_.add(index[1], at), rows - 1);
      status = finish({e_.load(x, {index[0], row, index[2]}), index});
    });
    return status;
  }

  /// A pointwise anchor: one thread per element of its first operand.
  absl::Status emitPointwise(Operation *op) {
    Value source = op->getOperand(0);
    if (!buffer(source)) {
      return unsupported(op, "operand defined outside the kernel");
    }
    absl::Status status;
    elementGrid(shapeOf(source), [&](SmallVector<Value> index) {
      Element in{e_.load(buffer(source), index), index};
      FailureOr<Element> out = pointwise(op, source, in);
      if (failed(out)) {
        status = unsupported(op, "unsupported operands");
        return;
      }
      // The anchor's own result is `out`; the chain continues from it.
      status = finish(*out);
    });
    return status;
  }

  /// Token ids outside [0, vocab) are clamped (the CPU back end reports them;
  /// a device-side error flag is future work).
  absl::Status emitEmbedding(mlir::synth::EmbeddingOp op) {
    ArrayRef<int64_t> shape = shapeOf(op.getResult());
    int64_t vocab = shapeOf(op.getTable())[0];
    absl::Status status;
    elementGrid(shape, [&](SmallVector<Value> index) {
      SmallVector<Value> idIndex(index.begin(), index.end() - 1);
      Value id = e_.toIndex(e_.load(buffer(op.getIds()), idIndex));
      // Unsigned min also maps negative ids (huge as unsigned) to vocab - 1.
      Value row = e_.minI(id, vocab - 1);
      Value v = e_.load(buffer(op.getTable()), {row, index.back()});
      status = finish({v, index});
    });
    return status;
  }

  // linear: C[M, N] = A[M, K] W[K, N] (+ bias), W^T when transpose_weight.
  static constexpr int64_t kLinearTile = 64;    // output rows/cols per block
  static constexpr int64_t kLinearK = 16;       // reduction step
  static constexpr int64_t kLinearThreads = 16; // threads per block dim
  static constexpr int64_t kLinearPerThread = kLinearTile / kLinearThreads;

  absl::Status emitLinear(mlir::synth::LinearOp op) {
    ArrayRef<int64_t> xShape = shapeOf(op.getInput());
    ArrayRef<int64_t> leading = xShape.drop_back();
    int64_t k = xShape.back();
    int64_t m = product(leading);
    int64_t n = shapeOf(op.getResult()).back();
    bool transposed = op.getTransposeWeight();
    Value x = buffer(op.getInput()), w = buffer(op.getWeight());
    MatrixLoad loadA = [&](Value row, Value kk) {
      SmallVector<Value> index = e_.unflatten(row, leading);
      index.push_back(kk);
      return e_.load(x, index);
    };
    MatrixLoad loadB = [&](Value kk, Value col) {
      return transposed ? e_.load(w, {col, kk}) : e_.load(w, {kk, col});
    };
    MatrixStore store = [&](Value row, Value col, Value v) {
      if (op.getBias()) {
        v = e_.fadd(v, e_.load(buffer(op.getBias()), {col}));
      }
      SmallVector<Value> index = e_.unflatten(row, leading);
      index.push_back(col);
      return finish({v, index});
    };
    if (useMma()) {
      return tiledMatmulMma(m, n, k, loadA, /*aKContiguous=*/true, loadB,
                            /*bKContiguous=*/transposed, store);
    }
    return tiledMatmul(m, n, k, loadA, loadB, store);
  }

  /// linear_weight_grad: dW[i, o] = sum over rows r of x[r, i] dy[r, o], the
  /// tiled matmul with the rows (batch x sequence) as its reduction; on
  /// tensor cores at bf16/f16 (f32 accumulators).
  absl::Status emitLinearWeightGrad(mlir::synth::LinearWeightGradOp op) {
    ArrayRef<int64_t> xShape = shapeOf(op.getInput());
    ArrayRef<int64_t> leading = xShape.drop_back();
    int64_t in = xShape.back(), rows = product(leading);
    int64_t out = shapeOf(op.getDResult()).back();
    Value x = buffer(op.getInput()), dy = buffer(op.getDResult());
    auto rowIndex = [&](Value r, Value c) {
      SmallVector<Value> index = e_.unflatten(r, leading);
      index.push_back(c);
      return index;
    };
    MatrixLoad loadA = [&](Value i, Value r) {
      return e_.load(x, rowIndex(r, i));
    };
    MatrixLoad loadB = [&](Value r, Value o) {
      return e_.load(dy, rowIndex(r, o));
    };
    MatrixStore store = [&](Value i, Value o, Value v) {
      return finish({v, op.getTransposeWeight() ? SmallVector<Value>{o, i}
                                                : SmallVector<Value>{i, o}});
    };
    if (useMma()) {
      return tiledMatmulMma(in, out, rows, loadA, /*aKContiguous=*/false, loadB,
                            /*bKContiguous=*/false, store);
    }
    return tiledMatmul(in, out, rows, loadA, loadB, store);
  }

  using MatrixLoad = std::function<Value(Value, Value)>;
  using MatrixStore = std::function<absl::Status(Value, Value, Value)>;

  /// C[m, n] = sum_k A[m, k] B[k, n] on CUDA cores: a 64x64 output tile per
  /// block of 16x16 threads, 4x4 outputs per thread in registers, A (stored
  /// transposed, padded) and B tiles of 16 along k in shared memory, two
  /// barriers per k step. `loadA(row, kk)` and `loadB(kk, col)` read in-range
  /// elements (indices are clamped; out-of-range ones contribute 0); `store`
  /// receives each in-range output.
  absl::Status tiledMatmul(int64_t m, int64_t n, int64_t k,
                           const MatrixLoad &loadA, const MatrixLoad &loadB,
                           const MatrixStore &store) {
    constexpr int64_t threads = kLinearThreads * kLinearThreads;
    info_.block = {threads, 1, 1};
    info_.grid = {(n + kLinearTile - 1) / kLinearTile,
                  (m + kLinearTile - 1) / kLinearTile, 1};
    Value aTile = shared(0), bTile = shared(1);
    Value tid = e_.threadId();
    Value tx = e_.rem(tid, kLinearThreads), ty = e_.div(tid, kLinearThreads);
    Value n0 = e_.mul(e_.blockId(gpu::Dimension::x), kLinearTile);
    Value m0 = e_.mul(e_.blockId(gpu::Dimension::y), kLinearTile);
    Value zero = e_.f32(0.0);
    auto loadX = [&](Value row, Value kk) {
      Value valid = e_.andI(e_.lt(row, m), e_.lt(kk, k));
      return e_.select(valid, loadA(e_.minI(row, m - 1), e_.minI(kk, k - 1)),
                       zero);
    };
    auto loadW = [&](Value kk, Value col) {
      Value valid = e_.andI(e_.lt(kk, k), e_.lt(col, n));
      return e_.select(valid, loadB(e_.minI(kk, k - 1), e_.minI(col, n - 1)),
                       zero);
    };
    constexpr int64_t outputs = kLinearPerThread * kLinearPerThread;
    SmallVector<Value> inits(outputs, zero);
    int64_t kTiles = (k + kLinearK - 1) / kLinearK;
    SmallVector<Value> acc = e_.loop(
        e_.idx(0), e_.idx(kTiles), 1, inits, [&](Value kt, ValueRange carried) {
          Value k0 = e_.mul(kt, kLinearK);
          // Stage a 64 x 16 tile of A (transposed) and a 16 x 64 tile of B.
          for (int64_t step = 0; step < kLinearTile * kLinearK / threads;
               ++step) {
            Value flat = e_.add(tid, step * threads);
            Value ml = e_.div(flat, kLinearK), kl = e_.rem(flat, kLinearK);
            e_.store(loadX(e_.add(m0, ml), e_.add(k0, kl)), aTile, {kl, ml});
            Value kb = e_.div(flat, kLinearTile),
                  nl = e_.rem(flat, kLinearTile);
            e_.store(loadW(e_.add(k0, kb), e_.add(n0, nl)), bTile, {kb, nl});
          }
          e_.barrier();
          SmallVector<Value> next = e_.loop(
              e_.idx(0), e_.idx(kLinearK), 1, carried,
              [&](Value kk, ValueRange sums) {
                SmallVector<Value> as, bs, out;
                for (int64_t r = 0; r < kLinearPerThread; ++r) {
                  as.push_back(
                      e_.load(aTile, {kk, e_.add(ty, r * kLinearThreads)}));
                  bs.push_back(
                      e_.load(bTile, {kk, e_.add(tx, r * kLinearThreads)}));
                }
                for (int64_t r = 0; r < kLinearPerThread; ++r) {
                  for (int64_t c = 0; c < kLinearPerThread; ++c) {
                    out.push_back(
                        e_.fma(as[r], bs[c], sums[r * kLinearPerThread + c]));
                  }
                }
                return out;
              });
          e_.barrier();
          return next;
        });
    absl::Status status;
    for (int64_t r = 0; r < kLinearPerThread; ++r) {
      for (int64_t c = 0; c < kLinearPerThread; ++c) {
        Value row = e_.add(m0, e_.add(ty, r * kLinearThreads));
        Value col = e_.add(n0, e_.add(tx, c * kLinearThreads));
        e_.ifThen(e_.andI(e_.lt(row, m), e_.lt(col, n)), [&] {
          absl::Status s = store(row, col, acc[r * kLinearPerThread + c]);
          if (!s.ok()) {
            status = s;
          }
        });
      }
    }
    return status;
  }

  // linear on tensor cores (precision bf16 or f16): the same 64x64 output
  // tile per block, computed by 4 warps (2 x 2), each a 32x32 sub-tile of
  // 2 x 4 m16n8k16 MMA tiles with f32 accumulators (8 loop-carried
  // vector<2x2xf32>). Per K step of 32, x (64 x 32) and W (as W^T, 64 x 32)
  // are rounded to 16-bit into shared memory, k-contiguous and padded to 40
  // elements a row (the 8 rows x 4 words of a fragment load hit 32 distinct
  // banks); each fragment register (two consecutive k of one row) is one 1-D
  // vector<2xbf16|f16> load, inserted into nvgpu.mma.sync's operand vectors.
  static constexpr int64_t kMmaK = 32;
  static constexpr int64_t kMmaRow = kMmaK + 8;
  static constexpr int64_t kMmaWarps = 4;
  static constexpr int64_t kMmaWarpTile = 32;

  bool useMma() const {
    return precision_ != "f32" &&
           isa<mlir::synth::LinearOp, mlir::synth::LinearWeightGradOp>(anchor_);
  }
  Type halfType() {
    return precision_ == "bf16" ? Type(b_.getBF16Type())
                                : Type(b_.getF16Type());
  }

  // Tensor-core fragments (PTX's m16n8k16 layouts): A is vector<4x2xhalf>,
  // B vector<2x2xhalf>, C/D vector<2x2xf32>; each row of A and B is one
  // 32-bit register holding two consecutive k elements.
  VectorType accumulatorType() {
    return VectorType::get({2, 2}, b_.getF32Type());
  }
  VectorType fragmentAType() { return VectorType::get({4, 2}, halfType()); }
  VectorType fragmentBType() { return VectorType::get({2, 2}, halfType()); }
  VectorType halfPairType() { return VectorType::get({2}, halfType()); }
  Value zeroVector(VectorType type) {
    Attribute element = FloatAttr::get(type.getElementType(), 0.0);
    return arith::ConstantOp::create(b_, e_.loc,
                                     DenseElementsAttr::get(type, element));
  }
  /// One fragment register from a shared tile: elements (row, col) and
  /// (row, col + 1).
  Value sharedPair(Value tile, Value row, Value col) {
    return vector::LoadOp::create(b_, e_.loc, halfPairType(), tile,
                                  ValueRange{row, col});
  }
  /// A fragment from its registers, in order.
  Value fragment(VectorType type, ArrayRef<Value> pairs) {
    Value out = zeroVector(type);
    for (auto [i, p] : llvm::enumerate(pairs)) {
      out = vector::InsertOp::create(b_, e_.loc, p, out,
                                     ArrayRef<int64_t>{int64_t(i)});
    }
    return out;
  }
  Value mma(Value a, Value b, Value c) {
    return nvgpu::MmaSyncOp::create(b_, e_.loc, a, b, c,
                                    ArrayRef<int64_t>{16, 8, 16});
  }
  /// Element (h, c) of an accumulator: row group + 8h, column 2 quad + c.
  Value accumulatorAt(Value acc, int64_t h, int64_t c) {
    return vector::ExtractOp::create(b_, e_.loc, acc, ArrayRef<int64_t>{h, c});
  }

  /// C[m, n] = sum_k A[m, k] B[k, n] on tensor cores (see above);
  /// `loadA`/`loadB`/`store` as tiledMatmul. `aKContiguous` and
  /// `bKContiguous` say whether consecutive k are adjacent in memory, so
  /// that the staging loops read global memory coalesced.
  absl::Status tiledMatmulMma(int64_t m, int64_t n, int64_t k,
                              const MatrixLoad &loadA, bool aKContiguous,
                              const MatrixLoad &loadB, bool bKContiguous,
                              const MatrixStore &store) {
    constexpr int64_t threads = 32 * kMmaWarps;
    info_.block = {threads, 1, 1};
    info_.grid = {(n + kLinearTile - 1) / kLinearTile,
                  (m + kLinearTile - 1) / kLinearTile, 1};
    Value aTile = shared(0), bTile = shared(1);
    Type half = halfType();
    Value tid = e_.threadId();
    Value lane = e_.rem(tid, 32), warp = e_.div(tid, 32);
    // The warp's 32x32 sub-tile; a lane's fragment row (group) and pair of
    // columns (2 * quad), as in PTX's m16n8k16 fragment layouts.
    Value wm = e_.mul(e_.div(warp, 2), kMmaWarpTile);
    Value wn = e_.mul(e_.rem(warp, 2), kMmaWarpTile);
    Value group = e_.div(lane, 4), quad2 = e_.mul(e_.rem(lane, 4), 2);
    Value n0 = e_.mul(e_.blockId(gpu::Dimension::x), kLinearTile);
    Value m0 = e_.mul(e_.blockId(gpu::Dimension::y), kLinearTile);
    Value zero = e_.f32(0.0);
    auto loadX = [&](Value row, Value kk) {
      Value valid = e_.andI(e_.lt(row, m), e_.lt(kk, k));
      return e_.select(valid, loadA(e_.minI(row, m - 1), e_.minI(kk, k - 1)),
                       zero);
    };
    auto loadW = [&](Value kk, Value col) {
      Value valid = e_.andI(e_.lt(kk, k), e_.lt(col, n));
      return e_.select(valid, loadB(e_.minI(kk, k - 1), e_.minI(col, n - 1)),
                       zero);
    };
    auto toHalf = [&](Value v) {
      return arith::TruncFOp::create(b_, e_.loc, half, v).getResult();
    };
    VectorType accType = accumulatorType(), aType = fragmentAType(),
               bType = fragmentBType();
    constexpr int64_t mTiles = kMmaWarpTile / 16, nTiles = kMmaWarpTile / 8;
    SmallVector<Value> inits(mTiles * nTiles, zeroVector(accType));
    int64_t kTiles = (k + kMmaK - 1) / kMmaK;
    SmallVector<Value> acc = e_.loop(
        e_.idx(0), e_.idx(kTiles), 1, inits, [&](Value kt, ValueRange carried) {
          Value k0 = e_.mul(kt, kMmaK);
          // Stage x[m0:+64, k0:+32] and W^T[n0:+64, k0:+32], coalesced
          // along the contiguous dimension of each global buffer.
          // A loop (not unrolled here): unrolled, LLVM hoists the 32 clamped
          // staging addresses out of the k loop and holds them in registers.
          e_.strided(tid, kLinearTile * kMmaK, threads, [&](Value flat) {
            Value kMajor = e_.rem(flat, kMmaK), kOuter = e_.div(flat, kMmaK);
            Value rowMajor = e_.rem(flat, kLinearTile),
                  rowOuter = e_.div(flat, kLinearTile);
            Value ml = aKContiguous ? kOuter : rowMajor;
            Value kl = aKContiguous ? kMajor : rowOuter;
            e_.store(toHalf(loadX(e_.add(m0, ml), e_.add(k0, kl))), aTile,
                     {ml, kl});
            Value nl = bKContiguous ? kOuter : rowMajor;
            Value kb = bKContiguous ? kMajor : rowOuter;
            e_.store(toHalf(loadW(e_.add(k0, kb), e_.add(n0, nl))), bTile,
                     {nl, kb});
          });
          e_.barrier();
          SmallVector<Value> sums(carried);
          for (int64_t ks = 0; ks < kMmaK; ks += 16) {
            Value c0 = e_.add(quad2, ks), c8 = e_.add(quad2, ks + 8);
            SmallVector<Value> as, bs;
            for (int64_t i = 0; i < mTiles; ++i) {
              Value r0 = e_.add(e_.add(wm, group), i * 16);
              Value r8 = e_.add(r0, 8);
              as.push_back(fragment(aType, {sharedPair(aTile, r0, c0),
                                            sharedPair(aTile, r8, c0),
                                            sharedPair(aTile, r0, c8),
                                            sharedPair(aTile, r8, c8)}));
            }
            for (int64_t j = 0; j < nTiles; ++j) {
              Value col = e_.add(e_.add(wn, group), j * 8);
              bs.push_back(fragment(bType, {sharedPair(bTile, col, c0),
                                            sharedPair(bTile, col, c8)}));
            }
            for (int64_t i = 0; i < mTiles; ++i) {
              for (int64_t j = 0; j < nTiles; ++j) {
                Value &sum = sums[i * nTiles + j];
                sum = mma(as[i], bs[j], sum);
              }
            }
          }
          e_.barrier();
          return sums;
        });
    // Accumulator (h, c) of tile (i, j): row group + 8h, column 2 quad + c.
    absl::Status status;
    for (int64_t i = 0; i < mTiles; ++i) {
      for (int64_t j = 0; j < nTiles; ++j) {
        for (int64_t h = 0; h < 2; ++h) {
          for (int64_t c = 0; c < 2; ++c) {
            Value row = e_.add(m0, e_.add(e_.add(wm, group), i * 16 + h * 8));
            Value col = e_.add(n0, e_.add(e_.add(wn, quad2), j * 8 + c));
            Value v = vector::ExtractOp::create(b_, e_.loc, acc[i * nTiles + j],
                                                ArrayRef<int64_t>{h, c});
            e_.ifThen(e_.andI(e_.lt(row, m), e_.lt(col, n)), [&] {
              if (absl::Status s = store(row, col, v); !s.ok()) {
                status = s;
              }
            });
          }
        }
      }
    }
    return status;
  }

  static constexpr int64_t kNormRowsPerBlock = 4;

  /// One warp per row of `rows`, kNormRowsPerBlock rows per block; `body`
  /// runs for the rows in range (a condition uniform per warp, so shuffles
  /// see all 32 lanes) with the row and the lane.
  void warpPerRow(int64_t rows,
                  const std::function<void(Value row, Value lane)> &body) {
    info_.block = {32 * kNormRowsPerBlock, 1, 1};
    info_.grid = {(rows + kNormRowsPerBlock - 1) / kNormRowsPerBlock, 1, 1};
    Value tid = e_.threadId();
    Value lane = e_.rem(tid, 32);
    Value row = e_.add(e_.mul(e_.blockId(gpu::Dimension::x), kNormRowsPerBlock),
                       e_.div(tid, 32));
    e_.ifThen(e_.lt(row, rows), [&] { body(row, lane); });
  }

  /// One warp per row: mean, then the biased variance around it (two passes
  /// over the row, as the reference), both reduced with warp shuffles.
  absl::Status emitLayerNorm(mlir::synth::LayerNormOp op) {
    ArrayRef<int64_t> shape = shapeOf(op.getInput());
    ArrayRef<int64_t> leading = shape.drop_back();
    int64_t d = shape.back();
    Value x = buffer(op.getInput());
    absl::Status status;
    warpPerRow(product(leading), [&](Value row, Value lane) {
      SmallVector<Value> prefix = e_.unflatten(row, leading);
      auto at = [&](Value c) {
        SmallVector<Value> index = prefix;
        index.push_back(c);
        return index;
      };
      Value mean, inv;
      std::tie(mean, inv) =
          rowStatistics(x, prefix, d, lane, op.getEpsilon().convertToDouble());
      e_.loop(lane, e_.idx(d), 32, [&](Value c) {
        Value normalized = e_.fmul(e_.fsub(e_.load(x, at(c)), mean), inv);
        Value y = e_.fma(normalized, e_.load(buffer(op.getGamma()), {c}),
                         e_.load(buffer(op.getBeta()), {c}));
        if (absl::Status s = finish({y, at(c)}); !s.ok()) {
          status = s;
        }
      });
    });
    return status;
  }

  /// softmax_j(R[h, i, j] + causal mask) for j < N: one warp per row (h, i),
  /// max and sum reduced with warp shuffles.
  absl::Status emitAttentionProbs(mlir::synth::AttentionProbsOp op) {
    ArrayRef<int64_t> shape = shapeOf(op.getResult());
    int64_t heads = shape[0], n = shape[1], m = shape[2];
    Value r = buffer(op.getR());
    absl::Status status;
    warpPerRow(heads * n, [&](Value row, Value lane) {
      Value h = e_.div(row, n), i = e_.rem(row, n);
      Value zero = e_.f32(0.0);
      auto score = [&](Value j) {
        Value s = e_.load(r, {h, i, j});
        return op.getCausal() ? e_.select(e_.le(j, i), s, e_.f32(kMaskedScore))
                              : s;
      };
      Value mx = e_.loop(lane, e_.idx(m), 32, {e_.f32(kMaskedScore)},
                         [&](Value j, ValueRange a) -> SmallVector<Value> {
                           return {e_.fmax(a[0], score(j))};
                         })[0];
      mx = e_.warpMax(mx);
      auto prob = [&](Value j) {
        Value s = score(j);
        return e_.select(e_.fgt(s, e_.f32(kMaskedScore * 0.5)),
                         e_.exp(e_.fsub(s, mx)), zero);
      };
      Value sum = e_.loop(lane, e_.idx(m), 32, {zero},
                          [&](Value j, ValueRange a) -> SmallVector<Value> {
                            return {e_.fadd(a[0], prob(j))};
                          })[0];
      sum = e_.warpSum(sum);
      e_.loop(lane, e_.idx(m), 32, [&](Value j) {
        Value p = e_.select(e_.fgt(sum, zero), e_.fdiv(prob(j), sum), zero);
        if (absl::Status s = finish({p, {h, i, j}}); !s.ok()) {
          status = s;
        }
      });
    });
    return status;
  }

  /// P[h] @ V[b, h], or P[h]^T @ V[b, h] (transpose_probs: the values'
  /// gradient): one thread per output element (P is small: [H, N, M]
  /// computed once per parameter binding).
  absl::Status emitAttendProbs(mlir::synth::AttendProbsOp op) {
    int64_t m = shapeOf(op.getValues())[2];
    bool transposed = op.getTransposeProbs();
    Value p = buffer(op.getProbs()), v = buffer(op.getValues());
    absl::Status status;
    elementGrid(shapeOf(op.getResult()), [&](SmallVector<Value> index) {
      Value sum = e_.loop(
          e_.idx(0), e_.idx(m), 1, {e_.f32(0.0)},
          [&](Value j, ValueRange a) -> SmallVector<Value> {
            Value prob = transposed ? e_.load(p, {index[1], j, index[2]})
                                    : e_.load(p, {index[1], index[2], j});
            return {e_.fma(prob, e_.load(v, {index[0], index[1], j, index[3]}),
                           a[0])};
          })[0];
      status = finish({sum, index});
    });
    return status;
  }

  Value nonzero(Value byte) {
    Value zero = arith::ConstantOp::create(
        b_, e_.loc, b_.getIntegerAttr(byte.getType(), 0));
    return arith::CmpIOp::create(b_, e_.loc, arith::CmpIPredicate::ne, byte,
                                 zero);
  }

  absl::Status emitMeanPool(mlir::synth::MeanPoolOp op) {
    ArrayRef<int64_t> xShape = shapeOf(op.getInput());
    Value x = buffer(op.getInput()), mask = buffer(op.getMask());
    absl::Status status;
    elementGrid(shapeOf(op.getResult()), [&](SmallVector<Value> index) {
      Value zero = e_.f32(0.0), one = e_.f32(1.0);
      SmallVector<Value> sums =
          e_.loop(e_.idx(0), e_.idx(xShape[1]), 1, {zero, zero},
                  [&](Value n, ValueRange s) -> SmallVector<Value> {
                    Value real = nonzero(e_.load(mask, {index[0], n}));
                    Value v = e_.load(x, {index[0], n, index[1]});
                    return {e_.fadd(s[0], e_.select(real, v, zero)),
                            e_.fadd(s[1], e_.select(real, one, zero))};
                  });
      status = finish({e_.fdiv(sums[0], e_.fmax(sums[1], one)), index});
    });
    return status;
  }

  //===--------------------------------------------------------------------===//
  // Backward pass and optimizer (training)
  //===--------------------------------------------------------------------===//

  /// sum_rows: one thread per column, the rows in order.
  absl::Status emitSumRows(mlir::synth::SumRowsOp op) {
    ArrayRef<int64_t> leading = shapeOf(op.getInput()).drop_back();
    Value x = buffer(op.getInput());
    absl::Status status;
    elementGrid(shapeOf(op.getResult()), [&](SmallVector<Value> index) {
      Value sum = e_.loop(e_.idx(0), e_.idx(product(leading)), 1, {e_.f32(0.0)},
                          [&](Value r, ValueRange a) -> SmallVector<Value> {
                            SmallVector<Value> at = e_.unflatten(r, leading);
                            at.push_back(index[0]);
                            return {e_.fadd(a[0], e_.load(x, at))};
                          })[0];
      status = finish({sum, index});
    });
    return status;
  }

  /// Mean and 1 / sqrt(variance + epsilon) of one row, by the warp whose
  /// lanes call it (as emitLayerNorm: two passes, shuffle sums).
  std::pair<Value, Value> rowStatistics(Value x, ArrayRef<Value> prefix,
                                        int64_t d, Value lane, double epsilon) {
    auto at = [&](Value c) {
      SmallVector<Value> index(prefix.begin(), prefix.end());
      index.push_back(c);
      return index;
    };
    Value sum = e_.loop(lane, e_.idx(d), 32, {e_.f32(0.0)},
                        [&](Value c, ValueRange s) -> SmallVector<Value> {
                          return {e_.fadd(s[0], e_.load(x, at(c)))};
                        })[0];
    Value mean = e_.fdiv(e_.warpSum(sum), e_.f32(double(d)));
    Value sq = e_.loop(lane, e_.idx(d), 32, {e_.f32(0.0)},
                       [&](Value c, ValueRange s) -> SmallVector<Value> {
                         Value centered = e_.fsub(e_.load(x, at(c)), mean);
                         return {e_.fma(centered, centered, s[0])};
                       })[0];
    Value var = e_.fdiv(e_.warpSum(sq), e_.f32(double(d)));
    Value rstd = e_.fdiv(
        e_.f32(1.0),
        math::SqrtOp::create(b_, e_.loc, e_.fadd(var, e_.f32(epsilon))));
    return {mean, rstd};
  }

  /// layer_norm_grad: one warp per row; statistics recomputed, then
  /// dx = rstd (g - mean(g) - xhat mean(g xhat)) with g = dy gamma.
  absl::Status emitLayerNormGrad(mlir::synth::LayerNormGradOp op) {
    ArrayRef<int64_t> shape = shapeOf(op.getInput());
    ArrayRef<int64_t> leading = shape.drop_back();
    int64_t d = shape.back();
    Value x = buffer(op.getInput()), gamma = buffer(op.getGamma()),
          dy = buffer(op.getDResult());
    absl::Status status;
    warpPerRow(product(leading), [&](Value row, Value lane) {
      SmallVector<Value> prefix = e_.unflatten(row, leading);
      auto at = [&](Value c) {
        SmallVector<Value> index = prefix;
        index.push_back(c);
        return index;
      };
      Value mean, rstd;
      std::tie(mean, rstd) =
          rowStatistics(x, prefix, d, lane, op.getEpsilon().convertToDouble());
      auto g = [&](Value c) {
        return e_.fmul(e_.load(dy, at(c)), e_.load(gamma, {c}));
      };
      auto xhat = [&](Value c) {
        return e_.fmul(e_.fsub(e_.load(x, at(c)), mean), rstd);
      };
      Value zero = e_.f32(0.0);
      SmallVector<Value> sums =
          e_.loop(lane, e_.idx(d), 32, {zero, zero},
                  [&](Value c, ValueRange s) -> SmallVector<Value> {
                    Value gc = g(c);
                    return {e_.fadd(s[0], gc), e_.fma(gc, xhat(c), s[1])};
                  });
      Value meanG = e_.fdiv(e_.warpSum(sums[0]), e_.f32(double(d)));
      Value meanGX = e_.fdiv(e_.warpSum(sums[1]), e_.f32(double(d)));
      e_.loop(lane, e_.idx(d), 32, [&](Value c) {
        Value inner = e_.fsub(e_.fsub(g(c), meanG), e_.fmul(xhat(c), meanGX));
        if (absl::Status s = finish({e_.fmul(rstd, inner), at(c)}); !s.ok()) {
          status = s;
        }
      });
    });
    return status;
  }

  /// Rows per step of layer_norm_gamma_grad (one warp each).
  static constexpr int64_t kGammaRows = 8;

  /// layer_norm_gamma_grad: a block per 32 columns, 8 warps. Per step of 8
  /// rows, warp w computes row w's statistics into shared memory, then lane
  /// l adds dy xhat of column c0 + l of that row to its partial sum; the 8
  /// partials of a column are added at the end (no atomics: deterministic).
  absl::Status emitLayerNormGammaGrad(mlir::synth::LayerNormGammaGradOp op) {
    ArrayRef<int64_t> shape = shapeOf(op.getInput());
    ArrayRef<int64_t> leading = shape.drop_back();
    int64_t d = shape.back(), rows = product(leading);
    info_.block = {32 * kGammaRows, 1, 1};
    info_.grid = {(d + 31) / 32, 1, 1};
    Value x = buffer(op.getInput()), dy = buffer(op.getDResult());
    Value stats = shared(0), partial = shared(1);
    Value tid = e_.threadId();
    Value lane = e_.rem(tid, 32), warp = e_.div(tid, 32);
    Value c = e_.add(e_.mul(e_.blockId(gpu::Dimension::x), 32), lane);
    Value cc = e_.minI(c, d - 1);
    Value zero = e_.f32(0.0);
    double epsilon = op.getEpsilon().convertToDouble();
    Value acc = e_.loop(
        e_.idx(0), e_.idx(rows), kGammaRows, {zero},
        [&](Value r0, ValueRange a) -> SmallVector<Value> {
          Value row = e_.add(r0, warp);
          Value rc = e_.minI(row, rows - 1);
          SmallVector<Value> prefix = e_.unflatten(rc, leading);
          e_.barrier(); // the previous rows' statistics are read
          e_.ifThen(e_.lt(row, rows), [&] { // uniform per warp
            Value mean, rstd;
            std::tie(mean, rstd) = rowStatistics(x, prefix, d, lane, epsilon);
            e_.store(mean, stats, {warp, e_.idx(0)});
            e_.store(rstd, stats, {warp, e_.idx(1)});
          });
          e_.barrier();
          SmallVector<Value> at = prefix;
          at.push_back(cc);
          Value xhat = e_.fmul(
              e_.fsub(e_.load(x, at), e_.load(stats, {warp, e_.idx(0)})),
              e_.load(stats, {warp, e_.idx(1)}));
          Value term = e_.fmul(e_.load(dy, at), xhat);
          Value valid = e_.andI(e_.lt(row, rows), e_.lt(c, d));
          return {e_.fadd(a[0], e_.select(valid, term, zero))};
        })[0];
    e_.store(acc, partial, {warp, lane});
    e_.barrier();
    absl::Status status;
    e_.ifThen(e_.andI(e_.lt(warp, 1), e_.lt(c, d)), [&] {
      Value sum = zero;
      for (int64_t w = 0; w < kGammaRows; ++w) {
        sum = e_.fadd(sum, e_.load(partial, {e_.idx(w), lane}));
      }
      status = finish({sum, {c}});
    });
    return status;
  }

  /// relu_grad (dy where the relu's result is positive) and gelu_grad
  /// (dy gelu'(x), erf or tanh as the gelu): one thread per element.
  absl::Status emitActivationGrad(Operation *op) {
    Value in = buffer(op->getOperand(0)), dy = buffer(op->getOperand(1));
    if (!in || !dy) {
      return unsupported(op, "operands defined inside the kernel");
    }
    auto gelu = dyn_cast<mlir::synth::GeluGradOp>(op);
    absl::Status status;
    elementGrid(shapeOf(op->getResult(0)), [&](SmallVector<Value> index) {
      Value x = e_.load(in, index), g = e_.load(dy, index);
      Value zero = e_.f32(0.0), half = e_.f32(0.5), one = e_.f32(1.0);
      Value v;
      if (!gelu) {
        v = e_.select(e_.fgt(x, zero), g, zero);
      } else if (gelu.getApproximation() ==
                 mlir::synth::GeluApproximation::Tanh) {
        // u = c (x + a x^3): 0.5 (1 + tanh u) + 0.5 x (1 - tanh^2 u) u'.
        constexpr double c = 0.7978845608028654, a = 0.044715;
        Value x2 = e_.fmul(x, x);
        Value u = e_.fmul(e_.f32(c), e_.fma(e_.fmul(e_.f32(a), x2), x, x));
        Value t = math::TanhOp::create(b_, e_.loc, u);
        Value du = e_.fmul(e_.f32(c), e_.fma(e_.f32(3 * a), x2, one));
        Value sech2 = e_.fsub(one, e_.fmul(t, t));
        Value d = e_.fma(e_.fmul(e_.fmul(half, x), sech2), du,
                         e_.fmul(half, e_.fadd(one, t)));
        v = e_.fmul(g, d);
      } else {
        // 0.5 (1 + erf(x / sqrt 2)) + x exp(-x^2 / 2) / sqrt(2 pi).
        Value cdf = e_.fmul(
            half, e_.fadd(one, math::ErfOp::create(
                                   b_, e_.loc,
                                   e_.fmul(x, e_.f32(0.7071067811865476)))));
        Value pdf = e_.fmul(e_.f32(0.3989422804014327),
                            e_.exp(e_.fmul(e_.f32(-0.5), e_.fmul(x, x))));
        v = e_.fmul(g, e_.fma(x, pdf, cdf));
      }
      status = finish({v, index});
    });
    return status;
  }

  /// positions_grad: row p < N of the table is the batch sum of dy[:, p];
  /// rows the sequences did not reach are 0.
  absl::Status emitPositionsGrad(mlir::synth::PositionsGradOp op) {
    ArrayRef<int64_t> dyShape = shapeOf(op.getDResult());
    Value dy = buffer(op.getDResult());
    absl::Status status;
    elementGrid(shapeOf(op.getResult()), [&](SmallVector<Value> index) {
      Value p = e_.minI(index[0], dyShape[1] - 1);
      Value sum =
          e_.loop(e_.idx(0), e_.idx(dyShape[0]), 1, {e_.f32(0.0)},
                  [&](Value bb, ValueRange a) -> SmallVector<Value> {
                    return {e_.fadd(a[0], e_.load(dy, {bb, p, index[1]}))};
                  })[0];
      status = finish(
          {e_.select(e_.lt(index[0], dyShape[1]), sum, e_.f32(0.0)), index});
    });
    return status;
  }

  /// mean_pool_grad: dy[b] / max(1, real tokens of b) at real tokens, else 0.
  absl::Status emitMeanPoolGrad(mlir::synth::MeanPoolGradOp op) {
    Value dy = buffer(op.getDResult()), mask = buffer(op.getMask());
    int64_t n = shapeOf(op.getMask())[1];
    absl::Status status;
    elementGrid(shapeOf(op.getResult()), [&](SmallVector<Value> index) {
      Value zero = e_.f32(0.0), one = e_.f32(1.0);
      Value count =
          e_.loop(e_.idx(0), e_.idx(n), 1, {zero},
                  [&](Value i, ValueRange a) -> SmallVector<Value> {
                    Value real = nonzero(e_.load(mask, {index[0], i}));
                    return {e_.fadd(a[0], e_.select(real, one, zero))};
                  })[0];
      Value v = e_.fdiv(e_.load(dy, {index[0], index[2]}), e_.fmax(count, one));
      Value real = nonzero(e_.load(mask, {index[0], index[1]}));
      status = finish({e_.select(real, v, zero), index});
    });
    return status;
  }

  /// embedding_grad: one thread per (vocabulary row, column) scans every
  /// position in order (deterministic, no atomics; O(vocab x d x positions),
  /// fine for byte and small vocabularies). Ids are clamped to [0, vocab).
  absl::Status emitEmbeddingGrad(mlir::synth::EmbeddingGradOp op) {
    ArrayRef<int64_t> idShape = shapeOf(op.getIds());
    int64_t vocab = shapeOf(op.getResult())[0];
    Value ids = buffer(op.getIds()), dy = buffer(op.getDResult());
    absl::Status status;
    elementGrid(shapeOf(op.getResult()), [&](SmallVector<Value> index) {
      Value sum = e_.loop(
          e_.idx(0), e_.idx(product(idShape)), 1, {e_.f32(0.0)},
          [&](Value p, ValueRange a) -> SmallVector<Value> {
            SmallVector<Value> at = e_.unflatten(p, idShape);
            Value id = e_.load(ids, at);
            id = arith::MaxSIOp::create(b_, e_.loc, id, e_.i32(0));
            id = arith::MinSIOp::create(b_, e_.loc, id, e_.i32(vocab - 1));
            Value hit = arith::CmpIOp::create(
                b_, e_.loc, arith::CmpIPredicate::eq, e_.toIndex(id), index[0]);
            at.push_back(index[1]);
            return {
                e_.fadd(a[0], e_.select(hit, e_.load(dy, at), e_.f32(0.0)))};
          })[0];
      status = finish({sum, index});
    });
    return status;
  }

  /// cross_entropy_grad: one warp per row: (softmax - onehot) scale / count
  /// for rows whose target is not ignored, 0 for the others. Each warp
  /// counts the non-ignored targets itself (a pass over the targets).
  absl::Status emitCrossEntropyGrad(mlir::synth::CrossEntropyGradOp op) {
    ArrayRef<int64_t> shape = shapeOf(op.getLogits());
    ArrayRef<int64_t> leading = shape.drop_back();
    int64_t vocab = shape.back(), rows = product(leading);
    Value logits = buffer(op.getLogits()), targets = buffer(op.getTargets());
    Value zero = e_.f32(0.0), one = e_.f32(1.0);
    Value ignore = e_.i32(op.getIgnoreIndex());
    auto notIgnored = [&](Value target) {
      return arith::CmpIOp::create(b_, e_.loc, arith::CmpIPredicate::ne, target,
                                   ignore)
          .getResult();
    };
    absl::Status status;
    warpPerRow(rows, [&](Value row, Value lane) {
      Value count =
          e_.loop(lane, e_.idx(rows), 32, {zero},
                  [&](Value r, ValueRange a) -> SmallVector<Value> {
                    Value t = e_.load(targets, e_.unflatten(r, leading));
                    return {e_.fadd(a[0], e_.select(notIgnored(t), one, zero))};
                  })[0];
      count = e_.fmax(e_.warpSum(count), one);
      SmallVector<Value> prefix = e_.unflatten(row, leading);
      auto at = [&](Value c) {
        SmallVector<Value> index = prefix;
        index.push_back(c);
        return index;
      };
      Value mx = e_.loop(lane, e_.idx(vocab), 32, {e_.f32(kMaskedScore)},
                         [&](Value c, ValueRange a) -> SmallVector<Value> {
                           return {e_.fmax(a[0], e_.load(logits, at(c)))};
                         })[0];
      mx = e_.warpMax(mx);
      Value sum = e_.loop(
          lane, e_.idx(vocab), 32, {zero},
          [&](Value c, ValueRange a) -> SmallVector<Value> {
            return {e_.fadd(a[0], e_.exp(e_.fsub(e_.load(logits, at(c)), mx)))};
          })[0];
      sum = e_.warpSum(sum);
      Value target = e_.load(targets, prefix);
      Value valid = notIgnored(target);
      Value scale = op.getScale() ? e_.load(buffer(op.getScale()), {}) : one;
      Value factor = e_.fdiv(scale, count);
      e_.loop(lane, e_.idx(vocab), 32, [&](Value c) {
        Value prob = e_.fdiv(e_.exp(e_.fsub(e_.load(logits, at(c)), mx)), sum);
        Value isTarget = arith::CmpIOp::create(
            b_, e_.loc, arith::CmpIPredicate::eq,
            arith::IndexCastOp::create(b_, e_.loc, b_.getI32Type(), c), target);
        Value grad =
            e_.fmul(e_.fsub(prob, e_.select(isTarget, one, zero)), factor);
        if (absl::Status s = finish({e_.select(valid, grad, zero), at(c)});
            !s.ok()) {
          status = s;
        }
      });
    });
    return status;
  }

  /// sum_squares: one block; f64 partial sums per thread, added in order by
  /// thread 0.
  absl::Status emitSumSquares(mlir::synth::SumSquaresOp op) {
    ArrayRef<int64_t> shape = shapeOf(op.getInput());
    info_.block = {kReduceThreads, 1, 1};
    info_.grid = {1, 1, 1};
    Value x = buffer(op.getInput());
    Type f64 = b_.getF64Type();
    Value tid = e_.threadId();
    Value partial =
        e_.loop(tid, e_.idx(product(shape)), kReduceThreads, {e_.f64(0.0)},
                [&](Value i, ValueRange a) -> SmallVector<Value> {
                  Value v = arith::ExtFOp::create(
                      b_, e_.loc, f64, e_.load(x, e_.unflatten(i, shape)));
                  return {e_.fma(v, v, a[0])};
                })[0];
    e_.store(partial, shared(0), {tid});
    e_.barrier();
    absl::Status status;
    e_.ifThen(e_.lt(tid, 1), [&] {
      Value total = e_.loop(e_.idx(0), e_.idx(kReduceThreads), 1, {e_.f64(0.0)},
                            [&](Value t, ValueRange a) -> SmallVector<Value> {
                              return {e_.fadd(a[0], e_.load(shared(0), {t}))};
                            })[0];
      status = finish(
          {arith::TruncFOp::create(b_, e_.loc, b_.getF32Type(), total), {}});
    });
    return status;
  }

  Value toF32(Value i32Value) {
    return arith::SIToFPOp::create(b_, e_.loc, b_.getF32Type(), i32Value);
  }

  /// learning_rate: one thread; f32 arithmetic as the CPU back end.
  absl::Status emitLearningRate(mlir::synth::LearningRateOp op) {
    info_.block = {1, 1, 1};
    info_.grid = {1, 1, 1};
    Value t = toF32(e_.load(buffer(op.getStep()), {}));
    Value total = toF32(e_.load(buffer(op.getTotalSteps()), {}));
    int64_t warmup = op.getWarmupSteps();
    double finalRatio = op.getFinalRatio().convertToDouble();
    Value warm = e_.f32(double(warmup));
    Value progress =
        e_.fdiv(e_.fsub(t, warm), e_.fmax(e_.f32(1.0), e_.fsub(total, warm)));
    progress = arith::MinNumFOp::create(
        b_, e_.loc, e_.fmax(progress, e_.f32(0.0)), e_.f32(1.0));
    // cos of an argument in [0, pi]: the fast approximation (cos.approx,
    // absolute error ~1e-6) rather than libdevice's cosf, whose slow path
    // for huge arguments needs a stack and a module-scope table.
    Value cosine = math::CosOp::create(
        b_, e_.loc, e_.fmul(e_.f32(3.14159265358979), progress),
        arith::FastMathFlags::afn);
    Value decay = e_.fma(e_.f32((1.0 - finalRatio) * 0.5),
                         e_.fadd(e_.f32(1.0), cosine), e_.f32(finalRatio));
    Value rate =
        warmup > 0
            ? e_.select(arith::CmpFOp::create(
                            b_, e_.loc, arith::CmpFPredicate::OLE, t, warm),
                        e_.fdiv(t, warm), decay)
            : decay;
    return finish({e_.fmul(e_.f32(op.getPeak().convertToDouble()), rate), {}});
  }

  /// adamw: one thread per element; reads p, g, m, v and writes p', m', v'
  /// at the same index (the runtime binds the outputs to the parameter and
  /// state buffers: in place).
  absl::Status emitAdamW(mlir::synth::AdamWOp op) {
    double beta1 = op.getBeta1().convertToDouble();
    double beta2 = op.getBeta2().convertToDouble();
    double maxNorm = op.getMaxGradNorm().convertToDouble();
    if (maxNorm > 0.0 && !op.getGradSqNorm()) {
      return unsupported(op, "max_grad_norm without grad_sq_norm");
    }
    Value lr = e_.load(buffer(op.getLr()), {});
    Value t = toF32(e_.load(buffer(op.getStep()), {}));
    Value one = e_.f32(1.0);
    Value clip = one;
    if (maxNorm > 0.0) {
      Value sq = e_.load(buffer(op.getGradSqNorm()), {});
      Value norm = math::SqrtOp::create(b_, e_.loc, sq);
      clip = arith::MinNumFOp::create(
          b_, e_.loc, one,
          e_.fdiv(e_.f32(maxNorm), e_.fadd(norm, e_.f32(1e-6))));
    }
    auto pow = [&](double base) {
      return math::PowFOp::create(b_, e_.loc, e_.f32(base), t).getResult();
    };
    Value c1 = e_.fsub(one, pow(beta1)), c2 = e_.fsub(one, pow(beta2));
    Value decay = e_.fmul(lr, e_.f32(op.getWeightDecay().convertToDouble()));
    elementGrid(shapeOf(op.getParam()), [&](SmallVector<Value> index) {
      Value p = e_.load(buffer(op.getParam()), index);
      Value g = e_.fmul(e_.load(buffer(op.getGrad()), index), clip);
      Value m = e_.fma(e_.f32(beta1), e_.load(buffer(op.getM()), index),
                       e_.fmul(e_.f32(1.0 - beta1), g));
      Value v = e_.fma(e_.f32(beta2), e_.load(buffer(op.getV()), index),
                       e_.fmul(e_.f32(1.0 - beta2), e_.fmul(g, g)));
      Value denom = e_.fadd(math::SqrtOp::create(b_, e_.loc, e_.fdiv(v, c2)),
                            e_.f32(op.getEpsilon().convertToDouble()));
      Value update = e_.fdiv(e_.fdiv(m, c1), denom);
      Value next = e_.fsub(e_.fsub(p, e_.fmul(lr, update)), e_.fmul(decay, p));
      e_.store(next, outputs_[0], index);
      e_.store(m, outputs_[1], index);
      e_.store(v, outputs_[2], index);
    });
    return absl::OkStatus();
  }

  static constexpr int64_t kReduceThreads = 256;

  /// One block: thread t takes rows t, t + 256, ...; row losses and counts
  /// accumulate in f64 (the mean over many rows must match a float64
  /// reference), then thread 0 adds the 256 partial sums. Targets outside
  /// [0, vocab) that are not ignored are clamped (the CPU back end reports
  /// them).
  absl::Status emitCrossEntropy(mlir::synth::CrossEntropyOp op) {
    ArrayRef<int64_t> shape = shapeOf(op.getLogits());
    ArrayRef<int64_t> leading = shape.drop_back();
    int64_t vocab = shape.back(), rows = product(leading);
    info_.block = {kReduceThreads, 1, 1};
    info_.grid = {1, 1, 1};
    Value logits = buffer(op.getLogits()), targets = buffer(op.getTargets());
    Type f64 = b_.getF64Type();
    auto extend = [&](Value v) {
      return arith::ExtFOp::create(b_, e_.loc, f64, v).getResult();
    };
    Value tid = e_.threadId();
    Value zero = e_.f64(0.0), one = e_.f64(1.0);
    SmallVector<Value> partial = e_.loop(
        tid, e_.idx(rows), kReduceThreads, {zero, zero},
        [&](Value r, ValueRange s) -> SmallVector<Value> {
          SmallVector<Value> prefix = e_.unflatten(r, leading);
          auto at = [&](Value c) {
            SmallVector<Value> index = prefix;
            index.push_back(c);
            return index;
          };
          Value target = e_.load(targets, prefix);
          Value valid =
              arith::CmpIOp::create(b_, e_.loc, arith::CmpIPredicate::ne,
                                    target, e_.i32(op.getIgnoreIndex()));
          Value mx =
              e_.loop(e_.idx(0), e_.idx(vocab), 1, {e_.f32(kMaskedScore)},
                      [&](Value c, ValueRange m) -> SmallVector<Value> {
                        return {e_.fmax(m[0], e_.load(logits, at(c)))};
                      })[0];
          Value sum = e_.loop(e_.idx(0), e_.idx(vocab), 1, {zero},
                              [&](Value c, ValueRange a) -> SmallVector<Value> {
                                Value p =
                                    e_.exp(e_.fsub(e_.load(logits, at(c)), mx));
                                return {e_.fadd(a[0], extend(p))};
                              })[0];
          Value lse = e_.fadd(extend(mx), math::LogOp::create(b_, e_.loc, sum));
          Value picked =
              e_.load(logits, at(e_.minI(e_.toIndex(target), vocab - 1)));
          Value loss = e_.fsub(lse, extend(picked));
          return {e_.fadd(s[0], e_.select(valid, loss, zero)),
                  e_.fadd(s[1], e_.select(valid, one, zero))};
        });
    e_.store(partial[0], shared(0), {tid});
    e_.store(partial[1], shared(1), {tid});
    e_.barrier();
    absl::Status status;
    e_.ifThen(e_.lt(tid, 1), [&] {
      SmallVector<Value> total =
          e_.loop(e_.idx(0), e_.idx(kReduceThreads), 1, {zero, zero},
                  [&](Value t, ValueRange s) -> SmallVector<Value> {
                    return {e_.fadd(s[0], e_.load(shared(0), {t})),
                            e_.fadd(s[1], e_.load(shared(1), {t}))};
                  });
      Value mean = e_.fdiv(total[0], e_.fmax(total[1], one));
      Value v = arith::TruncFOp::create(b_, e_.loc, b_.getF32Type(), mean);
      status = finish({v, {}});
    });
    return status;
  }

  //===--------------------------------------------------------------------===//
  // Fused attention
  //===--------------------------------------------------------------------===//

  struct Part {
    mlir::synth::ScoreKind kind;
    SmallVector<Value> operands;
    double scale = 1.0;
    // Shared buffers (ids into shared_), -1 when unused.
    int queries = -1, keys = -1, hidden = -1, factorA = -1, factorB = -1;
  };
  SmallVector<Part> parts_;
  int values_ = -1, scores_ = -1;
  int64_t groups_ = 1; // threads per query row (f32)
  int64_t threads_ = 1;
  /// Tensor-core attention (bf16/f16, see mmaAttentionFits).
  bool mmaAttention_ = false;
  /// Queries per block: kQueryTile (f32), kMmaQueryTile (tensor cores).
  int64_t qTile_ = kQueryTile;
  /// Keys per tile: kKeyTile, or 16 where a gradient kernel's tiles would not
  /// fit in shared memory otherwise.
  int64_t keyTile_ = kKeyTile;
  AttentionOperands attn_;

  absl::Status planAttentionShared(const AttentionOperands &op) {
    if (op.queryOffset &&
        !llvm::any_of(indexOps_, [&](mlir::synth::ToIndexOp index) {
          return index.getResult() == op.queryOffset;
        })) {
      return unsupported(op.op, "query_offset defined inside the kernel");
    }
    Type f32 = b_.getF32Type();
    int64_t d = shapeOf(op.values)[3];
    // Statistics and gradients run the f32 kernels at every precision.
    bool forward = isa<mlir::synth::FusedAttentionOp>(op.op);
    mmaAttention_ = forward && precision_ != "f32" && mmaAttentionFits(op);
    Type staged = mmaAttention_ ? halfType() : f32;
    if (mmaAttention_) {
      qTile_ = kMmaQueryTile;
      threads_ = 32 * (kMmaQueryTile / 16);
      // V^T: the B operand of P V, k (keys) contiguous, rows padded.
      values_ = addShared("vt_tile", {d, keyTile_ + 8}, staged);
    } else {
      groups_ = d % 8 == 0 ? 8 : d % 4 == 0 ? 4 : d % 2 == 0 ? 2 : 1;
      threads_ = qTile_ * groups_;
      // The statistics need no values.
      if (!isa<mlir::synth::AttentionStatsOp>(op.op)) {
        values_ = addShared("v_tile", {keyTile_, d}, f32);
      }
    }
    scores_ = addShared("s_tile", {qTile_, keyTile_ + 1}, f32);
    for (auto [i, attr] : llvm::enumerate(op.parts)) {
      Part part;
      part.kind = attr.getKind();
      part.operands.assign(op.partOperands[i].begin(),
                           op.partOperands[i].end());
      for (Value v : part.operands) {
        if (!buffer(v) && !isa<BlockArgument>(v)) {
          return unsupported(op.op, "score operand defined inside the kernel");
        }
      }
      std::string tag = std::to_string(i);
      switch (part.kind) {
      case mlir::synth::ScoreKind::Dot: {
        int64_t dq = shapeOf(part.operands[0])[3];
        part.scale = attr.getScale() ? attr.getScale().getValueAsDouble()
                                     : 1.0 / std::sqrt(double(dq));
        // f32: one padding column, lanes read keys of one column
        // conflict-free. MMA: rows padded by 8 halves, fragment loads hit
        // 32 distinct banks.
        int64_t pad = mmaAttention_ ? 8 : 0;
        part.queries = addShared("q_tile" + tag, {qTile_, dq + pad}, staged);
        part.keys = addShared("k_tile" + tag,
                              {keyTile_, dq + (mmaAttention_ ? 8 : 1)}, staged);
        break;
      }
      case mlir::synth::ScoreKind::Dense:
      case mlir::synth::ScoreKind::FactorizedDense: {
        int64_t hidden = shapeOf(part.operands[1])[2];
        part.hidden = addShared("hidden" + tag, {qTile_, hidden}, f32);
        if (part.kind == mlir::synth::ScoreKind::FactorizedDense) {
          part.factorA = addShared("factor_a" + tag,
                                   {qTile_, shapeOf(part.operands[3])[2]}, f32);
          part.factorB = addShared("factor_b" + tag,
                                   {qTile_, shapeOf(part.operands[5])[2]}, f32);
        }
        break;
      }
      case mlir::synth::ScoreKind::Random:
      case mlir::synth::ScoreKind::FactorizedRandom:
        break;
      }
      parts_.push_back(part);
    }
    return absl::OkStatus();
  }

  /// Whether the tensor-core attention applies: 16-bit precision, head dims
  /// that fill MMA tiles (values: multiple of 8; dot queries and keys:
  /// multiple of 16), and its shared memory within the static limit.
  bool mmaAttentionFits(const AttentionOperands &op) {
    int64_t d = shapeOf(op.values)[3];
    if (d % 8 != 0) {
      return false;
    }
    int64_t bytes = d * (kKeyTile + 8) * 2 + kMmaQueryTile * (kKeyTile + 1) * 4;
    for (auto [i, attr] : llvm::enumerate(op.parts)) {
      auto operands = op.partOperands[i];
      switch (attr.getKind()) {
      case mlir::synth::ScoreKind::Dot: {
        int64_t dq = shapeOf(operands[0])[3];
        if (dq % 16 != 0) {
          return false;
        }
        bytes += (kMmaQueryTile + kKeyTile) * (dq + 8) * 2;
        break;
      }
      case mlir::synth::ScoreKind::Dense:
        bytes += kMmaQueryTile * shapeOf(operands[1])[2] * 4;
        break;
      case mlir::synth::ScoreKind::FactorizedDense:
        bytes += kMmaQueryTile *
                 (shapeOf(operands[1])[2] + shapeOf(operands[3])[2] +
                  shapeOf(operands[5])[2]) *
                 4;
        break;
      default:
        break;
      }
    }
    return bytes <= kMaxSharedBytes;
  }

  /// Score of part `p` for local query row r (absolute, clamped, qi) and key
  /// j of the current tile (local jj; absolute, clamped, j).
  Value partScore(const Part &p, Value h, Value r, Value qi, Value jj,
                  Value j) {
    auto operand = [&](int i) { return buffer(p.operands[i]); };
    Value zero = e_.f32(0.0);
    auto dot = [&](int64_t n, const std::function<Value(Value)> &lhs,
                   const std::function<Value(Value)> &rhs, Value init) {
      return e_.loop(e_.idx(0), e_.idx(n), 1, {init},
                     [&](Value t, ValueRange s) -> SmallVector<Value> {
                       return {e_.fma(lhs(t), rhs(t), s[0])};
                     })[0];
    };
    switch (p.kind) {
    case mlir::synth::ScoreKind::Dot: {
      int64_t dq = shapeOf(p.operands[0])[3];
      Value s = dot(
          dq, [&](Value t) { return e_.load(shared(p.queries), {r, t}); },
          [&](Value t) { return e_.load(shared(p.keys), {jj, t}); }, zero);
      return e_.fmul(s, e_.f32(p.scale));
    }
    case mlir::synth::ScoreKind::Random:
      return e_.load(operand(0), {h, qi, j});
    case mlir::synth::ScoreKind::FactorizedRandom: {
      int64_t rank = shapeOf(p.operands[0])[2];
      return dot(
          rank, [&](Value t) { return e_.load(operand(0), {h, qi, t}); },
          [&](Value t) { return e_.load(operand(1), {h, j, t}); }, zero);
    }
    case mlir::synth::ScoreKind::Dense: {
      int64_t hidden = shapeOf(p.operands[1])[2];
      return dot(
          hidden, [&](Value t) { return e_.load(shared(p.hidden), {r, t}); },
          [&](Value t) { return e_.load(operand(3), {h, t, j}); },
          e_.load(operand(4), {h, j}));
    }
    case mlir::synth::ScoreKind::FactorizedDense: {
      int64_t bWidth = shapeOf(p.operands[5])[2];
      return e_.fmul(e_.load(shared(p.factorA), {r, e_.div(j, bWidth)}),
                     e_.load(shared(p.factorB), {r, e_.rem(j, bWidth)}));
    }
    }
    return zero;
  }

  /// Stores `v` (f32) into shared buffer `id`, rounded to its element type.
  void storeShared(Value v, int id, ValueRange indices) {
    Type element = shared_[id].element;
    if (element != v.getType()) {
      v = arith::TruncFOp::create(b_, e_.loc, element, v);
    }
    e_.store(v, shared(id), indices);
  }

  /// The indices of one attention block: batch, head, first query.
  struct AttentionBlock {
    Value tid, bb, h, q0;
    SmallVector<Value> alpha; ///< mixture weights; empty for one part
  };

  AttentionBlock attentionBlock(const AttentionOperands &op) {
    AttentionBlock blk;
    blk.tid = e_.threadId();
    blk.h = e_.blockId(gpu::Dimension::y);
    blk.bb = e_.blockId(gpu::Dimension::z);
    blk.q0 = e_.mul(e_.blockId(gpu::Dimension::x), qTile_);
    blk.alpha = mixtureWeights(op, blk.h);
    return blk;
  }

  /// Mixture weights softmax(logits[h]) (per thread; m is tiny); empty for
  /// one part.
  SmallVector<Value> mixtureWeights(const AttentionOperands &op, Value h) {
    SmallVector<Value> alpha;
    if (parts_.size() > 1) {
      Value logits = buffer(op.logits);
      SmallVector<Value> raw;
      Value mx = e_.f32(kMaskedScore);
      for (size_t p = 0; p < parts_.size(); ++p) {
        raw.push_back(e_.load(logits, {h, e_.idx(int64_t(p))}));
        mx = e_.fmax(mx, raw.back());
      }
      Value sum = e_.f32(0.0);
      for (Value &r : raw) {
        r = e_.exp(e_.fsub(r, mx));
        sum = e_.fadd(sum, r);
      }
      for (Value r : raw) {
        alpha.push_back(e_.fdiv(r, sum));
      }
    }
    return alpha;
  }

  /// Prologue, once per query tile: queries of dot parts, hidden layers (and
  /// factors) of dense parts, in shared memory; ends with a barrier.
  void attentionPrologue(const AttentionOperands &op,
                         const AttentionBlock &blk) {
    int64_t n = op.queries;
    Value zero = e_.f32(0.0);
    Value tid = blk.tid, bb = blk.bb, h = blk.h;
    auto queryOf = [&](Value r) { return e_.minI(e_.add(blk.q0, r), n - 1); };
    for (const Part &p : parts_) {
      if (p.kind == mlir::synth::ScoreKind::Dot) {
        int64_t dq = shapeOf(p.operands[0])[3];
        Value q = buffer(p.operands[0]);
        e_.strided(tid, qTile_ * dq, threads_, [&](Value flat) {
          Value r = e_.div(flat, dq), c = e_.rem(flat, dq);
          storeShared(e_.load(q, {bb, h, queryOf(r), c}), p.queries, {r, c});
        });
      }
      if (p.hidden >= 0) {
        Value x = buffer(p.operands[0]), w1 = buffer(p.operands[1]),
              b1 = buffer(p.operands[2]);
        int64_t model = shapeOf(p.operands[0])[2];
        int64_t hidden = shapeOf(p.operands[1])[2];
        e_.strided(tid, qTile_ * hidden, threads_, [&](Value flat) {
          Value r = e_.div(flat, hidden), c = e_.rem(flat, hidden);
          Value qi = queryOf(r);
          Value s = e_.loop(e_.idx(0), e_.idx(model), 1, {e_.load(b1, {h, c})},
                            [&](Value t, ValueRange a) -> SmallVector<Value> {
                              return {e_.fma(e_.load(x, {bb, qi, t}),
                                             e_.load(w1, {h, t, c}), a[0])};
                            })[0];
          e_.store(e_.fmax(s, zero), shared(p.hidden), {r, c});
        });
      }
    }
    e_.barrier();
    bool factors = false;
    for (const Part &p : parts_) {
      if (p.factorA < 0) {
        continue;
      }
      factors = true;
      int64_t hidden = shapeOf(p.operands[1])[2];
      for (auto [buf, w, bias] :
           {std::tuple<int, int, int>{p.factorA, 3, 4}, {p.factorB, 5, 6}}) {
        int64_t width = shapeOf(p.operands[w])[2];
        Value wm = buffer(p.operands[w]), bm = buffer(p.operands[bias]);
        int target = buf;
        e_.strided(tid, qTile_ * width, threads_, [&](Value flat) {
          Value r = e_.div(flat, width), c = e_.rem(flat, width);
          Value s = e_.loop(e_.idx(0), e_.idx(hidden), 1, {e_.load(bm, {h, c})},
                            [&](Value t, ValueRange a) -> SmallVector<Value> {
                              return {e_.fma(e_.load(shared(p.hidden), {r, t}),
                                             e_.load(wm, {h, t, c}), a[0])};
                            })[0];
          e_.store(s, shared(target), {r, c});
        });
      }
    }
    if (factors) {
      e_.barrier();
    }
  }

  /// Key tiles to visit: all of them, or (causal) up to the block's last
  /// query.
  Value keyTileCount(const AttentionOperands &op, Value q0) {
    int64_t m = shapeOf(op.values)[2];
    int64_t n = op.queries;
    if (op.causal) {
      // Keys up to the block's last query, at absolute position
      // query_offset + i.
      Value end = e_.minI(e_.add(q0, qTile_), n);
      if (Value offset = position(op.queryOffset)) {
        end = e_.add(end, offset);
      }
      return e_.ceilDiv(e_.minI(end, m), keyTile_);
    }
    return e_.idx((m + keyTile_ - 1) / keyTile_);
  }

  /// Stages the V tile (keys k0 .. k0 + keyTile_) in shared memory: as
  /// [key][d] (f32 kernel) or transposed, [d][key] (the B operand of P V).
  void stageValues(const AttentionOperands &op, const AttentionBlock &blk,
                   Value k0, bool transposed) {
    ArrayRef<int64_t> shape = shapeOf(op.values);
    int64_t m = shape[2], d = shape[3];
    Value v = buffer(op.values);
    e_.strided(blk.tid, keyTile_ * d, threads_, [&](Value flat) {
      Value jj = e_.div(flat, d), c = e_.rem(flat, d);
      Value key = e_.minI(e_.add(k0, jj), m - 1);
      Value value = e_.load(v, {blk.bb, blk.h, key, c});
      SmallVector<Value, 2> at = transposed ? SmallVector<Value, 2>{c, jj}
                                            : SmallVector<Value, 2>{jj, c};
      storeShared(value, values_, at);
    });
  }

  /// Stages K tiles of dot parts (keys k0 .. k0 + keyTile_) in shared
  /// memory.
  void stageKeys(const AttentionBlock &blk, Value k0, int64_t m) {
    for (const Part &p : parts_) {
      if (p.keys < 0) {
        continue;
      }
      int64_t dq = shapeOf(p.operands[1])[3];
      Value k = buffer(p.operands[1]);
      e_.strided(blk.tid, keyTile_ * dq, threads_, [&](Value flat) {
        Value jj = e_.div(flat, dq), c = e_.rem(flat, dq);
        Value key = e_.minI(e_.add(k0, jj), m - 1);
        storeShared(e_.load(k, {blk.bb, blk.h, key, c}), p.keys, {jj, c});
      });
    }
  }

  /// The masked, mixed scores of one tile into the score tile. With
  /// `dotInTile`, the dot parts' (scaled, weighted) sum is already there
  /// (tensor cores) and the other parts are added to it.
  void scorePass(const AttentionOperands &op, const AttentionBlock &blk,
                 Value k0, bool dotInTile) {
    int64_t m = shapeOf(op.values)[2];
    int64_t n = op.queries;
    Value mask = op.keyMask ? buffer(op.keyMask) : Value();
    e_.strided(blk.tid, qTile_ * keyTile_, threads_, [&](Value flat) {
      Value r = e_.div(flat, keyTile_), jj = e_.rem(flat, keyTile_);
      Value j = e_.add(k0, jj), qi = e_.add(blk.q0, r);
      Value jc = e_.minI(j, m - 1), qc = e_.minI(qi, n - 1);
      Value valid = e_.lt(j, m);
      if (op.causal) {
        Value offset = position(op.queryOffset);
        valid = e_.andI(valid, e_.le(j, offset ? e_.add(qi, offset) : qi));
      }
      if (mask) {
        valid = e_.andI(valid, nonzero(e_.load(mask, {blk.bb, jc})));
      }
      Value s;
      if (dotInTile) {
        s = e_.load(shared(scores_), {r, jj});
      }
      for (auto [i, p] : llvm::enumerate(parts_)) {
        if (dotInTile && p.kind == mlir::synth::ScoreKind::Dot) {
          continue;
        }
        Value term = partScore(p, blk.h, r, qc, jj, jc);
        if (!blk.alpha.empty()) {
          term = e_.fmul(blk.alpha[i], term);
        }
        s = s ? e_.fadd(s, term) : term;
      }
      e_.store(e_.select(valid, s, e_.f32(kMaskedScore)), shared(scores_),
               {r, jj});
    });
  }

  absl::Status emitAttention(const AttentionOperands &op) {
    if (mmaAttention_) {
      return emitAttentionMma(op);
    }
    ArrayRef<int64_t> vShape = shapeOf(op.values);
    int64_t batch = vShape[0], heads = vShape[1], m = vShape[2], d = vShape[3];
    int64_t n = op.queries;
    // attention_stats: the same pass without values; writes the row
    // log-sum-exp.
    bool stats = isa<mlir::synth::AttentionStatsOp>(op.op);
    int64_t perThread = stats ? 0 : d / groups_;
    info_.block = {threads_, 1, 1};
    info_.grid = {(n + qTile_ - 1) / qTile_, heads, batch};
    AttentionBlock blk = attentionBlock(op);
    Value tid = blk.tid, bb = blk.bb, h = blk.h;
    Value row = e_.div(tid, groups_), group = e_.rem(tid, groups_);
    Value zero = e_.f32(0.0);
    attentionPrologue(op, blk);

    SmallVector<Value> inits = {e_.f32(kMaskedScore), zero};
    inits.append(perThread, zero);
    SmallVector<Value> state = e_.loop(
        e_.idx(0), keyTileCount(op, blk.q0), 1, inits,
        [&](Value t, ValueRange carried) {
          Value k0 = e_.mul(t, keyTile_);
          // Every thread is done with the previous tile's shared memory.
          e_.barrier();
          if (!stats) {
            stageValues(op, blk, k0, /*transposed=*/false);
          }
          stageKeys(blk, k0, m);
          e_.barrier();
          scorePass(op, blk, k0, /*dotInTile=*/false);
          e_.barrier();
          // Online softmax for this thread's row and columns.
          Value mOld = carried[0];
          Value tileMax = e_.loop(
              e_.idx(0), e_.idx(keyTile_), 1, {e_.f32(kMaskedScore)},
              [&](Value jj, ValueRange a) -> SmallVector<Value> {
                return {e_.fmax(a[0], e_.load(shared(scores_), {row, jj}))};
              })[0];
          Value mNew = e_.fmax(mOld, tileMax);
          Value rescale = e_.exp(e_.fsub(mOld, mNew));
          SmallVector<Value> scaled;
          for (Value c : carried.drop_front()) {
            scaled.push_back(e_.fmul(c, rescale));
          }
          SmallVector<Value> next = e_.loop(
              e_.idx(0), e_.idx(keyTile_), 1, scaled,
              [&](Value jj, ValueRange a) -> SmallVector<Value> {
                Value s = e_.load(shared(scores_), {row, jj});
                Value p = e_.select(e_.fgt(s, e_.f32(kMaskedScore * 0.5)),
                                    e_.exp(e_.fsub(s, mNew)), zero);
                SmallVector<Value> out = {e_.fadd(a[0], p)};
                for (int64_t c = 0; c < perThread; ++c) {
                  Value col = e_.add(group, c * groups_);
                  out.push_back(
                      e_.fma(p, e_.load(shared(values_), {jj, col}), a[1 + c]));
                }
                return out;
              });
          next.insert(next.begin(), mNew);
          return next;
        });

    Value qi = e_.add(blk.q0, row);
    absl::Status status;
    if (stats) {
      // lse = m + log l; a row without visible keys gets +huge, so that
      // its weights exp(s - lse) are 0 (as the CPU back end).
      e_.ifThen(e_.andI(e_.lt(qi, n), e_.lt(group, 1)), [&] {
        Value l = state[1];
        Value lse = e_.fadd(state[0], math::LogOp::create(b_, e_.loc, l));
        status = finish({e_.select(e_.fgt(l, zero), lse, e_.f32(-kMaskedScore)),
                         {bb, h, qi}});
      });
      return status;
    }
    // out = acc / l; a row whose keys are all masked is 0.
    e_.ifThen(e_.lt(qi, n), [&] {
      Value l = state[1];
      Value seen = e_.fgt(l, zero);
      for (int64_t c = 0; c < perThread; ++c) {
        Value out = e_.select(seen, e_.fdiv(state[2 + c], l), zero);
        Value col = e_.add(group, c * groups_);
        if (absl::Status s = finish({out, {bb, h, qi, col}}); !s.ok()) {
          status = s;
        }
      }
    });
    return status;
  }

  //===--------------------------------------------------------------------===//
  // Backward of the fused attention (f32)
  //===--------------------------------------------------------------------===//

  /// The operand a fused_attention_grad differentiates.
  struct GradTarget {
    enum Kind { Values, Logits, Part } kind = Values;
    int part = -1;  ///< the score part (Part)
    int local = -1; ///< the operand of the part (Part)
  };
  GradTarget target_;
  static constexpr int64_t kGradThreads = 128;
  int doTile_ = -1, rowLse_ = -1, rowDelta_ = -1;
  int dHidden_ = -1, dFactorA_ = -1, dFactorB_ = -1, partials_ = -1;
  /// dQ, dK, dV on tensor cores (bf16/f16): dP = dO V^T and the gradient's
  /// product as mma.sync tiles; 16-bit copies of the operands (rows padded
  /// by 8 halves), the dP tile in f32.
  bool mmaGrad_ = false;
  int doHalf_ = -1, doHalfT_ = -1, vHalf_ = -1, dpTile_ = -1;
  int tHalf_ = -1, tHalfT_ = -1, kHalfT_ = -1, qHalfT_ = -1;

  bool denseTarget() const {
    return target_.kind == GradTarget::Part &&
           (parts_[target_.part].kind == mlir::synth::ScoreKind::Dense ||
            parts_[target_.part].kind ==
                mlir::synth::ScoreKind::FactorizedDense);
  }
  mlir::synth::ScoreKind targetKind() const {
    return parts_[target_.part].kind;
  }

  /// Shared memory of a gradient kernel: the forward kernel's tiles (f32),
  /// the dO tile, the rows' log-sum-exp and D = dO . O, and the per-query
  /// accumulators of a synthesizer's gradient. Key tiles of 16 when 32 do
  /// not fit in 48 KiB.
  absl::Status planAttentionGradShared(mlir::synth::FusedAttentionGradOp op) {
    // Tensor cores (when they apply) with key tiles of 32, then 16; then the
    // CUDA-core kernel with 32, then 16: the first that fits in 48 KiB.
    const std::pair<bool, int64_t> plans[] = {
        {true, kKeyTile}, {true, 16}, {false, kKeyTile}, {false, 16}};
    int64_t bytes = 0;
    for (auto [allowMma, keyTile] : plans) {
      shared_.clear();
      parts_.clear();
      keyTile_ = keyTile;
      dHidden_ = dFactorA_ = dFactorB_ = partials_ = -1;
      if (absl::Status s = planAttentionShared(attn_); !s.ok()) {
        return s;
      }
      threads_ = kGradThreads;
      int64_t wrt = op.getWrt(), first = 0;
      target_ = GradTarget();
      for (auto [p, operands] : llvm::enumerate(attn_.partOperands)) {
        int64_t count = static_cast<int64_t>(operands.size());
        if (wrt >= first && wrt < first + count) {
          target_.kind = GradTarget::Part;
          target_.part = static_cast<int>(p);
          target_.local = static_cast<int>(wrt - first);
        }
        first += count;
      }
      if (target_.kind != GradTarget::Part && attn_.logits && wrt == first) {
        target_.kind = GradTarget::Logits;
      }
      int64_t d = shapeOf(attn_.values)[3];
      Type f32 = b_.getF32Type();
      doTile_ = addShared("do_tile", {qTile_, d}, f32);
      rowLse_ = addShared("row_lse", {qTile_}, f32);
      rowDelta_ = addShared("row_delta", {qTile_}, f32);
      mmaGrad_ = false;
      doHalf_ = doHalfT_ = vHalf_ = dpTile_ = -1;
      tHalf_ = tHalfT_ = kHalfT_ = qHalfT_ = -1;
      if (allowMma && precision_ != "f32" && d % 16 == 0) {
        bool values = target_.kind == GradTarget::Values;
        bool dot = target_.kind == GradTarget::Part &&
                   parts_[target_.part].kind == mlir::synth::ScoreKind::Dot;
        int64_t dq =
            dot ? shapeOf(parts_[target_.part].operands[0])[3] : int64_t(0);
        mmaGrad_ = values || (dot && dq % 8 == 0);
        if (mmaGrad_) {
          Type half = halfType();
          if (values) { // dV = P^T dO
            tHalfT_ = addShared("p_t_half", {keyTile_, qTile_ + 8}, half);
            doHalfT_ = addShared("do_t_half", {d, qTile_ + 8}, half);
          } else { // dP = dO V^T, then dQ = dS K or dK = dS^T Q
            doHalf_ = addShared("do_half", {qTile_, d + 8}, half);
            vHalf_ = addShared("v_half", {keyTile_, d + 8}, half);
            dpTile_ = addShared("dp_tile", {qTile_, keyTile_ + 1}, f32);
            if (target_.local == 0) {
              tHalf_ = addShared("ds_half", {qTile_, keyTile_ + 8}, half);
              kHalfT_ = addShared("k_t_half", {dq, keyTile_ + 8}, half);
            } else {
              tHalfT_ = addShared("ds_t_half", {keyTile_, qTile_ + 8}, half);
              qHalfT_ = addShared("q_t_half", {dq, qTile_ + 8}, half);
            }
          }
        }
      }
      if (denseTarget()) {
        const Part &part = parts_[target_.part];
        int64_t hidden = shapeOf(part.operands[1])[2];
        if (target_.local <= 2) {
          dHidden_ = addShared("d_hidden", {qTile_, hidden}, f32);
        }
        if (part.kind == mlir::synth::ScoreKind::FactorizedDense) {
          dFactorA_ = addShared("d_factor_a",
                                {qTile_, shapeOf(part.operands[3])[2]}, f32);
          dFactorB_ = addShared("d_factor_b",
                                {qTile_, shapeOf(part.operands[5])[2]}, f32);
        }
      }
      if (target_.kind == GradTarget::Logits) {
        partials_ =
            addShared("partials", {kGradThreads, int64_t(parts_.size())}, f32);
      }
      bytes = 0;
      for (const SharedBuffer &buffer : shared_) {
        bytes += product(buffer.shape) *
                 (buffer.element.getIntOrFloatBitWidth() / 8);
      }
      if (bytes <= kMaxSharedBytes) {
        return absl::OkStatus();
      }
    }
    return unsupported(op, absl::StrCat("the attention gradient's tiles need ",
                                        bytes,
                                        " bytes of shared memory even with "
                                        "key tiles of 16 (at most 49152)"));
  }

  /// C (mTiles*16 x nTiles*8) = A B on tensor cores, k = kSteps * 16: A
  /// from shared buffer `a` ([m][k], k contiguous), B from `bt` ([n][k]).
  /// The block's warps take the (m, n) tiles in turn (warp w: tiles w,
  /// w + 4, ...); `use(row, col, value)` receives every element of C once.
  void mmaTiles(int64_t mTiles, int64_t nTiles, int64_t kSteps, int a, int bt,
                const std::function<void(Value, Value, Value)> &use) {
    Value tid = e_.threadId();
    Value lane = e_.rem(tid, 32), warp = e_.div(tid, 32);
    Value group = e_.div(lane, 4), quad2 = e_.mul(e_.rem(lane, 4), 2);
    // A loop uniform per warp: the mma's lanes all take part.
    e_.loop(warp, e_.idx(mTiles * nTiles), kGradThreads / 32, [&](Value t) {
      Value mt = e_.div(t, nTiles), nt = e_.rem(t, nTiles);
      Value r0 = e_.add(group, e_.mul(mt, 16)), r8 = e_.add(r0, 8);
      Value n0 = e_.mul(nt, 8);
      Value col = e_.add(group, n0);
      Value acc = zeroVector(accumulatorType());
      for (int64_t ks = 0; ks < kSteps; ++ks) {
        Value c0 = e_.add(quad2, ks * 16), c8 = e_.add(quad2, ks * 16 + 8);
        Value fa = fragment(fragmentAType(), {sharedPair(shared(a), r0, c0),
                                              sharedPair(shared(a), r8, c0),
                                              sharedPair(shared(a), r0, c8),
                                              sharedPair(shared(a), r8, c8)});
        Value fb = fragment(fragmentBType(), {sharedPair(shared(bt), col, c0),
                                              sharedPair(shared(bt), col, c8)});
        acc = mma(fa, fb, acc);
      }
      for (int64_t hh = 0; hh < 2; ++hh) {
        for (int64_t c = 0; c < 2; ++c) {
          use(hh ? r8 : r0, e_.add(e_.add(quad2, n0), c),
              accumulatorAt(acc, hh, c));
        }
      }
    });
  }

  /// fused_attention_grad, flash style: scores, P = exp(S + M - lse) and
  /// dS = P (dO V^T - D) are recomputed tile by tile (16 queries x 32 keys)
  /// in shared memory, never stored. A block owns a disjoint part of the
  /// gradient and adds each tile's contribution to it in place (one thread
  /// per element per phase, phases separated by barriers: deterministic, no
  /// atomics):
  ///   dQ, dK, dV: a block per (batch, head), loops over query and key tiles;
  ///   parameters of a head (R, R1, R2, W1, b1, W2, b2, WA, ..., the mixture
  ///   logits): a block per head, also looping over the batch;
  ///   a dense synthesizer's input x: a block per batch row, looping over
  ///   heads (x's gradient sums over them).
  absl::Status emitAttentionGrad(mlir::synth::FusedAttentionGradOp g) {
    const AttentionOperands &op = attn_;
    ArrayRef<int64_t> vShape = shapeOf(op.values);
    int64_t batch = vShape[0], heads = vShape[1], m = vShape[2], d = vShape[3];
    int64_t n = op.queries;
    // The chain must be linear in the gradient: a residual add, head
    // splits and merges. The block initializes its part of the output with
    // the chain applied to 0 (the added values), then adds each tile's
    // contribution at the chain's index.
    for (Operation *link : chain_) {
      if (!isa<mlir::synth::SplitHeadsOp, mlir::synth::MergeHeadsOp,
               mlir::synth::AddOp>(link)) {
        return unsupported(link, "only add, split_heads and merge_heads may "
                                 "follow a fused_attention_grad in a kernel");
      }
    }
    Value dOut = buffer(g.getDOutput()), out = buffer(g.getOutput()),
          lse = buffer(g.getRowStats());
    if (!dOut || !out || !lse) {
      return unsupported(g, "operands defined inside the kernel");
    }
    enum class Owner { BatchHead, Head, Batch };
    Owner owner = Owner::Head;
    if (target_.kind == GradTarget::Values ||
        (target_.kind == GradTarget::Part &&
         targetKind() == mlir::synth::ScoreKind::Dot)) {
      owner = Owner::BatchHead;
    } else if (denseTarget() && target_.local == 0) {
      owner = Owner::Batch;
    }
    info_.block = {threads_, 1, 1};
    info_.grid = {1, owner == Owner::Batch ? 1 : heads,
                  owner == Owner::Head ? 1 : batch};
    Value tid = e_.threadId();
    Value hBlock = e_.blockId(gpu::Dimension::y);
    Value bBlock = e_.blockId(gpu::Dimension::z);
    Value zero = e_.f32(0.0);

    // Where the gradient's element at `index` (in the op's result space)
    // goes, through the chain.
    auto outIndex = [&](SmallVector<Value> index) {
      Element element{zero, std::move(index)};
      Value from = anchor_->getResult(0);
      for (Operation *link : chain_) {
        element = *pointwise(link, from, element);
        from = link->getResult(0);
      }
      return element.index;
    };
    auto accumulate = [&](SmallVector<Value> index, Value v) {
      SmallVector<Value> at = outIndex(std::move(index));
      e_.store(e_.fadd(e_.load(output_, at), v), output_, at);
    };
    // Zero the block's part of the gradient.
    ArrayRef<int64_t> resultShape = shapeOf(g.getResult());
    SmallVector<Value> lead;
    if (owner == Owner::BatchHead) {
      lead = {bBlock, hBlock};
    } else {
      lead = {owner == Owner::Head ? hBlock : bBlock};
    }
    ArrayRef<int64_t> region = resultShape.drop_front(lead.size());
    absl::Status status;
    e_.strided(tid, product(region), threads_, [&](Value flat) {
      SmallVector<Value> index = lead;
      index.append(e_.unflatten(flat, region));
      if (absl::Status s = finish({zero, index}); !s.ok()) {
        status = s;
      }
    });
    if (!status.ok()) {
      return status;
    }
    int64_t numParts = static_cast<int64_t>(parts_.size());
    if (partials_ >= 0) {
      e_.strided(tid, kGradThreads * numParts, threads_, [&](Value flat) {
        e_.store(zero, shared(partials_),
                 {e_.div(flat, numParts), e_.rem(flat, numParts)});
      });
    }

    const Part *part =
        target_.kind == GradTarget::Part ? &parts_[target_.part] : nullptr;
    int local = target_.local;
    auto partOperand = [&](int i) { return buffer(part->operands[i]); };
    auto dim = [&](int i, int axis) {
      return shapeOf(part->operands[i])[axis];
    };
    Value sTile = shared(scores_);
    /// sum_t f(t) over [0, count), as a loop.
    auto sum = [&](int64_t count, const std::function<Value(Value)> &f) {
      return e_.loop(e_.idx(0), e_.idx(count), 1, {zero},
                     [&](Value t, ValueRange a) -> SmallVector<Value> {
                       return {e_.fadd(a[0], f(t))};
                     })[0];
    };

    // One (batch, head): every query tile, every visible key tile.
    auto pass = [&](Value bb, Value h) {
      SmallVector<Value> alpha = mixtureWeights(op, h);
      Value weight = part && !alpha.empty() ? alpha[target_.part] : Value();
      Value tileScale;
      if (target_.kind == GradTarget::Part) {
        tileScale = targetKind() == mlir::synth::ScoreKind::Dot
                        ? e_.f32(part->scale)
                        : Value();
        if (weight) {
          tileScale = tileScale ? e_.fmul(tileScale, weight) : weight;
        }
      }
      int64_t queryTiles = (n + qTile_ - 1) / qTile_;
      e_.loop(e_.idx(0), e_.idx(queryTiles), 1, [&](Value qt) {
        AttentionBlock blk{tid, bb, h, e_.mul(qt, qTile_), alpha};
        Value q0 = blk.q0;
        auto query = [&](Value r) { return e_.minI(e_.add(q0, r), n - 1); };
        e_.barrier(); // the previous tile's shared memory is free
        attentionPrologue(op, blk);
        e_.strided(tid, qTile_ * d, threads_, [&](Value flat) {
          Value r = e_.div(flat, d), c = e_.rem(flat, d);
          Value v = e_.load(dOut, {bb, h, query(r), c});
          e_.store(v, shared(doTile_), {r, c});
          if (doHalf_ >= 0) {
            storeShared(v, doHalf_, {r, c});
          }
          if (doHalfT_ >= 0) {
            storeShared(v, doHalfT_, {c, r});
          }
        });
        if (qHalfT_ >= 0) { // Q^T, the B operand of dK = dS^T Q
          int64_t dq = shapeOf(part->operands[0])[3];
          e_.strided(tid, qTile_ * dq, threads_, [&](Value flat) {
            Value r = e_.div(flat, dq), c = e_.rem(flat, dq);
            storeShared(e_.load(shared(part->queries), {r, c}), qHalfT_,
                        {c, r});
          });
        }
        // dV = P^T dO reads neither D nor V: they feed dP.
        bool needsDP = target_.kind != GradTarget::Values;
        e_.strided(tid, qTile_, threads_, [&](Value r) {
          Value qi = query(r);
          e_.store(e_.load(lse, {bb, h, qi}), shared(rowLse_), {r});
          if (!needsDP) {
            return;
          }
          e_.store(sum(d,
                       [&](Value c) {
                         return e_.fmul(e_.load(dOut, {bb, h, qi, c}),
                                        e_.load(out, {bb, h, qi, c}));
                       }),
                   shared(rowDelta_), {r});
        });
        for (int acc : {dHidden_, dFactorA_, dFactorB_}) {
          if (acc < 0) {
            continue;
          }
          int64_t width = shared_[acc].shape[1];
          e_.strided(tid, qTile_ * width, threads_, [&](Value flat) {
            e_.store(zero, shared(acc),
                     {e_.div(flat, width), e_.rem(flat, width)});
          });
        }
        e_.barrier();
        e_.loop(e_.idx(0), keyTileCount(op, q0), 1, [&](Value kt) {
          Value k0 = e_.mul(kt, keyTile_);
          e_.barrier();
          if (needsDP) {
            stageValues(op, blk, k0, /*transposed=*/false);
          }
          stageKeys(blk, k0, m);
          e_.barrier();
          scorePass(op, blk, k0, /*dotInTile=*/false);
          if (vHalf_ >= 0) {
            e_.strided(tid, keyTile_ * d, threads_, [&](Value flat) {
              Value jj = e_.div(flat, d), c = e_.rem(flat, d);
              storeShared(e_.load(shared(values_), {jj, c}), vHalf_, {jj, c});
            });
          }
          if (kHalfT_ >= 0) { // K^T, the B operand of dQ = dS K
            int64_t dq = shapeOf(part->operands[1])[3];
            e_.strided(tid, keyTile_ * dq, threads_, [&](Value flat) {
              Value jj = e_.div(flat, dq), c = e_.rem(flat, dq);
              storeShared(e_.load(shared(part->keys), {jj, c}), kHalfT_,
                          {c, jj});
            });
          }
          e_.barrier();
          if (dpTile_ >= 0) {
            // dP (16 x keys) = dO V^T: warp w computes key tiles of 8
            // w, w + 4, ...
            mmaTiles(1, keyTile_ / 8, d / 16, doHalf_, vHalf_,
                     [&](Value row, Value col, Value v) {
                       e_.store(v, shared(dpTile_), {row, col});
                     });
            e_.barrier();
          }
          // The tile of P (for dV) or of dS (scaled), in place of S.
          e_.strided(tid, qTile_ * keyTile_, threads_, [&](Value flat) {
            Value r = e_.div(flat, keyTile_), jj = e_.rem(flat, keyTile_);
            Value s = e_.load(sTile, {r, jj});
            Value visible = e_.andI(e_.fgt(s, e_.f32(kMaskedScore * 0.5)),
                                    e_.lt(e_.add(q0, r), n));
            Value p = e_.select(
                visible, e_.exp(e_.fsub(s, e_.load(shared(rowLse_), {r}))),
                zero);
            Value t = p;
            if (needsDP) {
              Value dp =
                  dpTile_ >= 0
                      ? e_.load(shared(dpTile_), {r, jj})
                      : sum(d, [&](Value c) {
                          return e_.fmul(e_.load(shared(doTile_), {r, c}),
                                         e_.load(shared(values_), {jj, c}));
                        });
              t = e_.fmul(p, e_.fsub(dp, e_.load(shared(rowDelta_), {r})));
              if (tileScale) {
                t = e_.fmul(t, tileScale);
              }
            }
            e_.store(t, sTile, {r, jj});
            if (tHalf_ >= 0) {
              storeShared(t, tHalf_, {r, jj});
            }
            if (tHalfT_ >= 0) {
              storeShared(t, tHalfT_, {jj, r});
            }
          });
          e_.barrier();
          auto tileAt = [&](Value r, Value jj) {
            return e_.load(sTile, {r, jj});
          };
          // Per key of the tile: sum_r T[r, jj] y(r, c).
          auto perKey =
              [&](int64_t cols, const std::function<Value(Value, Value)> &y,
                  const std::function<void(Value, Value, Value)> &add) {
                e_.strided(tid, keyTile_ * cols, threads_, [&](Value flat) {
                  Value jj = e_.div(flat, cols), c = e_.rem(flat, cols);
                  Value j = e_.add(k0, jj);
                  e_.ifThen(e_.lt(j, m), [&] {
                    add(j, c, sum(qTile_, [&](Value r) {
                          return e_.fmul(tileAt(r, jj), y(r, c));
                        }));
                  });
                });
              };
          // Per query of the tile: sum_jj T[r, jj] y(jj, c).
          auto perQuery =
              [&](int64_t cols, const std::function<Value(Value, Value)> &y,
                  const std::function<void(Value, Value, Value)> &add) {
                e_.strided(tid, qTile_ * cols, threads_, [&](Value flat) {
                  Value r = e_.div(flat, cols), c = e_.rem(flat, cols);
                  Value qi = e_.add(q0, r);
                  e_.ifThen(e_.lt(qi, n), [&] {
                    add(qi, c, sum(keyTile_, [&](Value jj) {
                          return e_.fmul(tileAt(r, jj), y(jj, c));
                        }));
                  });
                });
              };
          auto keyOf = [&](Value jj) { return e_.minI(e_.add(k0, jj), m - 1); };
          if (mmaGrad_) {
            // dV = P^T dO, dK = dS^T Q (keys x columns, k = the 16 queries)
            // or dQ = dS K (queries x columns, k = the keys) on tensor
            // cores; each accumulator element added to the gradient once.
            int64_t cols = target_.kind == GradTarget::Values
                               ? d
                               : shapeOf(part->operands[0])[3];
            if (tHalf_ >= 0) {
              mmaTiles(1, cols / 8, keyTile_ / 16, tHalf_, kHalfT_,
                       [&](Value row, Value col, Value v) {
                         Value qi = e_.add(q0, row);
                         e_.ifThen(e_.lt(qi, n),
                                   [&] { accumulate({bb, h, qi, col}, v); });
                       });
            } else {
              int other =
                  target_.kind == GradTarget::Values ? doHalfT_ : qHalfT_;
              mmaTiles(keyTile_ / 16, cols / 8, qTile_ / 16, tHalfT_, other,
                       [&](Value row, Value col, Value v) {
                         Value j = e_.add(k0, row);
                         e_.ifThen(e_.lt(j, m),
                                   [&] { accumulate({bb, h, j, col}, v); });
                       });
            }
          } else if (target_.kind == GradTarget::Values) {
            perKey(
                d,
                [&](Value r, Value c) {
                  return e_.load(shared(doTile_), {r, c});
                },
                [&](Value j, Value c, Value v) {
                  accumulate({bb, h, j, c}, v);
                });
          } else if (target_.kind == GradTarget::Logits) {
            e_.strided(tid, qTile_ * keyTile_, threads_, [&](Value flat) {
              Value r = e_.div(flat, keyTile_), jj = e_.rem(flat, keyTile_);
              Value t = tileAt(r, jj);
              for (int64_t p = 0; p < numParts; ++p) {
                Value score =
                    partScore(parts_[p], h, r, query(r), jj, keyOf(jj));
                Value slot = e_.idx(p);
                e_.store(
                    e_.fma(t, score, e_.load(shared(partials_), {tid, slot})),
                    shared(partials_), {tid, slot});
              }
            });
          } else {
            switch (targetKind()) {
            case mlir::synth::ScoreKind::Dot: {
              int64_t dq = dim(0, 3);
              if (local == 0) { // dQ = scale sum_j dS K
                perQuery(
                    dq,
                    [&](Value jj, Value c) {
                      return e_.load(shared(part->keys), {jj, c});
                    },
                    [&](Value qi, Value c, Value v) {
                      accumulate({bb, h, qi, c}, v);
                    });
              } else { // dK = scale sum_i dS Q
                perKey(
                    dq,
                    [&](Value r, Value c) {
                      return e_.load(shared(part->queries), {r, c});
                    },
                    [&](Value j, Value c, Value v) {
                      accumulate({bb, h, j, c}, v);
                    });
              }
              break;
            }
            case mlir::synth::ScoreKind::Random: // dR[h, i, j] = sum_b dS
              e_.strided(tid, qTile_ * keyTile_, threads_, [&](Value flat) {
                Value r = e_.div(flat, keyTile_), jj = e_.rem(flat, keyTile_);
                Value qi = e_.add(q0, r), j = e_.add(k0, jj);
                e_.ifThen(e_.andI(e_.lt(qi, n), e_.lt(j, m)),
                          [&] { accumulate({h, qi, j}, tileAt(r, jj)); });
              });
              break;
            case mlir::synth::ScoreKind::FactorizedRandom: {
              int64_t rank = dim(0, 2);
              if (local == 0) { // dR1[h, i] = sum_j G[i, j] R2[h, j]
                perQuery(
                    rank,
                    [&](Value jj, Value c) {
                      return e_.load(partOperand(1), {h, keyOf(jj), c});
                    },
                    [&](Value qi, Value c, Value v) {
                      accumulate({h, qi, c}, v);
                    });
              } else { // dR2[h, j] = sum_i G[i, j] R1[h, i]
                perKey(
                    rank,
                    [&](Value r, Value c) {
                      return e_.load(partOperand(0), {h, query(r), c});
                    },
                    [&](Value j, Value c, Value v) {
                      accumulate({h, j, c}, v);
                    });
              }
              break;
            }
            case mlir::synth::ScoreKind::Dense: {
              int64_t hidden = dim(1, 2);
              Value hid = shared(part->hidden);
              if (local == 3) { // dW2[h, k, j] = sum hid[i, k] dS[i, j]
                perKey(
                    hidden,
                    [&](Value r, Value c) { return e_.load(hid, {r, c}); },
                    [&](Value j, Value c, Value v) {
                      accumulate({h, c, j}, v);
                    });
              } else if (local == 4) { // db2[h, j] = sum dS[i, j]
                perKey(
                    1, [&](Value, Value) { return e_.f32(1.0); },
                    [&](Value j, Value, Value v) { accumulate({h, j}, v); });
              } else { // dHid[i, k] += sum_j dS[i, j] W2[h, k, j]
                e_.strided(tid, qTile_ * hidden, threads_, [&](Value flat) {
                  Value r = e_.div(flat, hidden), c = e_.rem(flat, hidden);
                  Value v = sum(keyTile_, [&](Value jj) {
                    return e_.fmul(tileAt(r, jj),
                                   e_.load(partOperand(3), {h, c, keyOf(jj)}));
                  });
                  e_.store(e_.fadd(e_.load(shared(dHidden_), {r, c}), v),
                           shared(dHidden_), {r, c});
                });
              }
              break;
            }
            case mlir::synth::ScoreKind::FactorizedDense: {
              // s[i, j] = A[i, j / bw] B[i, j % bw]:
              // dA[i, p] += sum_{j / bw = p} dS B[i, j % bw], dB likewise.
              int64_t aw = dim(3, 2), bw = dim(5, 2);
              for (auto [acc, width, other, isA] :
                   {std::tuple<int, int64_t, int, bool>{dFactorA_, aw,
                                                        part->factorB, true},
                    {dFactorB_, bw, part->factorA, false}}) {
                int target = acc, from = other;
                bool forA = isA;
                int64_t w = width;
                e_.strided(tid, qTile_ * w, threads_, [&](Value flat) {
                  Value r = e_.div(flat, w), c = e_.rem(flat, w);
                  Value v = sum(keyTile_, [&](Value jj) {
                    Value j = e_.add(k0, jj);
                    Value slot = forA ? e_.div(j, bw) : e_.rem(j, bw);
                    Value otherAt = forA ? e_.rem(j, bw) : e_.div(j, bw);
                    Value hit = e_.andI(
                        e_.lt(j, m),
                        arith::CmpIOp::create(
                            b_, e_.loc, arith::CmpIPredicate::eq, slot, c));
                    Value term = e_.fmul(
                        tileAt(r, jj),
                        e_.load(shared(from),
                                {r, e_.minI(otherAt, forA ? bw - 1 : aw - 1)}));
                    return e_.select(hit, term, zero);
                  });
                  e_.store(e_.fadd(e_.load(shared(target), {r, c}), v),
                           shared(target), {r, c});
                });
              }
              break;
            }
            }
          }
        });
        if (!denseTarget() ||
            (targetKind() == mlir::synth::ScoreKind::Dense && local >= 3)) {
          return; // dW2 and db2 were added per key tile
        }
        // After every key tile: the synthesizer's per-query gradients.
        e_.barrier();
        Value hid = shared(part->hidden);
        int64_t hidden = dim(1, 2);
        if (targetKind() == mlir::synth::ScoreKind::FactorizedDense &&
            local >= 3) {
          // WA, bA (from dA) or WB, bB (from dB).
          bool forA = local <= 4;
          int acc = forA ? dFactorA_ : dFactorB_;
          int64_t width = forA ? dim(3, 2) : dim(5, 2);
          bool bias = local == 4 || local == 6;
          int64_t rows = bias ? 1 : hidden;
          e_.strided(tid, rows * width, threads_, [&](Value flat) {
            Value c = e_.div(flat, width), p = e_.rem(flat, width);
            Value v = sum(qTile_, [&](Value r) {
              Value dA = e_.load(shared(acc), {r, p});
              return bias ? dA : e_.fmul(e_.load(hid, {r, c}), dA);
            });
            accumulate(bias ? SmallVector<Value>{h, p}
                            : SmallVector<Value>{h, c, p},
                       v);
          });
          return;
        }
        // dPre = dHid (from W2, or from the factors) where the relu passed.
        e_.strided(tid, qTile_ * hidden, threads_, [&](Value flat) {
          Value r = e_.div(flat, hidden), c = e_.rem(flat, hidden);
          Value v;
          if (targetKind() == mlir::synth::ScoreKind::Dense) {
            v = e_.load(shared(dHidden_), {r, c});
          } else {
            v = e_.fadd(sum(dim(3, 2),
                            [&](Value p) {
                              return e_.fmul(
                                  e_.load(shared(dFactorA_), {r, p}),
                                  e_.load(partOperand(3), {h, c, p}));
                            }),
                        sum(dim(5, 2), [&](Value p) {
                          return e_.fmul(e_.load(shared(dFactorB_), {r, p}),
                                         e_.load(partOperand(5), {h, c, p}));
                        }));
          }
          Value passed = e_.fgt(e_.load(hid, {r, c}), zero);
          e_.store(e_.select(passed, v, zero), shared(dHidden_), {r, c});
        });
        e_.barrier();
        Value dPre = shared(dHidden_);
        if (local == 0) { // dx[b, i, c] += sum_k dPre[i, k] W1[h, c, k]
          int64_t model = dim(0, 2);
          e_.strided(tid, qTile_ * model, threads_, [&](Value flat) {
            Value r = e_.div(flat, model), c = e_.rem(flat, model);
            Value qi = e_.add(q0, r);
            e_.ifThen(e_.lt(qi, n), [&] {
              accumulate({bb, qi, c}, sum(hidden, [&](Value k) {
                           return e_.fmul(e_.load(dPre, {r, k}),
                                          e_.load(partOperand(1), {h, c, k}));
                         }));
            });
          });
        } else if (local == 1) { // dW1[h, c, k] += sum_i x[b, i, c] dPre
          int64_t model = dim(0, 2);
          e_.strided(tid, model * hidden, threads_, [&](Value flat) {
            Value c = e_.div(flat, hidden), k = e_.rem(flat, hidden);
            accumulate({h, c, k}, sum(qTile_, [&](Value r) {
                         return e_.fmul(
                             e_.load(partOperand(0), {bb, query(r), c}),
                             e_.load(dPre, {r, k}));
                       }));
          });
        } else { // db1[h, k] += sum_i dPre[i, k]
          e_.strided(tid, hidden, threads_, [&](Value k) {
            accumulate({h, k}, sum(qTile_, [&](Value r) {
                         return e_.load(dPre, {r, k});
                       }));
          });
        }
      });
    };

    if (owner == Owner::BatchHead) {
      pass(bBlock, hBlock);
    } else if (owner == Owner::Head) {
      e_.loop(e_.idx(0), e_.idx(batch), 1, [&](Value bb) { pass(bb, hBlock); });
    } else {
      e_.loop(e_.idx(0), e_.idx(heads), 1, [&](Value h) { pass(bBlock, h); });
    }

    if (target_.kind == GradTarget::Logits) {
      // G_m = sum dS S_m; da_m = alpha_m (G_m - sum_n alpha_n G_n).
      e_.barrier();
      SmallVector<Value> alpha = mixtureWeights(op, hBlock);
      e_.ifThen(e_.lt(tid, 1), [&] {
        SmallVector<Value> totals;
        Value mean = zero;
        for (int64_t p = 0; p < numParts; ++p) {
          totals.push_back(sum(kGradThreads, [&](Value t) {
            return e_.load(shared(partials_), {t, e_.idx(p)});
          }));
          mean = e_.fma(alpha[p], totals.back(), mean);
        }
        for (int64_t p = 0; p < numParts; ++p) {
          if (absl::Status s =
                  finish({e_.fmul(alpha[p], e_.fsub(totals[p], mean)),
                          {hBlock, e_.idx(p)}});
              !s.ok()) {
            status = s;
          }
        }
      });
    }
    return status;
  }

  /// Butterfly reduction over the 4 lanes of a quad (lanes sharing a
  /// fragment row).
  Value quadReduce(Value v, bool max) {
    for (int offset : {1, 2}) {
      auto shuffle = gpu::ShuffleOp::create(b_, e_.loc, v, offset, 32,
                                            gpu::ShuffleMode::XOR);
      v = max ? e_.fmax(v, shuffle.getShuffleResult())
              : e_.fadd(v, shuffle.getShuffleResult());
    }
    return v;
  }

  /// The fused attention on tensor cores (bf16/f16 inputs, f32 accumulators
  /// and softmax): 64 queries per block, one warp per 16 of them. Per key
  /// tile of 32: K (dot parts) and V^T are staged as 16-bit in shared
  /// memory; each warp computes its 16 x 32 dot scores with mma.sync
  /// m16n8k16 (Q fragments from shared memory) into the score tile; the
  /// other parts, the mixture and the masks are added by the block; then
  /// each lane updates the running max and sum of its two fragment rows
  /// (quad shuffles) and the warp's P V product, P rounded to 16-bit in
  /// registers, accumulates on tensor cores in d / 8 accumulator tiles.
  absl::Status emitAttentionMma(const AttentionOperands &op) {
    ArrayRef<int64_t> vShape = shapeOf(op.values);
    int64_t batch = vShape[0], heads = vShape[1], m = vShape[2], d = vShape[3];
    int64_t n = op.queries;
    info_.block = {threads_, 1, 1};
    info_.grid = {(n + qTile_ - 1) / qTile_, heads, batch};
    AttentionBlock blk = attentionBlock(op);
    Value tid = blk.tid, bb = blk.bb, h = blk.h;
    Value lane = e_.rem(tid, 32), warp = e_.div(tid, 32);
    Value group = e_.div(lane, 4), quad2 = e_.mul(e_.rem(lane, 4), 2);
    Value rowA = e_.add(e_.mul(warp, 16), group); // and rowA + 8
    Value zero = e_.f32(0.0);
    Type half = halfType();
    VectorType accType = accumulatorType(), aType = fragmentAType(),
               bType = fragmentBType(), pairType = halfPairType();
    attentionPrologue(op, blk);

    bool anyDot = false;
    for (const Part &p : parts_) {
      anyDot |= p.kind == mlir::synth::ScoreKind::Dot;
    }
    constexpr int64_t keyTiles8 = kKeyTile / 8, keySteps = kKeyTile / 16;
    const int64_t valueTiles = d / 8;
    // Carried: running max and sum of rows A and B, then the accumulators.
    SmallVector<Value> inits = {e_.f32(kMaskedScore), e_.f32(kMaskedScore),
                                zero, zero};
    inits.append(valueTiles, zeroVector(accType));
    SmallVector<Value> state = e_.loop(
        e_.idx(0), keyTileCount(op, blk.q0), 1, inits,
        [&](Value t, ValueRange carried) {
          Value k0 = e_.mul(t, kKeyTile);
          e_.barrier();
          stageValues(op, blk, k0, /*transposed=*/true);
          stageKeys(blk, k0, m);
          e_.barrier();
          if (anyDot) {
            // S_warp (16 x 32) = sum over dot parts of alpha * scale * Q K^T.
            SmallVector<Value> total(keyTiles8 * 4);
            for (auto [i, p] : llvm::enumerate(parts_)) {
              if (p.kind != mlir::synth::ScoreKind::Dot) {
                continue;
              }
              int64_t dq = shapeOf(p.operands[0])[3];
              SmallVector<Value> acc(keyTiles8, zeroVector(accType));
              for (int64_t ks = 0; ks < dq; ks += 16) {
                Value c0 = e_.add(quad2, ks), c8 = e_.add(quad2, ks + 8);
                Value rB = e_.add(rowA, 8);
                Value a =
                    fragment(aType, {sharedPair(shared(p.queries), rowA, c0),
                                     sharedPair(shared(p.queries), rB, c0),
                                     sharedPair(shared(p.queries), rowA, c8),
                                     sharedPair(shared(p.queries), rB, c8)});
                for (int64_t jt = 0; jt < keyTiles8; ++jt) {
                  Value key = e_.add(group, jt * 8);
                  Value bf =
                      fragment(bType, {sharedPair(shared(p.keys), key, c0),
                                       sharedPair(shared(p.keys), key, c8)});
                  acc[jt] = mma(a, bf, acc[jt]);
                }
              }
              Value weight = e_.f32(p.scale);
              if (!blk.alpha.empty()) {
                weight = e_.fmul(weight, blk.alpha[i]);
              }
              for (int64_t jt = 0; jt < keyTiles8; ++jt) {
                for (int64_t e = 0; e < 4; ++e) {
                  Value term =
                      e_.fmul(accumulatorAt(acc[jt], e / 2, e % 2), weight);
                  Value &sum = total[jt * 4 + e];
                  sum = sum ? e_.fadd(sum, term) : term;
                }
              }
            }
            for (int64_t jt = 0; jt < keyTiles8; ++jt) {
              for (int64_t e = 0; e < 4; ++e) {
                Value r = e_.add(rowA, (e / 2) * 8);
                Value c = e_.add(quad2, jt * 8 + e % 2);
                e_.store(total[jt * 4 + e], shared(scores_), {r, c});
              }
            }
            e_.barrier();
          }
          scorePass(op, blk, k0, anyDot);
          e_.barrier();
          // Online softmax of the lane's two rows over its 2 x 8 columns
          // (the columns of its P fragments), completed across the quad.
          SmallVector<Value> s(2 * keyTiles8 * 2);
          for (int64_t hh = 0; hh < 2; ++hh) {
            for (int64_t jt = 0; jt < keyTiles8; ++jt) {
              for (int64_t c = 0; c < 2; ++c) {
                s[(hh * keyTiles8 + jt) * 2 + c] =
                    e_.load(shared(scores_),
                            {e_.add(rowA, hh * 8), e_.add(quad2, jt * 8 + c)});
              }
            }
          }
          SmallVector<Value> next(carried.begin(), carried.end());
          SmallVector<Value> rescale(2), p(s.size());
          for (int64_t hh = 0; hh < 2; ++hh) {
            Value tileMax = e_.f32(kMaskedScore);
            for (int64_t i = 0; i < keyTiles8 * 2; ++i) {
              tileMax = e_.fmax(tileMax, s[hh * keyTiles8 * 2 + i]);
            }
            tileMax = quadReduce(tileMax, /*max=*/true);
            Value mOld = carried[hh];
            Value mNew = e_.fmax(mOld, tileMax);
            rescale[hh] = e_.exp(e_.fsub(mOld, mNew));
            Value rowSum = zero;
            for (int64_t i = 0; i < keyTiles8 * 2; ++i) {
              Value sv = s[hh * keyTiles8 * 2 + i];
              Value pv = e_.select(e_.fgt(sv, e_.f32(kMaskedScore * 0.5)),
                                   e_.exp(e_.fsub(sv, mNew)), zero);
              p[hh * keyTiles8 * 2 + i] = pv;
              rowSum = e_.fadd(rowSum, pv);
            }
            rowSum = quadReduce(rowSum, /*max=*/false);
            next[hh] = mNew;
            next[2 + hh] = e_.fma(carried[2 + hh], rescale[hh], rowSum);
          }
          Value factors = vector::FromElementsOp::create(
              b_, e_.loc, accType,
              ValueRange{rescale[0], rescale[0], rescale[1], rescale[1]});
          for (int64_t j = 0; j < valueTiles; ++j) {
            next[4 + j] =
                arith::MulFOp::create(b_, e_.loc, carried[4 + j], factors);
          }
          // P (16 x 32, 16-bit) times V (32 x d): A fragments from the p
          // values, B fragments from V^T in shared memory.
          auto halfPair = [&](Value x, Value y) {
            return vector::FromElementsOp::create(
                       b_, e_.loc, pairType,
                       ValueRange{arith::TruncFOp::create(b_, e_.loc, half, x),
                                  arith::TruncFOp::create(b_, e_.loc, half, y)})
                .getResult();
          };
          auto pAt = [&](int64_t hh, int64_t jt, int64_t c) {
            return p[(hh * keyTiles8 + jt) * 2 + c];
          };
          for (int64_t ks = 0; ks < keySteps; ++ks) {
            int64_t j0 = 2 * ks, j1 = 2 * ks + 1; // key tiles of 8
            Value a = fragment(aType, {halfPair(pAt(0, j0, 0), pAt(0, j0, 1)),
                                       halfPair(pAt(1, j0, 0), pAt(1, j0, 1)),
                                       halfPair(pAt(0, j1, 0), pAt(0, j1, 1)),
                                       halfPair(pAt(1, j1, 0), pAt(1, j1, 1))});
            Value c0 = e_.add(quad2, ks * 16), c8 = e_.add(quad2, ks * 16 + 8);
            for (int64_t j = 0; j < valueTiles; ++j) {
              Value col = e_.add(group, j * 8);
              Value bf =
                  fragment(bType, {sharedPair(shared(values_), col, c0),
                                   sharedPair(shared(values_), col, c8)});
              next[4 + j] = mma(a, bf, next[4 + j]);
            }
          }
          return next;
        });

    // out = acc / l per accumulator element; fully masked rows are 0.
    absl::Status status;
    for (int64_t hh = 0; hh < 2; ++hh) {
      Value qi = e_.add(blk.q0, e_.add(rowA, hh * 8));
      Value l = state[2 + hh];
      e_.ifThen(e_.lt(qi, n), [&] {
        Value seen = e_.fgt(l, zero);
        for (int64_t j = 0; j < valueTiles; ++j) {
          for (int64_t c = 0; c < 2; ++c) {
            Value acc = accumulatorAt(state[4 + j], hh, c);
            Value out = e_.select(seen, e_.fdiv(acc, l), zero);
            Value col = e_.add(quad2, j * 8 + c);
            if (absl::Status s = finish({out, {bb, h, qi, col}}); !s.ok()) {
              status = s;
            }
          }
        }
      });
    }
    return status;
  }
};

} // namespace

bool isCudaEntry(const std::string &name) {
  return name == "forward" || name == "loss" || name == "decode" ||
         name == "gradients" || name == "train_step";
}

absl::StatusOr<OwningOpRef<ModuleOp>>
lowerKernelsToGpu(ModuleOp kernels, std::vector<LaunchInfo> *launches,
                  const std::string &precision) {
  if (!isSupportedPrecision(precision)) {
    return absl::InvalidArgumentError(absl::StrCat("unsupported GPU precision ",
                                                   precision, " (expected ",
                                                   supportedPrecisions(), ")"));
  }
  MLIRContext *context = kernels.getContext();
  context->loadDialect<gpu::GPUDialect, scf::SCFDialect, arith::ArithDialect,
                       math::MathDialect, memref::MemRefDialect,
                       nvgpu::NVGPUDialect, vector::VectorDialect>();
  OpBuilder b(context);
  OwningOpRef<ModuleOp> module = ModuleOp::create(kernels.getLoc());
  (*module)->setAttr(gpu::GPUDialect::getContainerModuleAttrName(),
                     b.getUnitAttr());
  if (auto name = kernels->getAttr("synth.model")) {
    (*module)->setAttr("synth.model", name);
  }
  b.setInsertionPointToEnd(module->getBody());
  for (func::FuncOp func : kernels.getOps<func::FuncOp>()) {
    if (!isCudaEntry(func.getSymName().str())) {
      continue;
    }
    for (auto kernel : func.getOps<mlir::synth::KernelOp>()) {
      auto gpuModule =
          gpu::GPUModuleOp::create(b, kernel.getLoc(), kernel.getKernelName());
      KernelLowering lowering(kernel, b, precision);
      absl::StatusOr<LaunchInfo> info = lowering.run(gpuModule);
      if (!info.ok()) {
        return info.status();
      }
      gpuModule->setAttr("synth.grid", b.getDenseI64ArrayAttr(info->grid));
      gpuModule->setAttr("synth.block", b.getDenseI64ArrayAttr(info->block));
      gpuModule->setAttr("synth.shared_bytes",
                         b.getI64IntegerAttr(info->sharedBytes));
      if (launches) {
        launches->push_back(*info);
      }
    }
  }
  return module;
}

} // namespace synth::cuda
