// cfg::Config -> YAML that cfg::load reads back to the same Config
// (load_string(to_yaml(c)) == c, tests/unit/cfg_dump_test.cpp). Pure.
#pragma once

#include <string>
#include <vector>

#include "cfg/config.h"

namespace cfg {

enum class DumpKeys {
  // Every key, those at their default value too: the whole configuration.
  all,
  // For a reader migrating from another tool (`vipproxy import`): every
  // check and timing value and the VRRP role keys explicitly, so one sees
  // what the old tool's defaults amounted to; other keys only where they
  // differ from vipproxy's defaults.
  migration,
};

struct DumpOptions {
  DumpKeys keys = DumpKeys::all;
  std::vector<std::string> header_comments;  // written first, as "# ..." lines
};

// Keys whose value cannot be written because it is "not set" (an optional
// port, an empty device, label, token or script user) are left out: the
// loader reads their absence back as the same value.
std::string to_yaml(const Config& c, const DumpOptions& opts = {});

}  // namespace cfg
