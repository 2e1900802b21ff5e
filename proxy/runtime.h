// State shared between the control thread (health checks, admin, VRRP) and
// the worker threads (sessions). Workers only read eligibility and bump
// session gauges; the control thread owns every decision.
#pragma once

#include <atomic>
#include <boost/asio/ip/tcp.hpp>
#include <memory>
#include <string>
#include <vector>

#include "cfg/config.h"
#include "proxy/balance.h"
#include "proxy/counters.h"

namespace proxy {

struct BackendRuntime {
  cfg::Backend cfg;
  boost::asio::ip::tcp::endpoint endpoint;  // resolved once at start
  std::atomic<bool> eligible{false};
  std::atomic<uint64_t> sessions{0};        // open now (leastconn, /status)
  std::atomic<uint64_t> sessions_total{0};
  std::atomic<uint64_t> connect_errors{0};
};

struct ProxyRuntime {
  ProxyRuntime(cfg::Proxy c, size_t workers);

  cfg::Proxy cfg;
  std::vector<std::unique_ptr<BackendRuntime>> backends;
  // `first`: the backend new sessions go to (npos: none eligible). Written by
  // the control thread only (elect_first), read by workers.
  std::atomic<size_t> current{npos};
  std::atomic<uint64_t> rr_ticket{0};
  std::atomic<uint64_t> sessions_current{0};  // maxconn is per proxy, across workers
  std::vector<std::unique_ptr<ProxyCounters>> per_worker;  // index = worker

  // Candidates snapshot for balance::choose.
  void candidates(std::vector<Candidate>& out) const;
  // Sum of a counter over all workers.
  uint64_t total(std::atomic<uint64_t> ProxyCounters::*member) const;
};

}  // namespace proxy
