// Types shared by the haproxy.cfg and keepalived.conf readers and the emitter.
#pragma once

#include <chrono>
#include <stdexcept>
#include <string>

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

}  // namespace importer
