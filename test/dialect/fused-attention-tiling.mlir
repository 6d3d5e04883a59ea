// synth.fused_attention implements upstream TilingInterface: the transform
// dialect's generic tile_using_for tiles it over [batch, heads, queries].
// Query-indexed operands (q, x rows, R rows) are sliced, key-indexed ones stay
// whole, and query_offset carries the tile's first absolute query position for
// the causal mask.
// RUN: synth-opt %s --transform-interpreter --split-input-file | FileCheck %s

// CHECK-LABEL: func.func @tile_random_dot_mixture
// CHECK-SAME: (%[[R:[^:]*]]: tensor<4x64x64xf32>, %[[Q:[^:]*]]: tensor<2x4x64x16xf32>, %[[K:[^:]*]]: tensor<2x4x64x16xf32>, %[[A:[^:]*]]: tensor<4x2xf32>, %[[V:[^:]*]]: tensor<2x4x64x16xf32>)
// CHECK: scf.for %[[B:[^ ]*]] = %c0 to %c2 step
// CHECK: scf.for %[[H:[^ ]*]] = %c0 to %c4 step
// CHECK: scf.for %[[I:[^ ]*]] = %c0 to %c64 step
// CHECK-DAG: %[[RT:.*]] = tensor.extract_slice %[[R]][%[[H]], %[[I]], 0] [2, 16, 64] [1, 1, 1]
// CHECK-DAG: %[[QT:.*]] = tensor.extract_slice %[[Q]][%[[B]], %[[H]], %[[I]], 0] [1, 2, 16, 16] [1, 1, 1, 1]
// CHECK-DAG: %[[KT:.*]] = tensor.extract_slice %[[K]][%[[B]], %[[H]], 0, 0] [1, 2, 64, 16] [1, 1, 1, 1]
// CHECK-DAG: %[[AT:.*]] = tensor.extract_slice %[[A]][%[[H]], 0] [2, 2] [1, 1]
// CHECK-DAG: %[[VT:.*]] = tensor.extract_slice %[[V]][%[[B]], %[[H]], 0, 0] [1, 2, 64, 16] [1, 1, 1, 1]
// CHECK: %[[O:.*]] = synth.fused_attention [#synth.score<random, max_len = 64 : i64>, #synth.score<dot>](%[[RT]], %[[QT]], %[[KT]]) logits %[[AT]] values %[[VT]] query_offset %[[I]] {causal}
// CHECK-SAME: -> tensor<1x2x16x16xf32>
// CHECK: tensor.insert_slice %[[O]] into %{{.*}}[%[[B]], %[[H]], %[[I]], 0] [1, 2, 16, 16] [1, 1, 1, 1]
func.func @tile_random_dot_mixture(%r: tensor<4x64x64xf32>, %q: tensor<2x4x64x16xf32>, %k: tensor<2x4x64x16xf32>,
                                   %a: tensor<4x2xf32>, %v: tensor<2x4x64x16xf32>) -> tensor<2x4x64x16xf32> {
  %o = synth.fused_attention [#synth.score<random, max_len = 64 : i64>, #synth.score<dot>] (%r, %q, %k) logits %a values %v {causal}
      : (tensor<4x64x64xf32>, tensor<2x4x64x16xf32>, tensor<2x4x64x16xf32>, tensor<4x2xf32>, tensor<2x4x64x16xf32>)
      -> tensor<2x4x64x16xf32>
  return %o : tensor<2x4x64x16xf32>
}

module attributes {transform.with_named_sequence} {
  transform.named_sequence @__transform_main(%root: !transform.any_op {transform.readonly}) {
    %op = transform.structured.match ops{["synth.fused_attention"]} in %root : (!transform.any_op) -> !transform.any_op
    %tiled, %loops:3 = transform.structured.tile_using_for %op tile_sizes [1, 2, 16]
        : (!transform.any_op) -> (!transform.any_op, !transform.any_op, !transform.any_op, !transform.any_op)
    transform.yield
  }
}

// -----

// Dense scores with a padding mask: x rows follow the query tile, the per-head
// MLP weights follow the head tile, the key mask the batch. An existing
// query_offset (a decoding step) is added to the tile offset.
// CHECK-LABEL: func.func @tile_dense_with_offset
// CHECK-SAME: %[[X:[^:]*]]: tensor<2x32x64xf32>
// CHECK-SAME: %[[W2:[^:]*]]: tensor<4x16x64xf32>
// CHECK-SAME: %[[M:[^:]*]]: tensor<2x64xi1>, %[[OFF:[^:]*]]: index
// CHECK: scf.for %[[I:[^ ]*]] = %c0 to %c32 step %c8
// CHECK-DAG: tensor.extract_slice %[[X]][%c0, %[[I]], 0] [2, 8, 64] [1, 1, 1]
// CHECK-DAG: tensor.extract_slice %[[W2]][%c0, 0, 0] [4, 16, 64] [1, 1, 1]
// CHECK-DAG: tensor.extract_slice %[[M]][%c0, 0] [2, 64] [1, 1]
// CHECK-DAG: %[[QO:.*]] = arith.addi %[[OFF]], %[[I]] : index
// CHECK: synth.fused_attention [#synth.score<dense, max_len = 64 : i64>]({{.*}}) values %{{.*}} key_mask %{{.*}} query_offset %[[QO]] {causal}
// CHECK-SAME: -> tensor<2x4x8x16xf32>
func.func @tile_dense_with_offset(%x: tensor<2x32x64xf32>, %w1: tensor<4x64x16xf32>, %b1: tensor<4x16xf32>,
                                  %w2: tensor<4x16x64xf32>, %b2: tensor<4x64xf32>, %v: tensor<2x4x64x16xf32>,
                                  %m: tensor<2x64xi1>, %off: index) -> tensor<2x4x32x16xf32> {
  %o = synth.fused_attention [#synth.score<dense, max_len = 64 : i64>] (%x, %w1, %b1, %w2, %b2) values %v key_mask %m query_offset %off {causal}
      : (tensor<2x32x64xf32>, tensor<4x64x16xf32>, tensor<4x16xf32>, tensor<4x16x64xf32>, tensor<4x64xf32>,
         tensor<2x4x64x16xf32>, tensor<2x64xi1>, index) -> tensor<2x4x32x16xf32>
  return %o : tensor<2x4x32x16xf32>
}

module attributes {transform.with_named_sequence} {
  transform.named_sequence @__transform_main(%root: !transform.any_op {transform.readonly}) {
    %op = transform.structured.match ops{["synth.fused_attention"]} in %root : (!transform.any_op) -> !transform.any_op
    %tiled, %loop = transform.structured.tile_using_for %op tile_sizes [0, 0, 8]
        : (!transform.any_op) -> (!transform.any_op, !transform.any_op)
    transform.yield
  }
}

// -----

// Tiles that do not divide the query count have a dynamic size; the tiled op
// verifies with the unknown dimension.
// CHECK-LABEL: func.func @tile_partial
// CHECK: scf.for
// CHECK: %[[SZ:.*]] = affine.min
// CHECK: tensor.extract_slice %{{.*}}[%c0, %{{.*}}, 0] [4, %[[SZ]], 8]
// CHECK: synth.fused_attention [#synth.score<factorized_random, max_len = 64 : i64>]
// CHECK-SAME: -> tensor<2x4x?x16xf32>
func.func @tile_partial(%r1: tensor<4x64x8xf32>, %r2: tensor<4x64x8xf32>, %v: tensor<2x4x64x16xf32>) -> tensor<2x4x64x16xf32> {
  %o = synth.fused_attention [#synth.score<factorized_random, max_len = 64 : i64>] (%r1, %r2) values %v
      : (tensor<4x64x8xf32>, tensor<4x64x8xf32>, tensor<2x4x64x16xf32>) -> tensor<2x4x64x16xf32>
  return %o : tensor<2x4x64x16xf32>
}

module attributes {transform.with_named_sequence} {
  transform.named_sequence @__transform_main(%root: !transform.any_op {transform.readonly}) {
    %op = transform.structured.match ops{["synth.fused_attention"]} in %root : (!transform.any_op) -> !transform.any_op
    %tiled, %loop = transform.structured.tile_using_for %op tile_sizes [0, 0, 24]
        : (!transform.any_op) -> (!transform.any_op, !transform.any_op)
    transform.yield
  }
}
