// Logging set-up: spdlog to standard error, and the severities journald
// reads when systemd connects that stream to the journal.
#pragma once

#include <spdlog/formatter.h>
#include <spdlog/sinks/base_sink.h>
#include <spdlog/spdlog.h>

#include <atomic>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>

#include "proxy/pi_mutex.h"

namespace daemon_::logging {

// The syslog severity (syslog(3), RFC 5424 §6.2.1) journald records as
// PRIORITY for an spdlog level: trace and debug 7, info 6, warn 4, err 3,
// critical 2. spdlog has no notice (5), alert (1) or emerg (0).
int syslog_priority(spdlog::level::level_enum level);

// True when `fd` is the stream systemd connected to the journal: the
// JOURNAL_STREAM variable names that stream's device and inode as "DEV:INO"
// in decimal (systemd.exec(5), "Environment Variables in Spawned
// Processes"). Comparing them, rather than only testing that the variable is
// set, keeps a `vipproxy` started from a unit's shell with stderr redirected
// to a file or a terminal on its human format.
bool is_journal_stream(int fd, const char* journal_stream);

// The journal's format: every line of a message starts with the "<N>"
// prefix of sd-daemon(3) (journald's stream reader strips it and stores N
// as the entry's PRIORITY: SyslogLevelPrefix= is on by default), then the
// level name, then the text. No timestamp: the journal stamps each entry.
// Each line of a multi-line message is its own journal entry, so each
// carries the prefix, or the continuation lines would be stored as info.
class JournalFormatter final : public spdlog::formatter {
 public:
  void format(const spdlog::details::log_msg& msg, spdlog::memory_buf_t& dest) override;
  std::unique_ptr<spdlog::formatter> clone() const override;
};

// The same rule for text written before the logger exists (a config error
// at start): `text` with each line prefixed by "<N>" when stderr is the
// journal's stream, unchanged otherwise.
std::string for_stderr(spdlog::level::level_enum level, const std::string& text);

// Writes whole messages to a descriptor without ever waiting for it.
//
// A log line must not stop the thread that writes it: the control thread
// sends the VRRP adverts and runs the health checks, and a blocking write to
// a standard error nobody reads (journald stalled on a slow disk, a pipe
// whose reader stopped, a terminal on hold) would silence both until the
// reader comes back; the backup would take the VIP meanwhile and the proxy
// would keep sending clients to a backend it no longer checks. So what the
// descriptor does not take at once waits here, up to `capacity` bytes, and
// goes out at the next message or flush(); a message that does not fit is
// dropped and counted, and a notice (`notice(count)`, formatted by the
// caller) before the next message that fits says how many were lost there,
// as HAProxy counts the log lines its full log socket refused.
class NonBlockingWriter {
 public:
  // `fd` must not block: a socket (written with MSG_DONTWAIT) or a
  // descriptor opened O_NONBLOCK (see open_private_nonblocking()). A
  // regular file's writes are written as they come (they do not wait for a
  // reader).
  NonBlockingWriter(int fd, bool is_socket, size_t capacity, std::function<std::string(uint64_t)> notice);

  // One formatted message (one or more whole lines). False when dropped.
  bool write(std::string_view message);
  // Writes what waits, as far as the descriptor takes it now.
  void flush();
  // Waits up to `timeout_ms` for the descriptor to take what waits (at
  // exit). False when something is still waiting.
  bool drain(int timeout_ms);

  uint64_t dropped() const { return dropped_.load(std::memory_order_relaxed); }
  size_t pending_bytes() const { return pending_.size(); }

 private:
  ssize_t put(const char* p, size_t n);

  int fd_;
  bool is_socket_;
  size_t capacity_;
  std::function<std::string(uint64_t)> notice_;
  std::string pending_;
  std::deque<uint64_t> ends_;  // where each waiting message ends, in bytes ever queued
  uint64_t queued_ = 0, written_ = 0;
  std::atomic<uint64_t> dropped_{0};
  uint64_t reported_ = 0;
};

// A descriptor for writing to `fd`'s file that does not block, without
// touching `fd`'s own flags (its open file description is shared with
// whoever started us: setting O_NONBLOCK on it would change a parent
// shell's terminal or a supervisor's pipe). A pipe, FIFO or terminal is
// opened again through /proc/self/fd (a new description, O_NONBLOCK); a
// socket is used as it is (each send asks MSG_DONTWAIT), `is_socket` set; a
// regular file or anything that cannot be reopened: -1 (write it as it is).
int open_private_nonblocking(int fd, bool& is_socket);

// The daemon's sink: standard error through a NonBlockingWriter (256 KiB
// waiting at most; the notice is a warning in the logger's format).
//
// Its mutex is taken by every thread that logs: with priority inheritance
// (proxy/pi_mutex.h), so a worker preempted while writing a line never holds
// a realtime control thread waiting to log.
class StderrSink final : public spdlog::sinks::base_sink<proxy::PiMutex> {
 public:
  StderrSink();
  ~StderrSink() override;
  uint64_t dropped() const { return writer_->dropped(); }
  bool drain(int timeout_ms);

 protected:
  void sink_it_(const spdlog::details::log_msg& msg) override;
  void flush_() override;

 private:
  int fd_ = -1;  // our own description, or -1 (fd 2 itself)
  std::unique_ptr<NonBlockingWriter> writer_;
};

// The default logger "vipproxy" on standard error (StderrSink):
// JournalFormatter when stderr is the journal's stream, "date time [level]
// text" otherwise.
void setup(const std::string& level);

// Log messages dropped since setup() because standard error did not take
// them (/metrics `vipproxy_log_messages_dropped_total`); 0 before setup().
uint64_t dropped();

// Writes what waits for standard error (the control thread calls it every
// second, so a line held back goes out even when nothing else is logged).
void flush_pending();

// At exit: gives standard error up to `timeout_ms` to take the last lines.
void finish(int timeout_ms);

}  // namespace daemon_::logging
