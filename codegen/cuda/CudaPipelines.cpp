//===- CudaPipelines.cpp - the CUDA back end's pipelines, top to bottom ---===//
//
// After stage 1 (CudaKernels.cpp: synth.kernel -> gpu.func on memrefs), the
// rest is upstream MLIR, spelled out here as named pipelines:
//   gpu -> nvvm   scf -> cf; nvvm target (arch, PTX ISA, libdevice);
//                 gpu/arith/math/memref/cf -> NVVM + LLVM (bare pointers)
//   nvvm -> ptx   gpu-module-to-binary{format=isa}: LLVM NVPTX, no toolkit
//   ptx -> cubin  the toolkit's ptxas (Debian's MLIR has no in-process PTX
//                 compiler)
// The heavy MLIR headers (NVVM, LLVM, all extensions) live in this file only.
//
//===----------------------------------------------------------------------===//

#include "codegen/cuda/CudaCodegen.h"

#include "absl/strings/str_cat.h"
#include "mlir/Conversion/GPUToNVVM/GPUToNVVMPass.h"
#include "mlir/Conversion/NVGPUToNVVM/NVGPUToNVVM.h"
#include "mlir/Conversion/ReconcileUnrealizedCasts/ReconcileUnrealizedCasts.h"
#include "mlir/Conversion/SCFToControlFlow/SCFToControlFlow.h"
#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/ControlFlow/IR/ControlFlow.h"
#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/Dialect/GPU/IR/GPUDialect.h"
#include "mlir/Dialect/GPU/Transforms/Passes.h"
#include "mlir/Dialect/LLVMIR/LLVMDialect.h"
#include "mlir/Dialect/LLVMIR/NVVMDialect.h"
#include "mlir/Dialect/Math/IR/Math.h"
#include "mlir/Dialect/MemRef/IR/MemRef.h"
#include "mlir/Dialect/NVGPU/IR/NVGPUDialect.h"
#include "mlir/Dialect/SCF/IR/SCF.h"
#include "mlir/Dialect/Vector/IR/VectorOps.h"
#include "mlir/IR/Diagnostics.h"
#include "mlir/InitAllExtensions.h"
#include "mlir/Pass/PassManager.h"
#include "mlir/Target/LLVM/NVVM/Target.h"
#include "mlir/Target/LLVMIR/Dialect/All.h"
#include "mlir/Transforms/Passes.h"
#include "llvm/Support/FileSystem.h"
#include "llvm/Support/Program.h"
#include "llvm/Support/raw_ostream.h"

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>

#ifndef SYNTH_CUDA_TOOLKIT_DIR
#define SYNTH_CUDA_TOOLKIT_DIR ""
#endif

