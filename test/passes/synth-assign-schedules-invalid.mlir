// Schedules that can't work: errors name the kernel, the target and the field.
// RUN: synth-opt %s --synth-assign-schedules=targets=avx512,avx2,sse41 --split-input-file --verify-diagnostics

func.func @wide(%x: tensor<4x16xf32>) -> tensor<4x16xf32> {
  // expected-error@+1 {{kernel 'k', schedule for avx2: field 'vector_width': 16 lanes, but avx2 vectors hold 8 float32}}
  %0 = synth.kernel "k" (%x) {schedule = #synth.schedule<{avx2 = {vector_width = 16}}>} : (tensor<4x16xf32>) -> tensor<4x16xf32> {
  ^bb0(%a: tensor<4x16xf32>):
    %1 = synth.relu %a : tensor<4x16xf32>
    synth.yield %1 : tensor<4x16xf32>
  }
  return %0 : tensor<4x16xf32>
}

// -----

func.func @unknown(%x: tensor<4x16xf32>) -> tensor<4x16xf32> {
  // expected-error@+1 {{kernel 'k', schedule for avx512: field 'key_tile': a kernel of kind elementwise has no such field (its fields: vector_width, parallel, parallel_task)}}
  %0 = synth.kernel "k" (%x) {schedule = #synth.schedule<{avx512 = {key_tile = 16}}>} : (tensor<4x16xf32>) -> tensor<4x16xf32> {
  ^bb0(%a: tensor<4x16xf32>):
    %1 = synth.relu %a : tensor<4x16xf32>
    synth.yield %1 : tensor<4x16xf32>
  }
  return %0 : tensor<4x16xf32>
}

// -----

func.func @loop(%x: tensor<4x16xf32>, %w: tensor<16x16xf32>) -> tensor<4x16xf32> {
  // expected-error@+1 {{kernel 'k', schedule for sse41: field 'parallel': a kernel of kind linear has no parallel loop 'heads' (expected one of outer, row_blocks, col_blocks, none)}}
  %0 = synth.kernel "k" (%x, %w) {schedule = #synth.schedule<{sse41 = {parallel = "heads"}}>} : (tensor<4x16xf32>, tensor<16x16xf32>) -> tensor<4x16xf32> {
  ^bb0(%a: tensor<4x16xf32>, %b: tensor<16x16xf32>):
    %1 = synth.linear %a, %b : (tensor<4x16xf32>, tensor<16x16xf32>) -> tensor<4x16xf32>
    synth.yield %1 : tensor<4x16xf32>
  }
  return %0 : tensor<4x16xf32>
}

// -----

func.func @tail(%r: tensor<4x24x24xf32>, %v: tensor<1x4x24x8xf32>) -> tensor<1x4x24x8xf32> {
  // expected-error@+1 {{kernel 'k', schedule for avx512: field 'reduce_lanes': 16 lanes do not divide the key tile of 24 and the row reductions have no tail handling}}
  %0 = synth.kernel "k" (%r, %v) {schedule = #synth.schedule<{avx512 = {reduce_lanes = 16}}>} : (tensor<4x24x24xf32>, tensor<1x4x24x8xf32>) -> tensor<1x4x24x8xf32> {
  ^bb0(%a: tensor<4x24x24xf32>, %b: tensor<1x4x24x8xf32>):
    %1 = synth.fused_attention [#synth.score<random, max_len = 24 : i64>] (%a) values %b : (tensor<4x24x24xf32>, tensor<1x4x24x8xf32>) -> tensor<1x4x24x8xf32>
    synth.yield %1 : tensor<1x4x24x8xf32>
  }
  return %0 : tensor<1x4x24x8xf32>
}

// -----

func.func @range(%x: tensor<4x16xf32>, %w: tensor<16x16xf32>) -> tensor<4x16xf32> {
  // expected-error@+1 {{kernel 'k', schedule for avx512: field 'row_block': 0 is outside [1, 16]}}
  %0 = synth.kernel "k" (%x, %w) {schedule = #synth.schedule<{avx512 = {row_block = 0}}>} : (tensor<4x16xf32>, tensor<16x16xf32>) -> tensor<4x16xf32> {
  ^bb0(%a: tensor<4x16xf32>, %b: tensor<16x16xf32>):
    %1 = synth.linear %a, %b : (tensor<4x16xf32>, tensor<16x16xf32>) -> tensor<4x16xf32>
    synth.yield %1 : tensor<4x16xf32>
  }
  return %0 : tensor<4x16xf32>
}
