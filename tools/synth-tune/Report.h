//===- Report.h - synth-tune's report: a table per kernel and an SVG ------===//

#ifndef SYNTHC_TOOLS_SYNTH_TUNE_REPORT_H
#define SYNTHC_TOOLS_SYNTH_TUNE_REPORT_H

#include <map>
#include <string>
#include <vector>

namespace synth::tune {

/// What was measured for one kernel (milliseconds per entry run, medians).
struct KernelResult {
  std::string kernel;
  std::string kind;
  double defaultMs = 0;
  double bestMs = 0;
  /// "search", "default" or an autoscheduler's name.
  std::string bestFrom;
  /// Per autoscheduler: its time, or a negative value when it gave up on
  /// the kernel (it then kept the explicit schedule).
  std::map<std::string, double> autoschedulerMs;
  /// Times of every searched candidate that passed the output check.
  std::vector<double> candidateMs;
  int rejected = 0;
};

struct RunSummary {
  std::string header; // model, entry, shapes, CPU, date, budget
  std::vector<std::string> autoschedulers;
  double defaultTotalMs = 0;
  double tunedTotalMs = 0;
  std::map<std::string, double> autoschedulerTotalMs;
  int rounds = 0;
  int rejectedRounds = 0;
  std::vector<std::string> notes;
};

/// Markdown: the summary, then one row per kernel.
std::string markdownReport(const RunSummary &summary,
                           const std::vector<KernelResult> &kernels);

/// An SVG strip plot: one row per kernel, each candidate's time relative to
/// the kernel's default on a log axis, the best and each autoscheduler
/// marked.
std::string svgPlot(const RunSummary &summary,
                    const std::vector<KernelResult> &kernels);

} // namespace synth::tune

#endif // SYNTHC_TOOLS_SYNTH_TUNE_REPORT_H
