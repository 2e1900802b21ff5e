// Types shared by the haproxy.cfg and keepalived.conf readers and the emitter.
#pragma once

#include <chrono>
#include <stdexcept>
#include <string>
#include <string_view>

namespace importer {

using Duration = std::chrono::milliseconds;

// The input cannot be read at all (unbalanced braces, a section keyword with
// no name, a number that is not one...). what() is "FILE:LINE: reason".
class ParseError : public std::runtime_error {
 public:
  ParseError(std::string file, int line, std::string reason);
  const std::string& file() const { return file_; }
  int line() const { return line_; }
  const std::string& reason() const { return reason_; }

 private:
  std::string file_;
  int line_;
  std::string reason_;
};

// A directive that was read but is not mapped by the parser itself. `reason`
// is set when the parser already knows why (e.g. "overridden by ..."); the
// emitter supplies one otherwise.
struct Unhandled {
  int line = 0;
  std::string text;    // the directive as written, comments stripped
  std::string reason;  // may be empty
};

// A value together with the line it came from, so that every note about it
// can point at the right place (a `defaults` line, a `default-server` line...).
template <class T>
struct At {
  T value{};
  int line = 0;
};

// One line of the importer's report on standard error.
struct Note {
  std::string file;
  int line = 0;  // 0: about the file as a whole
  std::string text;
  std::string to_string() const {
    return line > 0 ? file + ":" + std::to_string(line) + ": " + text : file + ": " + text;
  }
  bool operator==(const Note&) const = default;
};

// Walks `text` line by line for both readers: each call sets `raw` to the
// next line (without its '\n') and `line` to its number from 1, and returns
// false after the last one. A line holding a NUL byte throws ParseError
// ("not a text file") rather than being read as two.
class Lines {
 public:
  Lines(std::string_view text, std::string file) : text_(text), file_(std::move(file)) {}
  bool next(std::string_view& raw, int& line);

 private:
  std::string_view text_;
  std::string file_;
  std::size_t pos_ = 0;
  int line_ = 0;
};

}  // namespace importer
