// vrrp::FdReader: a flooded descriptor must not keep the control thread
// from its other handlers (the Adver_Timer above all): it reads a bounded
// batch, then yields.
#define BOOST_TEST_MODULE vrrp_fd_reader
#include "vrrp/fd_reader.h"

#include <sys/socket.h>
#include <unistd.h>

#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/test/unit_test.hpp>
#include <utility>

namespace asio = boost::asio;
using vrrp::FdReader;

namespace {

// A datagram socketpair with `n` one-byte datagrams queued on the read end.
// What the sender may queue is bounded by its send buffer (~270 small
// datagrams with the default wmem) and net.unix.max_dgram_qlen (512).
struct Flooded {
  explicit Flooded(int n) {
    BOOST_REQUIRE_EQUAL(::socketpair(AF_UNIX, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, fds), 0);
    for (int i = 0; i < n; ++i) {
      uint8_t b = uint8_t(i);
      BOOST_REQUIRE_EQUAL(::send(fds[1], &b, 1, 0), 1);
    }
  }
  ~Flooded() {
    if (fds[1] >= 0) ::close(fds[1]);
  }
  // The reader takes ownership of the read end.
  int take_reader_fd() { return std::exchange(fds[0], -1); }
  int fds[2]{-1, -1};
};

bool read_one(int fd, int& count) {
  uint8_t b;
  if (::recv(fd, &b, 1, 0) < 0) return false;
  ++count;
  return true;
}

}  // namespace

BOOST_AUTO_TEST_CASE(a_handler_posted_during_a_flood_runs_after_at_most_one_batch) {
  asio::io_context io;
  Flooded f(200);
  int fd = f.take_reader_fd();
  int count = 0;
  int count_when_posted_ran = -1;
  auto r = std::make_shared<FdReader>(io, fd, [&] {
    if (!read_one(fd, count)) return false;
    // What a timer expiring during the flood looks like to the io_context:
    // a handler queued while the reader works.
    if (count == 1) asio::post(io, [&] { count_when_posted_ran = count; });
    return true;
  });
  r->arm();
  io.run_for(std::chrono::seconds(5));
  BOOST_TEST(count == 200);  // everything is read in the end
  BOOST_TEST(count_when_posted_ran >= 1);
  BOOST_TEST(count_when_posted_ran < 200);  // draining to EAGAIN first gives 200
  BOOST_TEST(count_when_posted_ran <= FdReader::kBatch);
  r->close();
}

BOOST_AUTO_TEST_CASE(an_expired_timer_fires_between_batches) {
  asio::io_context io;
  Flooded f(200);
  int fd = f.take_reader_fd();
  int count = 0;
  int count_when_fired = -1;
  asio::steady_timer timer(io);
  auto r = std::make_shared<FdReader>(io, fd, [&] {
    if (!read_one(fd, count)) return false;
    if (count == 1) {
      timer.expires_after(std::chrono::milliseconds(0));
      timer.async_wait([&](const boost::system::error_code& ec) {
        if (!ec) count_when_fired = count;
      });
    }
    return true;
  });
  r->arm();
  io.run_for(std::chrono::seconds(5));
  BOOST_TEST(count == 200);
  BOOST_TEST(count_when_fired >= 1);
  BOOST_TEST(count_when_fired < 200);
  r->close();
}

BOOST_AUTO_TEST_CASE(drained_reader_waits_for_more_and_reads_it) {
  asio::io_context io;
  Flooded f(3);
  int fd = f.take_reader_fd();
  int count = 0;
  auto r = std::make_shared<FdReader>(io, fd, [&] { return read_one(fd, count); });
  r->arm();
  io.run_for(std::chrono::milliseconds(100));
  BOOST_TEST(count == 3);
  io.restart();
  uint8_t b = 9;
  BOOST_REQUIRE_EQUAL(::send(f.fds[1], &b, 1, 0), 1);
  io.run_for(std::chrono::milliseconds(100));
  BOOST_TEST(count == 4);
  r->close();
}

BOOST_AUTO_TEST_CASE(close_from_inside_read_one_stops_reading) {
  asio::io_context io;
  Flooded f(200);
  int fd = f.take_reader_fd();
  int count = 0;
  std::shared_ptr<FdReader> r;
  r = std::make_shared<FdReader>(io, fd, [&] {
    if (!read_one(fd, count)) return false;
    if (count == 10) r->close();  // e.g. an engine shutting its own channel down
    return true;
  });
  r->arm();
  io.run_for(std::chrono::milliseconds(200));
  BOOST_TEST(count == 10);
}
