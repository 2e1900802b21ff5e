// importer::haproxy::parse on arbitrary text, then the conversion to vipproxy
// YAML (which runs cfg::load_string on its own output). Invariant: only
// importer::ParseError escapes the parser, nothing escapes convert().
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <string_view>

#include "importer/convert.h"
#include "importer/haproxy.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  importer::haproxy::Config parsed;
  try {
    parsed = importer::haproxy::parse(text, "fuzz.conf");
  } catch (const importer::ParseError&) {
    return 0;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "haproxy::parse let a non-ParseError escape: %s\n", e.what());
    std::abort();
  }
  try {
    importer::Options opts;
    auto r = importer::convert(&parsed, nullptr, opts);
    (void)r;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "convert() threw: %s\n", e.what());
    std::abort();
  }
  return 0;
}
