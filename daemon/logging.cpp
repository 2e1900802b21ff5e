#include "daemon/logging.h"

#include <spdlog/sinks/stdout_sinks.h>
#include <sys/stat.h>

#include <charconv>
#include <cstdlib>
#include <cstring>
#include <string_view>

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

void setup(const std::string& level) {
  auto logger = spdlog::stderr_logger_mt("vipproxy");
  if (is_journal_stream(2, std::getenv("JOURNAL_STREAM")))
    logger->set_formatter(std::make_unique<JournalFormatter>());
  else
    logger->set_pattern("%Y-%m-%d %H:%M:%S.%e [%l] %v");
  logger->set_level(spdlog::level::from_str(level));
  logger->flush_on(spdlog::level::trace);
  spdlog::set_default_logger(logger);
}

}  // namespace daemon_::logging
