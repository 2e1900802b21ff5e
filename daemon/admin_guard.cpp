#include "daemon/admin_guard.h"

#include <algorithm>
#include <array>
#include <cctype>

namespace daemon_ {

bool constant_time_equal(std::string_view given, std::string_view secret) {
  if (secret.empty()) return given.empty();
  // Walk `given` whole and fold every difference into one value: no early
  // exit, no branch on the bytes. The secret is read cyclically so its
  // length does not set the loop count; a length mismatch is folded in too.
  unsigned diff = given.size() != secret.size() ? 1u : 0u;
  for (size_t i = 0; i < given.size(); ++i)
    diff |= static_cast<unsigned char>(given[i]) ^ static_cast<unsigned char>(secret[i % secret.size()]);
  // Keep the compiler from turning the loop back into an early-exit compare.
  volatile unsigned sink = diff;
  return sink == 0;
}

std::optional<std::string> base64_decode(std::string_view in) {
  static constexpr std::array<int8_t, 256> table = [] {
    std::array<int8_t, 256> t{};
    t.fill(-1);
    const char* a = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    for (int i = 0; i < 64; ++i) t[static_cast<unsigned char>(a[i])] = static_cast<int8_t>(i);
    return t;
  }();
  if (in.size() % 4 != 0) return std::nullopt;
  std::string out;
  out.reserve(in.size() / 4 * 3);
  for (size_t i = 0; i < in.size(); i += 4) {
    int v[4];
    size_t pad = 0;
    for (size_t j = 0; j < 4; ++j) {
      char c = in[i + j];
      if (c == '=') {
        // Padding only at the end of the last quantum (RFC 4648 §4).
        if (i + 4 != in.size() || j < 2) return std::nullopt;
        v[j] = 0;
        ++pad;
        continue;
      }
      if (pad) return std::nullopt;  // data after '='
      v[j] = table[static_cast<unsigned char>(c)];
      if (v[j] < 0) return std::nullopt;
    }
    uint32_t n = (uint32_t(v[0]) << 18) | (uint32_t(v[1]) << 12) | (uint32_t(v[2]) << 6) | uint32_t(v[3]);
    out += static_cast<char>(n >> 16);
    if (pad < 2) out += static_cast<char>((n >> 8) & 0xff);
    if (pad < 1) out += static_cast<char>(n & 0xff);
  }
  return out;
}

namespace {
bool iequals(std::string_view a, std::string_view b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           return std::tolower(static_cast<unsigned char>(x)) == std::tolower(static_cast<unsigned char>(y));
         });
}
std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}
}  // namespace

bool token_authorizes(std::string_view authorization, std::string_view token) {
  if (token.empty()) return true;
  authorization = trim(authorization);
  auto sp = authorization.find(' ');
  if (sp == std::string_view::npos) return false;
  std::string_view scheme = authorization.substr(0, sp);
  std::string_view cred = trim(authorization.substr(sp + 1));
  if (iequals(scheme, "Bearer")) return constant_time_equal(cred, token);
  if (iequals(scheme, "Basic")) {
    auto plain = base64_decode(cred);
    if (!plain) return false;
    // user-id ":" password (RFC 7617 §2); the user name is not checked: the
    // token is the only secret, as with Bearer.
    auto colon = plain->find(':');
    if (colon == std::string::npos) return false;
    return constant_time_equal(std::string_view(*plain).substr(colon + 1), token);
  }
  return false;
}

Admission::Decision Admission::arrive(uint64_t id, const std::function<bool(uint64_t)>& has_unread) {
  Decision d;
  if (open() < cap_) {
    d.admit = true;
  } else if (!lingering_.empty()) {
    d.admit = true;
    d.evict = lingering_.front();
    lingering_.pop_front();
  } else if (!waiting_.empty()) {
    d.admit = true;
    auto victim = waiting_.begin();  // the oldest, unless an idle one is found
    if (has_unread) {
      auto idle = std::find_if(waiting_.begin(), waiting_.end(), [&](uint64_t w) { return !has_unread(w); });
      if (idle != waiting_.end()) victim = idle;
    }
    d.evict = *victim;
    waiting_.erase(victim);
  }
  if (d.admit) waiting_.push_back(id);
  return d;
}

void Admission::answering(uint64_t id) {
  auto it = std::find(waiting_.begin(), waiting_.end(), id);
  if (it == waiting_.end()) return;
  waiting_.erase(it);
  answering_.push_back(id);
}

void Admission::lingering(uint64_t id) {
  auto it = std::find(answering_.begin(), answering_.end(), id);
  if (it == answering_.end()) return;
  answering_.erase(it);
  lingering_.push_back(id);
}

void Admission::left(uint64_t id) {
  if (auto it = std::find(waiting_.begin(), waiting_.end(), id); it != waiting_.end()) {
    waiting_.erase(it);
    return;
  }
  if (auto it = std::find(answering_.begin(), answering_.end(), id); it != answering_.end()) {
    answering_.erase(it);
    return;
  }
  if (auto it = std::find(lingering_.begin(), lingering_.end(), id); it != lingering_.end()) lingering_.erase(it);
}

}  // namespace daemon_
