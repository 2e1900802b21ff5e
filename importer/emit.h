// Parsed haproxy.cfg + keepalived.conf -> vipproxy configuration (cfg::Config)
// -> YAML text, with one note per item that was not translated or that
// changes meaning on the way. Pure: no I/O.
#pragma once

#include <string>
#include <vector>

#include "cfg/config.h"
#include "importer/common.h"
#include "importer/haproxy.h"
#include "importer/keepalived.h"

namespace importer {

struct Options {
  std::string node;  // written as `node:` when not empty
  // Names used in notes ("haproxy.cfg:12: ..."): the paths the user gave.
  std::string haproxy_file = "haproxy.cfg";
  std::string keepalived_file = "keepalived.conf";
};

struct Result {
  cfg::Config config;       // what the YAML says (before the loader's defaults)
  std::string yaml;         // the vipproxy configuration
  std::vector<Note> notes;  // sorted by file and line, no duplicates
  std::string load_error;   // empty when `yaml` passes cfg::load_string
};

// Either input may be null (only one file given).
Result convert(const haproxy::Config* hap, const keepalived::Config* ka, const Options& opts);

// Writes the keys that matter for a migration: every check and timing value
// explicitly (so a reader sees what HAProxy's defaults amounted to) and the
// other keys only where they differ from vipproxy's defaults.
std::string to_yaml(const cfg::Config& c, const std::vector<std::string>& header_comments);

// "2s", "100ms", "30m": the largest unit that keeps the value exact.
std::string duration_text(Duration d);

}  // namespace importer
