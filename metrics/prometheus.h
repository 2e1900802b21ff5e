// The Prometheus text format (exposition format 0.0.4), written one way for
// every component: each declares its counters once (an X-macro next to the
// code that bumps them: proxy/counters.h, vrrp/counters.h, daemon/admin.h)
// and hands the values to this writer, which owns the rules: HELP and TYPE
// once per metric family, every counter's name ending in `_total` (the
// writer adds it), label values escaped by one label(). Pure: no I/O.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace metrics {

enum class Type { counter, gauge };

// A label value as the text format wants it: backslash, double quote and
// newline escaped, everything else (an IPv6 address in brackets, UTF-8)
// as it is.
std::string label(std::string_view value);

// The name a family is exported under: a counter's ends in "_total".
std::string family_name(std::string_view name, Type type);

using Labels = std::vector<std::pair<std::string_view, std::string>>;

class Writer {
 public:
  explicit Writer(std::string prefix = "vipproxy_") : prefix_(std::move(prefix)) {}

  // Starts a family (prefix + name, "_total" added to a counter's); the
  // samples that follow belong to it.
  Writer& family(std::string_view name, Type type, std::string_view help);
  Writer& sample(const Labels& labels, uint64_t value);
  Writer& sample(uint64_t value) { return sample({}, value); }

  const std::string& text() const { return out_; }

 private:
  std::string prefix_;
  std::string name_;  // of the family in progress
  std::string out_;
};

}  // namespace metrics
