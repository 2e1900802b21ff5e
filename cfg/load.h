// YAML -> validated cfg::Config. Every error names the file, the line and the
// key, says what was expected and, for unknown keys, suggests the nearest one.
#pragma once

#include <stdexcept>
#include <string>
#include <string_view>

#include "cfg/config.h"

namespace cfg {

// what() is the full human message: "FILE:LINE:COL: KEY: what was expected".
class Error : public std::runtime_error {
 public:
  Error(std::string file, int line, int column, std::string key, std::string what);
  const std::string& file() const { return file_; }
  int line() const { return line_; }      // 1-based; 0 when not tied to a line
  int column() const { return column_; }  // 1-based; 0 when unknown
  const std::string& key() const { return key_; }   // dotted path: proxies[0].check.rise
  const std::string& reason() const { return reason_; }

 private:
  std::string file_;
  int line_, column_;
  std::string key_, reason_;
};

// Throws cfg::Error. Never crashes on empty, truncated or binary input.
Config load_file(const std::string& path);
Config load_string(std::string_view yaml, const std::string& source_name);

// "250ms", "2s", "1m", "1.5s", "100ms"; plain integers are refused (ambiguous).
// Returns false when the text is not a duration.
bool parse_duration(std::string_view text, Duration& out);

// The other way: the largest unit that keeps the value exact ("2s", "100ms",
// "30m", "1h", "0s"), which parse_duration() reads back to the same value.
std::string duration_text(Duration d);

}  // namespace cfg
