// synth-cpu-kernels, the CPU kernel pipeline, and its fusion switches
// (synthc --no-fuse): by default attention, the elementwise epilogues and the
// projections of one input are fused; no-fuse=projections keeps one linear
// per kernel; no-fuse=elementwise gives one kernel per op (the projections
// stay apart: each one's head split comes before the next one); no-fuse=
// attention keeps the score op and attend as kernels of their own.
// RUN: synth-opt %s --pass-pipeline='builtin.module(synth-cpu-kernels)' | FileCheck %s --check-prefix=FUSED
// RUN: synth-opt %s --pass-pipeline='builtin.module(synth-cpu-kernels{no-fuse=projections})' | FileCheck %s --check-prefix=SEP
// RUN: synth-opt %s --pass-pipeline='builtin.module(synth-cpu-kernels{no-fuse=elementwise})' | FileCheck %s --check-prefix=EW
// RUN: synth-opt %s --pass-pipeline='builtin.module(synth-cpu-kernels{no-fuse=attention})' | FileCheck %s --check-prefix=ATT
// RUN: synth-opt %s --pass-pipeline='builtin.module(synth-cpu-kernels{no-fuse=attention,elementwise})' | FileCheck %s --check-prefix=NONE
// RUN: not synth-opt %s --pass-pipeline='builtin.module(synth-cpu-kernels{no-fuse=epilogues})' 2>&1 | FileCheck %s --check-prefix=BAD

// The Q/K and V projections of %x, each with its head split, in one kernel
// with a result each (stack_order: how the product visits the weights).
// FUSED-LABEL: func.func @layer
// FUSED: %[[QKV:.*]]:2 = synth.kernel "layer_k0_linear"
// FUSED-SAME: stack_order = "weights"
// FUSED-NEXT: ^bb0
// FUSED-NEXT: synth.linear
// FUSED-NEXT: synth.split_heads
// FUSED-NEXT: synth.linear
// FUSED-NEXT: synth.split_heads
// FUSED-NEXT: synth.yield
// FUSED: synth.kernel "layer_k1_fused_attention"(%[[QKV]]#0, %[[QKV]]#1)
// FUSED-NEXT: ^bb0
// FUSED-NEXT: synth.fused_attention
// FUSED-NEXT: synth.merge_heads
// FUSED: synth.kernel "layer_k2_linear"
// FUSED-NEXT: ^bb0
// FUSED-NEXT: synth.linear
// FUSED-NEXT: synth.add
// FUSED: synth.kernel "layer_k3_linear"
// FUSED-NEXT: ^bb0
// FUSED-NEXT: synth.linear
// FUSED-NEXT: synth.relu
// FUSED-NOT: synth.kernel "

// SEP-LABEL: func.func @layer
// SEP: synth.kernel "layer_k0_linear"
// SEP-NOT: stack_order
// SEP-NEXT: ^bb0
// SEP-NEXT: synth.linear
// SEP-NEXT: synth.split_heads
// SEP-NEXT: synth.yield
// SEP: synth.kernel "layer_k1_linear"
// SEP: synth.kernel "layer_k2_fused_attention"
// SEP: synth.kernel "layer_k3_linear"
// SEP: synth.kernel "layer_k4_linear"
// SEP-NOT: synth.kernel "

// One kernel per op, each named after it.
// EW-LABEL: func.func @layer
// EW: synth.kernel "layer_k0_linear"
// EW: synth.kernel "layer_k1_split_heads"
// EW: synth.kernel "layer_k2_linear"
// EW: synth.kernel "layer_k3_split_heads"
// EW: synth.kernel "layer_k4_fused_attention"
// EW-NEXT: ^bb0
// EW-NEXT: synth.fused_attention
// EW-NEXT: synth.yield
// EW: synth.kernel "layer_k5_merge_heads"
// EW: synth.kernel "layer_k6_linear"
// EW-NEXT: ^bb0
// EW-NEXT: synth.linear
// EW-NEXT: synth.yield
// EW: synth.kernel "layer_k7_add"
// EW: synth.kernel "layer_k8_linear"
// EW: synth.kernel "layer_k9_relu"
// EW-NOT: synth.kernel "

// The scores and attend are kernels; attend's schedule is of kind attend
// (the P V register block and where the softmax's statistics live).
// ATT-LABEL: func.func @layer
// ATT: synth.kernel "layer_k1_dot_scores"
// ATT-SAME: col_vectors = {{[0-9]+}} : i64, matmul_at = "tile"
// ATT-NEXT: ^bb0
// ATT-NEXT: synth.dot_scores
// ATT-NEXT: synth.yield
// ATT: synth.kernel "layer_k2_attend"
// ATT-SAME: matmul_at = "tile", parallel = "batch_heads", parallel_task = 1 : i64, reduction_unroll = 1 : i64, row_block = {{[0-9]+}} : i64, row_stats_at = "row"
// ATT-NEXT: ^bb0
// ATT-NEXT: synth.attend {{.*}} {causal}
// ATT-NEXT: synth.merge_heads
// ATT: synth.kernel "layer_k3_linear"
// ATT: synth.kernel "layer_k4_linear"
// ATT-NOT: fused_attention

// NONE-LABEL: func.func @layer
// NONE: synth.kernel "layer_k4_dot_scores"
// NONE: synth.kernel "layer_k5_attend"
// NONE-NEXT: ^bb0
// NONE-NEXT: synth.attend
// NONE-NEXT: synth.yield
// NONE: synth.kernel "layer_k6_merge_heads"
// NONE: synth.kernel "layer_k10_relu"
// NONE-NOT: fused_attention

// BAD: synth-cpu-kernels: no-fuse: unknown fusion 'epilogues' (expected attention, elementwise, projections, prologue)
func.func @layer(%x: tensor<2x8x16xf32>, %wq: tensor<16x16xf32>, %wv: tensor<16x16xf32>, %wo: tensor<16x16xf32>,
                 %w1: tensor<16x32xf32>, %b1: tensor<32xf32>) -> tensor<2x8x32xf32> {
  %lq = synth.linear %x, %wq : (tensor<2x8x16xf32>, tensor<16x16xf32>) -> tensor<2x8x16xf32>
  %q = synth.split_heads %lq : tensor<2x8x16xf32> -> tensor<2x4x8x4xf32>
  %lv = synth.linear %x, %wv : (tensor<2x8x16xf32>, tensor<16x16xf32>) -> tensor<2x8x16xf32>
  %v = synth.split_heads %lv : tensor<2x8x16xf32> -> tensor<2x4x8x4xf32>
  %s = synth.dot_scores %q, %q {scale = 5.000000e-01 : f32} : (tensor<2x4x8x4xf32>, tensor<2x4x8x4xf32>) -> tensor<2x4x8x8xf32>
  %o = synth.attend %s, %v {causal} : (tensor<2x4x8x8xf32>, tensor<2x4x8x4xf32>) -> tensor<2x4x8x4xf32>
  %m = synth.merge_heads %o : tensor<2x4x8x4xf32> -> tensor<2x8x16xf32>
  %y = synth.linear %m, %wo : (tensor<2x8x16xf32>, tensor<16x16xf32>) -> tensor<2x8x16xf32>
  %r = synth.add %y, %x : tensor<2x8x16xf32>
  %h = synth.linear %r, %w1 bias %b1 : (tensor<2x8x16xf32>, tensor<16x32xf32>, tensor<32xf32>) -> tensor<2x8x32xf32>
  %a = synth.relu %h : tensor<2x8x32xf32>
  return %a : tensor<2x8x32xf32>
}
