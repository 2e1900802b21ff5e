// The byte pumps (proxy/pump.h) without a daemon: each test wires
//   writer --> [from] pump [to] --> reader
// over socketpair() or a loopback TCP pair, and drives the pump with poll()
// the way the worker's loop does (run, then wait for what it asked for).
#define BOOST_TEST_MODULE proxy_pump
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <boost/test/unit_test.hpp>
#include <chrono>
#include <cstring>
#include <functional>
#include <random>
#include <thread>
#include <vector>

#include "proxy/kernel_path.h"
#include "proxy/pipe_pool.h"
#include "proxy/pump.h"

using namespace proxy;

namespace {

struct Pair {
  int a = -1, b = -1;  // bytes written to a arrive at b, and back
};

void nonblock(int fd) { ::fcntl(fd, F_SETFL, ::fcntl(fd, F_GETFL) | O_NONBLOCK); }

Pair unix_pair() {
  int sv[2];
  BOOST_REQUIRE(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) == 0);
  return {sv[0], sv[1]};
}

Pair tcp_pair() {
  int l = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in sa{};
  sa.sin_family = AF_INET;
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  BOOST_REQUIRE(::bind(l, reinterpret_cast<sockaddr*>(&sa), sizeof sa) == 0);
  BOOST_REQUIRE(::listen(l, 1) == 0);
  socklen_t len = sizeof sa;
  ::getsockname(l, reinterpret_cast<sockaddr*>(&sa), &len);
  int c = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  BOOST_REQUIRE(::connect(c, reinterpret_cast<sockaddr*>(&sa), sizeof sa) == 0);
  int s = ::accept4(l, nullptr, nullptr, SOCK_CLOEXEC);
  BOOST_REQUIRE(s >= 0);
  ::close(l);
  return {c, s};
}

std::vector<char> pattern(size_t n, unsigned seed) {
  std::vector<char> v(n);
  std::mt19937 g(seed);
  for (auto& c : v) c = static_cast<char>(g());
  return v;
}

void write_all(int fd, const char* p, size_t n) {
  while (n > 0) {
    ssize_t w = ::send(fd, p, n, MSG_NOSIGNAL);
    BOOST_REQUIRE(w > 0);
    p += w;
    n -= static_cast<size_t>(w);
  }
}

// What one test wires up: src.a (writer) -> src.b (pump's from),
// dst.a (pump's to) -> dst.b (reader).
struct Rig {
  Pair src, dst;
  PipePool pipes;
  std::vector<char> scratch = std::vector<char>(16 * 1024);
  PumpContext ctx;
  explicit Rig(bool tcp) {
    src = tcp ? tcp_pair() : unix_pair();
    dst = tcp ? tcp_pair() : unix_pair();
    nonblock(src.b);
    nonblock(dst.a);
    ctx.pipes = &pipes;
    ctx.scratch = scratch.data();
    ctx.scratch_size = scratch.size();
  }
  ~Rig() {
    for (int fd : {src.a, src.b, dst.a, dst.b})
      if (fd >= 0) ::close(fd);
  }
  // Runs the pump until it is done or fails, waiting with poll() for what
  // it asks for (level-triggered: readiness is re-read from poll).
  PumpStatus drive(Pump& p, std::chrono::seconds limit = std::chrono::seconds(30),
                   const std::function<void(PumpStatus)>& each = {}) {
    Readiness in;
    in.readable = true;
    auto deadline = std::chrono::steady_clock::now() + limit;
    for (;;) {
      PumpStatus st = p.run(src.b, in, dst.a);
      if (each) each(st);
      if (st == PumpStatus::done || st == PumpStatus::error) return st;
      if (std::chrono::steady_clock::now() > deadline) return st;
      pollfd pf{};
      pf.fd = st == PumpStatus::want_read ? src.b : dst.a;
      pf.events = st == PumpStatus::want_read ? POLLIN | POLLRDHUP : POLLOUT;
      ::poll(&pf, 1, 100);
      if (st == PumpStatus::want_read && (pf.revents & (POLLIN | POLLRDHUP | POLLHUP | POLLERR))) {
        in.readable = true;
        if (pf.revents & (POLLRDHUP | POLLHUP)) in.rdhup = true;
      }
    }
  }
};

