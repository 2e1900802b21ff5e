// Logging set-up: spdlog to standard error, and the severities journald
// reads when systemd connects that stream to the journal.
#pragma once

#include <spdlog/formatter.h>
#include <spdlog/spdlog.h>

#include <memory>
#include <string>

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

// The default logger "vipproxy" on standard error: JournalFormatter when
// stderr is the journal's stream, "date time [level] text" otherwise.
void setup(const std::string& level);

}  // namespace daemon_::logging
