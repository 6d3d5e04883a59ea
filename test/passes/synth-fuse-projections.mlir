// synth-fuse-projections: linears that read one input (with weights of one
// type and layout) join one kernel; a layer norm that only a linear kernel
// reads, as its linears' input, becomes that kernel's prologue. Runs after
// synth-fuse-elementwise, on its kernels or on loose linears.
// RUN: synth-opt %s --pass-pipeline='builtin.module(func.func(synth-fuse-elementwise,synth-fuse-projections))' --split-input-file | FileCheck %s
// RUN: synth-opt %s --pass-pipeline='builtin.module(func.func(synth-fuse-elementwise,synth-fuse-projections{projections=false}))' --split-input-file | FileCheck %s --check-prefix=NOSTACK
// RUN: synth-opt %s --pass-pipeline='builtin.module(func.func(synth-fuse-elementwise,synth-fuse-projections{prologue=false}))' --split-input-file | FileCheck %s --check-prefix=NOPRO

// Pre-norm attention input: the layer norm, then Q, K and V with their head
// splits, all one kernel with three results in the projections' order.
// CHECK-LABEL: func.func @qkv
// CHECK-SAME: (%[[X:.*]]: tensor<2x8x16xf32>, %[[G:.*]]: tensor<16xf32>, %[[BE:.*]]: tensor<16xf32>, %[[WQ:.*]]: tensor<16x16xf32>, %[[WK:.*]]: tensor<16x16xf32>, %[[WV:.*]]: tensor<16x16xf32>)
// CHECK: %[[K:.*]]:3 = synth.kernel "fused"(%[[X]], %[[G]], %[[BE]], %[[WQ]], %[[WK]], %[[WV]])
// CHECK-NEXT: ^bb0(%[[A:[^:]*]]: tensor<2x8x16xf32>
// CHECK-NEXT: %[[N:.*]] = synth.layer_norm %[[A]]
// CHECK-NEXT: %[[Q:.*]] = synth.linear %[[N]]
// CHECK-NEXT: %[[QS:.*]] = synth.split_heads %[[Q]]
// CHECK-NEXT: %[[KK:.*]] = synth.linear %[[N]]
// CHECK-NEXT: %[[KS:.*]] = synth.split_heads %[[KK]]
// CHECK-NEXT: %[[V:.*]] = synth.linear %[[N]]
// CHECK-NEXT: %[[VS:.*]] = synth.split_heads %[[V]]
// CHECK-NEXT: synth.yield %[[QS]], %[[KS]], %[[VS]]
// CHECK: synth.fused_attention {{.*}}(%[[K]]#0, %[[K]]#1) values %[[K]]#2
// CHECK-NOT: synth.layer_norm

// projections=false: one kernel per projection, and the layer norm joins
// none of them (three kernels read it).
// NOSTACK-LABEL: func.func @qkv
// NOSTACK: synth.layer_norm
// NOSTACK: synth.kernel "fused"
// NOSTACK-NEXT: ^bb0
// NOSTACK-NEXT: synth.linear
// NOSTACK-NEXT: synth.split_heads
// NOSTACK-NEXT: synth.yield
// NOSTACK: synth.kernel "fused"
// NOSTACK-NEXT: ^bb0
// NOSTACK-NEXT: synth.linear
// NOSTACK: synth.kernel "fused"
// NOSTACK-NEXT: ^bb0
// NOSTACK-NEXT: synth.linear

