// The hand-written example model of the README verifies and survives the
// canonicalizer with every op in place (nothing in it folds).
// RUN: synth-opt %synth_src_root/models/ir/tiny_random_synthesizer.mlir -canonicalize | FileCheck %s
// CHECK-LABEL: func.func @loss
// CHECK: synth.embedding
// CHECK: synth.random_scores %{{.*}} {max_len = 32 : i64}
// CHECK: synth.attend %{{.*}}, %{{.*}} {causal}
// CHECK: synth.cross_entropy
// CHECK: return
