//===- Search.cpp - the schedule space of a kernel, and moves in it -------===//

#include "tools/synth-tune/Search.h"

#include <algorithm>
#include <cmath>

namespace synth::tune {

namespace {

/// Largest useful tile: the kernel's extent along it when known.
int64_t tileBound(const std::string &field, const sched::KernelTraits &traits) {
  if ((field == "key_tile" || field == "query_tile") && traits.keys > 0) {
    // Queries and keys are the same length except in cross-attention; the
    // back end clamps a tile to its extent, so past it nothing changes.
    int64_t bound = 1;
    while (bound < traits.keys) {
      bound *= 2;
    }
    return bound;
  }
  return 1024;
}

} // namespace

double KernelSpace::size() const {
  double n = 1;
  for (const FieldSpace &f : fields) {
    n = std::min(1e18, n * static_cast<double>(f.values.size()));
  }
  return n;
}

KernelSpace spaceOf(const std::string &kernel,
                    const sched::KernelTraits &traits, const sched::Isa &isa,
                    const sched::Schedule &defaults) {
  KernelSpace space;
  space.kernel = kernel;
  space.traits = traits;
  space.isa = &isa;
  for (const sched::FieldDef &def : sched::fieldsOf(traits)) {
    FieldSpace f;
    f.name = def.name;
    if (!def.choices.empty()) {
      for (const std::string &c : def.choices) {
        f.values.push_back(c);
      }
    } else {
      int64_t max = def.max;
      if (def.name == "vector_width" || def.name == "reduce_lanes") {
        max = std::min<int64_t>(max, isa.floatLanes);
      }
      if (def.name == "parallel_task") {
        max = 64;
      } else if (max > 16) {
        max = std::min(max, tileBound(def.name, traits));
      }
      std::vector<int64_t> ints;
      if (def.min == 0) {
        ints.push_back(0);
      }
      if (!def.powerOfTwo && max <= 16) {
        for (int64_t v = std::max<int64_t>(def.min, 1); v <= max; ++v) {
          ints.push_back(v);
        }
      } else {
        for (int64_t v = 1; v <= max; v *= 2) {
          if (v >= def.min) {
            ints.push_back(v);
          }
        }
      }
      auto it = defaults.fields.find(def.name);
      if (it != defaults.fields.end()) {
        if (const int64_t *d = std::get_if<int64_t>(&it->second)) {
          ints.push_back(*d);
        }
      }
      std::sort(ints.begin(), ints.end());
      ints.erase(std::unique(ints.begin(), ints.end()), ints.end());
      for (int64_t v : ints) {
        f.values.push_back(v);
      }
    }
    space.fields.push_back(std::move(f));
  }
  return space;
}

std::optional<sched::Schedule> randomPoint(const KernelSpace &space,
                                           std::mt19937_64 &rng) {
  for (int attempt = 0; attempt < 200; ++attempt) {
    sched::Schedule s;
    for (const FieldSpace &f : space.fields) {
      std::uniform_int_distribution<size_t> pick(0, f.values.size() - 1);
      s.fields[f.name] = f.values[pick(rng)];
    }
    if (!sched::validate(s, space.traits, *space.isa)) {
      return s;
    }
  }
  return std::nullopt;
}

std::optional<sched::Schedule> neighbour(const KernelSpace &space,
                                         const sched::Schedule &from,
                                         std::mt19937_64 &rng) {
  if (space.fields.empty()) {
    return std::nullopt;
  }
  for (int attempt = 0; attempt < 200; ++attempt) {
    sched::Schedule s = from;
    int moves = std::uniform_int_distribution<int>(1, 2)(rng);
    for (int m = 0; m < moves; ++m) {
      const FieldSpace &f = space.fields[std::uniform_int_distribution<size_t>(
          0, space.fields.size() - 1)(rng)];
      if (f.values.size() < 2) {
        continue;
      }
      auto current =
          std::find(f.values.begin(), f.values.end(), s.fields.at(f.name));
      size_t index = current == f.values.end() ? 0 : current - f.values.begin();
      size_t next;
      if (std::holds_alternative<std::string>(f.values.front())) {
        // Another choice.
        next =
            std::uniform_int_distribution<size_t>(0, f.values.size() - 2)(rng);
        if (next >= index) {
          ++next;
        }
      } else if (index == 0) {
        next = 1;
      } else if (index + 1 == f.values.size()) {
        next = index - 1;
      } else {
        next = std::bernoulli_distribution(0.5)(rng) ? index + 1 : index - 1;
      }
      s.fields[f.name] = f.values[next];
    }
    if (s.fields != from.fields &&
        !sched::validate(s, space.traits, *space.isa)) {
      return s;
    }
  }
  return std::nullopt;
}

} // namespace synth::tune