template <class P>
void transfer_intact(bool tcp, size_t size) {
  Rig r(tcp);
  P pump(r.ctx);
  auto data = pattern(size, 7);
  std::thread writer([&] {
    write_all(r.src.a, data.data(), data.size());
    ::shutdown(r.src.a, SHUT_WR);
  });
  std::vector<char> got;
  std::thread reader([&] {
    char buf[65536];
    for (;;) {
      ssize_t n = ::recv(r.dst.b, buf, sizeof buf, 0);
      if (n <= 0) break;
      got.insert(got.end(), buf, buf + n);
    }
  });
  PumpStatus st = r.drive(pump);
  writer.join();
  reader.join();
  BOOST_TEST(static_cast<int>(st) == static_cast<int>(PumpStatus::done));
  BOOST_TEST(pump.eof());
  BOOST_TEST(pump.done());
  BOOST_TEST(pump.bytes() == size);
  BOOST_TEST(got.size() == size);  // the reader saw the FIN after every byte
  BOOST_TEST((got == data));
  BOOST_TEST(r.pipes.in_use() == 0u);
}

}  // namespace

BOOST_AUTO_TEST_CASE(copy_pump_moves_every_byte_and_the_fin_socketpair) { transfer_intact<CopyPump>(false, 8 << 20); }
BOOST_AUTO_TEST_CASE(copy_pump_moves_every_byte_and_the_fin_tcp) { transfer_intact<CopyPump>(true, 8 << 20); }
BOOST_AUTO_TEST_CASE(splice_pump_moves_every_byte_and_the_fin_socketpair) {
  transfer_intact<SplicePump>(false, 8 << 20);
}
BOOST_AUTO_TEST_CASE(splice_pump_moves_every_byte_and_the_fin_tcp) { transfer_intact<SplicePump>(true, 32 << 20); }
BOOST_AUTO_TEST_CASE(small_transfers) {
  for (size_t n : {size_t{0}, size_t{1}, size_t{100}, size_t{16 * 1024}, size_t{16 * 1024 + 1}}) {
    transfer_intact<CopyPump>(true, n);
    transfer_intact<SplicePump>(true, n);
  }
}

BOOST_AUTO_TEST_CASE(splice_pump_splices_bulk_and_copies_messages) {
  Rig r(true);
  SplicePump pump(r.ctx);
  // A small message is copied: no pipe taken.
  write_all(r.src.a, "hello", 5);
  Readiness in;
  in.readable = true;
  BOOST_TEST(static_cast<int>(pump.run(r.src.b, in, r.dst.a)) == static_cast<int>(PumpStatus::want_read));
  BOOST_TEST(!pump.bulk());
  BOOST_TEST(!pump.spliced());
  BOOST_TEST(pump.bytes() == 5u);
  // A short read shows the socket drained: the pump does not read again
  // to hear EAGAIN (the next bytes come with an event).
  BOOST_TEST(!in.readable);
  char buf[8];
  BOOST_TEST(::recv(r.dst.b, buf, sizeof buf, 0) == 5);
  // 1 MiB at once: the first read fills the scratch buffer, then it splices.
  auto data = pattern(1 << 20, 3);
  std::thread writer([&] { write_all(r.src.a, data.data(), data.size()); });
  std::vector<char> got;
  std::thread reader([&] {
    char b[65536];
    while (got.size() < data.size()) {
      ssize_t n = ::recv(r.dst.b, b, sizeof b, 0);
      if (n <= 0) break;
      got.insert(got.end(), b, b + n);
    }
  });
  in.readable = true;
  while (pump.bytes() < 5 + data.size()) {
    PumpStatus st = pump.run(r.src.b, in, r.dst.a);
    BOOST_REQUIRE(st != PumpStatus::error);
    pollfd pf{st == PumpStatus::want_read ? r.src.b : r.dst.a,
              static_cast<short>(st == PumpStatus::want_read ? POLLIN : POLLOUT), 0};
    if (pump.bytes() < 5 + data.size()) ::poll(&pf, 1, 100);
    if (pf.revents & POLLIN) in.readable = true;
  }
  writer.join();
  reader.join();
  BOOST_TEST(pump.spliced());
  BOOST_TEST((got == data));
  BOOST_TEST(pump.idle());
  BOOST_TEST(r.pipes.in_use() == 0u, "the pipe goes back to the pool when the burst ends");
}

