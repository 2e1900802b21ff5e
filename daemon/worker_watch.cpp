#include "daemon/worker_watch.h"

namespace daemon_ {

std::optional<WorkerWatch::Stuck> WorkerWatch::check(const std::vector<uint64_t>& answered, Clock::time_point now,
                                                     Clock::duration limit) {
  for (size_t i = 0; i < sent_.size() && i < answered.size(); ++i) {
    if (due(i, answered)) continue;
    const auto waited = now - sent_[i].at;
    if (waited >= limit) return Stuck{i, std::chrono::duration_cast<std::chrono::milliseconds>(waited)};
  }
  return std::nullopt;
}

}  // namespace daemon_
