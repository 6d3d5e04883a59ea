// synth-assign-schedules: every kernel gets the fields of its kind for each
// target class, from a heuristic that knows the class (a matmul's register
// block is 6 x 4 vectors in AVX-512's 32 registers, 6 x 2 in the 16 of AVX2
// and SSE4.1; the P V block of attention fits half of them); fields already
// set are kept and checked.
// RUN: synth-opt %s --synth-fuse-elementwise --synth-form-kernels --synth-assign-schedules=targets=avx512,avx2,sse41 --split-input-file | FileCheck %s
// RUN: synth-opt %s --synth-fuse-elementwise --synth-form-kernels --synth-assign-schedules=targets=avx2 --split-input-file | FileCheck %s --check-prefix=AVX2

// CHECK-LABEL: func.func @forward
// CHECK: synth.kernel "forward_k0_layer_norm"(%arg0, %arg1) {schedule = #synth.schedule<{avx2 = {parallel = "outer", parallel_task = 1 : i64, row_stats_at = "row", vector_width = 8 : i64}, avx512 = {parallel = "outer", parallel_task = 1 : i64, row_stats_at = "row", vector_width = 16 : i64}, sse41 = {parallel = "outer", parallel_task = 1 : i64, row_stats_at = "row", vector_width = 4 : i64}}>}
// CHECK: synth.kernel "forward_k1_linear"({{.*}}) {schedule = #synth.schedule<{avx2 = {col_vectors = 2 : i64, matmul_at = "tile", parallel = "outer", parallel_task = 1 : i64, reduction_unroll = 1 : i64, row_block = 6 : i64, vector_width = 8 : i64}, avx512 = {col_vectors = 4 : i64, matmul_at = "tile", parallel = "outer", parallel_task = 1 : i64, reduction_unroll = 1 : i64, row_block = 6 : i64, vector_width = 16 : i64}, sse41 = {col_vectors = 2 : i64, matmul_at = "tile", parallel = "outer", parallel_task = 1 : i64, reduction_unroll = 1 : i64, row_block = 6 : i64, vector_width = 4 : i64}}>}
// The head dimension is 4: one vector, so P V blocks of 8 queries; reduce_lanes
// divides the 8-key tile.
// CHECK: synth.kernel "forward_k2_fused_attention"({{.*}}) {schedule = #synth.schedule<{avx2 = {key_tile = 64 : i64, parallel = "batch_heads", parallel_task = 1 : i64, pv_query_block = 4 : i64, pv_value_vectors = 1 : i64, query_tile = 32 : i64, reduce_lanes = 8 : i64, score_key_vectors = 2 : i64, score_layout = "keys_inner", score_query_block = 4 : i64, vector_width = 8 : i64}, avx512 = {key_tile = 64 : i64, parallel = "batch_heads", parallel_task = 1 : i64, pv_query_block = 4 : i64, pv_value_vectors = 1 : i64, query_tile = 32 : i64, reduce_lanes = 8 : i64, score_key_vectors = 4 : i64, score_layout = "keys_inner", score_query_block = 4 : i64, vector_width = 16 : i64}, sse41 = {key_tile = 64 : i64, parallel = "batch_heads", parallel_task = 1 : i64, pv_query_block = 4 : i64, pv_value_vectors = 1 : i64, query_tile = 32 : i64, reduce_lanes = 4 : i64, score_key_vectors = 2 : i64, score_layout = "keys_inner", score_query_block = 4 : i64, vector_width = 4 : i64}}>}
// A field set by hand is kept; the missing ones and other targets are filled.
// CHECK: synth.kernel "forward_k3_relu"({{.*}}) {schedule = #synth.schedule<{avx2 = {parallel = "none", parallel_task = 1 : i64, vector_width = 4 : i64}, avx512 = {parallel = "outer", parallel_task = 1 : i64, vector_width = 16 : i64}, sse41 = {parallel = "outer", parallel_task = 1 : i64, vector_width = 4 : i64}}>}
// AVX2-LABEL: func.func @forward
// AVX2: synth.kernel "forward_k1_linear"({{.*}}) {schedule = #synth.schedule<{avx2 = {col_vectors = 2 : i64, matmul_at = "tile", parallel = "outer", parallel_task = 1 : i64, reduction_unroll = 1 : i64, row_block = 6 : i64, vector_width = 8 : i64}}>}
func.func @forward(%x: tensor<2x8x16xf32>, %g: tensor<16xf32>, %w: tensor<16x16xf32>, %r: tensor<4x8x8xf32>, %v: tensor<2x4x8x4xf32>)
    -> (tensor<2x8x16xf32>, tensor<2x4x8x4xf32>, tensor<2x4x8x4xf32>) {
  %n = synth.layer_norm %x, %g, %g : (tensor<2x8x16xf32>, tensor<16xf32>, tensor<16xf32>) -> tensor<2x8x16xf32>
  %l = synth.linear %n, %w : (tensor<2x8x16xf32>, tensor<16x16xf32>) -> tensor<2x8x16xf32>
  %a = synth.gelu %l : tensor<2x8x16xf32>
  %o = synth.fused_attention [#synth.score<random, max_len = 8 : i64>] (%r) values %v
      : (tensor<4x8x8xf32>, tensor<2x4x8x4xf32>) -> tensor<2x4x8x4xf32>
  %k = synth.kernel "mine" (%o) {schedule = #synth.schedule<{avx2 = {vector_width = 4, parallel = "none"}}>}
      : (tensor<2x4x8x4xf32>) -> tensor<2x4x8x4xf32> {
  ^bb0(%in: tensor<2x4x8x4xf32>):
    %z = synth.relu %in : tensor<2x4x8x4xf32>
    synth.yield %z : tensor<2x4x8x4xf32>
  }
  return %a, %o, %k : tensor<2x8x16xf32>, tensor<2x4x8x4xf32>, tensor<2x4x8x4xf32>
}