// Back-pressure: a receiver that does not read stops the pump from reading
// more than one scratch buffer beyond what the sockets hold.
template <class P>
void back_pressure(bool tcp) {
  Rig r(tcp);
  int small = 64 * 1024;
  for (int fd : {r.src.a, r.src.b, r.dst.a, r.dst.b}) {
    ::setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &small, sizeof small);
    ::setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &small, sizeof small);
  }
  P pump(r.ctx);
  auto data = pattern(16 << 20, 11);
  std::atomic<size_t> written{0};
  std::thread writer([&] {
    nonblock(r.src.a);
    size_t off = 0;
    auto until = std::chrono::steady_clock::now() + std::chrono::seconds(30);
    while (off < data.size() && std::chrono::steady_clock::now() < until) {
      ssize_t w = ::send(r.src.a, data.data() + off, data.size() - off, MSG_NOSIGNAL);
      if (w > 0) {
        off += static_cast<size_t>(w);
        written = off;
      } else {
        pollfd pf{r.src.a, POLLOUT, 0};
        ::poll(&pf, 1, 50);
      }
    }
    ::shutdown(r.src.a, SHUT_WR);
  });
  // Nobody reads dst.b: driven for a while, the pump ends up waiting to
  // write, and the writer is held back once every buffer on the way is full.
  Readiness in;
  in.readable = true;
  PumpStatus st{};
  auto drive_for = [&](std::chrono::milliseconds d) {
    auto until = std::chrono::steady_clock::now() + d;
    while (std::chrono::steady_clock::now() < until) {
      st = pump.run(r.src.b, in, r.dst.a);
      BOOST_REQUIRE(st != PumpStatus::error);
      pollfd pf{st == PumpStatus::want_read ? r.src.b : r.dst.a,
                static_cast<short>(st == PumpStatus::want_read ? POLLIN : POLLOUT), 0};
      ::poll(&pf, 1, 20);
      if (pf.revents & POLLIN) in.readable = true;
    }
  };
  // Until nothing moves for 500 ms with the pump waiting to write (a fixed
  // 1 s of driving was not always enough for the buffers to fill on a
  // loaded machine), within a deadline.
  size_t stalled_at = 0, held = 0;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
  for (;;) {
    stalled_at = pump.bytes();
    held = written.load();
    drive_for(std::chrono::milliseconds(500));
    if (st == PumpStatus::want_write && pump.bytes() == stalled_at && written.load() == held) break;
    BOOST_REQUIRE_MESSAGE(std::chrono::steady_clock::now() < deadline,
                          "the pump and the writer never stopped while nobody read (moved "
                              << pump.bytes() << " B, written " << written.load() << " B)");
  }
  BOOST_TEST(held < data.size(), "the writer is held back, not buffered without bound");
  // Now the receiver reads everything: every byte arrives, in order.
  std::vector<char> got;
  std::thread reader([&] {
    char b[65536];
    for (;;) {
      ssize_t n = ::recv(r.dst.b, b, sizeof b, 0);
      if (n <= 0) break;
      got.insert(got.end(), b, b + n);
    }
  });
  st = r.drive(pump);
  writer.join();
  reader.join();
  BOOST_TEST(static_cast<int>(st) == static_cast<int>(PumpStatus::done));
  BOOST_TEST((got == data));
}

BOOST_AUTO_TEST_CASE(copy_pump_back_pressure_tcp) { back_pressure<CopyPump>(true); }
BOOST_AUTO_TEST_CASE(splice_pump_back_pressure_tcp) { back_pressure<SplicePump>(true); }
BOOST_AUTO_TEST_CASE(copy_pump_back_pressure_socketpair) { back_pressure<CopyPump>(false); }

// Bytes and the FIN both there before the pump first runs (a client that
// sent its request and closed before the backend was connected).
BOOST_AUTO_TEST_CASE(data_then_fin_before_the_first_run) {
  for (bool splice : {false, true}) {
    Rig r(true);
    write_all(r.src.a, "early bytes", 11);
    ::shutdown(r.src.a, SHUT_WR);
    pollfd pf{r.src.b, POLLRDHUP, 0};
    BOOST_REQUIRE(::poll(&pf, 1, 5000) == 1);
    Readiness in;
    in.readable = true;
    in.rdhup = true;  // the event said so
    std::unique_ptr<Pump> p;
    if (splice) p = std::make_unique<SplicePump>(r.ctx);
    else p = std::make_unique<CopyPump>(r.ctx);
    BOOST_TEST(static_cast<int>(p->run(r.src.b, in, r.dst.a)) == static_cast<int>(PumpStatus::done));
    char buf[32];
    BOOST_TEST(::recv(r.dst.b, buf, sizeof buf, 0) == 11);
    BOOST_TEST(::recv(r.dst.b, buf, sizeof buf, 0) == 0);  // the FIN came through
  }
}

// The receiver is gone: writing fails and the pump says so.
BOOST_AUTO_TEST_CASE(peer_reset_is_an_error) {
  for (bool splice : {false, true}) {
    Rig r(true);
    linger l{1, 0};
    ::setsockopt(r.dst.b, SOL_SOCKET, SO_LINGER, &l, sizeof l);
    ::close(r.dst.b);  // RST
    r.dst.b = -1;
    // Wait (with a deadline) until the reset has closed dst.a: only then
    // is a write to it an error rather than a write the RST answers later.
    pollfd pf{r.dst.a, POLLHUP, 0};
    BOOST_REQUIRE(::poll(&pf, 1, 5000) == 1 && (pf.revents & POLLHUP));
    write_all(r.src.a, "x", 1);
    std::unique_ptr<Pump> p;
    if (splice) p = std::make_unique<SplicePump>(r.ctx);
    else p = std::make_unique<CopyPump>(r.ctx);
    BOOST_TEST(static_cast<int>(r.drive(*p, std::chrono::seconds(5))) == static_cast<int>(PumpStatus::error));
  }
}

