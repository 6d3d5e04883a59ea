// Every synth op and attribute, printed and parsed back: the printed form must
// parse to the same IR (second synth-opt), in custom and in generic form.
// RUN: synth-opt --allow-unregistered-dialect %s | synth-opt --allow-unregistered-dialect | FileCheck %s
// RUN: synth-opt --allow-unregistered-dialect %s --mlir-print-op-generic | synth-opt --allow-unregistered-dialect | FileCheck %s

// CHECK-LABEL: func.func @model_ops
func.func @model_ops(%table: tensor<256x64xf32>, %ids: tensor<2x16xi32>,
                     %w: tensor<64x256xf32>, %b: tensor<256xf32>,
                     %g: tensor<64xf32>, %be: tensor<64xf32>,
                     %wo: tensor<256x256xf32>) -> tensor<f32> {
  // CHECK: synth.embedding %{{.*}}[%{{.*}}] : tensor<256x64xf32>, tensor<2x16xi32> -> tensor<2x16x64xf32>
  %h = synth.embedding %table[%ids] : tensor<256x64xf32>, tensor<2x16xi32> -> tensor<2x16x64xf32>
  // The default epsilon (1e-5) is elided.
  // CHECK: synth.layer_norm %{{.*}}, %{{.*}}, %{{.*}} : (
  %n = synth.layer_norm %h, %g, %be {epsilon = 1.0e-05 : f32}
      : (tensor<2x16x64xf32>, tensor<64xf32>, tensor<64xf32>) -> tensor<2x16x64xf32>
  // CHECK: synth.layer_norm %{{.*}}, %{{.*}}, %{{.*}} {epsilon = 9.99999997E-7 : f32}
  %n2 = synth.layer_norm %n, %g, %be {epsilon = 1.0e-06 : f32}
      : (tensor<2x16x64xf32>, tensor<64xf32>, tensor<64xf32>) -> tensor<2x16x64xf32>
  // CHECK: synth.linear %{{.*}}, %{{.*}} bias %{{.*}} : (tensor<2x16x64xf32>, tensor<64x256xf32>, tensor<256xf32>) -> tensor<2x16x256xf32>
  %y = synth.linear %n2, %w bias %b
      : (tensor<2x16x64xf32>, tensor<64x256xf32>, tensor<256xf32>) -> tensor<2x16x256xf32>
  // CHECK: synth.relu %{{.*}} : tensor<2x16x256xf32>
  %r = synth.relu %y : tensor<2x16x256xf32>
  // CHECK: synth.gelu %{{.*}} : tensor<2x16x256xf32>
  %ge = synth.gelu %r : tensor<2x16x256xf32>
  // CHECK: synth.gelu %{{.*}} approximation = tanh : tensor<2x16x256xf32>
  %gt = synth.gelu %ge approximation = tanh : tensor<2x16x256xf32>
  // CHECK: synth.add %{{.*}}, %{{.*}} : tensor<2x16x256xf32>
  %a = synth.add %gt, %y : tensor<2x16x256xf32>
  // CHECK: synth.linear %{{.*}}, %{{.*}} : (tensor<2x16x256xf32>, tensor<256x256xf32>) -> tensor<2x16x256xf32>
  %logits = synth.linear %a, %wo : (tensor<2x16x256xf32>, tensor<256x256xf32>) -> tensor<2x16x256xf32>
  // CHECK: synth.cross_entropy %{{.*}}, %{{.*}} {ignore_index = -1 : i64} : (tensor<2x16x256xf32>, tensor<2x16xi32>) -> tensor<f32>
  %loss = synth.cross_entropy %logits, %ids {ignore_index = -1 : i64}
      : (tensor<2x16x256xf32>, tensor<2x16xi32>) -> tensor<f32>
  // CHECK: synth.cross_entropy %{{.*}}, %{{.*}} : (tensor<2x16x256xf32>, tensor<2x16xi32>) -> tensor<f32>
  %loss2 = synth.cross_entropy %logits, %ids : (tensor<2x16x256xf32>, tensor<2x16xi32>) -> tensor<f32>
  return %loss2 : tensor<f32>
}

