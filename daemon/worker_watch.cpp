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

std::vector<WorkerWatch::Change> WorkerWatch::update(const std::vector<uint64_t>& answered, Clock::time_point now,
                                                     Clock::duration limit) {
  std::vector<Change> changes;
  for (size_t i = 0; i < sent_.size() && i < answered.size(); ++i) {
    auto& s = stuck_[i];
    if (due(i, answered)) {
      if (s.now) changes.push_back({i, false, s.for_});
      s.now = false;
      continue;
    }
    const auto waited = std::chrono::duration_cast<std::chrono::milliseconds>(now - sent_[i].at);
    if (waited < limit) continue;  // late, not stuck (nor recovered: its heartbeat is still unanswered)
    if (!s.now) changes.push_back({i, true, waited});
    s.now = true;
    s.for_ = waited;
  }
  return changes;
}

std::vector<size_t> WorkerWatch::stuck() const {
  std::vector<size_t> out;
  for (size_t i = 0; i < stuck_.size(); ++i)
    if (stuck_[i].now) out.push_back(i);
  return out;
}

}  // namespace daemon_
