// synth-fuse-elementwise: bias/activation/residual and head layout ops join
// the kernel of their producer when they are its only user.
// RUN: synth-opt %s --synth-fuse-elementwise --split-input-file | FileCheck %s

// linear + relu, and the second linear + residual add, become two kernels;
// the residual input %x arrives as a kernel input.
// CHECK-LABEL: func.func @ffn
// CHECK-SAME: (%[[X:.*]]: tensor<2x8x16xf32>, %[[W1:.*]]: tensor<16x32xf32>, %[[B1:.*]]: tensor<32xf32>, %[[W2:.*]]: tensor<32x16xf32>)
// CHECK: %[[K1:.*]] = synth.kernel "fused"(%[[X]], %[[W1]], %[[B1]])
// CHECK-NEXT: ^bb0(%[[A:.*]]: tensor<2x8x16xf32>, %[[B:.*]]: tensor<16x32xf32>, %[[C:.*]]: tensor<32xf32>):
// CHECK-NEXT: %[[L:.*]] = synth.linear %[[A]], %[[B]] bias %[[C]]
// CHECK-NEXT: %[[R:.*]] = synth.relu %[[L]]
// CHECK-NEXT: synth.yield %[[R]]
// CHECK: %[[K2:.*]] = synth.kernel "fused"(%[[K1]], %[[W2]], %[[X]])
// CHECK: synth.linear
// CHECK-NEXT: synth.add
// CHECK: return %[[K2]]
func.func @ffn(%x: tensor<2x8x16xf32>, %w1: tensor<16x32xf32>, %b1: tensor<32xf32>, %w2: tensor<32x16xf32>) -> tensor<2x8x16xf32> {
  %h = synth.linear %x, %w1 bias %b1 : (tensor<2x8x16xf32>, tensor<16x32xf32>, tensor<32xf32>) -> tensor<2x8x32xf32>
  %r = synth.relu %h : tensor<2x8x32xf32>
  %o = synth.linear %r, %w2 : (tensor<2x8x32xf32>, tensor<32x16xf32>) -> tensor<2x8x16xf32>
  %y = synth.add %x, %o : tensor<2x8x16xf32>
  return %y : tensor<2x8x16xf32>
}

// -----

// A producer with a second user is not fused (its value must be stored);
// split_heads joins its linear, merge_heads joins the attention.
// CHECK-LABEL: func.func @layout
// CHECK: %[[L:.*]] = synth.linear
// CHECK-NEXT: synth.relu %[[L]]
// CHECK: synth.kernel "fused"
// CHECK-NEXT: ^bb0
// CHECK-NEXT: synth.linear
// CHECK-NEXT: synth.split_heads
// CHECK: synth.kernel "fused"
// CHECK-NEXT: ^bb0
// CHECK-NEXT: synth.fused_attention
// CHECK-NEXT: synth.merge_heads
func.func @layout(%x: tensor<2x8x16xf32>, %w: tensor<16x16xf32>, %r: tensor<4x8x8xf32>)
    -> (tensor<2x8x16xf32>, tensor<2x8x16xf32>, tensor<2x8x16xf32>) {
  %l = synth.linear %x, %w : (tensor<2x8x16xf32>, tensor<16x16xf32>) -> tensor<2x8x16xf32>
  %a = synth.relu %l : tensor<2x8x16xf32>
  %v = synth.linear %x, %w : (tensor<2x8x16xf32>, tensor<16x16xf32>) -> tensor<2x8x16xf32>
  %vh = synth.split_heads %v : tensor<2x8x16xf32> -> tensor<2x4x8x4xf32>
  %o = synth.fused_attention [#synth.score<random, max_len = 8 : i64>] (%r) values %vh {causal}
      : (tensor<4x8x8xf32>, tensor<2x4x8x4xf32>) -> tensor<2x4x8x4xf32>
  %m = synth.merge_heads %o : tensor<2x4x8x4xf32> -> tensor<2x8x16xf32>
  return %l, %a, %m : tensor<2x8x16xf32>, tensor<2x8x16xf32>, tensor<2x8x16xf32>
}
