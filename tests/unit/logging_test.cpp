// The journal's priorities (daemon/logging): which syslog severity each
// spdlog level is stored at, the "<N>" prefixes journald reads from a
// service's stderr (sd-daemon(3)), and when stderr is the journal's stream.
// And that logging never waits for standard error (NonBlockingWriter, over
// real pipes and socket pairs).
#define BOOST_TEST_MODULE logging
#include <boost/test/unit_test.hpp>

#include <fcntl.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <csignal>
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

// A pipe whose write end does not block, filled to the brim through its own
// descriptor (as a stalled journal leaves the daemon's stream).
struct FullPipe {
  int rd = -1, wr = -1;
  size_t filler = 0;
  FullPipe() {
    int p[2];
    BOOST_REQUIRE(::pipe2(p, O_NONBLOCK | O_CLOEXEC) == 0);
    rd = p[0];
    wr = p[1];
    const std::string chunk(4096, 'f');
    for (;;) {
      ssize_t n = ::write(wr, chunk.data(), chunk.size());
      if (n <= 0) break;
      filler += static_cast<size_t>(n);
    }
    BOOST_REQUIRE(filler > 0);
  }
  ~FullPipe() {
    if (rd >= 0) ::close(rd);
    if (wr >= 0) ::close(wr);
  }
  // Reads everything there is now.
  std::string read_all() {
    std::string out;
    char buf[65536];
    for (;;) {
      ssize_t n = ::read(rd, buf, sizeof buf);
      if (n <= 0) break;
      out.append(buf, static_cast<size_t>(n));
    }
    return out;
  }
  void drain_filler() { BOOST_REQUIRE_EQUAL(read_all().size(), filler); }
};

std::string lost(uint64_t n) { return "LOST " + std::to_string(n) + "\n"; }

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

BOOST_AUTO_TEST_CASE(a_full_pipe_holds_messages_back_and_they_go_out_in_order) {
  FullPipe p;
  lg::NonBlockingWriter w(p.wr, false, 1024, lost);
  // Returns at once although the pipe takes nothing.
  BOOST_TEST(w.write("one\n"));
  BOOST_TEST(w.write("two\n"));
  BOOST_TEST(w.pending_bytes() == 8u);
  w.flush();  // still full: nothing moves, nothing is lost
  BOOST_TEST(w.pending_bytes() == 8u);
  p.drain_filler();
  w.flush();
  BOOST_TEST(w.pending_bytes() == 0u);
  BOOST_TEST(p.read_all() == "one\ntwo\n");
  BOOST_TEST(w.dropped() == 0u);
  // With room, a message goes straight out.
  BOOST_TEST(w.write("three\n"));
  BOOST_TEST(w.pending_bytes() == 0u);
  BOOST_TEST(p.read_all() == "three\n");
}

BOOST_AUTO_TEST_CASE(what_does_not_fit_is_dropped_counted_and_said_where_the_gap_is) {
  FullPipe p;
  lg::NonBlockingWriter w(p.wr, false, 20, lost);
  BOOST_TEST(w.write("12345\n"));
  BOOST_TEST(!w.write("this one is too long\n"));  // 6 + 21 > 20
  BOOST_TEST(!w.write("and this\n"));              // 6 + notice 7 + 9 > 20
  BOOST_TEST(w.dropped() == 2u);
  BOOST_TEST(w.write("x\n"));  // 6 + 7 + 2 fits: the notice goes before it
  p.drain_filler();
  w.flush();
  BOOST_TEST(p.read_all() == "12345\nLOST 2\nx\n");
  // Said once: the next message comes alone.
  BOOST_TEST(w.write("y\n"));
  BOOST_TEST(p.read_all() == "y\n");
  BOOST_TEST(w.dropped() == 2u);
}

