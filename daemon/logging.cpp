#include "daemon/logging.h"

// The compiled spdlog (Debian's libspdlog) instantiates base_sink for
// std::mutex and null_mutex only: ours, over proxy::PiMutex, from its
// template definitions here.
#include <spdlog/sinks/base_sink-inl.h>

#include <fcntl.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <charconv>
#include <cstdlib>
#include <cstring>
#include <string_view>

template class spdlog::sinks::base_sink<proxy::PiMutex>;

namespace daemon_::logging {

int syslog_priority(spdlog::level::level_enum level) {
  switch (level) {
    case spdlog::level::trace:
    case spdlog::level::debug: return 7;  // LOG_DEBUG
    case spdlog::level::info: return 6;   // LOG_INFO
    case spdlog::level::warn: return 4;   // LOG_WARNING
    case spdlog::level::err: return 3;    // LOG_ERR
    case spdlog::level::critical: return 2;  // LOG_CRIT
    default: return 6;  // level::off is never logged
  }
}

bool is_journal_stream(int fd, const char* journal_stream) {
  if (!journal_stream) return false;
  std::string_view s(journal_stream);
  const auto colon = s.find(':');
  if (colon == std::string_view::npos || colon == 0 || colon + 1 == s.size()) return false;
  unsigned long long dev = 0, ino = 0;
  const char* end = s.data() + s.size();
  auto [p1, e1] = std::from_chars(s.data(), s.data() + colon, dev);
  if (e1 != std::errc{} || p1 != s.data() + colon) return false;
  auto [p2, e2] = std::from_chars(s.data() + colon + 1, end, ino);
  if (e2 != std::errc{} || p2 != end) return false;
  struct stat st {};
  if (::fstat(fd, &st) != 0) return false;
  return static_cast<unsigned long long>(st.st_dev) == dev && static_cast<unsigned long long>(st.st_ino) == ino;
}

namespace {

void append(spdlog::memory_buf_t& dest, std::string_view s) { dest.append(s.data(), s.data() + s.size()); }

// "<N>" + first line, "<N>" + each further line, one '\n' after each; a
// trailing newline in the text adds no empty entry.
void prefixed_lines(spdlog::memory_buf_t& dest, int priority, std::string_view head, std::string_view text) {
  const std::string prefix = "<" + std::to_string(priority) + ">";
  if (!text.empty() && text.back() == '\n') text.remove_suffix(1);
  bool first = true;
  for (;;) {
    const auto nl = text.find('\n');
    append(dest, prefix);
    if (first) append(dest, head);
    append(dest, text.substr(0, nl));
    append(dest, "\n");
    first = false;
    if (nl == std::string_view::npos) break;
    text.remove_prefix(nl + 1);
  }
}

}  // namespace

void JournalFormatter::format(const spdlog::details::log_msg& msg, spdlog::memory_buf_t& dest) {
  const auto name = spdlog::level::to_string_view(msg.level);
  std::string head = "[" + std::string(name.data(), name.size()) + "] ";
  prefixed_lines(dest, syslog_priority(msg.level), head, std::string_view(msg.payload.data(), msg.payload.size()));
}

std::unique_ptr<spdlog::formatter> JournalFormatter::clone() const { return std::make_unique<JournalFormatter>(); }

std::string for_stderr(spdlog::level::level_enum level, const std::string& text) {
  if (!is_journal_stream(2, std::getenv("JOURNAL_STREAM"))) return text;
  spdlog::memory_buf_t buf;
  prefixed_lines(buf, syslog_priority(level), "", text);
  std::string out(buf.data(), buf.size());
  // The caller ends the text as it would on a terminal.
  if (text.empty() || text.back() != '\n') out.pop_back();
  return out;
}

// ---- NonBlockingWriter ----

NonBlockingWriter::NonBlockingWriter(int fd, bool is_socket, size_t capacity,
                                     std::function<std::string(uint64_t)> notice)
    : fd_(fd), is_socket_(is_socket), capacity_(capacity), notice_(std::move(notice)) {}

ssize_t NonBlockingWriter::put(const char* p, size_t n) {
  if (is_socket_) return ::send(fd_, p, n, MSG_DONTWAIT | MSG_NOSIGNAL);
  return ::write(fd_, p, n);
}

void NonBlockingWriter::flush() {
  size_t off = 0;
  while (off < pending_.size()) {
    ssize_t n = put(pending_.data() + off, pending_.size() - off);
    if (n > 0) {
      off += static_cast<size_t>(n);
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) break;
    // The reader is gone (EPIPE) or the descriptor is bad: what waits can
    // never be written. Count it as dropped rather than keep it forever.
    dropped_.fetch_add(ends_.size(), std::memory_order_relaxed);
    off = pending_.size();
    ends_.clear();
    break;
  }
  pending_.erase(0, off);
  written_ += off;
  while (!ends_.empty() && ends_.front() <= written_) ends_.pop_front();
}

bool NonBlockingWriter::drain(int timeout_ms) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
  flush();
  while (!pending_.empty()) {
    const auto left = std::chrono::ceil<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now()).count();
    if (left <= 0) return false;
    pollfd p{fd_, POLLOUT, 0};
    if (::poll(&p, 1, static_cast<int>(left)) < 0 && errno != EINTR) return false;
    flush();
  }
  return true;
}