// CHECK-LABEL: func.func @positions_pool_tied
func.func @positions_pool_tied(%x: tensor<2x16x64xf32>, %pos: tensor<32x64xf32>, %off: index,
                               %mask: tensor<2x16xi1>, %table: tensor<256x64xf32>) {
  // CHECK: synth.add_positions %{{.*}}, %{{.*}} : (tensor<2x16x64xf32>, tensor<32x64xf32>) -> tensor<2x16x64xf32>
  %h = synth.add_positions %x, %pos : (tensor<2x16x64xf32>, tensor<32x64xf32>) -> tensor<2x16x64xf32>
  // CHECK: synth.add_positions %{{.*}}, %{{.*}} offset %{{.*}} : (tensor<2x16x64xf32>, tensor<32x64xf32>, index) -> tensor<2x16x64xf32>
  %h2 = synth.add_positions %h, %pos offset %off : (tensor<2x16x64xf32>, tensor<32x64xf32>, index) -> tensor<2x16x64xf32>
  // CHECK: synth.mean_pool %{{.*}}, %{{.*}} : (tensor<2x16x64xf32>, tensor<2x16xi1>) -> tensor<2x64xf32>
  %p = synth.mean_pool %h2, %mask : (tensor<2x16x64xf32>, tensor<2x16xi1>) -> tensor<2x64xf32>
  // CHECK: synth.linear %{{.*}}, %{{.*}} {transpose_weight} : (tensor<2x16x64xf32>, tensor<256x64xf32>) -> tensor<2x16x256xf32>
  %l = synth.linear %h2, %table {transpose_weight} : (tensor<2x16x64xf32>, tensor<256x64xf32>) -> tensor<2x16x256xf32>
  "test.use"(%p, %l) : (tensor<2x64xf32>, tensor<2x16x256xf32>) -> ()
  return
}

// CHECK-LABEL: func.func @heads
func.func @heads(%x: tensor<2x16x64xbf16>) -> tensor<2x16x64xbf16> {
  // CHECK: synth.split_heads %{{.*}} : tensor<2x16x64xbf16> -> tensor<2x4x16x16xbf16>
  %q = synth.split_heads %x : tensor<2x16x64xbf16> -> tensor<2x4x16x16xbf16>
  // CHECK: synth.merge_heads %{{.*}} : tensor<2x4x16x16xbf16> -> tensor<2x16x64xbf16>
  %y = synth.merge_heads %q : tensor<2x4x16x16xbf16> -> tensor<2x16x64xbf16>
  return %y : tensor<2x16x64xbf16>
}

