// The journal's priorities (daemon/logging): which syslog severity each
// spdlog level is stored at, the "<N>" prefixes journald reads from a
// service's stderr (sd-daemon(3)), and when stderr is the journal's stream.
#define BOOST_TEST_MODULE logging
#include <boost/test/unit_test.hpp>

#include <fcntl.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <string>

#include "daemon/logging.h"

namespace lg = daemon_::logging;
using spdlog::level::level_enum;

namespace {

std::string format(level_enum level, const std::string& text) {
  spdlog::details::log_msg msg("vipproxy", level, text);
  spdlog::memory_buf_t buf;
  lg::JournalFormatter().format(msg, buf);
  return std::string(buf.data(), buf.size());
}

// A file's "DEV:INO", as systemd writes JOURNAL_STREAM.
std::string dev_ino(int fd) {
  struct stat st {};
  BOOST_REQUIRE_EQUAL(::fstat(fd, &st), 0);
  return std::to_string(st.st_dev) + ":" + std::to_string(st.st_ino);
}

struct TempFile {
  char path[32] = "/tmp/vipproxy-logtest-XXXXXX";
  int fd = ::mkstemp(path);
  ~TempFile() {
    ::close(fd);
    ::unlink(path);
  }
};

}  // namespace

BOOST_AUTO_TEST_CASE(levels_map_to_syslog_severities) {
  // syslog(3) / RFC 5424 §6.2.1: 2 crit, 3 err, 4 warning, 6 info, 7 debug.
  const struct {
    level_enum level;
    int priority;
  } table[] = {
      {level_enum::trace, 7}, {level_enum::debug, 7}, {level_enum::info, 6},
      {level_enum::warn, 4},  {level_enum::err, 3},   {level_enum::critical, 2},
  };
  for (const auto& row : table) {
    BOOST_TEST_CONTEXT(spdlog::level::to_string_view(row.level).data())
    BOOST_TEST(lg::syslog_priority(row.level) == row.priority);
  }
}

BOOST_AUTO_TEST_CASE(each_line_carries_the_prefix_then_level_and_text) {
  const struct {
    level_enum level;
    const char* text;
    const char* expected;
  } table[] = {
      {level_enum::info, "ready: 1 proxies", "<6>[info] ready: 1 proxies\n"},
      {level_enum::warn, "SIGHUP: threads changed", "<4>[warning] SIGHUP: threads changed\n"},
      {level_enum::err, "SIGHUP: reload failed", "<3>[error] SIGHUP: reload failed\n"},
      {level_enum::critical, "cannot bind", "<2>[critical] cannot bind\n"},
      {level_enum::debug, "check", "<7>[debug] check\n"},
      {level_enum::trace, "bytes", "<7>[trace] bytes\n"},
      // Journald makes one entry per line: continuation lines keep the severity.
      {level_enum::err, "a.yaml:3:1: proxies: bad\na.yaml:9:5: vrrp: bad",
       "<3>[error] a.yaml:3:1: proxies: bad\n<3>a.yaml:9:5: vrrp: bad\n"},
      // A trailing newline adds no empty entry.
      {level_enum::warn, "one line\n", "<4>[warning] one line\n"},
      {level_enum::info, "", "<6>[info] \n"},
  };
  for (const auto& row : table) {
    BOOST_TEST_CONTEXT(row.text)
    BOOST_TEST(format(row.level, row.text) == row.expected);
  }
}

BOOST_AUTO_TEST_CASE(journal_stream_must_name_this_very_fd) {
  TempFile a, b;
  BOOST_REQUIRE(a.fd >= 0 && b.fd >= 0);
  const std::string ours = dev_ino(a.fd);
  BOOST_TEST(lg::is_journal_stream(a.fd, ours.c_str()));
  // Another file (stderr redirected after systemd set the variable), unset,
  // or malformed: not the journal.
  BOOST_TEST(!lg::is_journal_stream(b.fd, ours.c_str()));
  BOOST_TEST(!lg::is_journal_stream(a.fd, nullptr));
  const std::string dev = ours.substr(0, ours.find(':')), ino = ours.substr(ours.find(':') + 1);
  for (const std::string& bad : {std::string(""), std::string(":"), dev, dev + ":", ":" + ino, dev + ":" + ino + "x",
                                 dev + ":" + ino + ":1", "x" + dev + ":" + ino, dev + " :" + ino, dev + ":-" + ino}) {
    BOOST_TEST_CONTEXT("JOURNAL_STREAM=" << bad)
    BOOST_TEST(!lg::is_journal_stream(a.fd, bad.c_str()));
  }
  BOOST_TEST(!lg::is_journal_stream(-1, ours.c_str()));
}

BOOST_AUTO_TEST_CASE(text_before_the_logger_is_prefixed_only_on_the_journal) {
  // for_stderr looks at fd 2 itself: point it at a file we control.
  TempFile f;
  const int saved = ::dup(2);
  BOOST_REQUIRE(saved >= 0);
  BOOST_REQUIRE(::dup2(f.fd, 2) == 2);
  const std::string stream = dev_ino(2);
  ::setenv("JOURNAL_STREAM", stream.c_str(), 1);
  const std::string journal = lg::for_stderr(level_enum::err, "a.yaml:3:1: proxies: bad\na.yaml:9:5: vrrp: bad");
  const std::string journal_nl = lg::for_stderr(level_enum::err, "x\n");
  ::setenv("JOURNAL_STREAM", "1:2", 1);
  const std::string elsewhere = lg::for_stderr(level_enum::err, "a.yaml:3:1: proxies: bad");
  ::unsetenv("JOURNAL_STREAM");
  const std::string unset = lg::for_stderr(level_enum::err, "a.yaml:3:1: proxies: bad");
  ::dup2(saved, 2);
  ::close(saved);
  BOOST_TEST(journal == "<3>a.yaml:3:1: proxies: bad\n<3>a.yaml:9:5: vrrp: bad");
  BOOST_TEST(journal_nl == "<3>x\n");
  BOOST_TEST(elsewhere == "a.yaml:3:1: proxies: bad");
  BOOST_TEST(unset == "a.yaml:3:1: proxies: bad");
}