// socket_bytes (proxy/kernel_path.h): what the kernel path's accounting
// reads from a TCP socket. Received, unread and written, each without the
// FIN TCP counts as one byte.
BOOST_AUTO_TEST_CASE(socket_bytes_counts_data_without_the_fin) {
  Pair p = tcp_pair();
  // The connecting side's SYN counts in tcpi_bytes_acked: the kernel path
  // works from differences, so does this test.
  SocketBytes w0;
  BOOST_REQUIRE(socket_bytes(p.a, w0));
  auto data = pattern(1000, 3);
  write_all(p.a, data.data(), data.size());
  char buf[300];
  BOOST_REQUIRE(::recv(p.b, buf, sizeof buf, MSG_WAITALL) == 300);
  auto wait_for = [](const std::function<bool()>& cond) {
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
    while (!cond() && std::chrono::steady_clock::now() < deadline) std::this_thread::yield();
    return cond();
  };
  SocketBytes rb, wb;
  BOOST_REQUIRE(wait_for([&] { return socket_bytes(p.b, rb) && rb.received == 1000; }));
  BOOST_TEST(rb.unread == 700u);
  BOOST_TEST(rb.stable);  // nothing moves
  BOOST_REQUIRE(socket_bytes(p.a, wb));
  BOOST_TEST(wb.written - w0.written == 1000u);  // acked or still queued: the same sum
  BOOST_TEST(wb.stable);
  ::shutdown(p.a, SHUT_WR);
  BOOST_REQUIRE(wait_for([&] { return socket_bytes(p.b, rb) && rb.state == 8 /* CLOSE_WAIT */; }));
  BOOST_TEST(rb.received == 1000u);
  BOOST_TEST(rb.unread == 700u);
  BOOST_REQUIRE(wait_for([&] { return socket_bytes(p.a, wb) && wb.state == 5 /* FIN_WAIT2 */; }));
  BOOST_TEST(wb.written - w0.written == 1000u);
  ::close(p.a);
  ::close(p.b);
}

// A reading taken while bytes and ACKs arrive must not mix counts from
// before and after them: the kernel path's baselines come from one reading,
// and a skew lasts for the whole session (a hand-over once counted 5 bytes
// as never forwarded, so the FIN after them was never passed on). Every
// reading that says it is `stable` must be exact: on the receiver, what was
// received and is not unread is what this thread took; on the sender,
// everything send() took before the reading is written.
BOOST_AUTO_TEST_CASE(socket_bytes_stable_readings_are_exact_while_bytes_arrive) {
  Pair p = tcp_pair();
  nonblock(p.b);
  int nodelay = 1;
  ::setsockopt(p.a, IPPROTO_TCP, TCP_NODELAY, &nodelay, sizeof nodelay);
  std::atomic<uint64_t> sent{0};
  std::atomic<bool> stop{false};
  std::thread writer([&] {
    char b[7] = {};  // small segments: many arrivals and ACKs per reading
    while (!stop) {
      ssize_t n = ::send(p.a, b, sizeof b, MSG_NOSIGNAL | MSG_DONTWAIT);
      if (n > 0) sent += static_cast<uint64_t>(n);
      else std::this_thread::yield();
    }
  });
  uint64_t taken = 0;
  std::vector<char> buf(1 << 20);
  int stable = 0, skewed_receiver = 0, skewed_sender = 0;
  const int readings = 20000;
  for (int i = 0; i < readings; ++i) {
    SocketBytes rb, wb;
    const uint64_t before = sent;
    BOOST_REQUIRE(socket_bytes(p.b, rb));
    BOOST_REQUIRE(socket_bytes(p.a, wb));
    if (rb.stable && rb.received - rb.unread != taken) ++skewed_receiver;
    if (wb.stable && wb.written < before) ++skewed_sender;
    stable += rb.stable && wb.stable;
    if (i % 16 == 0) {  // keep the window open
      ssize_t n = ::recv(p.b, buf.data(), buf.size(), 0);
      if (n > 0) taken += static_cast<uint64_t>(n);
    }
  }
  stop = true;
  writer.join();
  BOOST_TEST(skewed_receiver == 0);
  BOOST_TEST(skewed_sender == 0);
  BOOST_TEST(stable > 0);
  BOOST_TEST(taken > 0u);
  BOOST_TEST_MESSAGE("socket_bytes: " << stable << " of " << readings << " readings stable, " << taken
                                      << " bytes taken");
  ::close(p.a);
  ::close(p.b);
}