// CHECK-LABEL: func.func @scores
func.func @scores(%x: tensor<2x16x64xf32>, %q: tensor<2x4x16x16xf32>, %k: tensor<2x4x16x16xf32>,
                  %w1: tensor<4x64x16xf32>, %b1: tensor<4x16xf32>,
                  %w2: tensor<4x16x32xf32>, %b2: tensor<4x32xf32>,
                  %r: tensor<4x32x32xf32>, %r1: tensor<4x32x8xf32>, %r2: tensor<4x32x8xf32>,
                  %wa: tensor<4x16x8xf32>, %ba: tensor<4x8xf32>,
                  %wb: tensor<4x16x4xf32>, %bb: tensor<4x4xf32>,
                  %mix: tensor<4x2xf32>, %mix3: tensor<4x3xf32>) {
  // CHECK: synth.dot_scores %{{.*}}, %{{.*}} {scale = 2.500000e-01 : f32}
  %sd = synth.dot_scores %q, %k {scale = 2.500000e-01 : f32}
      : (tensor<2x4x16x16xf32>, tensor<2x4x16x16xf32>) -> tensor<2x4x16x16xf32>
  // CHECK: synth.dot_scores %{{.*}}, %{{.*}} : (tensor<2x4x16x16xf32>, tensor<2x4x16x16xf32>) -> tensor<2x4x16x16xf32>
  %sd2 = synth.dot_scores %q, %k : (tensor<2x4x16x16xf32>, tensor<2x4x16x16xf32>) -> tensor<2x4x16x16xf32>
  // CHECK: synth.dense_scores {{.*}} {max_len = 32 : i64}
  %sn = synth.dense_scores %x, %w1, %b1, %w2, %b2 {max_len = 32 : i64}
      : (tensor<2x16x64xf32>, tensor<4x64x16xf32>, tensor<4x16xf32>, tensor<4x16x32xf32>, tensor<4x32xf32>)
      -> tensor<2x4x16x16xf32>
  // CHECK: synth.random_scores %{{.*}} {max_len = 32 : i64} : (tensor<4x32x32xf32>) -> tensor<4x16x16xf32>
  %sr = synth.random_scores %r {max_len = 32 : i64} : (tensor<4x32x32xf32>) -> tensor<4x16x16xf32>
  // CHECK: synth.random_scores %{{.*}} {max_len = 32 : i64, trainable = false}
  %sf = synth.random_scores %r {max_len = 32 : i64, trainable = false} : (tensor<4x32x32xf32>) -> tensor<4x16x16xf32>
  // CHECK: synth.factorized_random_scores %{{.*}}, %{{.*}} {max_len = 32 : i64}
  %sfr = synth.factorized_random_scores %r1, %r2 {max_len = 32 : i64}
      : (tensor<4x32x8xf32>, tensor<4x32x8xf32>) -> tensor<4x16x16xf32>
  // CHECK: synth.factorized_dense_scores {{.*}} {max_len = 32 : i64}
  %sfd = synth.factorized_dense_scores %x, %w1, %b1, %wa, %ba, %wb, %bb {max_len = 32 : i64}
      : (tensor<2x16x64xf32>, tensor<4x64x16xf32>, tensor<4x16xf32>, tensor<4x16x8xf32>, tensor<4x8xf32>,
         tensor<4x16x4xf32>, tensor<4x4xf32>) -> tensor<2x4x16x16xf32>
  // CHECK: synth.mixture_scores(%{{.*}}, %{{.*}}) logits %{{.*}} : (tensor<4x16x16xf32>, tensor<2x4x16x16xf32>, tensor<4x2xf32>) -> tensor<2x4x16x16xf32>
  %m = synth.mixture_scores (%sr, %sd) logits %mix
      : (tensor<4x16x16xf32>, tensor<2x4x16x16xf32>, tensor<4x2xf32>) -> tensor<2x4x16x16xf32>
  // CHECK: synth.mixture_scores(%{{.*}}, %{{.*}}, %{{.*}}) logits %{{.*}} : (tensor<4x16x16xf32>, tensor<4x16x16xf32>, tensor<4x16x16xf32>, tensor<4x3xf32>) -> tensor<4x16x16xf32>
  %m3 = synth.mixture_scores (%sr, %sf, %sfr) logits %mix3
      : (tensor<4x16x16xf32>, tensor<4x16x16xf32>, tensor<4x16x16xf32>, tensor<4x3xf32>) -> tensor<4x16x16xf32>
  "test.use"(%sd2, %sn, %sfd, %m, %m3) : (tensor<2x4x16x16xf32>, tensor<2x4x16x16xf32>, tensor<2x4x16x16xf32>, tensor<2x4x16x16xf32>, tensor<4x16x16xf32>) -> ()
  return
}

