// synth-fuse-attention: score ops + attend -> one fused_attention, for every
// variant and for mixtures; masks carry over; dead score ops are erased.
// RUN: synth-opt %s --synth-fuse-attention --split-input-file | FileCheck %s
// With both options off (synthc --no-fuse=attention) nothing is rewritten.
// RUN: synth-opt %s --synth-fuse-attention="scores=false fixed-random=false" --split-input-file | FileCheck %s --check-prefix=OFF
// Fixed random attention alone off: it fuses like any random part.
// RUN: synth-opt %s --synth-fuse-attention=fixed-random=false --split-input-file | FileCheck %s --check-prefix=NOPROBS
// Scores alone off: only fixed random attention becomes attention_probs.
// RUN: synth-opt %s --synth-fuse-attention=scores=false --split-input-file | FileCheck %s --check-prefix=PROBS

// CHECK-LABEL: func.func @dot
// CHECK-SAME: (%[[Q:.*]]: tensor<2x4x16x16xf32>, %[[K:.*]]: tensor<2x4x16x16xf32>, %[[V:.*]]: tensor<2x4x16x16xf32>, %[[M:.*]]: tensor<2x16xi1>)
// CHECK-NEXT: %[[O:.*]] = synth.fused_attention [#synth.score<dot, scale = 2.500000e-01 : f32>](%[[Q]], %[[K]]) values %[[V]] key_mask %[[M]] {causal}
// CHECK-NEXT: return %[[O]]
// OFF-LABEL: func.func @dot
// OFF-NEXT: %[[S:.*]] = synth.dot_scores %arg0, %arg1
// OFF-NEXT: %[[O:.*]] = synth.attend %[[S]], %arg2 key_mask %arg3 {causal}
// OFF-NEXT: return %[[O]]
// OFF-NOT: fused_attention
func.func @dot(%q: tensor<2x4x16x16xf32>, %k: tensor<2x4x16x16xf32>, %v: tensor<2x4x16x16xf32>, %m: tensor<2x16xi1>) -> tensor<2x4x16x16xf32> {
  // No scale attribute: the effective 1/sqrt(16) is made explicit.
  %s = synth.dot_scores %q, %k : (tensor<2x4x16x16xf32>, tensor<2x4x16x16xf32>) -> tensor<2x4x16x16xf32>
  %o = synth.attend %s, %v key_mask %m {causal} : (tensor<2x4x16x16xf32>, tensor<2x4x16x16xf32>, tensor<2x16xi1>) -> tensor<2x4x16x16xf32>
  return %o : tensor<2x4x16x16xf32>
}

// -----

