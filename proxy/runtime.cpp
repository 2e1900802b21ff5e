#include "proxy/runtime.h"

namespace proxy {

ProxyRuntime::ProxyRuntime(cfg::Proxy c, size_t workers) : cfg(std::move(c)) {
  for (const auto& b : cfg.backends) {
    auto rt = std::make_unique<BackendRuntime>();
    rt->cfg = b;
    backends.push_back(std::move(rt));
  }
  for (size_t i = 0; i < workers; ++i) per_worker.push_back(std::make_unique<ProxyCounters>());
}

void ProxyRuntime::candidates(std::vector<Candidate>& out) const {
  out.resize(backends.size());
  for (size_t i = 0; i < backends.size(); ++i) {
    out[i].eligible = backends[i]->eligible.load(std::memory_order_acquire);
    out[i].sessions = backends[i]->sessions.load(std::memory_order_relaxed);
  }
}

uint64_t ProxyRuntime::total(std::atomic<uint64_t> ProxyCounters::*member) const {
  uint64_t sum = 0;
  for (const auto& w : per_worker) sum += ((*w).*member).load(std::memory_order_relaxed);
  return sum;
}

}  // namespace proxy