bool NonBlockingWriter::write(std::string_view message) {
  flush();
  auto queue = [&](std::string_view text) {
    pending_.append(text);
    queued_ += text.size();
    ends_.push_back(queued_);
  };
  // What was lost is said just before the next message that fits: the
  // notice stands where the gap is.
  const uint64_t lost = dropped();
  const std::string note = lost != reported_ ? notice_(lost - reported_) : std::string();
  if (pending_.size() + note.size() + message.size() > capacity_) {
    dropped_.fetch_add(1, std::memory_order_relaxed);
    return false;
  }
  if (!note.empty()) {
    queue(note);
    reported_ = lost;
  }
  queue(message);
  flush();
  return true;
}

int open_private_nonblocking(int fd, bool& is_socket) {
  is_socket = false;
  struct stat st {};
  if (::fstat(fd, &st) != 0) return -1;
  if (S_ISSOCK(st.st_mode)) {
    is_socket = true;
    return -1;
  }
  if (!S_ISFIFO(st.st_mode) && !S_ISCHR(st.st_mode)) return -1;
  const std::string path = "/proc/self/fd/" + std::to_string(fd);
  return ::open(path.c_str(), O_WRONLY | O_NONBLOCK | O_CLOEXEC | O_NOCTTY);
}

// ---- StderrSink ----

StderrSink::StderrSink() {
  bool is_socket = false;
  fd_ = open_private_nonblocking(2, is_socket);
  writer_ = std::make_unique<NonBlockingWriter>(fd_ >= 0 ? fd_ : 2, is_socket, 256 * 1024, [this](uint64_t n) {
    spdlog::details::log_msg msg("vipproxy", spdlog::level::warn,
                                 std::to_string(n) + " log message(s) dropped: standard error did not take them "
                                                     "(vipproxy_log_messages_dropped_total)");
    spdlog::memory_buf_t buf;
    formatter_->format(msg, buf);
    return std::string(buf.data(), buf.size());
  });
}

StderrSink::~StderrSink() {
  if (fd_ >= 0) ::close(fd_);
}

void StderrSink::sink_it_(const spdlog::details::log_msg& msg) {
  spdlog::memory_buf_t buf;
  formatter_->format(msg, buf);
  writer_->write(std::string_view(buf.data(), buf.size()));
}

void StderrSink::flush_() { writer_->flush(); }

bool StderrSink::drain(int timeout_ms) {
  std::lock_guard<proxy::PiMutex> lock(mutex_);
  return writer_->drain(timeout_ms);
}

namespace {
std::shared_ptr<StderrSink> g_sink;
}

void setup(const std::string& level) {
  g_sink = std::make_shared<StderrSink>();
  auto logger = std::make_shared<spdlog::logger>("vipproxy", g_sink);
  if (is_journal_stream(2, std::getenv("JOURNAL_STREAM")))
    logger->set_formatter(std::make_unique<JournalFormatter>());
  else
    logger->set_pattern("%Y-%m-%d %H:%M:%S.%e [%l] %v");
  logger->set_level(spdlog::level::from_str(level));
  // No flush_on(): StderrSink writes each line as it comes (what waits goes
  // out with the next line or flush_pending()).
  spdlog::set_default_logger(logger);
}

uint64_t dropped() { return g_sink ? g_sink->dropped() : 0; }

void flush_pending() {
  if (g_sink) g_sink->flush();
}

void finish(int timeout_ms) {
  if (g_sink) g_sink->drain(timeout_ms);
}

}  // namespace daemon_::logging