// CHECK-LABEL: func.func @attention
func.func @attention(%s: tensor<2x4x16x16xf16>, %sr: tensor<4x16x16xf16>, %v: tensor<2x4x16x16xf16>,
                     %mask: tensor<2x16xi1>, %off: index, %q1: tensor<2x4x1x16xf16>,
                     %sr1: tensor<4x1x16xf16>) {
  // CHECK: synth.attend %{{.*}}, %{{.*}} key_mask %{{.*}} {causal} : (tensor<2x4x16x16xf16>, tensor<2x4x16x16xf16>, tensor<2x16xi1>) -> tensor<2x4x16x16xf16>
  %o = synth.attend %s, %v key_mask %mask {causal}
      : (tensor<2x4x16x16xf16>, tensor<2x4x16x16xf16>, tensor<2x16xi1>) -> tensor<2x4x16x16xf16>
  // CHECK: synth.attend %{{.*}}, %{{.*}} : (tensor<4x16x16xf16>, tensor<2x4x16x16xf16>) -> tensor<2x4x16x16xf16>
  %o2 = synth.attend %sr, %v : (tensor<4x16x16xf16>, tensor<2x4x16x16xf16>) -> tensor<2x4x16x16xf16>
  // One decoding step: one query at absolute position %off over a 16-key cache.
  // CHECK: synth.attend %{{.*}}, %{{.*}} query_offset %{{.*}} {causal} : (tensor<4x1x16xf16>, tensor<2x4x16x16xf16>, index) -> tensor<2x4x1x16xf16>
  %o3 = synth.attend %sr1, %v query_offset %off {causal}
      : (tensor<4x1x16xf16>, tensor<2x4x16x16xf16>, index) -> tensor<2x4x1x16xf16>
  "test.use"(%o, %o2, %o3) : (tensor<2x4x16x16xf16>, tensor<2x4x16x16xf16>, tensor<2x4x1x16xf16>) -> ()
  return
}

