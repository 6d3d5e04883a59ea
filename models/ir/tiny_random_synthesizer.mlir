// A one-layer decoder-only Random Synthesizer language model, written by hand
// in the synth dialect (the frontend will generate this from model.json).
// Shapes: batch 2, sequence N = 16 <= L = 32, d_model 64, 4 heads of 16,
// FFN 256, byte vocabulary 256, pre-norm, causal, tied embeddings not used.
// Parameters are function arguments; the result is the mean cross-entropy.
func.func @loss(%ids: tensor<2x16xi32>, %targets: tensor<2x16xi32>,
                %embed: tensor<256x64xf32>,
                %ln1_g: tensor<64xf32>, %ln1_b: tensor<64xf32>,
                %random_r: tensor<4x32x32xf32>,
                %w_v: tensor<64x64xf32>, %w_o: tensor<64x64xf32>,
                %ln2_g: tensor<64xf32>, %ln2_b: tensor<64xf32>,
                %w_ff1: tensor<64x256xf32>, %b_ff1: tensor<256xf32>,
                %w_ff2: tensor<256x64xf32>, %b_ff2: tensor<64xf32>,
                %lnf_g: tensor<64xf32>, %lnf_b: tensor<64xf32>,
                %w_out: tensor<64x256xf32>) -> tensor<f32> {
  %x = synth.embedding %embed[%ids] : tensor<256x64xf32>, tensor<2x16xi32> -> tensor<2x16x64xf32>

  // Attention sublayer: softmax(R[0:N, 0:N] + causal) (x W_v), per head.
  %h = synth.layer_norm %x, %ln1_g, %ln1_b : (tensor<2x16x64xf32>, tensor<64xf32>, tensor<64xf32>) -> tensor<2x16x64xf32>
  %v = synth.linear %h, %w_v : (tensor<2x16x64xf32>, tensor<64x64xf32>) -> tensor<2x16x64xf32>
  %vh = synth.split_heads %v : tensor<2x16x64xf32> -> tensor<2x4x16x16xf32>
  %s = synth.random_scores %random_r {max_len = 32 : i64} : (tensor<4x32x32xf32>) -> tensor<4x16x16xf32>
  %a = synth.attend %s, %vh {causal} : (tensor<4x16x16xf32>, tensor<2x4x16x16xf32>) -> tensor<2x4x16x16xf32>
  %am = synth.merge_heads %a : tensor<2x4x16x16xf32> -> tensor<2x16x64xf32>
  %o = synth.linear %am, %w_o : (tensor<2x16x64xf32>, tensor<64x64xf32>) -> tensor<2x16x64xf32>
  %x1 = synth.add %x, %o : tensor<2x16x64xf32>

  // Feed-forward sublayer.
  %h2 = synth.layer_norm %x1, %ln2_g, %ln2_b : (tensor<2x16x64xf32>, tensor<64xf32>, tensor<64xf32>) -> tensor<2x16x64xf32>
  %f1 = synth.linear %h2, %w_ff1 bias %b_ff1 : (tensor<2x16x64xf32>, tensor<64x256xf32>, tensor<256xf32>) -> tensor<2x16x256xf32>
  %f1r = synth.relu %f1 : tensor<2x16x256xf32>
  %f2 = synth.linear %f1r, %w_ff2 bias %b_ff2 : (tensor<2x16x256xf32>, tensor<256x64xf32>, tensor<64xf32>) -> tensor<2x16x64xf32>
  %x2 = synth.add %x1, %f2 : tensor<2x16x64xf32>

  // Head and loss.
  %hf = synth.layer_norm %x2, %lnf_g, %lnf_b : (tensor<2x16x64xf32>, tensor<64xf32>, tensor<64xf32>) -> tensor<2x16x64xf32>
  %logits = synth.linear %hf, %w_out : (tensor<2x16x64xf32>, tensor<64x256xf32>) -> tensor<2x16x256xf32>
  %loss = synth.cross_entropy %logits, %targets {ignore_index = -1 : i64} : (tensor<2x16x256xf32>, tensor<2x16xi32>) -> tensor<f32>
  return %loss : tensor<f32>
}
