#include "importer/cli.h"

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <optional>
#include <sstream>
#include <string>

#include "importer/convert.h"

namespace importer {

namespace {

const char* kImportUsage = R"(usage: vipproxy import [--haproxy FILE] [--keepalived FILE] [--node NAME]

Reads an existing haproxy.cfg and/or keepalived.conf and writes the equivalent
vipproxy configuration (YAML) to standard output. Standard error gets one line
per item that was not translated or whose meaning changes. At least one of
--haproxy and --keepalived is needed. See /usr/share/doc/vipproxy/importer.md
(docs/importer.md in the source tree).
)";

std::optional<std::string> read_file(const std::string& path, std::ostream& err) {
  // A directory opens as a stream and reads as nothing: it would become an
  // empty input and "the generated configuration does not load".
  std::error_code ec;
  if (std::filesystem::is_directory(path, ec)) {
    err << path << ": cannot read the file: it is a directory (give the file, e.g. " << path
        << (path.ends_with("/") ? "" : "/") << "haproxy.cfg or keepalived.conf)\n";
    return std::nullopt;
  }
  std::ifstream f(path, std::ios::binary);
  if (!f) {
    err << path << ": cannot read the file\n";
    return std::nullopt;
  }
  std::ostringstream s;
  s << f.rdbuf();
  if (f.bad()) {
    err << path << ": cannot read the file\n";
    return std::nullopt;
  }
  return s.str();
}

}  // namespace

int run_cli(int argc, const char* const* argv, std::ostream& out, std::ostream& err) {
  std::string hap_path, ka_path;
  Options opts;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    auto value = [&](std::string& dst) {
      if (i + 1 >= argc) {
        err << "vipproxy import: " << a << " needs a value\n" << kImportUsage;
        return false;
      }
      dst = argv[++i];
      return true;
    };
    if (a == "-h" || a == "--help") {
      out << kImportUsage;
      return 0;
    } else if (a == "--haproxy") {
      if (!value(hap_path)) return 2;
    } else if (a == "--keepalived") {
      if (!value(ka_path)) return 2;
    } else if (a == "--node") {
      if (!value(opts.node)) return 2;
    } else {
      err << "vipproxy import: unknown argument '" << a << "'\n" << kImportUsage;
      return 2;
    }
  }
  if (hap_path.empty() && ka_path.empty()) {
    err << "vipproxy import: give --haproxy FILE, --keepalived FILE or both\n" << kImportUsage;
    return 2;
  }
  std::optional<haproxy::Config> hap;
  std::optional<keepalived::Config> ka;
  try {
    if (!hap_path.empty()) {
      auto text = read_file(hap_path, err);
      if (!text) return 1;
      opts.haproxy_file = hap_path;
      // HAProxy expands "${NAME}" from its environment; the importer's is the
      // closest it can see, and each use is reported.
      hap = haproxy::parse(*text, hap_path, [](const std::string& name) -> std::optional<std::string> {
        const char* v = std::getenv(name.c_str());
        return v ? std::optional<std::string>(v) : std::nullopt;
      });
    }
    if (!ka_path.empty()) {
      auto text = read_file(ka_path, err);
      if (!text) return 1;
      opts.keepalived_file = ka_path;
      ka = keepalived::parse(*text, ka_path);
    }
  } catch (const ParseError& e) {
    err << e.what() << "\n";
    return 1;
  }
  Result r = convert(hap ? &*hap : nullptr, ka ? &*ka : nullptr, opts);
  out << r.yaml;
  out.flush();
  for (const auto& n : r.notes) err << n.to_string() << "\n";
  if (!r.refused.empty()) {
    for (const auto& n : r.refused) err << "vipproxy import: error: " << n.to_string() << "\n";
    err << "vipproxy import: the configuration above is not a faithful translation; fix the input or the output "
           "by hand\n";
    return 1;
  }
  if (!r.load_error.empty()) {
    err << "vipproxy import: the generated configuration does not load, fix it by hand: " << r.load_error << "\n";
    return 1;
  }
  return 0;
}

}  // namespace importer