// CHECK-LABEL: func.func @synthesized
// CHECK-NOT: synth.dense_scores
// CHECK: synth.fused_attention [#synth.score<dense, max_len = 32 : i64>](%arg0, %arg1, %arg2, %arg3, %arg4) values %arg11
// CHECK: synth.fused_attention [#synth.score<random, max_len = 32 : i64>](%arg5) values %arg11 {causal}
// CHECK: synth.fused_attention [#synth.score<factorized_random, max_len = 32 : i64>](%arg6, %arg6) values %arg11
// CHECK: synth.fused_attention [#synth.score<factorized_dense, max_len = 32 : i64>](%arg0, %arg1, %arg2, %arg7, %arg8, %arg9, %arg10) values %arg11
// CHECK-NOT: _scores
func.func @synthesized(%x: tensor<2x16x64xf32>, %w1: tensor<4x64x16xf32>, %b1: tensor<4x16xf32>,
                       %w2: tensor<4x16x32xf32>, %b2: tensor<4x32xf32>, %r: tensor<4x32x32xf32>,
                       %r1: tensor<4x32x8xf32>, %wa: tensor<4x16x8xf32>, %ba: tensor<4x8xf32>,
                       %wb: tensor<4x16x4xf32>, %bb: tensor<4x4xf32>, %v: tensor<2x4x16x16xf32>)
    -> (tensor<2x4x16x16xf32>, tensor<2x4x16x16xf32>, tensor<2x4x16x16xf32>, tensor<2x4x16x16xf32>) {
  %sd = synth.dense_scores %x, %w1, %b1, %w2, %b2 {max_len = 32 : i64}
      : (tensor<2x16x64xf32>, tensor<4x64x16xf32>, tensor<4x16xf32>, tensor<4x16x32xf32>, tensor<4x32xf32>) -> tensor<2x4x16x16xf32>
  %o1 = synth.attend %sd, %v : (tensor<2x4x16x16xf32>, tensor<2x4x16x16xf32>) -> tensor<2x4x16x16xf32>
  %sr = synth.random_scores %r {max_len = 32 : i64} : (tensor<4x32x32xf32>) -> tensor<4x16x16xf32>
  %o2 = synth.attend %sr, %v {causal} : (tensor<4x16x16xf32>, tensor<2x4x16x16xf32>) -> tensor<2x4x16x16xf32>
  %sf = synth.factorized_random_scores %r1, %r1 {max_len = 32 : i64} : (tensor<4x32x8xf32>, tensor<4x32x8xf32>) -> tensor<4x16x16xf32>
  %o3 = synth.attend %sf, %v : (tensor<4x16x16xf32>, tensor<2x4x16x16xf32>) -> tensor<2x4x16x16xf32>
  %sfd = synth.factorized_dense_scores %x, %w1, %b1, %wa, %ba, %wb, %bb {max_len = 32 : i64}
      : (tensor<2x16x64xf32>, tensor<4x64x16xf32>, tensor<4x16xf32>, tensor<4x16x8xf32>, tensor<4x8xf32>, tensor<4x16x4xf32>, tensor<4x4xf32>) -> tensor<2x4x16x16xf32>
  %o4 = synth.attend %sfd, %v : (tensor<2x4x16x16xf32>, tensor<2x4x16x16xf32>) -> tensor<2x4x16x16xf32>
  return %o1, %o2, %o3, %o4 : tensor<2x4x16x16xf32>, tensor<2x4x16x16xf32>, tensor<2x4x16x16xf32>, tensor<2x4x16x16xf32>
}

// -----

// A mixture fuses all its parts into one op, mixed by its logits.
// CHECK-LABEL: func.func @mixture
// CHECK-NEXT: %[[O:.*]] = synth.fused_attention [#synth.score<random, max_len = 16 : i64>, #synth.score<dot, scale = 2.500000e-01 : f32>](%arg0, %arg1, %arg1) logits %arg2 values %arg1 query_offset %arg3 {causal}
// CHECK-NEXT: return %[[O]]
// OFF-LABEL: func.func @mixture
// OFF-NEXT: %[[R:.*]] = synth.random_scores %arg0
// OFF-NEXT: %[[D:.*]] = synth.dot_scores %arg1, %arg1
// OFF-NEXT: %[[S:.*]] = synth.mixture_scores(%[[R]], %[[D]]) logits %arg2
// OFF-NEXT: %[[O:.*]] = synth.attend %[[S]], %arg1 query_offset %arg3 {causal}
// OFF-NEXT: return %[[O]]
func.func @mixture(%r: tensor<4x16x16xf32>, %q: tensor<2x4x16x16xf32>, %a: tensor<4x2xf32>, %off: index) -> tensor<2x4x16x16xf32> {
  %sr = synth.random_scores %r {max_len = 16 : i64} : (tensor<4x16x16xf32>) -> tensor<4x16x16xf32>
  %sd = synth.dot_scores %q, %q : (tensor<2x4x16x16xf32>, tensor<2x4x16x16xf32>) -> tensor<2x4x16x16xf32>
  %s = synth.mixture_scores (%sr, %sd) logits %a : (tensor<4x16x16xf32>, tensor<2x4x16x16xf32>, tensor<4x2xf32>) -> tensor<2x4x16x16xf32>
  %o = synth.attend %s, %q query_offset %off {causal} : (tensor<2x4x16x16xf32>, tensor<2x4x16x16xf32>, index) -> tensor<2x4x16x16xf32>
  return %o : tensor<2x4x16x16xf32>
}

// -----

