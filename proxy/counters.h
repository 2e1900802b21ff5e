// Counters are declared once here and exported to both /status (JSON) and
// /metrics (Prometheus) by iterating the same X-macro (Envoy's ALL_*_STATS).
#pragma once

#include <atomic>
#include <cstdint>

namespace proxy {

// X(name, prometheus type, help)
#define VIPPROXY_PROXY_COUNTERS(X)                                                          \
  X(sessions_total, counter, "Client connections accepted")                                 \
  X(bytes_in, counter, "Bytes forwarded from clients to backends")                          \
  X(bytes_out, counter, "Bytes forwarded from backends to clients")                         \
  X(connect_errors, counter, "Backend connection attempts that failed or timed out")        \
  X(queued_total, counter, "Connections that had to wait for an eligible backend")          \
  X(queue_timeouts, counter, "Connections closed after waiting queue_timeout for a backend") \
  X(sessions_cut_on_down, counter, "Sessions closed because their backend stopped being eligible") \
  X(idle_timeouts, counter, "Sessions closed by idle_timeout")                              \
  X(fin_timeouts, counter, "Half-closed sessions closed by client_fin_timeout or server_fin_timeout") \
  X(accept_errors, counter, "Failed accept() calls (e.g. EMFILE); accepting pauses briefly") \
  X(maxconn_pauses, counter, "Times accepting paused because maxconn sessions were open")   \
  X(buffered_fallbacks, counter, "Sessions that could not splice and copied through user space")   \
  X(kernel_handovers, counter, "Sessions handed to the kernel data path (sockmap)")                 \
  X(kernel_takebacks, counter, "Sessions taken back from the kernel path (a slow reader, or a bulk stream)") \
  X(kernel_refusals, counter, "Hand-overs the kernel refused (a FIN had come, or its maps were full)") \
  X(kernel_retransmitted_bytes_trimmed, counter, "Bytes the kernel path received twice (a retransmission overlapping bytes already received) and did not pass on again") \
  X(kernel_lost_sessions, counter, "Sessions closed because the kernel path could not account for their bytes (a retransmission it could not cut, or sockets it could not read)") \
  X(sessions_copy, gauge, "Established sessions on the copy data path now")                           \
  X(sessions_splice, gauge, "Established sessions on the splice data path now")                       \
  X(sessions_kernel, gauge, "Established sessions the kernel forwards now")

// One instance per (proxy, worker thread): written by that worker only, so no
// cache line is shared on the data path; readers sum over workers.
struct alignas(64) ProxyCounters {
#define VIPPROXY_DECLARE_COUNTER(name, type, help) std::atomic<uint64_t> name{0};
  VIPPROXY_PROXY_COUNTERS(VIPPROXY_DECLARE_COUNTER)
#undef VIPPROXY_DECLARE_COUNTER
};

inline void bump(std::atomic<uint64_t>& c, uint64_t n = 1) {
  // Single writer: a relaxed load+store is enough and cheaper than fetch_add.
  c.store(c.load(std::memory_order_relaxed) + n, std::memory_order_relaxed);
}

}  // namespace proxy
