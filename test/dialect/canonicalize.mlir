// Folds of synth ops under the canonicalizer: relu is idempotent, split/merge
// of heads cancel, a one-part mixture is its part. Ops that must not fold stay.
// RUN: synth-opt %s -canonicalize | FileCheck %s

// CHECK-LABEL: func.func @relu_idempotent
// CHECK-SAME: (%[[X:.*]]: tensor<8xf32>)
// CHECK-NEXT: %[[R:.*]] = synth.relu %[[X]]
// CHECK-NEXT: return %[[R]]
func.func @relu_idempotent(%x: tensor<8xf32>) -> tensor<8xf32> {
  %0 = synth.relu %x : tensor<8xf32>
  %1 = synth.relu %0 : tensor<8xf32>
  %2 = synth.relu %1 : tensor<8xf32>
  return %2 : tensor<8xf32>
}

// CHECK-LABEL: func.func @gelu_relu_not_folded
// CHECK: synth.relu
// CHECK: synth.gelu
// CHECK: synth.relu
func.func @gelu_relu_not_folded(%x: tensor<8xf32>) -> tensor<8xf32> {
  %0 = synth.relu %x : tensor<8xf32>
  %1 = synth.gelu %0 : tensor<8xf32>
  %2 = synth.relu %1 : tensor<8xf32>
  return %2 : tensor<8xf32>
}

// CHECK-LABEL: func.func @merge_of_split
// CHECK-SAME: (%[[X:.*]]: tensor<2x16x64xf32>)
// CHECK-NEXT: return %[[X]]
func.func @merge_of_split(%x: tensor<2x16x64xf32>) -> tensor<2x16x64xf32> {
  %0 = synth.split_heads %x : tensor<2x16x64xf32> -> tensor<2x4x16x16xf32>
  %1 = synth.merge_heads %0 : tensor<2x4x16x16xf32> -> tensor<2x16x64xf32>
  return %1 : tensor<2x16x64xf32>
}

// CHECK-LABEL: func.func @split_of_merge
// CHECK-SAME: (%[[X:.*]]: tensor<2x4x16x16xf32>)
// CHECK-NEXT: return %[[X]]
func.func @split_of_merge(%x: tensor<2x4x16x16xf32>) -> tensor<2x4x16x16xf32> {
  %0 = synth.merge_heads %x : tensor<2x4x16x16xf32> -> tensor<2x16x64xf32>
  %1 = synth.split_heads %0 : tensor<2x16x64xf32> -> tensor<2x4x16x16xf32>
  return %1 : tensor<2x4x16x16xf32>
}

// Re-splitting into a different number of heads is a real reshuffle: kept.
// CHECK-LABEL: func.func @split_other_heads
// CHECK: synth.merge_heads
// CHECK: synth.split_heads
func.func @split_other_heads(%x: tensor<2x4x16x16xf32>) -> tensor<2x8x16x8xf32> {
  %0 = synth.merge_heads %x : tensor<2x4x16x16xf32> -> tensor<2x16x64xf32>
  %1 = synth.split_heads %0 : tensor<2x16x64xf32> -> tensor<2x8x16x8xf32>
  return %1 : tensor<2x8x16x8xf32>
}

// CHECK-LABEL: func.func @single_part_mixture
// CHECK-SAME: (%[[R:.*]]: tensor<4x32x32xf32>, %{{.*}}: tensor<4x1xf32>)
// CHECK-NEXT: %[[S:.*]] = synth.random_scores %[[R]]
// CHECK-NEXT: return %[[S]]
func.func @single_part_mixture(%r: tensor<4x32x32xf32>, %a: tensor<4x1xf32>) -> tensor<4x16x16xf32> {
  %s = synth.random_scores %r {max_len = 32 : i64} : (tensor<4x32x32xf32>) -> tensor<4x16x16xf32>
  %m = synth.mixture_scores (%s) logits %a : (tensor<4x16x16xf32>, tensor<4x1xf32>) -> tensor<4x16x16xf32>
  return %m : tensor<4x16x16xf32>
}

// Unused pure synth ops are erased.
// CHECK-LABEL: func.func @dead_ops
// CHECK-NOT: synth.
// CHECK: return
func.func @dead_ops(%q: tensor<2x4x16x16xf32>, %v: tensor<2x4x16x16xf32>) {
  %s = synth.dot_scores %q, %q : (tensor<2x4x16x16xf32>, tensor<2x4x16x16xf32>) -> tensor<2x4x16x16xf32>
  %o = synth.attend %s, %v {causal} : (tensor<2x4x16x16xf32>, tensor<2x4x16x16xf32>) -> tensor<2x4x16x16xf32>
  return
}