namespace synth::cuda {

using namespace mlir;

namespace {

/// PTX ISA versions: 8.0 is the first with sm_90a; sm_80 needs 7.0.
const char *ptxFeatures(const std::string &arch) {
  return arch == "sm_80" ? "+ptx70" : "+ptx80";
}

std::string libdevicePath(const std::string &toolkit) {
  if (toolkit.empty()) {
    return "";
  }
  std::string path = toolkit + "/nvvm/libdevice/libdevice.10.bc";
  return std::filesystem::exists(path) ? path : "";
}

/// Runs `pm` on `module`, turning diagnostics into the error message.
absl::Status runPipeline(PassManager &pm, ModuleOp module,
                         const std::string &stage) {
  std::string diagnostics;
  llvm::raw_string_ostream os(diagnostics);
  ScopedDiagnosticHandler handler(module.getContext(), [&](Diagnostic &d) {
    os << d.getLocation() << ": " << d << "\n";
    return success();
  });
  if (failed(pm.run(module))) {
    return absl::InternalError(absl::StrCat("CUDA back end: the ", stage,
                                            " pipeline failed\n", diagnostics));
  }
  return absl::OkStatus();
}

/// bf16 nvgpu.mma.sync -> nvvm.mma.sync, in place. Upstream's
/// convert-nvgpu-to-nvvm types f16, tf32 and integer operands only (bf16:
/// "'nvgpu.mma.sync' op failed to deduce operand PTX types"); NVVM's mma.sync
/// takes bf16 pairs packed in i32 registers. Each vector<2xbf16> row of the
/// A (4x2) and B (2x2) operands becomes one i32, the f32 accumulators
/// (2x2) four scalars; the remaining vector ops lower with the rest.
absl::Status legalizeBf16Mma(ModuleOp module) {
  SmallVector<nvgpu::MmaSyncOp> ops;
  module.walk([&](nvgpu::MmaSyncOp op) {
    if (getElementTypeOrSelf(op.getMatrixA().getType()).isBF16()) {
      ops.push_back(op);
    }
  });
  for (nvgpu::MmaSyncOp op : ops) {
    std::array<int64_t, 3> shape = op.getMmaShapeAsArray();
    auto aType = cast<VectorType>(op.getMatrixA().getType());
    auto bType = cast<VectorType>(op.getMatrixB().getType());
    auto cType = cast<VectorType>(op.getMatrixC().getType());
    if (shape != std::array<int64_t, 3>{16, 8, 16} ||
        aType.getShape() != ArrayRef<int64_t>{4, 2} ||
        bType.getShape() != ArrayRef<int64_t>{2, 2} ||
        cType.getShape() != ArrayRef<int64_t>{2, 2} ||
        !cType.getElementType().isF32()) {
      return absl::UnimplementedError(
          "CUDA back end: bf16 nvgpu.mma.sync other than m16n8k16 with f32 "
          "accumulators");
    }
    OpBuilder b(op);
    Location loc = op.getLoc();
    auto words = [&](Value matrix) {
      SmallVector<Value> out;
      auto type = cast<VectorType>(matrix.getType());
      auto word = VectorType::get({1}, b.getI32Type());
      for (int64_t r = 0; r < type.getDimSize(0); ++r) {
        Value pair = vector::ExtractOp::create(b, loc, matrix, r);
        Value packed = vector::BitCastOp::create(b, loc, word, pair);
        out.push_back(vector::ExtractOp::create(b, loc, packed, 0));
      }
      return out;
    };
    SmallVector<Value> a = words(op.getMatrixA()), bw = words(op.getMatrixB());
    SmallVector<Value> c;
    for (int64_t i = 0; i < 4; ++i) {
      c.push_back(vector::ExtractOp::create(b, loc, op.getMatrixC(),
                                            ArrayRef<int64_t>{i / 2, i % 2}));
    }
    Type f32 = b.getF32Type();
    auto resultType =
        LLVM::LLVMStructType::getLiteral(b.getContext(), {f32, f32, f32, f32});
    auto mma = NVVM::MmaOp::create(
        b, loc, resultType, a, bw, c, shape, std::nullopt, std::nullopt,
        std::array<NVVM::MMATypes, 2>{NVVM::MMATypes::bf16,
                                      NVVM::MMATypes::bf16},
        std::array<NVVM::MMALayout, 2>{NVVM::MMALayout::row,
                                       NVVM::MMALayout::col});
    Value result = arith::ConstantOp::create(
        b, loc,
        DenseElementsAttr::get(cType, Attribute(b.getF32FloatAttr(0.0f))));
    for (int64_t i = 0; i < 4; ++i) {
      Value v = LLVM::ExtractValueOp::create(b, loc, mma, i);
      result = vector::InsertOp::create(b, loc, v, result,
                                        ArrayRef<int64_t>{i / 2, i % 2});
    }
    op.getResult().replaceAllUsesWith(result);
    op.erase();
  }
  return absl::OkStatus();
}

} // namespace

//===----------------------------------------------------------------------===//
// Pipelines
//===----------------------------------------------------------------------===//

/// gpu.func on memrefs (scf/arith/math/memref) -> NVVM + LLVM dialects.
void buildGpuToNvvmPipeline(OpPassManager &pm, const CudaTarget &target) {
  // 1. Structured control flow -> branches (the NVVM lowering needs cf).
  pm.addNestedPass<gpu::GPUModuleOp>(createSCFToControlFlowPass());
  // 2. Attach the target: arch, PTX ISA, -O3, libdevice for expf/erff/...
  GpuNVVMAttachTargetOptions attach;
  attach.chip = target.arch;
  attach.features = ptxFeatures(target.arch);
  attach.optLevel = 3;
  if (std::string libdevice = libdevicePath(findToolkit(target));
      !libdevice.empty()) {
    attach.linkLibs.push_back(libdevice);
  }
  pm.addPass(createGpuNVVMAttachTarget(attach));
  // 3. Everything inside the gpu.modules -> NVVM/LLVM. Kernel arguments are
  //    bare pointers (static shapes), the runtime's calling convention.
  //    nvgpu (tensor-core MMA of the bf16/f16 linear kernels) first.
  if (target.precision != "f32") {
    pm.addNestedPass<gpu::GPUModuleOp>(createConvertNVGPUToNVVMPass());
  }
  ConvertGpuOpsToNVVMOpsOptions toNvvm;
  toNvvm.useBarePtrCallConv = true;
  pm.addNestedPass<gpu::GPUModuleOp>(createConvertGpuOpsToNVVMOps(toNvvm));
  pm.addNestedPass<gpu::GPUModuleOp>(createCanonicalizerPass());
  pm.addNestedPass<gpu::GPUModuleOp>(createCSEPass());
  pm.addNestedPass<gpu::GPUModuleOp>(createReconcileUnrealizedCastsPass());
}

/// NVVM -> PTX text in a gpu.binary per gpu.module (LLVM's NVPTX back end).
void buildNvvmToPtxPipeline(OpPassManager &pm) {
  GpuModuleToBinaryPassOptions toBinary;
  toBinary.compilationTarget = "isa";
  pm.addPass(createGpuModuleToBinaryPass(toBinary));
}

//===----------------------------------------------------------------------===//
// Stages
//===----------------------------------------------------------------------===//

const char *supportedArchs() { return "sm_80, sm_90a"; }

bool isSupportedArch(const std::string &arch) {
  return arch == "sm_80" || arch == "sm_90a";
}

const char *supportedPrecisions() { return "f32, bf16, f16"; }

bool isSupportedPrecision(const std::string &precision) {
  return precision == "f32" || precision == "bf16" || precision == "f16";
}

std::string findToolkit(const CudaTarget &target) {
  std::vector<std::string> candidates = {target.toolkit};
  if (const char *home = std::getenv("CUDA_HOME")) {
    candidates.push_back(home);
  }
  candidates.push_back(SYNTH_CUDA_TOOLKIT_DIR);
  candidates.push_back("/usr/local/cuda");
  for (const std::string &dir : candidates) {
    if (!dir.empty() && std::filesystem::exists(dir + "/bin/ptxas")) {
      return dir;
    }
  }
  return "";
}

void registerCudaDialects(MLIRContext &context) {
  DialectRegistry registry;
  registry
      .insert<arith::ArithDialect, cf::ControlFlowDialect, func::FuncDialect,
              gpu::GPUDialect, LLVM::LLVMDialect, math::MathDialect,
              memref::MemRefDialect, NVVM::NVVMDialect, nvgpu::NVGPUDialect,
              scf::SCFDialect, vector::VectorDialect>();
  // The to-LLVM conversion interfaces of these dialects, the NVVM target
  // attribute and the LLVM IR translations used by gpu-module-to-binary.
  registerAllExtensions(registry);
  NVVM::registerNVVMTargetInterfaceExternalModels(registry);
  registerAllToLLVMIRTranslations(registry);
  context.appendDialectRegistry(registry);
  context.loadAllAvailableDialects();
}

absl::Status lowerGpuToNvvm(ModuleOp module, const CudaTarget &target) {
  if (!isSupportedArch(target.arch)) {
    return absl::InvalidArgumentError(absl::StrCat("unsupported GPU arch ",
                                                   target.arch, " (expected ",
                                                   supportedArchs(), ")"));
  }
  if (absl::Status s = legalizeBf16Mma(module); !s.ok()) {
    return s;
  }
  PassManager pm(module.getContext());
  buildGpuToNvvmPipeline(pm, target);
  return runPipeline(pm, module, "gpu-to-nvvm");
}

absl::StatusOr<std::vector<std::pair<std::string, std::string>>>
translateToPtx(ModuleOp module, const CudaTarget &target) {
  (void)target; // the arch is in the nvvm target attached by stage 2
  PassManager pm(module.getContext());
  buildNvvmToPtxPipeline(pm);
  if (absl::Status s = runPipeline(pm, module, "nvvm-to-ptx"); !s.ok()) {
    return s;
  }
  std::vector<std::pair<std::string, std::string>> ptx;
  for (auto binary : module.getOps<gpu::BinaryOp>()) {
    for (Attribute attr : binary.getObjectsAttr()) {
      auto object = cast<gpu::ObjectAttr>(attr);
      ptx.emplace_back(binary.getSymName().str(),
                       object.getObject().getValue().str());
    }
  }
  return ptx;
}

absl::StatusOr<std::string> assembleCubin(const std::string &ptx,
                                          const CudaTarget &target,
                                          std::string *log) {
  std::string toolkit = findToolkit(target);
  if (toolkit.empty()) {
    return absl::NotFoundError(
        "no CUDA toolkit with ptxas found (set CUDA_HOME); PTX only");
  }
  llvm::SmallString<128> ptxPath, cubinPath, logPath;
  if (llvm::sys::fs::createTemporaryFile("synth", "ptx", ptxPath) ||
      llvm::sys::fs::createTemporaryFile("synth", "cubin", cubinPath) ||
      llvm::sys::fs::createTemporaryFile("synth", "log", logPath)) {
    return absl::InternalError("cannot create temporary files for ptxas");
  }
  auto cleanup = [&] {
    llvm::sys::fs::remove(ptxPath);
    llvm::sys::fs::remove(cubinPath);
    llvm::sys::fs::remove(logPath);
  };
  {
    std::ofstream out(ptxPath.str().str(), std::ios::binary);
    out << ptx;
  }
  std::string ptxas = toolkit + "/bin/ptxas";
  llvm::SmallVector<llvm::StringRef> args = {
      ptxas, "-v", "-O3", "-arch", target.arch, ptxPath, "-o", cubinPath};
  std::optional<llvm::StringRef> redirects[] = {std::nullopt, logPath.str(),
                                                logPath.str()};
  std::string error;
  int rc =
      llvm::sys::ExecuteAndWait(ptxas, args, std::nullopt, redirects,
                                /*SecondsToWait=*/0, /*MemoryLimit=*/0, &error);
  std::stringstream logText, cubin;
  logText << std::ifstream(logPath.str().str()).rdbuf();
  if (log) {
    *log = logText.str();
  }
  if (rc != 0) {
    cleanup();
    return absl::InternalError(absl::StrCat("ptxas failed (", ptxas,
                                            "): ", error, "\n", logText.str()));
  }
  cubin << std::ifstream(cubinPath.str().str(), std::ios::binary).rdbuf();
  cleanup();
  return cubin.str();
}

absl::StatusOr<std::string> emitCudaStage(ModuleOp kernels,
                                          const std::string &stage,
                                          const CudaTarget &target) {
  registerCudaDialects(*kernels.getContext());
  absl::StatusOr<OwningOpRef<ModuleOp>> gpuModule =
      lowerKernelsToGpu(kernels, nullptr, target.precision);
  if (!gpuModule.ok()) {
    return gpuModule.status();
  }
  std::string text;
  llvm::raw_string_ostream os(text);
  if (stage == "gpu") {
    (**gpuModule)->print(os);
    return text;
  }
  if (absl::Status s = lowerGpuToNvvm(**gpuModule, target); !s.ok()) {
    return s;
  }
  if (stage == "nvvm") {
    (**gpuModule)->print(os);
    return text;
  }
  absl::StatusOr<std::vector<std::pair<std::string, std::string>>> ptx =
      translateToPtx(**gpuModule, target);
  if (!ptx.ok()) {
    return ptx.status();
  }
  for (const auto &[name, code] : *ptx) {
    os << "// kernel " << name << "\n" << code << "\n";
  }
  return text;
}

} // namespace synth::cuda
