#include "proxy/runtime.h"

namespace proxy {

namespace {

std::vector<std::shared_ptr<BackendRuntime>> make_backends(const cfg::Proxy& c, const ProxyRuntime* previous) {
  std::vector<std::shared_ptr<BackendRuntime>> out;
  for (const auto& b : c.backends) {
    std::shared_ptr<BackendRuntime> rt;
    if (previous)
      for (const auto& old : previous->backends)
        if (old->cfg.name == b.name && old->cfg.address == b.address) rt = old;
    if (!rt) {
      rt = std::make_shared<BackendRuntime>();
      rt->cfg = b;
    }
    out.push_back(std::move(rt));
  }
  return out;
}

}  // namespace

ProxyStats::ProxyStats(size_t workers) {
  for (size_t i = 0; i < workers; ++i) per_worker.push_back(std::make_unique<ProxyCounters>());
}

ProxyRuntime::ProxyRuntime(cfg::Proxy c, size_t workers, const ProxyRuntime* previous)
    : cfg(std::move(c)),
      backends(make_backends(cfg, previous)),
      stats(previous ? previous->stats : std::make_shared<ProxyStats>(workers)) {}

void ProxyRuntime::candidates(std::vector<Candidate>& out) const {
  out.resize(backends.size());
  for (size_t i = 0; i < backends.size(); ++i) {
    out[i].eligible = backends[i]->eligible.load(std::memory_order_acquire);
    out[i].sessions = backends[i]->sessions.load(std::memory_order_relaxed);
  }
}

uint64_t ProxyRuntime::total(std::atomic<uint64_t> ProxyCounters::*member) const {
  uint64_t sum = 0;
  for (const auto& w : stats->per_worker) sum += ((*w).*member).load(std::memory_order_relaxed);
  return sum;
}

size_t ProxyRuntime::index_of(const BackendRuntime* b) const {
  for (size_t i = 0; i < backends.size(); ++i)
    if (backends[i].get() == b) return i;
  return npos;
}

}  // namespace proxy