BOOST_AUTO_TEST_CASE(a_message_half_taken_is_finished_before_the_next) {
  // A socket pair with a small send buffer takes part of a long message.
  int sv[2];
  BOOST_REQUIRE(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) == 0);
  int small = 4096;
  ::setsockopt(sv[0], SOL_SOCKET, SO_SNDBUF, &small, sizeof small);
  ::setsockopt(sv[1], SOL_SOCKET, SO_RCVBUF, &small, sizeof small);
  lg::NonBlockingWriter w(sv[0], true, 1 << 20, lost);
  const std::string big(200000, 'b');
  BOOST_TEST(w.write(big + "\n"));  // returns although the socket cannot take it all
  BOOST_TEST(w.pending_bytes() > 0u);
  BOOST_TEST(w.write("after\n"));
  std::string got;
  char buf[65536];
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (got.size() < big.size() + 7 && std::chrono::steady_clock::now() < deadline) {
    ssize_t n = ::recv(sv[1], buf, sizeof buf, MSG_DONTWAIT);
    if (n > 0) got.append(buf, static_cast<size_t>(n));
    w.flush();
  }
  BOOST_TEST(got == big + "\nafter\n");
  BOOST_TEST(w.pending_bytes() == 0u);
  BOOST_TEST(w.dropped() == 0u);
  ::close(sv[0]);
  ::close(sv[1]);
}

BOOST_AUTO_TEST_CASE(a_reader_gone_loses_what_waits_and_counts_it) {
  std::signal(SIGPIPE, SIG_IGN);  // as the daemon does
  FullPipe p;
  lg::NonBlockingWriter w(p.wr, false, 1024, lost);
  BOOST_TEST(w.write("a\n"));
  BOOST_TEST(w.write("b\n"));
  ::close(p.rd);
  p.rd = -1;
  w.flush();  // EPIPE: the two can never be written
  BOOST_TEST(w.dropped() == 2u);
  BOOST_TEST(w.pending_bytes() == 0u);
  BOOST_TEST(w.drain(0));  // nothing waits
}

BOOST_AUTO_TEST_CASE(drain_waits_for_the_reader_up_to_its_deadline) {
  FullPipe p;
  lg::NonBlockingWriter w(p.wr, false, 1024, lost);
  BOOST_TEST(w.write("last words\n"));
  const auto t0 = std::chrono::steady_clock::now();
  BOOST_TEST(!w.drain(50));  // nobody reads: gives up at the deadline
  const bool waited = std::chrono::steady_clock::now() - t0 >= std::chrono::milliseconds(50);
  BOOST_TEST(waited);
  p.drain_filler();
  BOOST_TEST(w.drain(1000));
  BOOST_TEST(p.read_all() == "last words\n");
}

BOOST_AUTO_TEST_CASE(the_private_descriptor_leaves_the_shared_one_blocking) {
  int fds[2];
  BOOST_REQUIRE(::pipe2(fds, O_CLOEXEC) == 0);  // blocking, as a supervisor's pipe
  bool is_socket = true;
  const int own = lg::open_private_nonblocking(fds[1], is_socket);
  BOOST_REQUIRE(own >= 0);
  BOOST_TEST(!is_socket);
  BOOST_TEST((::fcntl(own, F_GETFL) & O_NONBLOCK) != 0);
  BOOST_TEST((::fcntl(fds[1], F_GETFL) & O_NONBLOCK) == 0);  // the shared description is untouched
  BOOST_TEST((::fcntl(own, F_GETFD) & FD_CLOEXEC) != 0);
  // It writes into the same pipe.
  BOOST_REQUIRE(::write(own, "z", 1) == 1);
  char c = 0;
  BOOST_REQUIRE(::read(fds[0], &c, 1) == 1);
  BOOST_TEST(c == 'z');
  ::close(own);
  ::close(fds[0]);
  ::close(fds[1]);

  int sv[2];
  BOOST_REQUIRE(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) == 0);
  BOOST_TEST(lg::open_private_nonblocking(sv[0], is_socket) == -1);  // used as it is, with MSG_DONTWAIT
  BOOST_TEST(is_socket);
  ::close(sv[0]);
  ::close(sv[1]);

  TempFile f;  // a regular file is written as it is
  BOOST_TEST(lg::open_private_nonblocking(f.fd, is_socket) == -1);
  BOOST_TEST(!is_socket);
}
