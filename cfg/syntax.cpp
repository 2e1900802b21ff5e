#include "cfg/syntax.h"

#include <arpa/inet.h>

#include <algorithm>
#include <cstdio>
#include <limits>
#include <vector>

namespace cfg::syntax {

namespace {

bool is_digit(char c) { return c >= '0' && c <= '9'; }
bool is_alpha(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }
char lower_char(char c) { return (c >= 'A' && c <= 'Z') ? char(c - 'A' + 'a') : c; }

}  // namespace

bool is_ipv4(std::string_view s) {
  // inet_pton(AF_INET) is the strict dotted quad (no "1.2.3", no octal, no
  // leading zeros), which is what an operator means by an IPv4 literal.
  if (s.empty() || s.size() > 15) return false;
  std::string z(s);
  in_addr a{};
  return inet_pton(AF_INET, z.c_str(), &a) == 1;
}

bool is_ipv6(std::string_view s) {
  if (s.empty() || s.size() > 45) return false;
  std::string z(s);
  in6_addr a{};
  return inet_pton(AF_INET6, z.c_str(), &a) == 1;
}

bool is_hostname(std::string_view s) {
  if (!s.empty() && s.back() == '.') s.remove_suffix(1);
  if (s.empty() || s.size() > 253) return false;
  std::string_view last;
  while (true) {
    auto dot = s.find('.');
    std::string_view label = s.substr(0, dot);
    if (label.empty() || label.size() > 63) return false;
    if (label.front() == '-' || label.back() == '-') return false;
    for (char c : label)
      if (!is_alpha(c) && !is_digit(c) && c != '-' && c != '_') return false;
    last = label;
    if (dot == std::string_view::npos) break;
    s.remove_prefix(dot + 1);
  }
  return !std::all_of(last.begin(), last.end(), is_digit);
}

bool is_ifname(std::string_view s) {
  if (s.empty() || s.size() > 15 || s == "." || s == "..") return false;
  for (unsigned char c : s)
    if (c <= ' ' || c == '/' || c == ':' || c >= 0x7f) return false;
  return true;
}

bool is_http_token(std::string_view s) {
  if (s.empty()) return false;
  static constexpr std::string_view extra = "!#$%&'*+-.^_`|~";
  for (char c : s)
    if (!is_alpha(c) && !is_digit(c) && extra.find(c) == std::string_view::npos) return false;
  return true;
}

bool is_name(std::string_view s) {
  if (s.empty() || s.size() > 64) return false;
  for (char c : s)
    if (!is_alpha(c) && !is_digit(c) && c != '-' && c != '_' && c != '.' && c != '@' && c != ':') return false;
  return true;
}

std::optional<long long> parse_integer(std::string_view s, bool allow_negative) {
  bool negative = false;
  if (allow_negative && !s.empty() && s.front() == '-') {
    negative = true;
    s.remove_prefix(1);
  }
  if (s.empty() || s.size() > 18) return std::nullopt;
  long long v = 0;
  for (char c : s) {
    if (!is_digit(c)) return std::nullopt;
    v = v * 10 + (c - '0');
  }
  return negative ? -v : v;
}

std::optional<long long> parse_decimal_seconds(std::string_view s) {
  auto dot = s.find('.');
  auto whole = parse_integer(s.substr(0, dot), false);
  if (!whole || *whole > 1'000'000'000) return std::nullopt;
  long long ms = *whole * 1000;
  if (dot != std::string_view::npos) {
    std::string_view frac = s.substr(dot + 1);
    if (frac.empty()) return std::nullopt;
    long long scale = 100;
    for (char c : frac) {
      if (!is_digit(c)) return std::nullopt;
      if (scale == 0) {
        if (c != '0') return std::nullopt;  // finer than a millisecond
        continue;
      }
      ms += (c - '0') * scale;
      scale /= 10;
    }
  }
  return ms;
}

std::size_t edit_distance(std::string_view a, std::string_view b) {
  std::vector<std::size_t> row(b.size() + 1);
  for (std::size_t j = 0; j <= b.size(); ++j) row[j] = j;
  for (std::size_t i = 1; i <= a.size(); ++i) {
    std::size_t diag = row[0];
    row[0] = i;
    for (std::size_t j = 1; j <= b.size(); ++j) {
      std::size_t up = row[j];
      std::size_t cost = lower_char(a[i - 1]) == lower_char(b[j - 1]) ? 0 : 1;
      row[j] = std::min({row[j] + 1, row[j - 1] + 1, diag + cost});
      diag = up;
    }
  }
  return row[b.size()];
}

std::string lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = lower_char(c);
  return out;
}

std::string canonical_host(const std::string& host) {
  in6_addr a{};
  char buf[INET6_ADDRSTRLEN] = {};
  if (inet_pton(AF_INET6, host.c_str(), &a) == 1 && inet_ntop(AF_INET6, &a, buf, sizeof buf)) return buf;
  return lower(host);
}

std::optional<EncodingError> first_encoding_error(std::string_view text) {
  int line = 1, col = 1;
  std::size_t i = 0;
  if (text.starts_with("\xEF\xBB\xBF")) i = 3;
  auto bad = [&](std::string why) { return EncodingError{line, col, std::move(why)}; };
  char hex[8];
  while (i < text.size()) {
    auto c = static_cast<unsigned char>(text[i]);
    if (c < 0x80) {
      if (c == 0) return bad("NUL byte");
      if ((c < 0x20 && c != '\t' && c != '\n' && c != '\r') || c == 0x7f) {
        std::snprintf(hex, sizeof hex, "0x%02X", c);
        return bad(std::string("control character ") + hex);
      }
      ++i;
      if (c == '\n') {
        ++line;
        col = 1;
      } else {
        ++col;
      }
      continue;
    }
    std::size_t len = c >= 0xF0 ? 4 : c >= 0xE0 ? 3 : c >= 0xC0 ? 2 : 0;
    std::snprintf(hex, sizeof hex, "0x%02X", c);
    if (len == 0 || c > 0xF4 || c == 0xC0 || c == 0xC1 || i + len > text.size())
      return bad(std::string("invalid UTF-8 byte ") + hex);
    uint32_t cp = c & (0x7F >> len);
    for (std::size_t k = 1; k < len; ++k) {
      auto cc = static_cast<unsigned char>(text[i + k]);
      if ((cc & 0xC0) != 0x80) return bad(std::string("invalid UTF-8 sequence starting with ") + hex);
      cp = (cp << 6) | (cc & 0x3F);
    }
    bool overlong = (len == 3 && cp < 0x800) || (len == 4 && cp < 0x10000);
    if (overlong || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
      return bad(std::string("invalid UTF-8 sequence starting with ") + hex);
    i += len;
    ++col;
  }
  return std::nullopt;
}

}  // namespace cfg::syntax
