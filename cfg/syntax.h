// Pure text checks shared by the loader: addresses, host names, HTTP tokens,
// durations and the "did you mean" distance. No YAML here, no I/O, so each
// rule can be tested (and fuzzed) on its own.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace cfg::syntax {

bool is_ipv4(std::string_view s);
bool is_ipv6(std::string_view s);

// RFC 1123 host name: dot-separated labels of letters, digits, '-' (and '_',
// which resolvers accept), 1-63 characters each, 253 in all, optional final
// dot. A name whose last label is all digits is not a host name: it is a
// mistyped IPv4 address (RFC 3696 section 2).
bool is_hostname(std::string_view s);

// Linux interface name: 1-15 bytes (IFNAMSIZ - 1), no '/', ':' or white space,
// not "." or "..".
bool is_ifname(std::string_view s);

// RFC 9110 section 5.6.2 token (an HTTP method is a token).
bool is_http_token(std::string_view s);

// Names of proxies, backends, instances and scripts end up in log lines and
// Prometheus label values: letters, digits, '-', '_', '.', '@' and ':'.
bool is_name(std::string_view s);

// A whole decimal number (optionally negative when allow_negative), no sign
// '+', no spaces, no hex; nullopt on anything else or on overflow.
std::optional<long long> parse_integer(std::string_view s, bool allow_negative);

// A decimal number of seconds, "1", "0.1", "40.95", as milliseconds; nullopt
// when not a plain decimal or not a whole number of milliseconds.
std::optional<long long> parse_decimal_seconds(std::string_view s);

// Levenshtein distance, ASCII case-insensitive.
std::size_t edit_distance(std::string_view a, std::string_view b);

std::string lower(std::string_view s);

// One spelling per address, to compare two: an IPv6 literal has many ("::1",
// "0::1", "0:0::1") and is given in the one inet_ntop writes; a host name or
// an IPv4 literal (inet_pton takes only the dotted quad) as written, case
// aside.
std::string canonical_host(const std::string& host);

// The first byte that keeps `text` from being UTF-8 text a person wrote: a
// NUL, a control character other than tab/CR/LF, DEL, or an invalid,
// overlong or surrogate UTF-8 sequence (a leading BOM is fine). yaml-cpp
// reads NUL as the end of input and stray bytes as Latin-1, so a binary file
// or one in another encoding is stopped before it with this position.
struct EncodingError {
  int line = 0, column = 0;  // 1-based, columns count characters
  std::string what;          // "NUL byte", "invalid UTF-8 byte 0xFF", ...
  bool operator==(const EncodingError&) const = default;
};
std::optional<EncodingError> first_encoding_error(std::string_view text);

}  // namespace cfg::syntax
