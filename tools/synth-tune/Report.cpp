//===- Report.cpp - synth-tune's report: a table per kernel and an SVG ----===//

#include "tools/synth-tune/Report.h"

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

#include <algorithm>
#include <cmath>

namespace synth::tune {

namespace {

std::string ms(double value) {
  return value > 0 ? absl::StrFormat("%.3f", value) : "-";
}

std::string ratio(double base, double value) {
  return base > 0 && value > 0 ? absl::StrFormat("%.2fx", base / value) : "-";
}

std::string escape(const std::string &text) {
  std::string out;
  for (char c : text) {
    switch (c) {
    case '<':
      out += "&lt;";
      break;
    case '>':
      out += "&gt;";
      break;
    case '&':
      out += "&amp;";
      break;
    default:
      out += c;
    }
  }
  return out;
}

const char *kColors[] = {"#d62728", "#2ca02c", "#9467bd", "#8c564b"};

} // namespace

std::string markdownReport(const RunSummary &summary,
                           const std::vector<KernelResult> &kernels) {
  std::string out =
      absl::StrCat("# synth-tune report\n\n", summary.header, "\n\n");
  absl::StrAppend(&out, "| | ms per run | speed-up over the default |\n",
                  "|---|---|---|\n");
  absl::StrAppend(&out, "| default schedules | ", ms(summary.defaultTotalMs),
                  " | 1.00x |\n");
  for (const std::string &a : summary.autoschedulers) {
    auto it = summary.autoschedulerTotalMs.find(a);
    double t = it == summary.autoschedulerTotalMs.end() ? 0 : it->second;
    absl::StrAppend(&out, "| ", a, " | ", ms(t), " | ",
                    ratio(summary.defaultTotalMs, t), " |\n");
  }
  absl::StrAppend(
      &out, "| tuned (synth-tune's schedule file) | ", ms(summary.tunedTotalMs),
      " | ", ratio(summary.defaultTotalMs, summary.tunedTotalMs), " |\n\n");
  absl::StrAppend(&out, summary.rounds, " search rounds (",
                  summary.rejectedRounds,
                  " rejected by the output check). Per kernel, medians in "
                  "ms; the best is taken from the search, the default and "
                  "the autoschedulers.\n\n");
  absl::StrAppend(&out, "| kernel | kind | default | best | from | speed-up |");
  for (const std::string &a : summary.autoschedulers) {
    absl::StrAppend(&out, " ", a, " |");
  }
  absl::StrAppend(&out, " candidates |\n|---|---|---|---|---|---|");
  for (size_t i = 0; i < summary.autoschedulers.size(); ++i) {
    absl::StrAppend(&out, "---|");
  }
  absl::StrAppend(&out, "---|\n");
  for (const KernelResult &k : kernels) {
    absl::StrAppend(&out, "| ", k.kernel, " | ", k.kind, " | ", ms(k.defaultMs),
                    " | ", ms(k.bestMs), " | ", k.bestFrom, " | ",
                    ratio(k.defaultMs, k.bestMs), " |");
    for (const std::string &a : summary.autoschedulers) {
      auto it = k.autoschedulerMs.find(a);
      if (it == k.autoschedulerMs.end()) {
        absl::StrAppend(&out, " - |");
      } else if (it->second < 0) {
        absl::StrAppend(&out, " gave up |");
      } else {
        absl::StrAppend(&out, " ", ms(it->second), " |");
      }
    }
    absl::StrAppend(
        &out, " ", k.candidateMs.size(),
        k.rejected ? absl::StrCat(" (", k.rejected, " rejected)") : "", " |\n");
  }
  if (!summary.notes.empty()) {
    absl::StrAppend(&out, "\nNotes:\n");
    for (const std::string &n : summary.notes) {
      absl::StrAppend(&out, "- ", n, "\n");
    }
  }
  return out;
}

std::string svgPlot(const RunSummary &summary,
                    const std::vector<KernelResult> &kernels) {
  // x: log2(time / default) in [-3, 3] (8x faster .. 8x slower).
  const double left = 260, width = 520, top = 40, rowHeight = 22;
  const double height = top + rowHeight * kernels.size() + 60;
  auto x = [&](double relative) {
    double l = std::clamp(std::log2(relative), -3.0, 3.0);
    return left + (l + 3.0) / 6.0 * width;
  };
  std::string out = absl::StrFormat(
      "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" height=\"%d\" "
      "font-family=\"sans-serif\" font-size=\"11\">\n",
      static_cast<int>(left + width + 40), static_cast<int>(height));
  absl::StrAppend(&out,
                  "<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n",
                  "<text x=\"10\" y=\"18\" font-size=\"13\">synth-tune: each "
                  "candidate's time relative to the kernel's default schedule "
                  "(log scale; left is faster)</text>\n");
  for (int e = -3; e <= 3; ++e) {
    double px = x(std::exp2(e));
    absl::StrAppendFormat(
        &out,
        "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" "
        "stroke=\"%s\"/>\n<text x=\"%.1f\" y=\"%.1f\" "
        "text-anchor=\"middle\">%s</text>\n",
        px, top - 8, px, top + rowHeight * kernels.size(),
        e == 0 ? "#444" : "#ddd", px, top + rowHeight * kernels.size() + 14,
        e < 0    ? absl::StrCat(1 << -e, "x faster")
        : e == 0 ? std::string("default")
                 : absl::StrCat(1 << e, "x slower"));
  }
  for (size_t i = 0; i < kernels.size(); ++i) {
    const KernelResult &k = kernels[i];
    double y = top + rowHeight * i + rowHeight / 2;
    absl::StrAppendFormat(&out,
                          "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"end\">%s "
                          "(%s ms)</text>\n",
                          left - 8, y + 4, escape(k.kernel), ms(k.defaultMs));
    if (k.defaultMs <= 0) {
      continue;
    }
    for (double t : k.candidateMs) {
      absl::StrAppendFormat(&out,
                            "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"2.5\" "
                            "fill=\"#1f77b4\" fill-opacity=\"0.5\"/>\n",
                            x(t / k.defaultMs), y);
    }
    size_t a = 0;
    for (const std::string &name : summary.autoschedulers) {
      auto it = k.autoschedulerMs.find(name);
      if (it != k.autoschedulerMs.end() && it->second > 0) {
        double px = x(it->second / k.defaultMs);
        absl::StrAppendFormat(&out,
                              "<rect x=\"%.1f\" y=\"%.1f\" width=\"6\" "
                              "height=\"6\" fill=\"%s\"/>\n",
                              px - 3, y - 3, kColors[a % 4]);
      }
      ++a;
    }
    if (k.bestMs > 0) {
      absl::StrAppendFormat(&out,
                            "<path d=\"M %.1f %.1f l 5 9 l -10 0 z\" "
                            "fill=\"black\"/>\n",
                            x(k.bestMs / k.defaultMs), y - 5);
    }
  }
  double legendY = top + rowHeight * kernels.size() + 34;
  absl::StrAppendFormat(&out,
                        "<circle cx=\"20\" cy=\"%.1f\" r=\"3\" "
                        "fill=\"#1f77b4\"/><text x=\"28\" y=\"%.1f\">search "
                        "candidate</text>\n<path d=\"M 120 %.1f l 5 9 l -10 "
                        "0 z\" fill=\"black\"/><text x=\"130\" y=\"%.1f\">"
                        "best</text>\n",
                        legendY, legendY + 4, legendY - 5, legendY + 4);
  double lx = 180;
  size_t a = 0;
  for (const std::string &name : summary.autoschedulers) {
    absl::StrAppendFormat(&out,
                          "<rect x=\"%.1f\" y=\"%.1f\" width=\"6\" "
                          "height=\"6\" fill=\"%s\"/><text x=\"%.1f\" "
                          "y=\"%.1f\">%s</text>\n",
                          lx, legendY - 3, kColors[a % 4], lx + 10, legendY + 4,
                          escape(name));
    lx += 110;
    ++a;
  }
  absl::StrAppend(&out, "</svg>\n");
  return out;
}

} // namespace synth::tune