// CHECK-LABEL: func.func @fused_attention
func.func @fused_attention(%x: tensor<2x16x64xf32>, %q: tensor<2x4x16x16xf32>, %k: tensor<2x4x16x16xf32>,
                           %v: tensor<2x4x16x16xf32>, %mask: tensor<2x16xi1>,
                           %w1: tensor<4x64x16xf32>, %b1: tensor<4x16xf32>,
                           %w2: tensor<4x16x32xf32>, %b2: tensor<4x32xf32>,
                           %r: tensor<4x32x32xf32>, %r1: tensor<4x32x8xf32>, %r2: tensor<4x32x8xf32>,
                           %wa: tensor<4x16x8xf32>, %ba: tensor<4x8xf32>,
                           %wb: tensor<4x16x4xf32>, %bb: tensor<4x4xf32>, %mix: tensor<4x2xf32>) {
  // CHECK: synth.fused_attention [#synth.score<dot, scale = 2.500000e-01 : f32>](%{{.*}}, %{{.*}}) values %{{.*}} key_mask %{{.*}} {causal}
  %o1 = synth.fused_attention [#synth.score<dot, scale = 2.500000e-01 : f32>] (%q, %k) values %v key_mask %mask {causal}
      : (tensor<2x4x16x16xf32>, tensor<2x4x16x16xf32>, tensor<2x4x16x16xf32>, tensor<2x16xi1>) -> tensor<2x4x16x16xf32>
  // CHECK: synth.fused_attention [#synth.score<dense, max_len = 32 : i64>]
  %o2 = synth.fused_attention [#synth.score<dense, max_len = 32 : i64>] (%x, %w1, %b1, %w2, %b2) values %v
      : (tensor<2x16x64xf32>, tensor<4x64x16xf32>, tensor<4x16xf32>, tensor<4x16x32xf32>, tensor<4x32xf32>,
         tensor<2x4x16x16xf32>) -> tensor<2x4x16x16xf32>
  // CHECK: synth.fused_attention [#synth.score<random, max_len = 32 : i64>]
  %o3 = synth.fused_attention [#synth.score<random, max_len = 32 : i64>] (%r) values %v {causal}
      : (tensor<4x32x32xf32>, tensor<2x4x16x16xf32>) -> tensor<2x4x16x16xf32>
  // CHECK: synth.fused_attention [#synth.score<factorized_random, max_len = 32 : i64>]
  %o4 = synth.fused_attention [#synth.score<factorized_random, max_len = 32 : i64>] (%r1, %r2) values %v
      : (tensor<4x32x8xf32>, tensor<4x32x8xf32>, tensor<2x4x16x16xf32>) -> tensor<2x4x16x16xf32>
  // CHECK: synth.fused_attention [#synth.score<factorized_dense, max_len = 32 : i64>]
  %o5 = synth.fused_attention [#synth.score<factorized_dense, max_len = 32 : i64>] (%x, %w1, %b1, %wa, %ba, %wb, %bb) values %v
      : (tensor<2x16x64xf32>, tensor<4x64x16xf32>, tensor<4x16xf32>, tensor<4x16x8xf32>, tensor<4x8xf32>,
         tensor<4x16x4xf32>, tensor<4x4xf32>, tensor<2x4x16x16xf32>) -> tensor<2x4x16x16xf32>
  // CHECK: synth.fused_attention [#synth.score<random, max_len = 32 : i64>, #synth.score<dot>](%{{.*}}, %{{.*}}, %{{.*}}) logits %{{.*}} values
  %o6 = synth.fused_attention [#synth.score<random, max_len = 32 : i64>, #synth.score<dot>] (%r, %q, %k) logits %mix values %v {causal}
      : (tensor<4x32x32xf32>, tensor<2x4x16x16xf32>, tensor<2x4x16x16xf32>, tensor<4x2xf32>, tensor<2x4x16x16xf32>)
      -> tensor<2x4x16x16xf32>
  "test.use"(%o1, %o2, %o3, %o4, %o5, %o6) : (tensor<2x4x16x16xf32>, tensor<2x4x16x16xf32>, tensor<2x4x16x16xf32>, tensor<2x4x16x16xf32>, tensor<2x4x16x16xf32>, tensor<2x4x16x16xf32>) -> ()
  return
}

// CHECK-LABEL: func.func @decoding
func.func @decoding(%pos: tensor<i32>, %r: tensor<4x32x32xf32>, %c: tensor<2x4x32x16xf32>, %n: tensor<2x4x1x16xf32>)
    -> (tensor<4x1x32xf32>, tensor<2x4x32x16xf32>) {
  // CHECK: %[[P:.*]] = synth.to_index %{{.*}} : tensor<i32>
  %p = synth.to_index %pos : tensor<i32>
  // CHECK: synth.slice_rows %{{.*}} offset %[[P]] : (tensor<4x32x32xf32>) -> tensor<4x1x32xf32>
  %row = synth.slice_rows %r offset %p : (tensor<4x32x32xf32>) -> tensor<4x1x32xf32>
  // CHECK: synth.cache_update %{{.*}}, %{{.*}} at %[[P]] : (tensor<2x4x32x16xf32>, tensor<2x4x1x16xf32>) -> tensor<2x4x32x16xf32>
  %c2 = synth.cache_update %c, %n at %p : (tensor<2x4x32x16xf32>, tensor<2x4x1x16xf32>) -> tensor<2x4x32x16xf32>
  return %row, %c2 : tensor<4x1x32xf32>, tensor<2x4x32x16xf32>
}

// CHECK-LABEL: func.func @fixed_attention
func.func @fixed_attention(%r: tensor<4x32x32xf32>, %v: tensor<2x4x16x8xf32>) -> tensor<2x4x16x8xf32> {
  // CHECK: %[[P:.*]] = synth.attention_probs %{{.*}} {causal, max_len = 32 : i64} : (tensor<4x32x32xf32>) -> tensor<4x16x16xf32>
  %p = synth.attention_probs %r {causal, max_len = 32 : i64} : (tensor<4x32x32xf32>) -> tensor<4x16x16xf32>
  // CHECK: synth.attend_probs %[[P]], %{{.*}} : (tensor<4x16x16xf32>, tensor<2x4x16x8xf32>) -> tensor<2x4x16x8xf32>
  %o = synth.attend_probs %p, %v : (tensor<4x16x16xf32>, tensor<2x4x16x8xf32>) -> tensor<2x4x16x8xf32>
  return %o : tensor<2x4x16x8xf32>
}

// CHECK-LABEL: func.func @training
func.func @training(%p: tensor<64x64xbf16>, %g: tensor<64x64xbf16>, %m: tensor<64x64xf32>,
                    %v: tensor<64x64xf32>, %lr: tensor<f32>, %t: tensor<i64>)
    -> (tensor<64x64xbf16>, tensor<64x64xf32>, tensor<64x64xf32>) {
  // CHECK: synth.adamw %{{.*}}, %{{.*}}, %{{.*}}, %{{.*}}, %{{.*}}, %{{.*}} {weight_decay = 0.00999999977 : f32}
  %p2, %m2, %v2 = synth.adamw %p, %g, %m, %v, %lr, %t {weight_decay = 0.01 : f32}
      : (tensor<64x64xbf16>, tensor<64x64xbf16>, tensor<64x64xf32>, tensor<64x64xf32>, tensor<f32>, tensor<i64>)
      -> (tensor<64x64xbf16>, tensor<64x64xf32>, tensor<64x64xf32>)
  return %p2, %m2, %v2 : tensor<64x64xbf16>, tensor<64x64xf32>, tensor<64x64xf32>
}

// CHECK-LABEL: func.func @kernel
func.func @kernel(%x: tensor<2x16x64xf32>, %w: tensor<64x256xf32>) -> tensor<2x16x256xf32> {
  // CHECK: synth.kernel "ffn_0"(%{{.*}}, %{{.*}}) {schedule = #synth.schedule<{avx2 = {matmul_at = "tile", row_block = 6 : i64}}>}
  // CHECK-NEXT: ^bb0(%[[A:.*]]: tensor<2x16x64xf32>, %[[B:.*]]: tensor<64x256xf32>):
  // CHECK-NEXT: %[[L:.*]] = synth.linear %[[A]], %[[B]]
  // CHECK-NEXT: %[[R:.*]] = synth.relu %[[L]]
  // CHECK-NEXT: synth.yield %[[R]] : tensor<2x16x256xf32>
  %y = synth.kernel "ffn_0" (%x, %w) {
      schedule = #synth.schedule<{avx2 = {row_block = 6, matmul_at = "tile"}}>}
      : (tensor<2x16x64xf32>, tensor<64x256xf32>) -> tensor<2x16x256xf32> {
  ^bb0(%a: tensor<2x16x64xf32>, %b: tensor<64x256xf32>):
    %0 = synth.linear %a, %b : (tensor<2x16x64xf32>, tensor<64x256xf32>) -> tensor<2x16x256xf32>
    %1 = synth.relu %0 : tensor<2x16x256xf32>
    synth.yield %1 : tensor<2x16x256xf32>
  }
  return %y : tensor<2x16x256xf32>
}

// The ops of the backward pass and the optimizer print and parse back.
// CHECK-LABEL: func.func @gradients
// CHECK: synth.embedding_grad
// CHECK: synth.linear_weight_grad %{{.*}} {transpose_weight}
// CHECK: synth.sum_rows
// CHECK: synth.layer_norm_grad
// CHECK: synth.layer_norm_gamma_grad
// CHECK: synth.relu_grad
// CHECK: synth.gelu_grad %{{.*}} approximation = tanh
// CHECK: synth.positions_grad
// CHECK: synth.mean_pool_grad
// CHECK: synth.sum_squares
// CHECK: synth.cross_entropy_grad %{{.*}} scale %{{.*}} {ignore_index = 0 : i64}
// CHECK: synth.attention_stats [#synth.score<dot>](%{{.*}}) values %{{.*}} {causal}
// CHECK: synth.fused_attention_grad [#synth.score<dot>](%{{.*}}) values %{{.*}} output %{{.*}} d_output %{{.*}} stats %{{.*}} wrt 1 {causal}
// CHECK: synth.attend_probs %{{.*}} {transpose_probs}
// CHECK: synth.learning_rate
// CHECK: synth.adamw %{{.*}} grad_sq_norm
func.func @gradients(%ids: tensor<2x16xi32>, %x: tensor<2x16x64xf32>, %g: tensor<64xf32>, %m: tensor<2x16xi1>,
                     %q: tensor<2x4x16x16xf32>, %p: tensor<4x16x16xf32>, %t: tensor<i32>, %w: tensor<64x64xf32>,
                     %lr: tensor<f32>, %pooled: tensor<2x64xf32>) {
  %0 = synth.embedding_grad %ids, %x : (tensor<2x16xi32>, tensor<2x16x64xf32>) -> tensor<256x64xf32>
  %1 = synth.linear_weight_grad %x, %x {transpose_weight} : (tensor<2x16x64xf32>, tensor<2x16x64xf32>) -> tensor<64x64xf32>
  %2 = synth.sum_rows %x : (tensor<2x16x64xf32>) -> tensor<64xf32>
  %3 = synth.layer_norm_grad %x, %g, %x : (tensor<2x16x64xf32>, tensor<64xf32>, tensor<2x16x64xf32>) -> tensor<2x16x64xf32>
  %4 = synth.layer_norm_gamma_grad %x, %x : (tensor<2x16x64xf32>, tensor<2x16x64xf32>) -> tensor<64xf32>
  %5 = synth.relu_grad %x, %x : tensor<2x16x64xf32>
  %6 = synth.gelu_grad %x, %x approximation = tanh : tensor<2x16x64xf32>
  %7 = synth.positions_grad %x : (tensor<2x16x64xf32>) -> tensor<32x64xf32>
  %8 = synth.mean_pool_grad %pooled, %m : (tensor<2x64xf32>, tensor<2x16xi1>) -> tensor<2x16x64xf32>
  %s = synth.sum_squares %x : (tensor<2x16x64xf32>) -> tensor<f32>
  %9 = synth.cross_entropy_grad %x, %ids scale %s {ignore_index = 0 : i64} : (tensor<2x16x64xf32>, tensor<2x16xi32>, tensor<f32>) -> tensor<2x16x64xf32>
  %lse = synth.attention_stats [#synth.score<dot>] (%q, %q) values %q {causal} : (tensor<2x4x16x16xf32>, tensor<2x4x16x16xf32>, tensor<2x4x16x16xf32>) -> tensor<2x4x16xf32>
  %10 = synth.fused_attention_grad [#synth.score<dot>] (%q, %q) values %q output %q d_output %q stats %lse wrt 1 {causal}
      : (tensor<2x4x16x16xf32>, tensor<2x4x16x16xf32>, tensor<2x4x16x16xf32>, tensor<2x4x16x16xf32>, tensor<2x4x16x16xf32>, tensor<2x4x16xf32>) -> tensor<2x4x16x16xf32>
  %11 = synth.attend_probs %p, %q {transpose_probs} : (tensor<4x16x16xf32>, tensor<2x4x16x16xf32>) -> tensor<2x4x16x16xf32>
  %12 = synth.learning_rate %t, %t {peak = 1.0e-3 : f32, warmup_steps = 10 : i64} : (tensor<i32>, tensor<i32>) -> tensor<f32>
  %13:3 = synth.adamw %w, %w, %w, %w, %12, %t grad_sq_norm %s {max_grad_norm = 1.0 : f32}
      : (tensor<64x64xf32>, tensor<64x64xf32>, tensor<64x64xf32>, tensor<64x64xf32>, tensor<f32>, tensor<i32>, tensor<f32>) -> (tensor<64x64xf32>, tensor<64x64xf32>, tensor<64x64xf32>)
  return
}
