// The HTTP health-check reply, parsed the way health/checker.cpp does it
// (Attempt::read_reply / on_reply): a beast response_parser<string_body> with
// an 8 KiB header limit and a 64 KiB body limit, skip(true) after a HEAD
// request, fed by http::read from a stream that hands the reply over in
// pieces. The checker's parser is not a separate function yet; this mirrors
// its settings (keep kHeaderLimit / kBodyLimit in step with checker.cpp).
//
// Input: one control byte (bit 0: the request was HEAD; bits 1-7: the size of
// the pieces the peer's bytes arrive in, 1..128), then the bytes the server sent.
#include <boost/asio/buffer.hpp>
#include <boost/asio/error.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http.hpp>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string_view>

namespace beast = boost::beast;
namespace http = beast::http;
namespace asio = boost::asio;

namespace {

constexpr std::size_t kBodyLimit = 64 * 1024;  // health/checker.cpp
constexpr std::size_t kHeaderLimit = 8 * 1024;

// A SyncReadStream over a byte string: `piece` bytes per read_some, then EOF.
class PieceStream {
 public:
  PieceStream(const uint8_t* data, std::size_t size, std::size_t piece) : data_(data), size_(size), piece_(piece) {}

  template <class MutableBufferSequence>
  std::size_t read_some(const MutableBufferSequence& buffers, boost::system::error_code& ec) {
    ec = {};
    if (pos_ == size_) {
      ec = asio::error::eof;
      return 0;
    }
    const std::size_t n = asio::buffer_copy(buffers, asio::buffer(data_ + pos_, std::min(piece_, size_ - pos_)));
    pos_ += n;
    return n;
  }
  template <class MutableBufferSequence>
  std::size_t read_some(const MutableBufferSequence& buffers) {
    boost::system::error_code ec;
    auto n = read_some(buffers, ec);
    if (ec) throw boost::system::system_error(ec);
    return n;
  }

 private:
  const uint8_t* data_;
  std::size_t size_, piece_, pos_ = 0;
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1) return 0;
  const bool head = data[0] & 1;
  const std::size_t piece = (data[0] >> 1) + 1;
  PieceStream stream(data + 1, size - 1, piece);

  beast::flat_buffer buffer;
  http::response_parser<http::string_body> parser;
  parser.header_limit(kHeaderLimit);
  parser.body_limit(kBodyLimit);
  if (head) parser.skip(true);
  boost::system::error_code ec;
  http::read(stream, buffer, parser, ec);

  if (!ec || (ec == http::error::body_limit && parser.is_header_done())) {
    // What on_reply reads on success: the status decides the check.
    const unsigned status = parser.get().result_int();
    if (status > 999) {
      std::fprintf(stderr, "status %u out of range\n", status);
      std::abort();
    }
    if (!ec && !head && parser.get().body().size() > kBodyLimit) {
      std::fprintf(stderr, "body of %zu bytes passed the %zu limit\n", parser.get().body().size(), kBodyLimit);
      std::abort();
    }
  }
  (void)ec.message();
  return 0;
}
