#include "proxy/pump.h"

#include <fcntl.h>
#include <sys/socket.h>

#include <cerrno>
#include <cstring>

namespace proxy {

namespace {
// As much as a pipe may hold (PipeBudget::kBytes; 64 KiB for one past the
// budget): one splice fills it in one call.
constexpr size_t kChunk = PipeBudget::kBytes;

bool would_block() { return errno == EAGAIN || errno == EWOULDBLOCK; }
}  // namespace

// ---- CopyPump ----

CopyPump::Flush CopyPump::flush(int to) {
  while (pending_ > 0) {
    ssize_t n = ::send(to, buf_.get() + buf_off_, pending_, MSG_NOSIGNAL | MSG_DONTWAIT);
    if (n > 0) {
      pending_ -= static_cast<size_t>(n);
      buf_off_ += static_cast<size_t>(n);
      bytes_ += static_cast<uint64_t>(n);
      // A partial send means the socket is full: no second call to hear EAGAIN.
      if (pending_ > 0) return Flush::blocked;
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && would_block()) return Flush::blocked;
    return Flush::failed;
  }
  buf_.reset();
  buf_off_ = 0;
  return Flush::empty;
}

bool CopyPump::copy_once(int from, Readiness& in, int to, PumpStatus& st) {
  char* scratch = ctx_.scratch;
  const size_t size = ctx_.scratch_size;
  ssize_t n = ::recv(from, scratch, size, MSG_DONTWAIT);
  if (n > 0) {
    ++reads_;
    last_read_ = static_cast<size_t>(n);
    // A short read emptied the socket: more bytes come with an edge of
    // their own. Only a FIN that arrived with these bytes would not (it
    // came before the event was taken, so the event said EPOLLRDHUP): then
    // read on to see it.
    if (static_cast<size_t>(n) < size && !in.rdhup) in.readable = false;
    ssize_t m;
    do m = ::send(to, scratch, static_cast<size_t>(n), MSG_NOSIGNAL | MSG_DONTWAIT);
    while (m < 0 && errno == EINTR);
    if (m < 0 && would_block()) m = 0;
    if (m < 0) {
      st = PumpStatus::error;
      return false;
    }
    bytes_ += static_cast<uint64_t>(m);
    if (m < n) {
      // The receiver is slow: keep only what it has not taken yet, and read
      // no more until it has.
      pending_ = static_cast<size_t>(n - m);
      buf_ = std::make_unique<char[]>(pending_);
      buf_off_ = 0;
      std::memcpy(buf_.get(), scratch + m, pending_);
      st = PumpStatus::want_write;
      return false;
    }
    return true;
  }
  if (n == 0) {
    eof_ = true;
    return true;
  }
  if (errno == EINTR) return true;
  if (would_block()) {
    in.readable = false;
    st = PumpStatus::want_read;
    return false;
  }
  st = PumpStatus::error;
  return false;
}

PumpStatus CopyPump::finish(int to) {
  // Half-close: pass the FIN on; the other direction keeps running.
  if (!fin_by_close_) ::shutdown(to, SHUT_WR);
  done_ = true;
  return PumpStatus::done;
}

PumpStatus CopyPump::run(int from, Readiness& in, int to) {
  if (done_) return PumpStatus::done;
  for (;;) {
    if (pending_ > 0) {
      Flush f = flush(to);
      if (f == Flush::blocked) return PumpStatus::want_write;
      if (f == Flush::failed) return PumpStatus::error;
    }
    if (eof_) return finish(to);
    if (!in.readable) return PumpStatus::want_read;
    PumpStatus st;
    if (!copy_once(from, in, to, st)) return st;
  }
}

void CopyPump::release() {
  buf_.reset();
  pending_ = 0;
  buf_off_ = 0;
}

// ---- SplicePump ----

PumpStatus SplicePump::run(int from, Readiness& in, int to) {
  if (done_) return PumpStatus::done;
  auto end_burst = [&] {
    // The pipe is empty (nothing pending): back to the pool, so an idle
    // session holds none. A stream stays on the zero-copy path while its
    // bursts are big; a short burst (a query, a reply) sends it back to
    // copying.
    ctx_.pipes->release(pipe_);
    splicing_ = splicing_ && burst_ >= ctx_.scratch_size;
    burst_ = 0;
  };
  for (;;) {
    if (pending_ > 0) {
      if (buf_) {
        Flush f = flush(to);
        if (f == Flush::blocked) return PumpStatus::want_write;
        if (f == Flush::failed) return PumpStatus::error;
      } else {
        ssize_t n = ::splice(pipe_.rd, nullptr, to, nullptr, pending_, SPLICE_F_MOVE | SPLICE_F_NONBLOCK);
        if (n > 0) {
          pending_ -= static_cast<size_t>(n);
          bytes_ += static_cast<uint64_t>(n);
          continue;
        }
        if (n < 0 && errno == EINTR) continue;
        if (n < 0 && would_block()) return PumpStatus::want_write;
        return PumpStatus::error;
      }
    }
    if (eof_) {
      ctx_.pipes->release(pipe_);
      return finish(to);
    }
    if (!in.readable) {
      end_burst();
      return PumpStatus::want_read;
    }
    if (splicing_) {
      if (!pipe_) pipe_ = ctx_.pipes->acquire();
      if (!pipe_) {  // out of descriptors for pipes: copy instead
        fell_back_ = true;
        splicing_ = false;
        continue;
      }
      ssize_t n = ::splice(from, nullptr, pipe_.wr, nullptr, kChunk, SPLICE_F_MOVE | SPLICE_F_NONBLOCK);
      if (n > 0) {
        // A short splice does not show the socket drained (the pipe may have
        // run out of slots first): read on until EAGAIN.
        ++reads_;
        spliced_ = true;
        pending_ = static_cast<size_t>(n);
        burst_ += static_cast<size_t>(n);
        continue;
      }
      if (n == 0) {
        eof_ = true;
        continue;
      }
      if (errno == EINTR) continue;
      if (errno == EINVAL) {  // this socket cannot splice
        ctx_.pipes->release(pipe_);
        fell_back_ = true;
        splicing_ = false;
        continue;
      }
      if (would_block()) {
        in.readable = false;
        end_burst();
        return PumpStatus::want_read;
      }
      return PumpStatus::error;
    }
    PumpStatus st;
    last_read_ = 0;
    bool go_on = copy_once(from, in, to, st);
    // A read that filled the scratch buffer: a bulk stream has begun.
    if (last_read_ == ctx_.scratch_size && !fell_back_) splicing_ = true;
    if (!go_on) {
      if (st == PumpStatus::want_read) end_burst();
      return st;
    }
  }
}

void SplicePump::release() {
  CopyPump::release();
  // A pipe may still hold bytes (session torn down mid-transfer).
  ctx_.pipes->discard(pipe_);
}

}  // namespace proxy