// NOPRO-LABEL: func.func @qkv
// NOPRO: %[[N:.*]] = synth.layer_norm
// NOPRO: synth.kernel "fused"(%[[N]],
// NOPRO-NEXT: ^bb0
// NOPRO-NEXT: synth.linear
// NOPRO-NEXT: synth.split_heads
// NOPRO-NEXT: synth.linear
func.func @qkv(%x: tensor<2x8x16xf32>, %g: tensor<16xf32>, %b: tensor<16xf32>, %wq: tensor<16x16xf32>,
               %wk: tensor<16x16xf32>, %wv: tensor<16x16xf32>) -> tensor<2x4x8x4xf32> {
  %n = synth.layer_norm %x, %g, %b : (tensor<2x8x16xf32>, tensor<16xf32>, tensor<16xf32>) -> tensor<2x8x16xf32>
  %q = synth.linear %n, %wq : (tensor<2x8x16xf32>, tensor<16x16xf32>) -> tensor<2x8x16xf32>
  %qh = synth.split_heads %q : tensor<2x8x16xf32> -> tensor<2x4x8x4xf32>
  %k = synth.linear %n, %wk : (tensor<2x8x16xf32>, tensor<16x16xf32>) -> tensor<2x8x16xf32>
  %kh = synth.split_heads %k : tensor<2x8x16xf32> -> tensor<2x4x8x4xf32>
  %v = synth.linear %n, %wv : (tensor<2x8x16xf32>, tensor<16x16xf32>) -> tensor<2x8x16xf32>
  %vh = synth.split_heads %v : tensor<2x8x16xf32> -> tensor<2x4x8x4xf32>
  %a = synth.fused_attention [#synth.score<dot, scale = 0.5 : f32>](%qh, %kh) values %vh {causal}
      : (tensor<2x4x8x4xf32>, tensor<2x4x8x4xf32>, tensor<2x4x8x4xf32>) -> tensor<2x4x8x4xf32>
  return %a : tensor<2x4x8x4xf32>
}

// -----

// The feed-forward layer: the layer norm is the prologue of its one linear
// (with the bias and activation epilogue); the second linear reads another
// value.
// CHECK-LABEL: func.func @ffn
// CHECK: %[[F:.*]] = synth.kernel "fused"
// CHECK-NEXT: ^bb0
// CHECK-NEXT: %[[N:.*]] = synth.layer_norm
// CHECK-NEXT: %[[H:.*]] = synth.linear %[[N]]
// CHECK-NEXT: %[[R:.*]] = synth.relu %[[H]]
// CHECK-NEXT: synth.yield %[[R]]
// CHECK: synth.kernel "fused"(%[[F]],
// CHECK-NEXT: ^bb0
// CHECK-NEXT: synth.linear
// CHECK-NEXT: synth.add
func.func @ffn(%x: tensor<2x8x16xf32>, %g: tensor<16xf32>, %b: tensor<16xf32>, %w1: tensor<16x32xf32>,
               %b1: tensor<32xf32>, %w2: tensor<32x16xf32>) -> tensor<2x8x16xf32> {
  %n = synth.layer_norm %x, %g, %b : (tensor<2x8x16xf32>, tensor<16xf32>, tensor<16xf32>) -> tensor<2x8x16xf32>
  %h = synth.linear %n, %w1 bias %b1 : (tensor<2x8x16xf32>, tensor<16x32xf32>, tensor<32xf32>) -> tensor<2x8x32xf32>
  %r = synth.relu %h : tensor<2x8x32xf32>
  %o = synth.linear %r, %w2 : (tensor<2x8x32xf32>, tensor<32x16xf32>) -> tensor<2x8x16xf32>
  %y = synth.add %x, %o : tensor<2x8x16xf32>
  return %y : tensor<2x8x16xf32>
}

// -----

// What stays apart: weights of another shape (the second linear), a layer
// norm that something else reads too (the return), and a projection whose
// result is used before a later one (the add sits between the two linears of
// %x, so one kernel in the later one's place would come after its user).
// CHECK-LABEL: func.func @apart
// CHECK: %[[N:.*]] = synth.layer_norm
// CHECK: synth.kernel "fused"(%[[N]],
// CHECK-NEXT: ^bb0
// CHECK-NEXT: synth.linear
// CHECK-NEXT: synth.relu
// CHECK-NEXT: synth.yield
// CHECK: synth.kernel "fused"(%[[N]],
// CHECK-NEXT: ^bb0
// CHECK-NEXT: synth.linear
// CHECK-NEXT: synth.relu
// CHECK-NEXT: synth.yield
// CHECK: %[[P:.*]] = synth.linear %arg0
// CHECK-NEXT: synth.add %[[P]]
// CHECK-NEXT: synth.linear %arg0
// CHECK-NOT: synth.kernel
func.func @apart(%x: tensor<2x8x16xf32>, %g: tensor<16xf32>, %b: tensor<16xf32>, %w1: tensor<16x32xf32>,
                 %w2: tensor<16x8xf32>, %w3: tensor<16x16xf32>)
    -> (tensor<2x8x16xf32>, tensor<2x8x32xf32>, tensor<2x8x8xf32>, tensor<2x8x16xf32>, tensor<2x8x16xf32>) {
  %n = synth.layer_norm %x, %g, %b : (tensor<2x8x16xf32>, tensor<16xf32>, tensor<16xf32>) -> tensor<2x8x16xf32>
  %h1 = synth.linear %n, %w1 : (tensor<2x8x16xf32>, tensor<16x32xf32>) -> tensor<2x8x32xf32>
  %r1 = synth.relu %h1 : tensor<2x8x32xf32>
  %h2 = synth.linear %n, %w2 : (tensor<2x8x16xf32>, tensor<16x8xf32>) -> tensor<2x8x8xf32>
  %r2 = synth.relu %h2 : tensor<2x8x8xf32>
  %p = synth.linear %x, %w3 : (tensor<2x8x16xf32>, tensor<16x16xf32>) -> tensor<2x8x16xf32>
  %s = synth.add %p, %p : tensor<2x8x16xf32>
  %t = synth.linear %x, %w3 : (tensor<2x8x16xf32>, tensor<16x16xf32>) -> tensor<2x8x16xf32>
  return %n, %r1, %r2, %s, %t : tensor<2x8x16xf32>, tensor<2x8x32xf32>, tensor<2x8x8xf32>, tensor<2x8x16xf32>, tensor<2x8x16xf32>
}
