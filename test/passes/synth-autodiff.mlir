// synth-autodiff: loss -> gradients. The reverse sweep uses each op's
// DifferentiableOpInterface rule, sums the gradients of a value used twice,
// gives no gradient to frozen parameters, and drops what nobody reads.
// RUN: synth-opt %s --synth-autodiff --split-input-file -verify-diagnostics | FileCheck %s

// A linear layer with bias and a relu, tied to the loss by a second linear
// whose weight is the embedding table transposed (used twice: gradients add).
// CHECK-LABEL: func.func @gradients
// CHECK-SAME: -> (tensor<f32> {synth.output = "loss"}, tensor<16x8xf32> {synth.output = "grad.embed"}, tensor<8x8xf32> {synth.output = "grad.w"}, tensor<8xf32> {synth.output = "grad.b"})
// CHECK: %[[E:.*]] = synth.embedding %arg2[%arg0]
// CHECK: %[[H:.*]] = synth.linear %[[E]], %arg3 bias %arg4
// CHECK: %[[R:.*]] = synth.relu %[[H]]
// CHECK: %[[L:.*]] = synth.linear %[[R]], %arg2 {transpose_weight}
// CHECK: %[[LOSS:.*]] = synth.cross_entropy %[[L]], %arg1
// CHECK: %[[DL:.*]] = synth.cross_entropy_grad %[[L]], %arg1
// CHECK: %[[DR:.*]] = synth.linear %[[DL]], %arg2 :
// CHECK: %[[DT1:.*]] = synth.linear_weight_grad %[[R]], %[[DL]] {transpose_weight}
// CHECK: %[[DH:.*]] = synth.relu_grad %[[R]], %[[DR]]
// CHECK: %[[DE:.*]] = synth.linear %[[DH]], %arg3 {transpose_weight}
// CHECK: %[[DW:.*]] = synth.linear_weight_grad %[[E]], %[[DH]] :
// CHECK: %[[DB:.*]] = synth.sum_rows %[[DH]]
// CHECK: %[[DT2:.*]] = synth.embedding_grad %arg0, %[[DE]]
// CHECK: %[[DT:.*]] = synth.add %[[DT1]], %[[DT2]]
// CHECK: return %[[LOSS]], %[[DT]], %[[DW]], %[[DB]]
func.func @loss(%tokens: tensor<2x4xi32> {synth.input = "tokens"}, %targets: tensor<2x4xi32> {synth.input = "targets"},
                %table: tensor<16x8xf32> {synth.param = "embed"}, %w: tensor<8x8xf32> {synth.param = "w"},
                %b: tensor<8xf32> {synth.param = "b"}) -> (tensor<f32> {synth.output = "loss"}) {
  %e = synth.embedding %table[%tokens] : tensor<16x8xf32>, tensor<2x4xi32> -> tensor<2x4x8xf32>
  %h = synth.linear %e, %w bias %b : (tensor<2x4x8xf32>, tensor<8x8xf32>, tensor<8xf32>) -> tensor<2x4x8xf32>
  %r = synth.relu %h : tensor<2x4x8xf32>
  %l = synth.linear %r, %table {transpose_weight} : (tensor<2x4x8xf32>, tensor<16x8xf32>) -> tensor<2x4x16xf32>
  %loss = synth.cross_entropy %l, %targets : (tensor<2x4x16xf32>, tensor<2x4xi32>) -> tensor<f32>
  return %loss : tensor<f32>
}

// -----

// Random attention with a frozen R: no gradient op reads R, and only the
// values' gradient of the fused attention survives (with its statistics).
// CHECK-LABEL: func.func @gradients
// CHECK-SAME: {synth.output = "grad.wv"}
// CHECK-NOT: grad.r
// CHECK: %[[S:.*]] = synth.attention_stats [#synth.score<random, max_len = 8 : i64>](%arg3) values
// CHECK: synth.fused_attention_grad [#synth.score<random, max_len = 8 : i64>](%arg3) values %{{.*}} output %{{.*}} d_output %{{.*}} stats %[[S]] wrt 1 {causal}
// CHECK-NOT: wrt 0
// CHECK: return
func.func @loss(%x: tensor<2x4x8xf32> {synth.input = "x"}, %targets: tensor<2x4xi32> {synth.input = "targets"},
                %wv: tensor<8x8xf32> {synth.param = "wv"},
                %r: tensor<2x8x8xf32> {synth.param = "r", synth.trainable = false}) -> tensor<f32> {
  %v = synth.linear %x, %wv : (tensor<2x4x8xf32>, tensor<8x8xf32>) -> tensor<2x4x8xf32>
  %vh = synth.split_heads %v : tensor<2x4x8xf32> -> tensor<2x2x4x4xf32>
  %o = synth.fused_attention [#synth.score<random, max_len = 8 : i64>] (%r) values %vh {causal}
      : (tensor<2x8x8xf32>, tensor<2x2x4x4xf32>) -> tensor<2x2x4x4xf32>
  %m = synth.merge_heads %o : tensor<2x2x4x4xf32> -> tensor<2x4x8xf32>
  %loss = synth.cross_entropy %m, %targets : (tensor<2x4x8xf32>, tensor<2x4xi32>) -> tensor<f32>
  return %loss : tensor<f32>
}

// -----

// expected-error@+1 {{synth-autodiff: @loss must return one value, the result of synth.cross_entropy}}
func.func @loss(%x: tensor<4xf32> {synth.param = "x"}) -> tensor<4xf32> {
  %r = synth.relu %x : tensor<4xf32>
  return %r : tensor<4xf32>
}

// -----

// expected-error@+1 {{synth-autodiff: @loss has no trainable parameter}}
func.func @loss(%l: tensor<2x4xf32> {synth.input = "l"}, %t: tensor<2xi32> {synth.input = "t"}) -> tensor<f32> {
  %loss = synth.cross_entropy %l, %t : (tensor<2x4xf32>, tensor<2xi32>) -> tensor<f32>
  return %loss : tensor<f32>
}

// -----

// expected-error@+1 {{synth-autodiff: parameter 'unused' does not influence the loss}}
func.func @loss(%l: tensor<2x4xf32> {synth.param = "l"}, %t: tensor<2xi32> {synth.input = "t"},
                %u: tensor<4xf32> {synth.param = "unused"}) -> tensor<f32> {
  %loss = synth.cross_entropy %l, %t : (tensor<2x4xf32>, tensor<2xi32>) -> tensor<f32>
  return %loss : tensor<f32>
}
