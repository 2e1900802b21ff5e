// A non-blocking descriptor read on the control thread's io_context, a
// bounded batch at a time.
//
// The control thread also sends our adverts (the Adver_Timer), serves the
// admin endpoint and runs the health checks. A reader that drained its
// socket to EAGAIN in one go ran for as long as a flood kept the socket
// non-empty: with the VRRP sockets' 2 MiB receive buffer (vrrp/netlink.cpp),
// a daemon slowed to ~40 us a datagram (ASan, or a busy 2-core host) and a
// 10k/s flood, one drain took most of a second. Our adverts stopped for
// longer than a backup's Master_Down_Interval (RFC 5798 §6.4.2: 3 x
// Master_Adver_Interval + Skew_Time, ~0.4 s at advert_int 100 ms), so
// keepalived took the VIP beside us, and /status timed out
// (tests/integration/test_flood_netns.py). So a turn reads at most kBatch
// items; if more are queued it posts the next turn, which runs after the
// handlers that became ready meanwhile (expired timers, other sockets).
#pragma once

#include <boost/asio/io_context.hpp>
#include <boost/asio/posix/stream_descriptor.hpp>
#include <boost/asio/post.hpp>
#include <functional>
#include <memory>

namespace vrrp {

class FdReader : public std::enable_shared_from_this<FdReader> {
 public:
  // 64 small datagrams are ~0.3 ms of work (a few ms under ASan): well
  // inside one advert interval.
  static constexpr int kBatch = 64;

  // read_one() reads one item and returns true, or returns false when the
  // descriptor would block (drained). The reader owns `fd` (closes it).
  FdReader(boost::asio::io_context& io, int fd, std::function<bool()> read_one)
      : sd_(io, fd), read_one_(std::move(read_one)) {}

  // Starts reading. The pending wait or posted turn holds a shared_ptr, so
  // a completion after close() finds the reader alive and does nothing.
  void arm() {
    sd_.async_wait(boost::asio::posix::stream_descriptor::wait_read,
                   [self = shared_from_this()](const boost::system::error_code& ec) {
                     if (!ec) self->turn();
                   });
  }

  // May be called from inside read_one() (a handler that stops its own
  // channel): read_one_ stays alive until the last pending handler lets go
  // of the reader, it is just never called again.
  void close() {
    closed_ = true;
    boost::system::error_code ignored;
    sd_.close(ignored);
  }

  int native_handle() { return sd_.native_handle(); }

 private:
  void turn() {
    for (int i = 0; i < kBatch; ++i) {
      if (closed_) return;
      if (!read_one_()) {
        if (!closed_) arm();
        return;
      }
    }
    if (!closed_) boost::asio::post(sd_.get_executor(), [self = shared_from_this()] { self->turn(); });
  }

  boost::asio::posix::stream_descriptor sd_;
  std::function<bool()> read_one_;
  bool closed_ = false;
};

}  // namespace vrrp
