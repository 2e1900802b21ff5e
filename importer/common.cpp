#include "importer/common.h"

namespace importer {

ParseError::ParseError(std::string file, int line, std::string reason)
    : std::runtime_error(file + ":" + std::to_string(line) + ": " + reason),
      file_(std::move(file)),
      line_(line),
      reason_(std::move(reason)) {}

bool Lines::next(std::string_view& raw, int& line) {
  if (pos_ > text_.size()) return false;
  std::size_t nl = text_.find('\n', pos_);
  raw = text_.substr(pos_, nl == std::string_view::npos ? std::string_view::npos : nl - pos_);
  pos_ = nl == std::string_view::npos ? text_.size() + 1 : nl + 1;
  line = ++line_;
  if (raw.find('\0') != std::string_view::npos) throw ParseError(file_, line, "NUL byte: this is not a text file");
  return true;
}

}  // namespace importer
