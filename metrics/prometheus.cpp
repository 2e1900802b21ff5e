#include "metrics/prometheus.h"

namespace metrics {

std::string label(std::string_view value) {
  std::string out;
  out.reserve(value.size());
  for (char c : value) {
    if (c == '\n') {
      out += "\\n";
      continue;
    }
    if (c == '\\' || c == '"') out += '\\';
    out += c;
  }
  return out;
}

std::string family_name(std::string_view name, Type type) {
  std::string n(name);
  if (type == Type::counter && !n.ends_with("_total")) n += "_total";
  return n;
}

Writer& Writer::family(std::string_view name, Type type, std::string_view help) {
  name_ = prefix_ + family_name(name, type);
  out_ += "# HELP " + name_ + " ";
  // HELP text escapes backslash and newline (not quotes).
  for (char c : help) {
    if (c == '\\') out_ += "\\\\";
    else if (c == '\n') out_ += "\\n";
    else out_ += c;
  }
  out_ += "\n# TYPE " + name_ + (type == Type::counter ? " counter\n" : " gauge\n");
  return *this;
}

Writer& Writer::sample(const Labels& labels, uint64_t value) {
  out_ += name_;
  if (!labels.empty()) {
    out_ += '{';
    for (std::size_t i = 0; i < labels.size(); ++i) {
      if (i) out_ += ',';
      out_ += std::string(labels[i].first) + "=\"" + label(labels[i].second) + "\"";
    }
    out_ += '}';
  }
  out_ += ' ' + std::to_string(value) + '\n';
  return *this;
}

}  // namespace metrics
