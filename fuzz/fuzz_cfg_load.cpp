// cfg::load_string on arbitrary text. Invariant: it returns a Config or
// throws cfg::Error; anything else escaping (YAML::Exception, std::bad_cast,
// std::out_of_range...) is a loader bug, and so is a crash, leak or hang.
// A Config it returns is dumped (cfg::to_yaml, both key sets) and must load
// back to the same Config.
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <string_view>

#include "cfg/dump.h"
#include "cfg/load.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  try {
    const cfg::Config c = cfg::load_string(text, "fuzz.yaml");
    for (auto keys : {cfg::DumpKeys::all, cfg::DumpKeys::migration}) {
      const std::string y = cfg::to_yaml(c, {keys, {}});
      cfg::Config back;
      try {
        back = cfg::load_string(y, "fuzz.yaml");
      } catch (const cfg::Error& e) {
        std::fprintf(stderr, "the dump does not load: %s\n%s", e.what(), y.c_str());
        std::abort();
      }
      if (!(back == c)) {
        std::fprintf(stderr, "the dump loads to another config:\n%s", y.c_str());
        std::abort();
      }
    }
  } catch (const cfg::Error& e) {
    // The message must name the source (what operators read first).
    if (std::string_view(e.what()).find("fuzz.yaml") == std::string_view::npos) {
      std::fprintf(stderr, "cfg::Error without the file name: %s\n", e.what());
      std::abort();
    }
  } catch (const std::exception& e) {
    std::fprintf(stderr, "load_string let a non-cfg::Error escape: %s\n", e.what());
    std::abort();
  }
  return 0;
}