// Scores that are not computed by score ops are left alone, and a score op
// with another user survives next to the fused op.
// CHECK-LABEL: func.func @not_fusable
// CHECK: synth.attend %arg0, %arg1
// CHECK: %[[S:.*]] = synth.random_scores
// CHECK: synth.fused_attention [#synth.score<random, max_len = 16 : i64>]
// CHECK: return %{{.*}}, %{{.*}}, %[[S]]
func.func @not_fusable(%s: tensor<4x16x16xf32>, %v: tensor<2x4x16x16xf32>, %r: tensor<4x16x16xf32>)
    -> (tensor<2x4x16x16xf32>, tensor<2x4x16x16xf32>, tensor<4x16x16xf32>) {
  %o = synth.attend %s, %v : (tensor<4x16x16xf32>, tensor<2x4x16x16xf32>) -> tensor<2x4x16x16xf32>
  %sr = synth.random_scores %r {max_len = 16 : i64} : (tensor<4x16x16xf32>) -> tensor<4x16x16xf32>
  %o2 = synth.attend %sr, %v : (tensor<4x16x16xf32>, tensor<2x4x16x16xf32>) -> tensor<2x4x16x16xf32>
  return %o, %o2, %sr : tensor<2x4x16x16xf32>, tensor<2x4x16x16xf32>, tensor<4x16x16xf32>
}

// -----

// Fixed random attention without padding mask: its weights depend on R alone
// and become attention_probs (computed once per parameter binding by the back
// end) + attend_probs. Trainable R, or a key mask, keeps the fused op.
// CHECK-LABEL: func.func @fixed_random
// CHECK: %[[P:.*]] = synth.attention_probs %arg0 {causal, max_len = 16 : i64} : (tensor<4x16x16xf32>) -> tensor<4x8x8xf32>
// CHECK: %[[O:.*]] = synth.attend_probs %[[P]], %arg1
// CHECK: synth.fused_attention [#synth.score<random, max_len = 16 : i64>](%arg0) values %arg1 key_mask %arg2 {causal}
// CHECK: synth.fused_attention [#synth.score<random, max_len = 16 : i64>](%arg0) values %arg1 {causal}
// OFF-LABEL: func.func @fixed_random
// OFF-NOT: attention_probs
// OFF-NOT: fused_attention
// OFF-COUNT-3: synth.attend %
// NOPROBS-LABEL: func.func @fixed_random
// NOPROBS-NOT: attention_probs
// NOPROBS-COUNT-3: synth.fused_attention [#synth.score<random, max_len = 16 : i64>](%arg0) values %arg1
// PROBS-LABEL: func.func @fixed_random
// PROBS: %[[P:.*]] = synth.attention_probs %arg0 {causal, max_len = 16 : i64}
// PROBS: synth.attend_probs %[[P]], %arg1
// PROBS-NOT: fused_attention
// PROBS-COUNT-2: synth.attend %
func.func @fixed_random(%r: tensor<4x16x16xf32>, %v: tensor<2x4x8x4xf32>, %m: tensor<2x8xi1>)
    -> (tensor<2x4x8x4xf32>, tensor<2x4x8x4xf32>, tensor<2x4x8x4xf32>) {
  %s = synth.random_scores %r {max_len = 16 : i64, trainable = false} : (tensor<4x16x16xf32>) -> tensor<4x8x8xf32>
  %o1 = synth.attend %s, %v {causal} : (tensor<4x8x8xf32>, tensor<2x4x8x4xf32>) -> tensor<2x4x8x4xf32>
  %o2 = synth.attend %s, %v key_mask %m {causal} : (tensor<4x8x8xf32>, tensor<2x4x8x4xf32>, tensor<2x8xi1>) -> tensor<2x4x8x4xf32>
  %t = synth.random_scores %r {max_len = 16 : i64} : (tensor<4x16x16xf32>) -> tensor<4x8x8xf32>
  %o3 = synth.attend %t, %v {causal} : (tensor<4x8x8xf32>, tensor<2x4x8x4xf32>) -> tensor<2x4x8x4xf32>
  return %o1, %o2, %o3 : tensor<2x4x8x4xf32>, tensor<2x4x8x4xf32>, tensor<2x4x8x4xf32>
}
