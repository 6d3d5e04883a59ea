// synth-plan-memory: temporaries share one arena by liveness; returned values
// are not in the arena; a kernel never writes over its own inputs.
// RUN: synth-opt %s --synth-form-kernels --synth-plan-memory --split-input-file --verify-diagnostics | FileCheck %s

// A chain a -> b -> c -> d of 2x8x16 f32 tensors (1024 bytes each).
// a lives until b is computed: b goes after a; a is then free, so c reuses
// offset 0; d is returned (-1). The arena peaks at two buffers.
// CHECK-LABEL: func.func @chain
// CHECK-SAME: attributes {synth.arena_bytes = 2048 : i64}
// CHECK: "chain_k0_relu"{{.*}}synth.arena_offsets = array<i64: 0>
// CHECK: "chain_k1_relu"{{.*}}synth.arena_offsets = array<i64: 1024>
// CHECK: "chain_k2_relu"{{.*}}synth.arena_offsets = array<i64: 0>
// CHECK: "chain_k3_relu"{{.*}}synth.arena_offsets = array<i64: -1>
func.func @chain(%x: tensor<2x8x16xf32>) -> tensor<2x8x16xf32> {
  %a = synth.relu %x : tensor<2x8x16xf32>
  %b = synth.relu %a : tensor<2x8x16xf32>
  %c = synth.relu %b : tensor<2x8x16xf32>
  %d = synth.relu %c : tensor<2x8x16xf32>
  return %d : tensor<2x8x16xf32>
}

// -----

// A value read late (the residual %a) stays allocated across the kernels in
// between; sizes are rounded up to 64 bytes (2x3 f32 = 24 bytes -> 64).
// CHECK-LABEL: func.func @residual
// CHECK-SAME: attributes {synth.arena_bytes = 192 : i64}
// CHECK: "residual_k0_relu"{{.*}}array<i64: 0>
// CHECK: "residual_k1_relu"{{.*}}array<i64: 64>
// CHECK: "residual_k2_relu"{{.*}}array<i64: 128>
// CHECK: "residual_k3_add"{{.*}}array<i64: -1>
func.func @residual(%x: tensor<2x3xf32>) -> tensor<2x3xf32> {
  %a = synth.relu %x : tensor<2x3xf32>
  %b = synth.relu %a : tensor<2x3xf32>
  %c = synth.relu %b : tensor<2x3xf32>
  %d = synth.add %a, %c : tensor<2x3xf32>
  return %d : tensor<2x3xf32>
}

// -----

func.func @loose(%x: tensor<2x3xf32>) -> tensor<2x3xf32> {
  // expected-error@+1 {{synth-plan-memory expects only synth.kernel ops; run synth-form-kernels first}}
  %a = arith.addf %x, %x : tensor<2x3xf32>
  return %a : tensor<2x3xf32>
}
