// synth-optimizer: gradients + AdamW -> train_step, parameters and moments
// updated in place (synth.updates), clipping by the global gradient norm, no
// weight decay for parameters marked synth.no_decay.
// RUN: synth-opt %s --synth-optimizer="lr=0.002 warmup-steps=10 weight-decay=0.1 max-grad-norm=0.5 keep-gradients=false" | FileCheck %s
// RUN: synth-opt %s --synth-optimizer | FileCheck %s --check-prefix=KEEP

// CHECK-NOT: func.func @gradients
// CHECK-LABEL: func.func @train_step
// CHECK-SAME: %[[W:[^:]*]]: tensor<8x8xf32> {synth.param = "w"}
// CHECK-SAME: %[[B:[^:]*]]: tensor<8xf32> {synth.no_decay, synth.param = "b"}
// CHECK-SAME: %[[T:[^:]*]]: tensor<i32> {synth.input = "step"}, %[[N:[^:]*]]: tensor<i32> {synth.input = "total_steps"}
// CHECK-SAME: {synth.state = "adam.m.w"}
// CHECK-SAME: {synth.state = "adam.v.w"}
// CHECK-SAME: {synth.state = "adam.m.b"}
// CHECK-SAME: {synth.state = "adam.v.b"}
// CHECK-SAME: -> (tensor<f32> {synth.output = "loss"}, tensor<f32> {synth.output = "learning_rate"}, tensor<f32> {synth.output = "grad_sq_norm"}, tensor<8x8xf32> {synth.updates = 2 : i64}, tensor<8x8xf32> {synth.updates = 7 : i64}, tensor<8x8xf32> {synth.updates = 8 : i64}, tensor<8xf32> {synth.updates = 3 : i64}, tensor<8xf32> {synth.updates = 9 : i64}, tensor<8xf32> {synth.updates = 10 : i64})
// CHECK: %[[SW:.*]] = synth.sum_squares %arg1
// CHECK: %[[SB:.*]] = synth.sum_squares %arg0
// CHECK: %[[SQ:.*]] = synth.add %[[SW]], %[[SB]]
// CHECK: %[[LR:.*]] = synth.learning_rate %[[T]], %[[N]] {peak = 2.000000e-03 : f32, warmup_steps = 10 : i64}
// CHECK: synth.adamw %[[W]], %arg1, %{{.*}}, %{{.*}}, %[[LR]], %[[T]] grad_sq_norm %[[SQ]] {{{.*}}max_grad_norm = 5.000000e-01 : f32, weight_decay = 1.000000e-01 : f32}
// CHECK: synth.adamw %[[B]], %arg0, %{{.*}}, %{{.*}}, %[[LR]], %[[T]] grad_sq_norm %[[SQ]] {beta2 = 9.800000e-01 : f32, max_grad_norm = 5.000000e-01 : f32} :

// KEEP: func.func @gradients
// KEEP: func.func @train_step
func.func @gradients(%g: tensor<8xf32> {synth.input = "gb"}, %gw: tensor<8x8xf32> {synth.input = "gw"},
                     %w: tensor<8x8xf32> {synth.param = "w"}, %b: tensor<8xf32> {synth.param = "b", synth.no_decay},
                     %l: tensor<f32> {synth.input = "l"})
    -> (tensor<f32> {synth.output = "loss"}, tensor<8x8xf32> {synth.output = "grad.w"}, tensor<8xf32> {synth.output = "grad.b"}) {
  return %l, %gw, %g : tensor<f32>, tensor<8x8xf32>, tensor<8xf32>
}
