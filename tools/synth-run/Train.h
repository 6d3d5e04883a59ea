//===- Train.h - synth-run train ------------------------------------------===//
//
// The train command: runs an artifact's "train_step" entry over a prepared
// corpus with a progress bar, held-out evaluation, metrics, a loss plot,
// atomic checkpoints and exact resumption (docs/training.md).
//
//===----------------------------------------------------------------------===//

#ifndef SYNTHC_TOOLS_SYNTH_RUN_TRAIN_H
#define SYNTHC_TOOLS_SYNTH_RUN_TRAIN_H

#include "tools/synth-run/SynthRun.h"

#include "runtime/Safetensors.h"

#include <vector>

namespace synth::run {

/// The command's description and flags, for synth-run's command table.
extern const char kTrainSummary[];
std::vector<FlagSpec> trainFlags();

/// When `file` is a checkpoint of synth-run train (docs/training.md), drops
/// its optimizer state (the state.* tensors), leaving the parameters: the
/// other commands take a checkpoint wherever they take --weights.
void keepCheckpointParameters(safetensors::File &file);

/// Runs `synth-run train`; returns the exit status: 0 when training ends
/// (all steps or the time limit), 1 on an error or a diverged loss, 2 on bad
/// usage, 128 + the signal number after SIGINT or SIGTERM.
int runTrain(const Args &args);

} // namespace synth::run

#endif // SYNTHC_TOOLS_SYNTH_RUN_TRAIN_H
