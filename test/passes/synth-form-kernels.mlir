// synth-form-kernels: every remaining op gets a kernel, every kernel a name
// (schedules come from synth-assign-schedules; existing ones are kept). A
// value used twice by a kernel is passed once.
// RUN: synth-opt %s --synth-fuse-elementwise --synth-form-kernels --split-input-file | FileCheck %s

// CHECK-LABEL: func.func @forward
// CHECK: synth.kernel "forward_k0_layer_norm"(%arg0, %arg1) : (
// CHECK: synth.kernel "forward_k1_linear"({{.*}}) : (
// CHECK-NEXT: ^bb0
// CHECK-NEXT: synth.linear
// CHECK-NEXT: synth.gelu
// CHECK: synth.kernel "forward_k2_fused_attention"({{.*}}) : (
// CHECK: synth.kernel "forward_k3_relu"({{.*}}) {schedule = #synth.schedule<{avx2 = {vector_width = 4 : i64}}>}
// CHECK-NOT: synth.kernel
// CHECK: return
func.func @forward(%x: tensor<2x8x16xf32>, %g: tensor<16xf32>, %w: tensor<16x16xf32>, %r: tensor<4x8x8xf32>, %v: tensor<2x4x8x4xf32>)
    -> (tensor<2x8x16xf32>, tensor<2x4x8x4xf32>, tensor<2x4x8x4xf32>) {
  %n = synth.layer_norm %x, %g, %g : (tensor<2x8x16xf32>, tensor<16xf32>, tensor<16xf32>) -> tensor<2x8x16xf32>
  %l = synth.linear %n, %w : (tensor<2x8x16xf32>, tensor<16x16xf32>) -> tensor<2x8x16xf32>
  %a = synth.gelu %l : tensor<2x8x16xf32>
  %o = synth.fused_attention [#synth.score<random, max_len = 8 : i64>] (%r) values %v
      : (tensor<4x8x8xf32>, tensor<2x4x8x4xf32>) -> tensor<2x4x8x4xf32>
  %k = synth.kernel "mine" (%o) {schedule = #synth.schedule<{avx2 = {vector_width = 4}}>}
      : (tensor<2x4x8x4xf32>) -> tensor<2x4x8x4xf32> {
  ^bb0(%in: tensor<2x4x8x4xf32>):
    %z = synth.relu %in : tensor<2x4x8x4xf32>
    synth.yield %z : tensor<2x4x8x4xf32>
  }
  return %a, %o, %k : tensor<2x8x16xf32>, tensor<2x4x8x4xf32>, tensor<2x4x8x4xf32>
}

// -----

// Positions are copied into every kernel that reads them (kernel arguments are
// buffers, an index is not), and the original synth.to_index disappears.
// CHECK-LABEL: func.func @decode
// CHECK-NOT: synth.to_index %arg0
// CHECK: synth.kernel "decode_k0_add_positions"(%arg0, %arg1, %arg2)
// CHECK-NEXT: ^bb0(%[[POS:.*]]: tensor<i32>,
// CHECK-NEXT: %[[P:.*]] = synth.to_index %[[POS]]
// CHECK-NEXT: synth.add_positions {{.*}} offset %[[P]]
// CHECK: synth.kernel "decode_k1_cache_update"(%arg0, %arg3, %{{.*}})
// CHECK-NEXT: ^bb0
// CHECK-NEXT: synth.to_index
// CHECK-NEXT: synth.cache_update
func.func @decode(%pos: tensor<i32>, %x: tensor<1x1x16xf32>, %table: tensor<8x16xf32>, %cache: tensor<1x4x8x4xf32>)
    -> tensor<1x4x8x4xf32> {
  %p = synth.to_index %pos : tensor<i32>
  %h = synth.add_positions %x, %table offset %p : (tensor<1x1x16xf32>, tensor<8x16xf32>, index) -> tensor<1x1x16xf32>
  %v = synth.split_heads %h : tensor<1x1x16xf32> -> tensor<1x4x1x4xf32>
  %c = synth.cache_update %cache, %v at %p : (tensor<1x4x8x4xf32>, tensor<1x4x1x4xf32>) -> tensor<1x4x8x4xf32>
  return %c : tensor<1x4x8x4xf32>
}
