// One negative case for every verifier (and custom parser) message of the
// synth dialect: each names the operand, the expected shape and the actual one.
// RUN: synth-opt %s -split-input-file -verify-diagnostics

//===----------------------------------------------------------------------===//
// Attributes
//===----------------------------------------------------------------------===//

// expected-error@+1 {{score part 'random' takes no scale (only 'dot' does)}}
func.func private @f() attributes {s = #synth.score<random, scale = 1.0 : f32, max_len = 4 : i64>}

// -----

// expected-error@+1 {{score part 'dot' takes no max_len}}
func.func private @f() attributes {s = #synth.score<dot, max_len = 4 : i64>}

// -----

// expected-error@+1 {{score part 'dense' needs max_len (the model's L)}}
func.func private @f() attributes {s = #synth.score<dense>}

// -----

// expected-error@+1 {{max_len must be positive, got 0}}
func.func private @f() attributes {s = #synth.score<random, max_len = 0 : i64>}

// -----

// expected-error@+1 {{unknown score kind 'sparse' (expected dot, dense, random, factorized_random or factorized_dense)}}
func.func private @f() attributes {s = #synth.score<sparse>}

// -----

// expected-error@+1 {{unknown score part key 'rank' (expected scale or max_len)}}
func.func private @f() attributes {s = #synth.score<factorized_random, rank = 8>}

// -----

// expected-error@+1 {{unknown schedule target 'avx' (expected avx512, avx2 or sse41)}}
func.func private @f() attributes {s = #synth.schedule<{avx = {vector_width = 8}}>}

// -----

// expected-error@+1 {{schedule of target 'avx2' must be a dictionary of fields}}
func.func private @f() attributes {s = #synth.schedule<{avx2 = 8}>}

// -----

// expected-error@+1 {{schedule field 'key_tile' of target 'sse41' must be an i64 or a string}}
func.func private @f() attributes {s = #synth.schedule<{sse41 = {key_tile = 2.0}}>}

//===----------------------------------------------------------------------===//
// Model ops
//===----------------------------------------------------------------------===//

// -----

func.func @f(%t: tensor<4x256x64xf32>, %ids: tensor<2x16xi32>) {
  // expected-error@+1 {{'synth.embedding' op expected table of rank 2 [vocab, d_model], got [4, 256, 64]}}
  %0 = synth.embedding %t[%ids] : tensor<4x256x64xf32>, tensor<2x16xi32> -> tensor<2x16x64xf32>
  return
}

// -----

func.func @f(%t: tensor<256x64xf32>, %ids: tensor<2x16xi32>) {
  // expected-error@+1 {{expected result of shape ids shape + [d_model] = [2, 16, 64], got [2, 16, 32]}}
  %0 = synth.embedding %t[%ids] : tensor<256x64xf32>, tensor<2x16xi32> -> tensor<2x16x32xf32>
  return
}

// -----

func.func @f(%t: tensor<256x64xf32>, %ids: tensor<2x16xi32>) {
  // expected-error@+1 {{expected result #0 to have element type 'f32' (as operand #0), got 'bf16'}}
  %0 = synth.embedding %t[%ids] : tensor<256x64xf32>, tensor<2x16xi32> -> tensor<2x16x64xbf16>
  return
}

// -----

func.func @f(%t: tensor<256x64xf32>, %ids: tensor<2x16xf32>) {
  // expected-error@+1 {{operand #1 must be ranked tensor of 32-bit signless integer or 64-bit signless integer values}}
  %0 = synth.embedding %t[%ids] : tensor<256x64xf32>, tensor<2x16xf32> -> tensor<2x16x64xf32>
  return
}

// -----

func.func @f(%x: tensor<f32>, %w: tensor<64x256xf32>) {
  // expected-error@+1 {{expected input of rank >= 1 [..., in], got a scalar}}
  %0 = synth.linear %x, %w : (tensor<f32>, tensor<64x256xf32>) -> tensor<256xf32>
  return
}

// -----

func.func @f(%x: tensor<2x16x64xf32>, %w: tensor<32x256xf32>) {
  // expected-error@+1 {{expected W of shape [in, out] = [64, ?], got [32, 256]}}
  %0 = synth.linear %x, %w : (tensor<2x16x64xf32>, tensor<32x256xf32>) -> tensor<2x16x256xf32>
  return
}

// -----

func.func @f(%x: tensor<2x16x64xf32>, %w: tensor<64x256xf32>, %b: tensor<128xf32>) {
  // expected-error@+1 {{expected bias of shape [out] = [256], got [128]}}
  %0 = synth.linear %x, %w bias %b : (tensor<2x16x64xf32>, tensor<64x256xf32>, tensor<128xf32>) -> tensor<2x16x256xf32>
  return
}

// -----

func.func @f(%x: tensor<2x16x64xf32>, %w: tensor<64x256xf32>) {
  // expected-error@+1 {{expected result of shape [..., out] = [2, 16, 256], got [2, 16, 64]}}
  %0 = synth.linear %x, %w : (tensor<2x16x64xf32>, tensor<64x256xf32>) -> tensor<2x16x64xf32>
  return
}

// -----

func.func @f(%x: tensor<2x16x64xf32>, %w: tensor<64x256xbf16>) {
  // expected-error@+1 {{expected operand #1 to have element type 'f32' (as operand #0), got 'bf16'}}
  %0 = synth.linear %x, %w : (tensor<2x16x64xf32>, tensor<64x256xbf16>) -> tensor<2x16x256xf32>
  return
}

// -----

func.func @f(%x: tensor<2x16x64xf32>, %t: tensor<64x256xf32>) {
  // expected-error@+1 {{expected W of shape [out, in] = [?, 64], got [64, 256]}}
  %0 = synth.linear %x, %t {transpose_weight} : (tensor<2x16x64xf32>, tensor<64x256xf32>) -> tensor<2x16x256xf32>
  return
}

// -----

func.func @f(%x: tensor<16x64xf32>, %p: tensor<32x64xf32>) {
  // expected-error@+1 {{expected input of rank 3 [batch, N, d_model], got [16, 64]}}
  %0 = synth.add_positions %x, %p : (tensor<16x64xf32>, tensor<32x64xf32>) -> tensor<16x64xf32>
  return
}

// -----

func.func @f(%x: tensor<2x16x64xf32>, %p: tensor<32x32xf32>) {
  // expected-error@+1 {{expected table of shape [L, d_model] = [?, 64], got [32, 32]}}
  %0 = synth.add_positions %x, %p : (tensor<2x16x64xf32>, tensor<32x32xf32>) -> tensor<2x16x64xf32>
  return
}

// -----

func.func @f(%x: tensor<2x48x64xf32>, %p: tensor<32x64xf32>) {
  // expected-error@+1 {{sequence length N = 48 exceeds position table L = 32}}
  %0 = synth.add_positions %x, %p : (tensor<2x48x64xf32>, tensor<32x64xf32>) -> tensor<2x48x64xf32>
  return
}

// -----

func.func @f(%x: tensor<2x16x64xf32>, %p: tensor<32x64xf32>) {
  // expected-error@+1 {{expected result of shape input shape = [2, 16, 64], got [2, 16, 32]}}
  %0 = synth.add_positions %x, %p : (tensor<2x16x64xf32>, tensor<32x64xf32>) -> tensor<2x16x32xf32>
  return
}

// -----

func.func @f(%x: tensor<16x64xf32>, %m: tensor<2x16xi1>) {
  // expected-error@+1 {{expected input of rank 3 [batch, N, d], got [16, 64]}}
  %0 = synth.mean_pool %x, %m : (tensor<16x64xf32>, tensor<2x16xi1>) -> tensor<2x64xf32>
  return
}

// -----

func.func @f(%x: tensor<2x16x64xf32>, %m: tensor<2x8xi1>) {
  // expected-error@+1 {{expected mask of shape [batch, N] = [2, 16], got [2, 8]}}
  %0 = synth.mean_pool %x, %m : (tensor<2x16x64xf32>, tensor<2x8xi1>) -> tensor<2x64xf32>
  return
}

// -----

func.func @f(%x: tensor<2x16x64xf32>, %m: tensor<2x16xi1>) {
  // expected-error@+1 {{expected result of shape [batch, d] = [2, 64], got [2, 16]}}
  %0 = synth.mean_pool %x, %m : (tensor<2x16x64xf32>, tensor<2x16xi1>) -> tensor<2x16xf32>
  return
}

// -----

func.func @f(%x: tensor<f32>, %g: tensor<64xf32>) {
  // expected-error@+1 {{expected input of rank >= 1 [..., d], got a scalar}}
  %0 = synth.layer_norm %x, %g, %g : (tensor<f32>, tensor<64xf32>, tensor<64xf32>) -> tensor<f32>
  return
}

// -----

func.func @f(%x: tensor<2x16x64xf32>, %g: tensor<32xf32>, %b: tensor<64xf32>) {
  // expected-error@+1 {{expected gamma of shape [d] = [64], got [32]}}
  %0 = synth.layer_norm %x, %g, %b : (tensor<2x16x64xf32>, tensor<32xf32>, tensor<64xf32>) -> tensor<2x16x64xf32>
  return
}

// -----

func.func @f(%x: tensor<2x16x64xf32>, %g: tensor<64xf32>, %b: tensor<64x1xf32>) {
  // expected-error@+1 {{expected beta of shape [d] = [64], got [64, 1]}}
  %0 = synth.layer_norm %x, %g, %b : (tensor<2x16x64xf32>, tensor<64xf32>, tensor<64x1xf32>) -> tensor<2x16x64xf32>
  return
}

// -----

func.func @f(%x: tensor<2x16x64xf32>, %g: tensor<64xf32>) {
  // expected-error@+1 {{expected result of shape input shape = [2, 16, 64], got [2, 64, 16]}}
  %0 = synth.layer_norm %x, %g, %g : (tensor<2x16x64xf32>, tensor<64xf32>, tensor<64xf32>) -> tensor<2x64x16xf32>
  return
}

// -----

func.func @f(%x: tensor<2x16x64xf32>, %g: tensor<64xf32>) {
  // expected-error@+1 {{expected epsilon > 0, got 0}}
  %0 = synth.layer_norm %x, %g, %g {epsilon = 0.0 : f32} : (tensor<2x16x64xf32>, tensor<64xf32>, tensor<64xf32>) -> tensor<2x16x64xf32>
  return
}

// -----

func.func @f(%x: tensor<2x16x64xf32>, %y: tensor<2x16x64xbf16>) {
  // expected-error@+1 {{requires the same type for all operands and results}}
  %0 = "synth.add"(%x, %y) : (tensor<2x16x64xf32>, tensor<2x16x64xbf16>) -> tensor<2x16x64xf32>
  return
}

// -----

func.func @f(%x: tensor<16x64xf32>) {
  // expected-error@+1 {{expected input of rank 3 [batch, seq, d_model], got [16, 64]}}
  %0 = synth.split_heads %x : tensor<16x64xf32> -> tensor<2x4x16x16xf32>
  return
}

// -----

func.func @f(%x: tensor<2x16x64xf32>) {
  // expected-error@+1 {{expected result of rank 4 [batch, heads, seq, head_dim], got [2, 16, 64]}}
  %0 = synth.split_heads %x : tensor<2x16x64xf32> -> tensor<2x16x64xf32>
  return
}

// -----

func.func @f(%x: tensor<2x16x64xf32>) {
  // expected-error@+1 {{expected result of shape [batch, heads, seq, head_dim] = [2, ?, 16, ?], got [2, 4, 8, 16]}}
  %0 = synth.split_heads %x : tensor<2x16x64xf32> -> tensor<2x4x8x16xf32>
  return
}

// -----

func.func @f(%x: tensor<2x16x64xf32>) {
  // expected-error@+1 {{expected heads * head_dim = d_model = 64, got 3 * 16 = 48}}
  %0 = synth.split_heads %x : tensor<2x16x64xf32> -> tensor<2x3x16x16xf32>
  return
}

// -----

func.func @f(%x: tensor<2x16x64xf32>) {
  // expected-error@+1 {{expected input of rank 4 [batch, heads, seq, head_dim], got [2, 16, 64]}}
  %0 = synth.merge_heads %x : tensor<2x16x64xf32> -> tensor<2x16x64xf32>
  return
}

// -----

func.func @f(%x: tensor<2x4x16x16xf32>) {
  // expected-error@+1 {{expected result of rank 3 [batch, seq, d_model], got [2, 4, 16, 16]}}
  %0 = synth.merge_heads %x : tensor<2x4x16x16xf32> -> tensor<2x4x16x16xf32>
  return
}

// -----

func.func @f(%x: tensor<2x4x16x16xf32>) {
  // expected-error@+1 {{expected result of shape [batch, seq, heads * head_dim] = [2, 16, 64], got [2, 16, 32]}}
  %0 = synth.merge_heads %x : tensor<2x4x16x16xf32> -> tensor<2x16x32xf32>
  return
}

// -----

func.func @f(%l: tensor<256xf32>, %t: tensor<i32>) {
  // expected-error@+1 {{expected logits of rank >= 2 [..., vocab], got [256]}}
  %0 = synth.cross_entropy %l, %t : (tensor<256xf32>, tensor<i32>) -> tensor<f32>
  return
}

// -----

func.func @f(%l: tensor<2x16x256xf32>, %t: tensor<2x15xi32>) {
  // expected-error@+1 {{expected targets of shape logits shape without vocab = [2, 16], got [2, 15]}}
  %0 = synth.cross_entropy %l, %t : (tensor<2x16x256xf32>, tensor<2x15xi32>) -> tensor<f32>
  return
}

//===----------------------------------------------------------------------===//
// Score ops
//===----------------------------------------------------------------------===//

// -----

func.func @f(%q: tensor<2x4x16x16xf32>) {
  // expected-error@+1 {{expected result of rank 4 [batch, heads, N, M], got [4, 16, 16]}}
  %0 = synth.dot_scores %q, %q : (tensor<2x4x16x16xf32>, tensor<2x4x16x16xf32>) -> tensor<4x16x16xf32>
  return
}

// -----

func.func @f(%q: tensor<2x4x8x16xf32>, %k: tensor<2x4x16x16xf32>) {
  // expected-error@+1 {{expected q of shape [batch, heads, N, head_dim] = [?, ?, 16, ?], got [2, 4, 8, 16]}}
  %0 = synth.dot_scores %q, %k : (tensor<2x4x8x16xf32>, tensor<2x4x16x16xf32>) -> tensor<2x4x16x16xf32>
  return
}

// -----

func.func @f(%q: tensor<2x4x16x16xf32>, %k: tensor<2x4x16x32xf32>) {
  // expected-error@+1 {{expected k of shape [batch, heads, M, head_dim] = [2, 4, 16, 16], got [2, 4, 16, 32]}}
  %0 = synth.dot_scores %q, %k : (tensor<2x4x16x16xf32>, tensor<2x4x16x32xf32>) -> tensor<2x4x16x16xf32>
  return
}

// -----

func.func @f(%q: tensor<2x4x16x16xf32>) {
  // expected-error@+1 {{expected result of shape [batch, heads, N, M] = [2, 4, 16, 16], got [2, 8, 16, 16]}}
  %0 = synth.dot_scores %q, %q : (tensor<2x4x16x16xf32>, tensor<2x4x16x16xf32>) -> tensor<2x8x16x16xf32>
  return
}

// -----

func.func @f(%q: tensor<2x4x16x16xf32>) {
  // expected-error@+1 {{expected a finite scale}}
  %0 = synth.dot_scores %q, %q {scale = 0x7F800000 : f32} : (tensor<2x4x16x16xf32>, tensor<2x4x16x16xf32>) -> tensor<2x4x16x16xf32>
  return
}

// -----

func.func @f(%x: tensor<2x16x64xf32>, %w1: tensor<4x64x64xf32>, %b1: tensor<4x64xf32>,
             %w2: tensor<4x64x128xf32>, %b2: tensor<4x256xf32>) {
  // The example of the foundation issue: W2 must be [heads, k, L].
  // expected-error@+1 {{expected W2 of shape [heads, k, L] = [4, 64, 256], got [4, 64, 128]}}
  %0 = synth.dense_scores %x, %w1, %b1, %w2, %b2 {max_len = 256 : i64}
      : (tensor<2x16x64xf32>, tensor<4x64x64xf32>, tensor<4x64xf32>, tensor<4x64x128xf32>, tensor<4x256xf32>)
      -> tensor<2x4x16x16xf32>
  return
}

// -----

func.func @f(%x: tensor<2x16x64xf32>, %w1: tensor<4x64x16xf32>, %b1: tensor<4x16xf32>,
             %w2: tensor<4x16x32xf32>, %b2: tensor<4x16xf32>) {
  // expected-error@+1 {{expected b2 of shape [heads, L] = [4, 32], got [4, 16]}}
  %0 = synth.dense_scores %x, %w1, %b1, %w2, %b2 {max_len = 32 : i64}
      : (tensor<2x16x64xf32>, tensor<4x64x16xf32>, tensor<4x16xf32>, tensor<4x16x32xf32>, tensor<4x16xf32>)
      -> tensor<2x4x16x16xf32>
  return
}

// -----

func.func @f(%x: tensor<2x16x64xf32>, %w1: tensor<4x32x16xf32>, %b1: tensor<4x16xf32>,
             %w2: tensor<4x16x32xf32>, %b2: tensor<4x32xf32>) {
  // expected-error@+1 {{expected W1 of shape [heads, d_model, k] = [?, 64, ?], got [4, 32, 16]}}
  %0 = synth.dense_scores %x, %w1, %b1, %w2, %b2 {max_len = 32 : i64}
      : (tensor<2x16x64xf32>, tensor<4x32x16xf32>, tensor<4x16xf32>, tensor<4x16x32xf32>, tensor<4x32xf32>)
      -> tensor<2x4x16x16xf32>
  return
}

// -----

func.func @f(%x: tensor<2x16x64xf32>, %w1: tensor<4x64x16xf32>, %b1: tensor<4x8xf32>,
             %w2: tensor<4x16x32xf32>, %b2: tensor<4x32xf32>) {
  // expected-error@+1 {{expected b1 of shape [heads, k] = [4, 16], got [4, 8]}}
  %0 = synth.dense_scores %x, %w1, %b1, %w2, %b2 {max_len = 32 : i64}
      : (tensor<2x16x64xf32>, tensor<4x64x16xf32>, tensor<4x8xf32>, tensor<4x16x32xf32>, tensor<4x32xf32>)
      -> tensor<2x4x16x16xf32>
  return
}

// -----

func.func @f(%x: tensor<2x8x64xf32>, %w1: tensor<4x64x16xf32>, %b1: tensor<4x16xf32>,
             %w2: tensor<4x16x32xf32>, %b2: tensor<4x32xf32>) {
  // expected-error@+1 {{expected x of shape [batch, N, d_model] = [?, 16, ?], got [2, 8, 64]}}
  %0 = synth.dense_scores %x, %w1, %b1, %w2, %b2 {max_len = 32 : i64}
      : (tensor<2x8x64xf32>, tensor<4x64x16xf32>, tensor<4x16xf32>, tensor<4x16x32xf32>, tensor<4x32xf32>)
      -> tensor<2x4x16x16xf32>
  return
}

// -----

func.func @f(%x: tensor<2x16x64xf32>, %w1: tensor<4x64x16xf32>, %b1: tensor<4x16xf32>,
             %w2: tensor<4x16x32xf32>, %b2: tensor<4x32xf32>) {
  // expected-error@+1 {{expected result of rank 4 [batch, heads, N, N], got [4, 16, 16]}}
  %0 = synth.dense_scores %x, %w1, %b1, %w2, %b2 {max_len = 32 : i64}
      : (tensor<2x16x64xf32>, tensor<4x64x16xf32>, tensor<4x16xf32>, tensor<4x16x32xf32>, tensor<4x32xf32>)
      -> tensor<4x16x16xf32>
  return
}

// -----

func.func @f(%r: tensor<4x32x32xf32>) {
  // expected-error@+1 {{expected result of shape [heads, N, N] = [?, 16, 16], got [4, 8, 16]}}
  %0 = synth.random_scores %r {max_len = 32 : i64} : (tensor<4x32x32xf32>) -> tensor<4x8x16xf32>
  return
}

// -----

func.func @f(%r: tensor<4x32x32xf32>) {
  // expected-error@+1 {{expected result of shape [heads, N, N] = [4, 16, 16], got [8, 16, 16]}}
  %0 = synth.random_scores %r {max_len = 32 : i64} : (tensor<4x32x32xf32>) -> tensor<8x16x16xf32>
  return
}

// -----

func.func @f(%r: tensor<4x32x16xf32>) {
  // expected-error@+1 {{expected R of shape [heads, L, L] = [?, 32, 32], got [4, 32, 16]}}
  %0 = synth.random_scores %r {max_len = 32 : i64} : (tensor<4x32x16xf32>) -> tensor<4x16x16xf32>
  return
}

// -----

func.func @f(%r: tensor<4x32x32xf32>) {
  // expected-error@+1 {{sequence length N = 48 exceeds max_len L = 32}}
  %0 = synth.random_scores %r {max_len = 32 : i64} : (tensor<4x32x32xf32>) -> tensor<4x48x48xf32>
  return
}

// -----

func.func @f(%r: tensor<4x32x32xf32>) {
  // expected-error@+1 {{max_len must be positive, got 0}}
  %0 = synth.random_scores %r {max_len = 0 : i64} : (tensor<4x32x32xf32>) -> tensor<4x16x16xf32>
  return
}

// -----

func.func @f(%r1: tensor<4x16x8xf32>, %r2: tensor<4x32x8xf32>) {
  // expected-error@+1 {{expected R1 of shape [heads, L, rank] = [?, 32, ?], got [4, 16, 8]}}
  %0 = synth.factorized_random_scores %r1, %r2 {max_len = 32 : i64}
      : (tensor<4x16x8xf32>, tensor<4x32x8xf32>) -> tensor<4x16x16xf32>
  return
}

// -----

func.func @f(%r1: tensor<4x32x8xf32>, %r2: tensor<4x32x4xf32>) {
  // expected-error@+1 {{expected R2 of shape [heads, L, rank] = [4, 32, 8], got [4, 32, 4]}}
  %0 = synth.factorized_random_scores %r1, %r2 {max_len = 32 : i64}
      : (tensor<4x32x8xf32>, tensor<4x32x4xf32>) -> tensor<4x16x16xf32>
  return
}

// -----

func.func @f(%x: tensor<2x16x64xf32>, %w1: tensor<4x64x16xf32>, %b1: tensor<4x16xf32>,
             %wa: tensor<4x16x8xf32>, %ba: tensor<4x8xf32>, %wb: tensor<4x16x8xf32>, %bb: tensor<4x8xf32>) {
  // expected-error@+1 {{expected a * b = max_len L = 32, got 8 * 8 = 64}}
  %0 = synth.factorized_dense_scores %x, %w1, %b1, %wa, %ba, %wb, %bb {max_len = 32 : i64}
      : (tensor<2x16x64xf32>, tensor<4x64x16xf32>, tensor<4x16xf32>, tensor<4x16x8xf32>, tensor<4x8xf32>,
         tensor<4x16x8xf32>, tensor<4x8xf32>) -> tensor<2x4x16x16xf32>
  return
}

// -----

func.func @f(%x: tensor<2x16x64xf32>, %w1: tensor<4x64x16xf32>, %b1: tensor<4x16xf32>,
             %wa: tensor<4x8x8xf32>, %ba: tensor<4x8xf32>, %wb: tensor<4x16x4xf32>, %bb: tensor<4x4xf32>) {
  // expected-error@+1 {{expected WA of shape [heads, k, a] = [4, 16, ?], got [4, 8, 8]}}
  %0 = synth.factorized_dense_scores %x, %w1, %b1, %wa, %ba, %wb, %bb {max_len = 32 : i64}
      : (tensor<2x16x64xf32>, tensor<4x64x16xf32>, tensor<4x16xf32>, tensor<4x8x8xf32>, tensor<4x8xf32>,
         tensor<4x16x4xf32>, tensor<4x4xf32>) -> tensor<2x4x16x16xf32>
  return
}

// -----

func.func @f(%x: tensor<2x16x64xf32>, %w1: tensor<4x64x16xf32>, %b1: tensor<4x16xf32>,
             %wa: tensor<4x16x8xf32>, %ba: tensor<4x4xf32>, %wb: tensor<4x16x4xf32>, %bb: tensor<4x4xf32>) {
  // expected-error@+1 {{expected bA of shape [heads, a] = [4, 8], got [4, 4]}}
  %0 = synth.factorized_dense_scores %x, %w1, %b1, %wa, %ba, %wb, %bb {max_len = 32 : i64}
      : (tensor<2x16x64xf32>, tensor<4x64x16xf32>, tensor<4x16xf32>, tensor<4x16x8xf32>, tensor<4x4xf32>,
         tensor<4x16x4xf32>, tensor<4x4xf32>) -> tensor<2x4x16x16xf32>
  return
}

// -----

func.func @f(%x: tensor<2x16x64xf32>, %w1: tensor<4x64x16xf32>, %b1: tensor<4x16xf32>,
             %wa: tensor<4x16x8xf32>, %ba: tensor<4x8xf32>, %wb: tensor<2x16x4xf32>, %bb: tensor<4x4xf32>) {
  // expected-error@+1 {{expected WB of shape [heads, k, b] = [4, 16, ?], got [2, 16, 4]}}
  %0 = synth.factorized_dense_scores %x, %w1, %b1, %wa, %ba, %wb, %bb {max_len = 32 : i64}
      : (tensor<2x16x64xf32>, tensor<4x64x16xf32>, tensor<4x16xf32>, tensor<4x16x8xf32>, tensor<4x8xf32>,
         tensor<2x16x4xf32>, tensor<4x4xf32>) -> tensor<2x4x16x16xf32>
  return
}

// -----

func.func @f(%x: tensor<2x16x64xf32>, %w1: tensor<4x64x16xf32>, %b1: tensor<4x16xf32>,
             %wa: tensor<4x16x8xf32>, %ba: tensor<4x8xf32>, %wb: tensor<4x16x4xf32>, %bb: tensor<4x8xf32>) {
  // expected-error@+1 {{expected bB of shape [heads, b] = [4, 4], got [4, 8]}}
  %0 = synth.factorized_dense_scores %x, %w1, %b1, %wa, %ba, %wb, %bb {max_len = 32 : i64}
      : (tensor<2x16x64xf32>, tensor<4x64x16xf32>, tensor<4x16xf32>, tensor<4x16x8xf32>, tensor<4x8xf32>,
         tensor<4x16x4xf32>, tensor<4x8xf32>) -> tensor<2x4x16x16xf32>
  return
}

// -----

func.func @f(%l: tensor<4x0xf32>) {
  // expected-error@+1 {{expected at least one score part}}
  %0 = synth.mixture_scores () logits %l : (tensor<4x0xf32>) -> tensor<4x16x16xf32>
  return
}

// -----

func.func @f(%a: tensor<4x16x16xf32>, %b: tensor<16x16xf32>, %l: tensor<4x2xf32>) {
  // expected-error@+1 {{expected part #1 of rank 3 [heads, N, M] or 4 [batch, heads, N, M], got [16, 16]}}
  %0 = synth.mixture_scores (%a, %b) logits %l : (tensor<4x16x16xf32>, tensor<16x16xf32>, tensor<4x2xf32>) -> tensor<4x16x16xf32>
  return
}

// -----

func.func @f(%a: tensor<4x16x16xf32>, %b: tensor<2x8x16x16xf32>, %l: tensor<4x2xf32>) {
  // expected-error@+1 {{expected part #1 of shape [batch, heads, N, M] = [2, 4, 16, 16], got [2, 8, 16, 16]}}
  %0 = synth.mixture_scores (%a, %b) logits %l : (tensor<4x16x16xf32>, tensor<2x8x16x16xf32>, tensor<4x2xf32>) -> tensor<2x4x16x16xf32>
  return
}

// -----

func.func @f(%a: tensor<4x16x16xf32>, %b: tensor<4x16x8xf32>, %l: tensor<4x2xf32>) {
  // expected-error@+1 {{expected part #1 of shape [heads, N, M] = [4, 16, 16], got [4, 16, 8]}}
  %0 = synth.mixture_scores (%a, %b) logits %l : (tensor<4x16x16xf32>, tensor<4x16x8xf32>, tensor<4x2xf32>) -> tensor<4x16x16xf32>
  return
}

// -----

func.func @f(%a: tensor<4x16x16xf32>, %l: tensor<4x3xf32>) {
  // expected-error@+1 {{expected logits of shape [heads, parts] = [4, 2], got [4, 3]}}
  %0 = synth.mixture_scores (%a, %a) logits %l : (tensor<4x16x16xf32>, tensor<4x16x16xf32>, tensor<4x3xf32>) -> tensor<4x16x16xf32>
  return
}

// -----

func.func @f(%a: tensor<4x16x16xf32>, %b: tensor<2x4x16x16xf32>, %l: tensor<4x2xf32>) {
  // expected-error@+1 {{expected result of shape [batch, heads, N, M] = [2, 4, 16, 16], got [4, 4, 16, 16]}}
  %0 = synth.mixture_scores (%a, %b) logits %l : (tensor<4x16x16xf32>, tensor<2x4x16x16xf32>, tensor<4x2xf32>) -> tensor<4x4x16x16xf32>
  return
}

// -----

func.func @f(%a: tensor<4x16x16xf32>, %l: tensor<4x2xf32>) {
  // expected-error@+1 {{expected result of shape [heads, N, M] = [4, 16, 16], got [4, 16, 8]}}
  %0 = synth.mixture_scores (%a, %a) logits %l : (tensor<4x16x16xf32>, tensor<4x16x16xf32>, tensor<4x2xf32>) -> tensor<4x16x8xf32>
  return
}

//===----------------------------------------------------------------------===//
// Attention
//===----------------------------------------------------------------------===//

// -----

func.func @f(%s: tensor<16x16xf32>, %v: tensor<2x4x16x16xf32>) {
  // expected-error@+1 {{expected scores of rank 4 [batch, heads, N, M] or 3 [heads, N, M], got [16, 16]}}
  %0 = synth.attend %s, %v : (tensor<16x16xf32>, tensor<2x4x16x16xf32>) -> tensor<2x4x16x16xf32>
  return
}

// -----

func.func @f(%s: tensor<2x4x16x16xf32>, %v: tensor<2x4x32x16xf32>) {
  // expected-error@+1 {{expected values of shape [batch, heads, M, head_dim] = [2, 4, 16, ?], got [2, 4, 32, 16]}}
  %0 = synth.attend %s, %v : (tensor<2x4x16x16xf32>, tensor<2x4x32x16xf32>) -> tensor<2x4x16x16xf32>
  return
}

// -----

func.func @f(%s: tensor<2x4x16x16xf32>, %v: tensor<2x4x16x16xf32>, %m: tensor<2x16x16xi1>) {
  // expected-error@+1 {{expected key_mask of shape [batch, M] = [2, 16], got [2, 16, 16]}}
  %0 = synth.attend %s, %v key_mask %m : (tensor<2x4x16x16xf32>, tensor<2x4x16x16xf32>, tensor<2x16x16xi1>) -> tensor<2x4x16x16xf32>
  return
}

// -----

func.func @f(%s: tensor<4x8x16xf32>, %v: tensor<2x4x16x16xf32>) {
  // expected-error@+1 {{expected result of shape [batch, heads, N, head_dim] = [2, 4, 8, 16], got [2, 4, 16, 16]}}
  %0 = synth.attend %s, %v : (tensor<4x8x16xf32>, tensor<2x4x16x16xf32>) -> tensor<2x4x16x16xf32>
  return
}

// -----

func.func @f(%v: tensor<2x4x16x16xf32>) {
  // expected-error@+1 {{expected at least one score part}}
  %0 = synth.fused_attention [] () values %v : (tensor<2x4x16x16xf32>) -> tensor<2x4x16x16xf32>
  return
}

// -----

func.func @f(%q: tensor<2x4x16x16xf32>, %v: tensor<2x4x16x16xf32>) {
  // expected-error@+1 {{score parts take 2 operands in all, got 3}}
  %0 = synth.fused_attention [#synth.score<dot>] (%q, %q, %q) values %v
      : (tensor<2x4x16x16xf32>, tensor<2x4x16x16xf32>, tensor<2x4x16x16xf32>, tensor<2x4x16x16xf32>) -> tensor<2x4x16x16xf32>
  return
}

// -----

func.func @f(%r: tensor<4x16x16xf32>, %q: tensor<2x4x16x16xf32>, %v: tensor<2x4x16x16xf32>) {
  // expected-error@+1 {{a mixture of 2 score parts needs mixture logits [heads, 2]}}
  %0 = synth.fused_attention [#synth.score<random, max_len = 16 : i64>, #synth.score<dot>] (%r, %q, %q) values %v
      : (tensor<4x16x16xf32>, tensor<2x4x16x16xf32>, tensor<2x4x16x16xf32>, tensor<2x4x16x16xf32>) -> tensor<2x4x16x16xf32>
  return
}

// -----

func.func @f(%q: tensor<2x4x16x16xf32>, %l: tensor<4x1xf32>, %v: tensor<2x4x16x16xf32>) {
  // expected-error@+1 {{a single score part takes no mixture logits}}
  %0 = synth.fused_attention [#synth.score<dot>] (%q, %q) logits %l values %v
      : (tensor<2x4x16x16xf32>, tensor<2x4x16x16xf32>, tensor<4x1xf32>, tensor<2x4x16x16xf32>) -> tensor<2x4x16x16xf32>
  return
}

// -----

func.func @f(%r: tensor<4x16x16xf32>, %v: tensor<4x16x16xf32>) {
  // expected-error@+1 {{expected values of rank 4 [batch, heads, M, head_dim], got [4, 16, 16]}}
  %0 = synth.fused_attention [#synth.score<random, max_len = 16 : i64>] (%r) values %v
      : (tensor<4x16x16xf32>, tensor<4x16x16xf32>) -> tensor<2x4x16x16xf32>
  return
}

// -----

func.func @f(%r: tensor<4x16x16xf32>, %v: tensor<2x4x16x16xf32>) {
  // expected-error@+1 {{expected result of rank 4 [batch, heads, N, head_dim], got [4, 16, 16]}}
  %0 = synth.fused_attention [#synth.score<random, max_len = 16 : i64>] (%r) values %v
      : (tensor<4x16x16xf32>, tensor<2x4x16x16xf32>) -> tensor<4x16x16xf32>
  return
}

// -----

func.func @f(%r: tensor<8x16x16xf32>, %v: tensor<2x4x16x16xf32>) {
  // expected-error@+1 {{score part #0 (random) has batch x heads [?, 8], values have [2, 4]}}
  %0 = synth.fused_attention [#synth.score<random, max_len = 16 : i64>] (%r) values %v
      : (tensor<8x16x16xf32>, tensor<2x4x16x16xf32>) -> tensor<2x4x16x16xf32>
  return
}

// -----

func.func @f(%r: tensor<4x16x16xf32>, %v: tensor<2x4x32x16xf32>) {
  // expected-error@+1 {{key length M = 32 exceeds max_len L = 16}}
  %0 = synth.fused_attention [#synth.score<random, max_len = 16 : i64>] (%r) values %v
      : (tensor<4x16x16xf32>, tensor<2x4x32x16xf32>) -> tensor<2x4x16x16xf32>
  return
}

// -----

func.func @f(%r: tensor<4x8x32xf32>, %v: tensor<2x4x32x16xf32>) {
  // expected-error@+1 {{expected R to have at least N = 16 query rows, got 8}}
  %0 = synth.fused_attention [#synth.score<random, max_len = 32 : i64>] (%r) values %v
      : (tensor<4x8x32xf32>, tensor<2x4x32x16xf32>) -> tensor<2x4x16x16xf32>
  return
}

// -----

func.func @f(%r1: tensor<4x8x4xf32>, %r2: tensor<4x32x4xf32>, %v: tensor<2x4x32x16xf32>) {
  // expected-error@+1 {{expected R1 to have at least N = 16 query rows, got 8}}
  %0 = synth.fused_attention [#synth.score<factorized_random, max_len = 32 : i64>] (%r1, %r2) values %v
      : (tensor<4x8x4xf32>, tensor<4x32x4xf32>, tensor<2x4x32x16xf32>) -> tensor<2x4x16x16xf32>
  return
}

// -----

func.func @f(%r: tensor<4x16x16xf32>, %q: tensor<2x4x16x16xf32>, %l: tensor<4x3xf32>, %v: tensor<2x4x16x16xf32>) {
  // expected-error@+1 {{expected mixture logits of shape [heads, parts] = [4, 2], got [4, 3]}}
  %0 = synth.fused_attention [#synth.score<random, max_len = 16 : i64>, #synth.score<dot>] (%r, %q, %q) logits %l values %v
      : (tensor<4x16x16xf32>, tensor<2x4x16x16xf32>, tensor<2x4x16x16xf32>, tensor<4x3xf32>, tensor<2x4x16x16xf32>) -> tensor<2x4x16x16xf32>
  return
}

// -----

func.func @f(%q: tensor<2x4x16x16xf32>, %v: tensor<2x4x16x16xf32>, %m: tensor<2x8xi1>) {
  // expected-error@+1 {{expected key_mask of shape [batch, M] = [2, 16], got [2, 8]}}
  %0 = synth.fused_attention [#synth.score<dot>] (%q, %q) values %v key_mask %m
      : (tensor<2x4x16x16xf32>, tensor<2x4x16x16xf32>, tensor<2x4x16x16xf32>, tensor<2x8xi1>) -> tensor<2x4x16x16xf32>
  return
}

// -----

func.func @f(%q: tensor<2x4x16x16xf32>, %v: tensor<2x4x16x16xf16>) {
  // expected-error@+1 {{expected operand #2 to have element type 'f32' (as operand #0), got 'f16'}}
  %0 = synth.fused_attention [#synth.score<dot>] (%q, %q) values %v
      : (tensor<2x4x16x16xf32>, tensor<2x4x16x16xf32>, tensor<2x4x16x16xf16>) -> tensor<2x4x16x16xf32>
  return
}

// -----

func.func @f(%r: tensor<4x32x32xf32>) {
  // expected-error@+1 {{sequence length N = 48 exceeds max_len L = 32}}
  %0 = synth.attention_probs %r {max_len = 32 : i64} : (tensor<4x32x32xf32>) -> tensor<4x48x48xf32>
  return
}

// -----

func.func @f(%p: tensor<16x16xf32>, %v: tensor<2x4x16x8xf32>) {
  // expected-error@+1 {{expected probs of rank 3 [heads, N, M], got [16, 16]}}
  %0 = synth.attend_probs %p, %v : (tensor<16x16xf32>, tensor<2x4x16x8xf32>) -> tensor<2x4x16x8xf32>
  return
}

// -----

func.func @f(%p: tensor<4x16x16xf32>, %v: tensor<2x4x8x8xf32>) {
  // expected-error@+1 {{expected values of shape [batch, heads, M, head_dim] = [?, 4, 16, ?], got [2, 4, 8, 8]}}
  %0 = synth.attend_probs %p, %v : (tensor<4x16x16xf32>, tensor<2x4x8x8xf32>) -> tensor<2x4x16x8xf32>
  return
}

//===----------------------------------------------------------------------===//
// Decoding
//===----------------------------------------------------------------------===//

// -----

func.func @f(%r: tensor<32x32xf32>, %p: index) {
  // expected-error@+1 {{expected input of rank 3 [heads, L, c], got [32, 32]}}
  %0 = synth.slice_rows %r offset %p : (tensor<32x32xf32>) -> tensor<4x1x32xf32>
  return
}

// -----

func.func @f(%r: tensor<4x32x32xf32>, %p: index) {
  // expected-error@+1 {{expected result of rank 3 [heads, n, c], got [1, 32]}}
  %0 = synth.slice_rows %r offset %p : (tensor<4x32x32xf32>) -> tensor<1x32xf32>
  return
}

// -----

func.func @f(%r: tensor<4x32x32xf32>, %p: index) {
  // expected-error@+1 {{expected result of shape [heads, n, c] = [4, ?, 32], got [4, 1, 16]}}
  %0 = synth.slice_rows %r offset %p : (tensor<4x32x32xf32>) -> tensor<4x1x16xf32>
  return
}

// -----

func.func @f(%r: tensor<4x32x32xf32>, %p: index) {
  // expected-error@+1 {{row count n = 40 exceeds rows L = 32}}
  %0 = synth.slice_rows %r offset %p : (tensor<4x32x32xf32>) -> tensor<4x40x32xf32>
  return
}

// -----

func.func @f(%c: tensor<4x32x16xf32>, %n: tensor<2x4x1x16xf32>, %p: index) {
  // expected-error@+1 {{expected cache of rank 4 [batch, heads, L, d], got [4, 32, 16]}}
  %0 = synth.cache_update %c, %n at %p : (tensor<4x32x16xf32>, tensor<2x4x1x16xf32>) -> tensor<4x32x16xf32>
  return
}

// -----

func.func @f(%c: tensor<2x4x32x16xf32>, %n: tensor<2x4x1x8xf32>, %p: index) {
  // expected-error@+1 {{expected update of shape [batch, heads, n, d] = [2, 4, ?, 16], got [2, 4, 1, 8]}}
  %0 = synth.cache_update %c, %n at %p : (tensor<2x4x32x16xf32>, tensor<2x4x1x8xf32>) -> tensor<2x4x32x16xf32>
  return
}

// -----

func.func @f(%c: tensor<2x4x32x16xf32>, %n: tensor<2x4x33x16xf32>, %p: index) {
  // expected-error@+1 {{row count n = 33 exceeds cache length L = 32}}
  %0 = synth.cache_update %c, %n at %p : (tensor<2x4x32x16xf32>, tensor<2x4x33x16xf32>) -> tensor<2x4x32x16xf32>
  return
}

// -----

func.func @f(%c: tensor<2x4x32x16xf32>, %n: tensor<2x4x1x16xf32>, %p: index) {
  // expected-error@+1 {{expected result of shape cache shape = [2, 4, 32, 16], got [2, 4, 16, 16]}}
  %0 = synth.cache_update %c, %n at %p : (tensor<2x4x32x16xf32>, tensor<2x4x1x16xf32>) -> tensor<2x4x16x16xf32>
  return
}

//===----------------------------------------------------------------------===//
// Training
//===----------------------------------------------------------------------===//

// -----

func.func @f(%p: tensor<64x64xf32>, %g: tensor<64x32xf32>, %m: tensor<64x64xf32>, %lr: tensor<f32>, %t: tensor<i64>) {
  // expected-error@+1 {{expected grad of shape param shape = [64, 64], got [64, 32]}}
  %0:3 = synth.adamw %p, %g, %m, %m, %lr, %t
      : (tensor<64x64xf32>, tensor<64x32xf32>, tensor<64x64xf32>, tensor<64x64xf32>, tensor<f32>, tensor<i64>)
      -> (tensor<64x64xf32>, tensor<64x64xf32>, tensor<64x64xf32>)
  return
}

// -----

func.func @f(%p: tensor<64x64xf32>, %m: tensor<64x64xf32>, %v: tensor<64xf32>, %lr: tensor<f32>, %t: tensor<i64>) {
  // expected-error@+1 {{expected v of shape param shape = [64, 64], got [64]}}
  %0:3 = synth.adamw %p, %p, %m, %v, %lr, %t
      : (tensor<64x64xf32>, tensor<64x64xf32>, tensor<64x64xf32>, tensor<64xf32>, tensor<f32>, tensor<i64>)
      -> (tensor<64x64xf32>, tensor<64x64xf32>, tensor<64x64xf32>)
  return
}

// -----

func.func @f(%p: tensor<64x64xbf16>, %g: tensor<64x64xf32>, %m: tensor<64x64xf32>, %lr: tensor<f32>, %t: tensor<i64>) {
  // expected-error@+1 {{expected grad and new_param of the parameter's type 'tensor<64x64xbf16>'}}
  %0:3 = synth.adamw %p, %g, %m, %m, %lr, %t
      : (tensor<64x64xbf16>, tensor<64x64xf32>, tensor<64x64xf32>, tensor<64x64xf32>, tensor<f32>, tensor<i64>)
      -> (tensor<64x64xbf16>, tensor<64x64xf32>, tensor<64x64xf32>)
  return
}

// -----

func.func @f(%p: tensor<64x64xf32>, %lr: tensor<f32>, %t: tensor<i64>) {
  // expected-error@+1 {{expected betas in [0, 1), got beta1 = 1, beta2 = 0.999}}
  %0:3 = synth.adamw %p, %p, %p, %p, %lr, %t {beta1 = 1.0 : f32}
      : (tensor<64x64xf32>, tensor<64x64xf32>, tensor<64x64xf32>, tensor<64x64xf32>, tensor<f32>, tensor<i64>)
      -> (tensor<64x64xf32>, tensor<64x64xf32>, tensor<64x64xf32>)
  return
}

// -----

func.func @f(%p: tensor<64x64xf32>, %lr: tensor<f32>, %t: tensor<i64>) {
  // expected-error@+1 {{expected epsilon > 0, got -1}}
  %0:3 = synth.adamw %p, %p, %p, %p, %lr, %t {epsilon = -1.0 : f32}
      : (tensor<64x64xf32>, tensor<64x64xf32>, tensor<64x64xf32>, tensor<64x64xf32>, tensor<f32>, tensor<i64>)
      -> (tensor<64x64xf32>, tensor<64x64xf32>, tensor<64x64xf32>)
  return
}

// -----

func.func @f(%p: tensor<64x64xf32>, %lr: tensor<f32>, %t: tensor<i64>) {
  // expected-error@+1 {{expected weight_decay >= 0, got -0.5}}
  %0:3 = synth.adamw %p, %p, %p, %p, %lr, %t {weight_decay = -0.5 : f32}
      : (tensor<64x64xf32>, tensor<64x64xf32>, tensor<64x64xf32>, tensor<64x64xf32>, tensor<f32>, tensor<i64>)
      -> (tensor<64x64xf32>, tensor<64x64xf32>, tensor<64x64xf32>)
  return
}

// -----

func.func @f(%p: tensor<64x64xf32>, %lr: tensor<f32>, %t: tensor<i64>) {
  // expected-error@+1 {{expected new_m of shape param shape = [64, 64], got [64, 32]}}
  %0:3 = synth.adamw %p, %p, %p, %p, %lr, %t
      : (tensor<64x64xf32>, tensor<64x64xf32>, tensor<64x64xf32>, tensor<64x64xf32>, tensor<f32>, tensor<i64>)
      -> (tensor<64x64xf32>, tensor<64x32xf32>, tensor<64x64xf32>)
  return
}

//===----------------------------------------------------------------------===//
// Kernels
//===----------------------------------------------------------------------===//

// -----

func.func @f(%x: tensor<4xf32>) {
  // expected-error@+1 {{expected 1 region arguments (one per input), got 2}}
  %0 = synth.kernel "k" (%x) {schedule = #synth.schedule<{sse41 = {vector_width = 4}}>}
      : (tensor<4xf32>) -> tensor<4xf32> {
  ^bb0(%a: tensor<4xf32>, %b: tensor<4xf32>):
    synth.yield %a : tensor<4xf32>
  }
  return
}

// -----

func.func @f(%x: tensor<4xf32>) {
  // expected-error@+1 {{expected region argument #0 of type 'tensor<4xf32>', got 'tensor<4xf16>'}}
  %0 = synth.kernel "k" (%x) {schedule = #synth.schedule<{sse41 = {vector_width = 4}}>}
      : (tensor<4xf32>) -> tensor<4xf16> {
  ^bb0(%a: tensor<4xf16>):
    synth.yield %a : tensor<4xf16>
  }
  return
}

// -----

func.func @f(%x: tensor<4xf32>) {
  // expected-error@+1 {{expected synth.yield of the kernel's result types (tensor<8xf32>), got (tensor<4xf32>)}}
  %0 = synth.kernel "k" (%x) {schedule = #synth.schedule<{sse41 = {vector_width = 4}}>}
      : (tensor<4xf32>) -> tensor<8xf32> {
  ^bb0(%a: tensor<4xf32>):
    synth.yield %a : tensor<4xf32>
  }
  return
}

// -----

func.func @f(%x: tensor<4xf32>) {
  // expected-error@+1 {{expected a non-empty kernel name}}
  %0 = synth.kernel "" (%x) {schedule = #synth.schedule<{sse41 = {vector_width = 4}}>}
      : (tensor<4xf32>) -> tensor<4xf32> {
  ^bb0(%a: tensor<4xf32>):
    synth.yield %a : tensor<4xf32>
  }
  return
}

// -----

func.func @f(%x: tensor<4xf32>) {
  // expected-error@+1 {{expected the region to end with synth.yield}}
  %0 = "synth.kernel"(%x) ({
  ^bb0(%a: tensor<4xf32>):
    func.return
  }) {kernel_name = "k", schedule = #synth.schedule<{sse41 = {vector_width = 4}}>} : (tensor<4xf32>) -> tensor<4xf32>
  return
}

// -----

func.func @f(%x: tensor<4xf32>) {
  // expected-error@+1 {{'synth.yield' op expects parent op 'synth.kernel'}}
  synth.yield %x : tensor<4xf32>
}

//===----------------------------------------------------------------------===//
// Gradient and optimizer ops
//===----------------------------------------------------------------------===//

// -----

func.func @f(%ids: tensor<2x16xi32>, %dy: tensor<2x8x64xf32>) {
  // expected-error@+1 {{expected d_result of shape [...ids, d_model] = [2, 16, 64], got [2, 8, 64]}}
  %0 = synth.embedding_grad %ids, %dy : (tensor<2x16xi32>, tensor<2x8x64xf32>) -> tensor<256x64xf32>
  return
}

// -----

func.func @f(%x: tensor<2x16x64xf32>, %dy: tensor<2x16x32xf32>) {
  // expected-error@+1 {{expected result of shape [in, out] = [64, 32], got [32, 64]}}
  %0 = synth.linear_weight_grad %x, %dy : (tensor<2x16x64xf32>, tensor<2x16x32xf32>) -> tensor<32x64xf32>
  return
}

// -----

func.func @f(%x: tensor<2x16x64xf32>, %dy: tensor<2x16x32xf32>) {
  // expected-error@+1 {{expected result of shape [out, in] = [32, 64], got [64, 32]}}
  %0 = synth.linear_weight_grad %x, %dy {transpose_weight} : (tensor<2x16x64xf32>, tensor<2x16x32xf32>) -> tensor<64x32xf32>
  return
}

// -----

func.func @f(%x: tensor<2x16x64xf32>, %dy: tensor<2x8x32xf32>) {
  // expected-error@+1 {{expected d_result of shape [..., out] = [2, 16, ?], got [2, 8, 32]}}
  %0 = synth.linear_weight_grad %x, %dy : (tensor<2x16x64xf32>, tensor<2x8x32xf32>) -> tensor<64x32xf32>
  return
}

// -----

func.func @f(%x: tensor<2x16x64xf32>) {
  // expected-error@+1 {{expected result of shape [last dim] = [64], got [16]}}
  %0 = synth.sum_rows %x : (tensor<2x16x64xf32>) -> tensor<16xf32>
  return
}

// -----

func.func @f(%x: tensor<2x16x64xf32>, %g: tensor<32xf32>, %dy: tensor<2x16x64xf32>) {
  // expected-error@+1 {{expected gamma of shape [d] = [64], got [32]}}
  %0 = synth.layer_norm_grad %x, %g, %dy : (tensor<2x16x64xf32>, tensor<32xf32>, tensor<2x16x64xf32>) -> tensor<2x16x64xf32>
  return
}

// -----

func.func @f(%x: tensor<2x16x64xf32>, %dy: tensor<2x16x64xf32>) {
  // expected-error@+1 {{expected result of shape [d] = [64], got [16]}}
  %0 = synth.layer_norm_gamma_grad %x, %dy : (tensor<2x16x64xf32>, tensor<2x16x64xf32>) -> tensor<16xf32>
  return
}

// -----

func.func @f(%dy: tensor<2x16x64xf32>) {
  // expected-error@+1 {{N = 16 exceeds L = 8}}
  %0 = synth.positions_grad %dy : (tensor<2x16x64xf32>) -> tensor<8x64xf32>
  return
}

// -----

func.func @f(%dy: tensor<2x64xf32>, %m: tensor<2x16xi1>) {
  // expected-error@+1 {{expected result of shape [batch, N, d] = [2, 16, 64], got [2, 8, 64]}}
  %0 = synth.mean_pool_grad %dy, %m : (tensor<2x64xf32>, tensor<2x16xi1>) -> tensor<2x8x64xf32>
  return
}

// -----

func.func @f(%l: tensor<2x16x256xf32>, %t: tensor<2x8xi32>) {
  // expected-error@+1 {{expected targets of shape [...] = [2, 16], got [2, 8]}}
  %0 = synth.cross_entropy_grad %l, %t : (tensor<2x16x256xf32>, tensor<2x8xi32>) -> tensor<2x16x256xf32>
  return
}

// -----

func.func @f(%r: tensor<4x16x16xf32>, %v: tensor<2x4x16x8xf32>, %o: tensor<2x4x16x8xf32>, %lse: tensor<2x4x16xf32>) {
  // expected-error@+1 {{wrt = 2 is not a score operand, the mixture logits or the values (expected 0 <= wrt < 2)}}
  %0 = synth.fused_attention_grad [#synth.score<random, max_len = 16 : i64>] (%r) values %v output %o d_output %o stats %lse wrt 2
      : (tensor<4x16x16xf32>, tensor<2x4x16x8xf32>, tensor<2x4x16x8xf32>, tensor<2x4x16x8xf32>, tensor<2x4x16xf32>) -> tensor<2x4x16x8xf32>
  return
}

// -----

func.func @f(%r: tensor<4x16x16xf32>, %v: tensor<2x4x16x8xf32>, %o: tensor<2x4x16x8xf32>, %lse: tensor<2x4x16xf32>) {
  // expected-error@+1 {{expected a result of the type of operand #0, 'tensor<4x16x16xf32>', got 'tensor<2x4x16x8xf32>'}}
  %0 = synth.fused_attention_grad [#synth.score<random, max_len = 16 : i64>] (%r) values %v output %o d_output %o stats %lse wrt 0
      : (tensor<4x16x16xf32>, tensor<2x4x16x8xf32>, tensor<2x4x16x8xf32>, tensor<2x4x16x8xf32>, tensor<2x4x16xf32>) -> tensor<2x4x16x8xf32>
  return
}

// -----

func.func @f(%r: tensor<4x16x16xf32>, %v: tensor<2x4x16x8xf32>, %o: tensor<2x4x16x8xf32>, %lse: tensor<2x4x8xf32>) {
  // expected-error@+1 {{expected row_stats of shape [batch, heads, N] = [2, 4, 16], got [2, 4, 8]}}
  %0 = synth.fused_attention_grad [#synth.score<random, max_len = 16 : i64>] (%r) values %v output %o d_output %o stats %lse wrt 1
      : (tensor<4x16x16xf32>, tensor<2x4x16x8xf32>, tensor<2x4x16x8xf32>, tensor<2x4x16x8xf32>, tensor<2x4x8xf32>) -> tensor<2x4x16x8xf32>
  return
}

// -----

func.func @f(%r: tensor<4x16x16xf32>, %v: tensor<2x4x16x8xf32>) {
  // expected-error@+1 {{expected result of rank 3 [batch, heads, N], got [2, 4]}}
  %0 = synth.attention_stats [#synth.score<random, max_len = 16 : i64>] (%r) values %v
      : (tensor<4x16x16xf32>, tensor<2x4x16x8xf32>) -> tensor<2x4xf32>
  return
}

// -----

func.func @f(%t: tensor<i32>) {
  // expected-error@+1 {{expected peak > 0, got 0}}
  %0 = synth.learning_rate %t, %t {peak = 0.0 : f32, warmup_steps = 0 : i64} : (tensor<i32>, tensor<i32>) -> tensor<f32>
  return
}

// -----

func.func @f(%t: tensor<i32>) {
  // expected-error@+1 {{expected final_ratio in [0, 1], got 2}}
  %0 = synth.learning_rate %t, %t {peak = 1.0e-3 : f32, warmup_steps = 0 : i64, final_ratio = 2.0 : f32} : (tensor<i32>, tensor<i32>) -> tensor<f32>
  return
}

// -----

func.func @f(%t: tensor<i32>) {
  // expected-error@+1 {{expected warmup_steps >= 0, got -1}}
  %0 = synth.learning_rate %t, %t {peak = 1.0e-3 : f32, warmup_steps = -1 : i64} : (tensor<i32>, tensor<i32>) -> tensor<f32>
  return
}

// -----

func.func @f(%p: tensor<8xf32>, %lr: tensor<f32>, %t: tensor<i32>) {
  // expected-error@+1 {{expected max_grad_norm >= 0, got -1}}
  %0:3 = synth.adamw %p, %p, %p, %p, %lr, %t grad_sq_norm %lr {max_grad_norm = -1.0 : f32}
      : (tensor<8xf32>, tensor<8xf32>, tensor<8xf32>, tensor<8xf32>, tensor<f32>, tensor<i32>, tensor<f32>) -> (tensor<8xf32>, tensor<8xf32>, tensor<8xf32>)
  return
}

// -----

func.func @f(%p: tensor<4x16x8xf32>, %v: tensor<2x4x16x8xf32>) {
  // expected-error@+1 {{expected result of shape [batch, heads, N, head_dim] = [2, 4, 8, 8], got [2, 4, 16, 8]}}
  %0 = synth.attend_probs %p, %v {transpose_probs} : (tensor<4x16x8xf32>, tensor<2x4x16x8xf32>) -> tensor<2x4x16x8xf32>
  return
}
